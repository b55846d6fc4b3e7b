"use strict";
// TLS: a private redis-server with a certificate made at test time (its own CA). Two socket.io
// servers with our adapter connect over rediss:// with that CA and share a broadcast; without
// the CA the certificate is refused (verification is on by default) and the adapter reports it.
const { test, before, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createAdapter } = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"));
const { RedisProcess, freePort, portAnswers, serverArgs, tempDir, removeDir } = require("./helpers/redis-process");

/** The TLS port is picked here: apart from helpers/private-redis.js's range, below the ephemeral range. */
const TLS_PORT_RANGE = [6400, 6499];

let dir;
let redis;
let port;
const servers = [];

function openssl(...args) {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

before(async () => {
  dir = tempDir("sioadapter-tls-");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sioadapter test CA");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  fs.writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext");
  port = await freePort(TLS_PORT_RANGE);
  // No plain TCP port (--port 0), so "up" is the TLS port accepting connections rather than PING.
  redis = new RedisProcess("TLS redis-server", port, serverArgs(0, dir, "--tls-port", String(port),
    "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"),
  { cwd: dir, ready: portAnswers });
  await redis.start(5000);
});

after(async () => {
  for (const s of servers) s.io.close();
  if (redis) await redis.stop();
  removeDir(dir);
});

async function socketServer(settings, key) {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(createAdapter(settings, undefined, { key }));
  const errors = [];
  io.of("/").adapter.on("error", (err) => errors.push(err));
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const entry = { io, errors, port: httpServer.address().port };
  servers.push(entry);
  return entry;
}

/** Both nodes ready, a broadcast from `a` reaches a client of `b`, and no error was reported. */
async function sharesABroadcast(a, b, text) {
  await Promise.all([a.io.of("/").adapter.ready, b.io.of("/").adapter.ready]);
  const client = connect(`http://127.0.0.1:${b.port}`, { transports: ["websocket"] });
  await new Promise((resolve) => client.on("connect", resolve));
  const got = new Promise((resolve) => client.on("secure", resolve));
  a.io.emit("secure", text);
  assert.strictEqual(await got, text);
  client.close();
  assert.deepStrictEqual([...a.errors, ...b.errors], []);
}

test("with the test CA, two nodes share a broadcast over rediss://", { timeout: 30000 }, async () => {
  const key = `tls-${process.pid}`;
  const ca = fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
  const a = await socketServer({ host: "127.0.0.1", port, tls: { ca } }, key);
  const b = await socketServer({ socket: { host: "127.0.0.1", port, tls: true, ca } }, key); // node-redis shape
  await sharesABroadcast(a, b, "over TLS");
});

test("without the CA the server certificate is refused and the adapter says so", { timeout: 30000 }, async () => {
  const c = await socketServer({ host: "127.0.0.1", port, tls: {} }, `tls-bad-${process.pid}`);
  for (let i = 0; i < 200 && c.errors.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(c.errors.length > 0, "no error reported");
  assert.strictEqual(c.errors[0].code, "ERR_SIO_REDIS");
  assert.match(c.errors.map((e) => e.message).join("\n"), /certificate|UnknownIssuer|invalid peer|tls/i);
});

// Issue 12: TLS set on a client is never dropped. Settings given as { url: "redis://…", socket:
// { tls: true, ca } } (node-redis's shape) used to be read from the URL alone, i.e. in plaintext
// against this TLS-only server (which would then never answer): now they connect over TLS. Same
// for an ioredis client made from a redis:// URL with `tls`.
test("settings { url: 'redis://…', socket: { tls: true, ca } } and ioredis('redis://…', { tls }) connect over TLS, not plaintext", { timeout: 30000 }, async () => {
  const key = `tls-url-${process.pid}`;
  const ca = fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
  const Redis = require("ioredis");
  const ioredis = new Redis(`redis://127.0.0.1:${port}`, { tls: { ca }, lazyConnect: true });
  const a = await socketServer(ioredis, key);
  const b = await socketServer({ url: `redis://127.0.0.1:${port}`, socket: { tls: true, ca } }, key);
  await sharesABroadcast(a, b, "still TLS");
});

test("TLS asked on a Sentinel or cluster client, settings or URL gives a TLS URL, never plaintext", () => {
  const { createCluster } = require("redis");
  const Redis = require("ioredis");
  const { resolveRedisUrl } = require(path.join(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"), "lib", "connection"));
  const sentinels = [{ host: "127.0.0.1", port: 26379 }];
  const cases = [
    [{ url: "redis+sentinel://127.0.0.1:26379/mymaster", socket: { tls: true } }, "rediss+sentinel://127.0.0.1:26379/mymaster"],
    [createCluster({ rootNodes: [{ url: "redis://127.0.0.1:7000" }], defaults: { socket: { tls: true } } }), "rediss+cluster://127.0.0.1:7000"],
    [new Redis.Cluster([{ host: "127.0.0.1", port: 7000 }], { redisOptions: { tls: {} }, lazyConnect: true }), "rediss+cluster://127.0.0.1:7000"],
    [["rediss://127.0.0.1:7000", "127.0.0.1:7001"], "rediss+cluster://127.0.0.1:7000,127.0.0.1:7001"],
    [[{ socket: { host: "127.0.0.1", port: 7000, tls: true, rejectUnauthorized: false } }], "rediss+cluster://127.0.0.1:7000#insecure"],
    [{ sentinels, name: "m", tls: {}, enableTLSForSentinelMode: true }, "rediss+sentinel://127.0.0.1:26379/m/0?sentinelTls=false"],
    [{ sentinels, name: "m", tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} }, "rediss+sentinel://127.0.0.1:26379/m/0"],
    [{ sentinels, name: "m", sentinelTLS: { rejectUnauthorized: false } }, "redis+sentinel://127.0.0.1:26379/m/0?sentinelTls=true#insecure"],
  ];
  for (const [source, url] of cases) {
    assert.strictEqual(resolveRedisUrl(source), url);
    assert.doesNotThrow(() => createAdapter(source));
  }
  const refused = [
    // ioredis itself would reach the primary in plaintext: refused rather than followed.
    [{ sentinels, name: "m", tls: {} }, /enableTLSForSentinelMode/],
    [{ url: "redis+unix:///tmp/redis.sock", socket: { tls: true } }, /TLS/],
  ];
  for (const [source, why] of refused) {
    assert.throws(() => createAdapter(source), (err) => err.code === "ERR_SIO_OPTION" && why.test(err.message));
  }
});

test("turning certificate verification off warns once (process warning SIO_TLS_INSECURE)", { timeout: 30000 }, async () => {
  const script = `
    const { createAdapter } = require(${JSON.stringify(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"))});
    const warnings = [];
    process.on("warning", (w) => warnings.push(w.code));
    createAdapter({ host: "127.0.0.1", port: ${port}, tls: { rejectUnauthorized: false } });
    createAdapter({ socket: { host: "127.0.0.1", port: ${port}, tls: true, rejectUnauthorized: false } });
    createAdapter({ host: "127.0.0.1", port: ${port}, tls: {} });
    setImmediate(() => { console.log(JSON.stringify(warnings)); process.exit(0); });`;
  const out = execFileSync(process.execPath, ["-e", script], { encoding: "utf8", cwd: __dirname });
  assert.deepStrictEqual(JSON.parse(out.trim().split("\n").pop()), ["SIO_TLS_INSECURE"]);
});
