"use strict";
// Issue 12: one createAdapter() result attached to several socket.io Servers (and namespaces)
// behaves as the official adapter's does: every server gets the cluster's broadcasts and answers
// requests, and closing one server leaves the others working. Here two servers in this process
// share ONE factory (so one Redis connection pair), next to a server running the official adapter
// on the same key.
const { test, after } = require("node:test");
const assert = require("node:assert");
const http = require("node:http");
const path = require("node:path");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter: official } = require("@socket.io/redis-adapter");
const { createAdapter } = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"));
const { uniqueKey } = require("./helpers/cluster");

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const closers = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function serve(adapterFactory) {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(adapterFactory);
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const entry = { io, port: httpServer.address().port, closed: false };
  closers.push(async () => {
    if (!entry.closed) await new Promise((resolve) => io.close(() => resolve()));
  });
  return entry;
}

async function client(server, nsp = "/") {
  const socket = connect(`http://127.0.0.1:${server.port}${nsp}`, { transports: ["websocket"], forceNew: true });
  closers.push(async () => socket.close());
  await new Promise((resolve, reject) => {
    socket.on("connect", resolve);
    socket.on("connect_error", reject);
  });
  const got = [];
  socket.onAny((event, arg) => got.push(`${event}:${arg}`));
  return { socket, got };
}

async function until(condition, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("one createAdapter() result on two Servers: both receive, both answer, one closing leaves the other working", { timeout: 30000 }, async () => {
  const key = uniqueKey();
  const factory = createAdapter(REDIS_URL, undefined, { key, requestsTimeout: 2000 });
  const a = await serve(factory);
  const b = await serve(factory);
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  closers.push(async () => {
    await pub.quit().catch(() => {});
    await sub.quit().catch(() => {});
  });
  const c = await serve(official(pub, sub, { key, requestsTimeout: 2000 }));
  for (const nsp of ["/", "/admin"]) {
    await Promise.all([a, b].map((s) => s.io.of(nsp).adapter.ready));
    c.io.of(nsp);
  }
  const [ca, cb, cc] = await Promise.all([client(a), client(b), client(c)]);
  const [aa, ab] = await Promise.all([client(a, "/admin"), client(b, "/admin")]);

  // The official node's broadcast reaches the clients of both servers sharing the factory.
  c.io.emit("from-official", 1);
  await until(() => ca.got.includes("from-official:1") && cb.got.includes("from-official:1"), "the official broadcast on both shared servers");
  // Each shared server's broadcast reaches the other one and the official node, exactly once.
  a.io.emit("from-a", 1);
  b.io.emit("from-b", 1);
  await until(() => cb.got.includes("from-a:1") && cc.got.includes("from-a:1") && ca.got.includes("from-b:1") && cc.got.includes("from-b:1"), "a's and b's broadcasts");
  // Another namespace shares the same connection too.
  a.io.of("/admin").emit("admin-a", 1);
  await until(() => ab.got.includes("admin-a:1"), "a namespace broadcast between the shared servers");
  // Requests: each server sees the other's and the official node's sockets.
  const fromA = await a.io.fetchSockets();
  const fromC = await c.io.fetchSockets();
  const ids = [ca, cb, cc].map((x) => x.socket.id).sort();
  assert.deepStrictEqual(fromA.map((s) => s.id).sort(), ids, "fetchSockets from a shared server sees every socket");
  assert.deepStrictEqual(fromC.map((s) => s.id).sort(), ids, "fetchSockets from the official node sees every socket");

  // Closing one of the two servers leaves the other working.
  await new Promise((resolve) => a.io.close(() => resolve()));
  a.closed = true;
  c.io.emit("after-close", 1);
  await until(() => cb.got.includes("after-close:1"), "a broadcast to the remaining shared server after the other closed");
  b.io.emit("b-after-close", 1);
  await until(() => cc.got.includes("b-after-close:1"), "the remaining shared server's broadcast after the other closed");
  b.io.of("/admin").emit("admin-b", 1);
  await until(() => ab.got.includes("admin-b:1"), "a namespace of the remaining shared server");
  const count = (list, item) => list.filter((x) => x === item).length;
  for (const [name, list] of [["ca", ca.got], ["cb", cb.got], ["cc", cc.got], ["aa", aa.got], ["ab", ab.got]]) {
    for (const item of new Set(list)) assert.strictEqual(count(list, item), 1, `${name} got ${item} more than once: ${list}`);
  }
});

// Issue 12: servers dropped without close() (no io.close(), no adapter.close()) must not leak
// their Redis connections or tasks: the garbage collector frees the adapters, the native engines
// and connections follow (Rust Drop), and Redis sees the connections go. Run in a child process
// (--expose-gc) against a private redis-server, so that the client count is exact.
test("servers dropped without close() release their Redis connections once collected", { timeout: 60000 }, async () => {
  const { execFile } = require("node:child_process");
  const { privateRedis, stopAllRedis } = require("./helpers/private-redis");
  const redis = await privateRedis();
  closers.push(() => stopAllRedis());
  const script = `
    const { Server } = require("socket.io");
    const { createAdapter, createShardedAdapter } = require(${JSON.stringify(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"))});
    const { createClient } = require("redis");
    (async () => {
      const url = process.argv[1];
      const probe = createClient({ url });
      await probe.connect();
      const clients = async () => (await probe.sendCommand(["CLIENT", "LIST"])).trim().split("\\n").length;
      const base = await clients();
      // Made in a function of their own, so that no variable (nor a stale register of this
      // suspended async function) still points at the last one afterwards.
      let servers = [];
      async function startAll() {
        for (let i = 0; i < 3; i++) {
          const io = new Server();
          io.adapter(i < 2 ? createAdapter(url, { key: "drop", perRoomSubscriptions: i === 1 }) : createShardedAdapter(url, undefined, { channelPrefix: "drop" }));
          io.of("/admin");
          await Promise.all([io.of("/").adapter.ready, io.of("/admin").adapter.ready]);
          servers.push(io);
        }
      }
      await startAll();
      const during = await clients();
      servers = null;
      let after = during;
      for (let i = 0; i < 50 && after > base; i++) {
        global.gc();
        await new Promise((resolve) => setTimeout(resolve, 100));
        after = await clients();
      }
      console.log(JSON.stringify({ base, during, after }));
      await probe.quit();
    })();`;
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, ["--expose-gc", "-e", script, redis.url], { cwd: __dirname, timeout: 50000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  const { base, during, after } = JSON.parse(out.trim().split("\n").pop());
  assert.strictEqual(during - base, 6, `three servers, two connections each (their namespaces share them): ${out}`);
  assert.strictEqual(after, base, `every connection of the dropped servers is closed: ${out}`);
});
