"use strict";
// The C API end to end: test/c/emitter_test.c is compiled with -Wall -Wextra -Werror against
// include/sioadapter.h and libsioadapter.so, then run (under valgrind when installed) against a
// Node socket.io server that uses the OFFICIAL adapter; its clients must get what C emitted.
// test/c/host_test.c is a C host node next to an official one; test/c/fault_test.c is a C host
// under a stalled private redis-server (SIGSTOP/SIGCONT), freed with requests in flight.
// test/c/limits_test.c checks sio_limits, sio_adapter_stats and the limit results (C only).
const { test, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync, spawnSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startServers, uniqueKey, stopAll, redisClient, waitUntil } = require("./helpers/cluster");
const { privateRedis, stopAllRedis } = require("./helpers/private-redis");
const { cLibrary } = require("./helpers/c-library");

const root = path.join(__dirname, "..");
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

// Every C program here is built against the library as users get it (helpers/c-library.js).
const { libDir, flags: libraryFlags } = cLibrary();
const pkgConfigFlags = () => libraryFlags;

after(async () => {
  await stopAll();
  await stopAllRedis();
});

function compile(source, out, extra = []) {
  execFileSync("cc", ["-std=c11", "-Wall", "-Wextra", "-Werror", source, ...pkgConfigFlags(), "-o", out, ...extra], { stdio: "inherit" });
}

function hasValgrind() {
  return spawnSync("valgrind", ["--version"]).status === 0;
}

/**
 * Runs test/c/emitter_test.c against a Node server with the official adapter (`spec`), whose
 * clients must get what C emitted; `mode`: the sharded subscription mode, or "json" for the JSON parser, passed to the program.
 */
async function cEmitterReachesClients(t, spec, mode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-c-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, "emitter_test");
  compile(path.join(__dirname, "c", "emitter_test.c"), exe);

  const key = uniqueKey();
  const sharded = mode && mode !== "json";
  const [server] = await startServers([{ adapter: "official", client: "node-redis", ...spec, ...(sharded ? { channelPrefix: key, subscriptionMode: mode } : {}) }], { key });
  await server.command("onServerEvent", { event: "srv-from-c" });
  const member = await server.connect("/");
  const other = await server.connect("/");
  await server.command("join", { nsp: "/", socketId: member.id, rooms: ["c-room"] });

  const { command, argv, env } = runC(exe, [REDIS_URL, key, ...(mode ? [mode] : [])]);
  const run = spawnSync(command, argv, { env, encoding: "utf8", timeout: 90000 });
  assert.strictEqual(run.status, 0, `C test failed (${command}):\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /ok \d+ - freed/);

  await member.waitForEvent("done");
  await other.waitForEvent("done");
  assert.deepStrictEqual(member.received("from-c"), [["hello", 1, 2.5, { nested: [true, null] }]]);
  assert.deepStrictEqual(other.received("from-c"), [["hello", 1, 2.5, { nested: [true, null] }]]);
  assert.deepStrictEqual(member.received("to-room"), [["only room members"]]);
  assert.deepStrictEqual(other.received("to-room"), []);
  assert.deepStrictEqual(member.received("not-for-room"), []);
  assert.deepStrictEqual(other.received("not-for-room"), [[]]);
  const [[label, bytes]] = other.received("binary");
  assert.strictEqual(label, "bin");
  if (mode === "json") {
    // What the official emitter's JSON.stringify makes of a Buffer.
    assert.deepStrictEqual(bytes, { type: "Buffer", data: [1, 2, 3] });
  } else {
    assert.deepStrictEqual([...Buffer.from(bytes)], [1, 2, 3]);
  }
  await server.waitForServerEvent("srv-from-c");
  assert.deepStrictEqual(server.serverEventCalls("srv-from-c")[0].args, [42]);
  const rooms = await server.command("join", { nsp: "/", socketId: member.id, rooms: [] });
  assert.ok(rooms.includes("joined-by-c"), `socketsJoin from C: rooms are ${rooms}`);
  assert.ok(!rooms.includes("left-by-c"), `socketsLeave from C: rooms are ${rooms}`);
}

test("a C emitter's events reach socket.io clients of a Node server running the official adapter", { timeout: 120000 }, (t) => cEmitterReachesClients(t, {}));

// sio_emitter_new_with_options with SIO_PARSER_JSON: the same program and checks against an
// official node whose parser is JSON (it cannot read anything else).
test("a C emitter with the JSON parser reaches clients of an official node whose parser is JSON", { timeout: 120000 }, (t) => cEmitterReachesClients(t, { parser: "json" }, "json"));

// sio_emitter_new_sharded: the same program and checks against an official sharded node (the
// local Redis is ≥ 7), in the mode that puts room broadcasts on room channels and the one that
// puts socket ids on theirs too.
for (const mode of ["dynamic", "dynamic-private"]) {
  test(`a sharded C emitter's events reach clients of an official sharded node (subscriptionMode ${mode})`, { timeout: 120000 }, (t) =>
    cEmitterReachesClients(t, { adapterFactory: "sharded" }, mode));
}

/**
 * Compiles test/c/`source` with `flags` and runs it with REDIS_URL and a unique key (under
 * valgrind when installed), killed after `timeout` ms: passes when it exits 0 with no "not ok"
 * line and "DONE 0" (with `minChecks`: "DONE 0 of N checks failed", N >= minChecks, so that no
 * check was skipped). Exit 3 is a program's watchdog (a deadlock?), 99 valgrind's verdict.
 */
function runCProgram(t, source, { flags = [], timeout, minChecks }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-c-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const name = path.basename(source, ".c");
  const exe = path.join(dir, name);
  compile(path.join(__dirname, "c", source), exe, flags);

  const { command, argv, env } = runC(exe, [REDIS_URL, uniqueKey()]);
  const started = Date.now();
  const run = spawnSync(command, argv, { env, encoding: "utf8", timeout, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 });
  const ms = Date.now() - started;
  for (const line of (run.stdout || "").split("\n").filter((l) => /^(ok|not ok|DONE|#)/.test(l))) t.diagnostic(line);
  t.diagnostic(`${name} ran ${ms} ms${command === "valgrind" ? " under valgrind" : ""}`);
  const notOk = (run.stdout || "").split("\n").filter((l) => l.startsWith("not ok"));
  const why =
    run.error || run.signal
      ? `killed (${run.error?.code ?? run.signal}) after ${ms} ms: a deadlock?`
      : run.status === 99
        ? "valgrind found errors or leaks (see stderr)"
        : run.status === 3
          ? "its watchdog fired (a deadlock?)"
          : `exit ${run.status}`;
  assert.ok(run.status === 0 && notOk.length === 0, `${name}: ${why}; failed checks: ${notOk.length ? `\n${notOk.join("\n")}` : "none"}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.match(run.stdout, /^DONE 0 /m);
  if (minChecks !== undefined) {
    assert.match(run.stdout, /^DONE 0 of \d+ checks failed$/m);
    assert.ok(Number(/^DONE 0 of (\d+)/m.exec(run.stdout)[1]) >= minChecks, "every check ran");
  }
}

/** Runs `exe args` (under valgrind when installed) with the library on its path. */
function runC(exe, args) {
  const [command, argv] = hasValgrind()
    ? ["valgrind", ["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "--quiet", exe, ...args]]
    : [exe, args];
  return { command, argv, env: { ...process.env, LD_LIBRARY_PATH: libDir } };
}

/**
 * Starts `exe args` (runC) with piped stdio, SIGKILLed after the test. `line(re, timeoutMs)`
 * resolves with the first match of `re` in everything it printed so far (waiting for it),
 * `write(text)` writes to its stdin, `exited` resolves with its exit code, `out()` / `err()`.
 */
function spawnC(t, exe, args) {
  const { command, argv, env } = runC(exe, args);
  const child = spawn(command, argv, { env, stdio: ["pipe", "pipe", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  let exitCode;
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exitCode = code ?? signal))));
  const line = async (re, timeoutMs = 30000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (exitCode !== undefined || Date.now() > deadline) {
        throw new Error(`no line ${re} from ${path.basename(exe)}${exitCode !== undefined ? ` (exited: ${exitCode})` : ""}; stdout:\n${out}\nstderr:\n${err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, stdin: child.stdin, line, write: (text) => child.stdin.write(text), exited, out: () => out, err: () => err };
}

/**
 * test/c/host_test.c next to a Node server with the official adapter: Node fetches the C host's
 * sockets, broadcasts to it and makes its sockets join a room; the C host queries Node and
 * broadcasts. `variant`: none; "per-room" (sio_adapter_new_with_options with
 * perRoomSubscriptions and publishOnSpecificResponseChannel); "json" (SIO_PARSER_JSON, next to
 * an official node whose parser is JSON, which reads nothing else); or a subscription mode, for
 * a C host made with sio_adapter_new_sharded next to an official sharded node.
 */
async function cHostInTheCluster(t, variant) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-c-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, "host_test");
  compile(path.join(__dirname, "c", "host_test.c"), exe);

  const perRoom = variant === "per-room";
  const json = variant === "json";
  const mode = variant && !perRoom && !json ? variant : null;
  const key = uniqueKey();
  const spec = mode ? { adapterFactory: "sharded", channelPrefix: key, subscriptionMode: mode } : json ? { parser: "json" } : {};
  const [server] = await startServers([{ adapter: "official", client: "node-redis", ...spec }], { key });
  await server.command("onServerEvent", { event: "ping-from-c", reply: "pong-from-node" });
  await server.command("onServerEvent", { event: "no-ack-from-c" });
  const client = await server.connect("/", { data: { lang: "js" } });
  await server.command("join", { nsp: "/", socketId: client.id, rooms: ["node-room"] });

  const host = spawnC(t, exe, [REDIS_URL, key, ...(variant ? [variant] : [])]);
  const { line, exited } = host;
  /** Resolves once the C host reported `n` broadcasts of "from-node". */
  const broadcastsSeen = (n) => line(new RegExp(`(?:^BROADCAST from-node \\d+\\n[\\s\\S]*?){${n}}`, "m"));

  const [, uid] = await line(/^READY (\S+)$/m);
  const raw = await redisClient(REDIS_URL);
  if (mode) {
    // A ClusterAdapter uid; SSUBSCRIBEd: the main channel, its own response channel, and the
    // channels of the rooms it reported as the mode gives them one ("c-sock-1" is not 20
    // characters long: a room channel in both dynamic modes).
    assert.match(uid, /^[0-9a-f]{16}$/);
    const rooms = { static: [], dynamic: ["c-room", "c-sock-1", "c-sock-2"], "dynamic-private": ["c-room", "c-sock-1", "c-sock-2"] }[mode];
    const want = [`${key}#/#`, `${key}#/#${uid}#`, ...rooms.map((r) => `${key}#/#${r}#`)].sort();
    const subscribed = async () => (await raw.sendCommand(["PUBSUB", "SHARDCHANNELS", `${key}#/#*`])).filter((c) => !c.includes("#node-room#") && (c === `${key}#/#` || c.includes(uid) || /#c-/.test(c))).sort();
    await waitUntil(async () => JSON.stringify(await subscribed()) === JSON.stringify(want), { timeoutMs: 10000, what: `the C host's shard channels ${want}` });
  } else {
    assert.strictEqual(uid.length, 6);
  }
  if (perRoom) {
    // SUBSCRIBEd: the main channel and the channel of each room it reported (its sockets'
    // ids too); Node's room has no subscriber of the C host's.
    const want = [`${key}#/#`, `${key}#/#c-room#`, `${key}#/#c-sock-1#`, `${key}#/#c-sock-2#`];
    await waitUntil(async () => (await raw.sendCommand(["PUBSUB", "CHANNELS", `${key}#/#*`])).filter((c) => want.includes(c)).length === want.length, { timeoutMs: 10000, what: "the C host's room channels subscribed" });
    assert.deepStrictEqual((await raw.sendCommand(["PUBSUB", "NUMSUB", `${key}#/#node-room#`]))[1], 0);
  }
  let seen = 0;
  if (perRoom || mode) {
    await server.command("emit", { to: "c-room", event: "from-node", args: ["to the C room"] });
    await broadcastsSeen(++seen);
  }
  // Node → C: fetchSockets answered by the C host, then a broadcast the C host receives.
  const fetched = await server.command("fetchSockets", {});
  assert.ok(fetched.ok, JSON.stringify(fetched));
  const ids = fetched.value.map((s) => s.id).sort();
  assert.deepStrictEqual(ids, ["c-sock-1", "c-sock-2", client.id].sort());
  const cSock = fetched.value.find((s) => s.id === "c-sock-1");
  assert.deepStrictEqual([cSock.rooms, cSock.data], [["c-sock-1", "c-room"], { lang: "C" }]);
  await server.command("emit", { event: "from-node", args: ["hello C"] });
  await broadcastsSeen(++seen);
  // socketsJoin reaches the C host as the classic REMOTE_JOIN request, whichever the protocol.
  await server.command("socketsJoin", { in: "c-room", rooms: ["joined"] });
  const [, join] = await line(/^REQUEST 2 (.*)$/m);
  assert.deepStrictEqual(JSON.parse(join), { uid: JSON.parse(join).uid, type: 2, opts: { rooms: ["c-room"], except: [] }, rooms: ["joined"] });

  // C → Node: allRooms, serverCount, fetchSockets, serverSideEmit with ack and without,
  // broadcasts to everybody and to a room.
  host.stdin.write("go\n");
  // The sharded protocol has no allRooms request: the rooms of a fetchSockets of every socket,
  // the Node socket's id among them as in the classic answer.
  const [, rooms] = await line(/^ALL_ROOMS SIO_OK (.*)$/m);
  for (const room of ["node-room", client.id]) assert.ok(JSON.parse(rooms).includes(room), rooms);
  const [, count] = await line(/^COUNT SIO_OK (\d+)$/m);
  assert.strictEqual(Number(count), 2);
  const [, sockets] = await line(/^FETCH SIO_OK (.*)$/m);
  assert.deepStrictEqual(JSON.parse(sockets).map((s) => [s.id, s.data]), [[client.id, { lang: "js" }]]);
  const [, acks] = await line(/^SSE_ACK SIO_OK (.*)$/m);
  assert.deepStrictEqual(JSON.parse(acks), ["pong-from-node"]);
  assert.deepStrictEqual(server.serverEventCalls("ping-from-c")[0].args, [1]);
  await line(/^BROADCAST_SENT$/m);
  await client.waitForEvent("from-c");
  await client.waitForEvent("from-c-to-room");
  await waitUntil(async () => server.serverEventCalls("no-ack-from-c").length === 1, { timeoutMs: 10000, what: "the server-side emit without ack" });
  assert.deepStrictEqual(server.serverEventCalls("no-ack-from-c")[0].args, [2]);
  assert.deepStrictEqual(client.received("from-c"), [["hi from C"]]);
  assert.deepStrictEqual(client.received("from-c-to-room"), [["to the node room"]]);

  host.stdin.end();
  const code = await exited;
  assert.strictEqual(code, 0, `C host exit ${code}; stderr:\n${host.err()}`);
  assert.match(host.out(), /^FREED$/m);
}

test("a C host is a node of the cluster: Node (official adapter) fetches its sockets, and it queries Node", { timeout: 120000 }, (t) => cHostInTheCluster(t));

test("a C host with sio_adapter_new_with_options (perRoomSubscriptions, publishOnSpecificResponseChannel): its room channels, and the same exchanges", { timeout: 120000 }, (t) =>
  cHostInTheCluster(t, "per-room"));

test("a C host with the JSON parser (SIO_PARSER_JSON) next to an official node with parser JSON: the same exchanges", { timeout: 120000 }, (t) => cHostInTheCluster(t, "json"));

for (const mode of ["static", "dynamic", "dynamic-private"]) {
  test(`a C host made with sio_adapter_new_sharded (${mode}) is a node of a cluster of official sharded adapters on one Redis 7: the same exchanges`, { timeout: 120000 }, (t) =>
    cHostInTheCluster(t, mode));
}

// bindings/c/install.sh, as a user runs it: into a fresh prefix (here staged with --destdir too),
// a versioned library whose SONAME carries the major version, the header, and a pkg-config file
// with the final paths and the workspace's one version; a program built with nothing but that
// pkg-config file needs libsioadapter.so.<major> and runs.
test("the C library installs into a prefix: SONAME libsioadapter.so.<major>, header, pkg-config file; a program built with pkg-config alone runs", { timeout: 60000 }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-install-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const version = /\[workspace\.package\][^[]*?\nversion = "([^"]+)"/.exec(fs.readFileSync(path.join(root, "Cargo.toml"), "utf8"))[1];
  const major = version.split(".")[0];
  const finalPrefix = path.join(dir, "usr");
  const stage = path.join(dir, "stage");
  execFileSync("bash", [path.join(root, "bindings", "c", "install.sh"), "--prefix", finalPrefix, "--destdir", stage, "--no-build"], { stdio: ["ignore", "ignore", "inherit"] });
  // Staged: nothing under the final prefix yet, everything under stage/<prefix>.
  assert.ok(!fs.existsSync(finalPrefix), "--destdir installed outside the staging folder");
  fs.renameSync(path.join(stage, finalPrefix), finalPrefix);
  const lib = path.join(finalPrefix, "lib");
  assert.strictEqual(fs.readlinkSync(path.join(lib, "libsioadapter.so")), `libsioadapter.so.${major}`);
  assert.strictEqual(fs.readlinkSync(path.join(lib, `libsioadapter.so.${major}`)), `libsioadapter.so.${version}`);
  assert.ok(fs.statSync(path.join(lib, "libsioadapter.a")).size > 0);
  assert.strictEqual(fs.readFileSync(path.join(finalPrefix, "include", "sioadapter.h"), "utf8"), fs.readFileSync(path.join(root, "include", "sioadapter.h"), "utf8"));
  const dynamic = execFileSync("readelf", ["-d", path.join(lib, `libsioadapter.so.${version}`)], { encoding: "utf8" });
  assert.match(dynamic, new RegExp(`\\(SONAME\\)\\s+Library soname: \\[libsioadapter\\.so\\.${major}\\]`));

  const env = { ...process.env, PKG_CONFIG_PATH: path.join(lib, "pkgconfig") };
  assert.strictEqual(execFileSync("pkg-config", ["--modversion", "sioadapter"], { env, encoding: "utf8" }).trim(), version);
  const flags = execFileSync("pkg-config", ["--cflags", "--libs", "sioadapter"], { env, encoding: "utf8" }).trim();
  assert.strictEqual(flags, `-I${path.join(finalPrefix, "include")} -L${lib} -lsioadapter`);
  const exe = path.join(dir, "emitter_test");
  execFileSync("cc", ["-std=c11", "-Wall", "-Wextra", "-Werror", path.join(__dirname, "c", "emitter_test.c"), ...flags.split(" "), "-o", exe], { stdio: "inherit" });
  assert.match(execFileSync("readelf", ["-d", exe], { encoding: "utf8" }), new RegExp(`\\(NEEDED\\)\\s+Shared library: \\[libsioadapter\\.so\\.${major}\\]`));
  // emitter_test checks sio_version() against the header's SIO_VERSION_*, then emits (nobody
  // listens on its unique key) and flushes.
  const run = spawnSync(exe, [REDIS_URL, uniqueKey()], { env: { ...process.env, LD_LIBRARY_PATH: lib }, encoding: "utf8", timeout: 30000 });
  assert.strictEqual(run.status, 0, `emitter_test: ${run.error ?? run.signal ?? `exit ${run.status}`}\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /^ok 1 - the library's version is the header's$/m);
});

test("the C++ example builds with -Werror (pkg-config flags) and its event reaches a room member", { timeout: 60000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-cpp-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, "cpp_emitter");
  execFileSync("c++", ["-std=c++17", "-Wall", "-Wextra", "-Werror", path.join(root, "examples", "cpp_emitter.cpp"), "-o", exe, ...pkgConfigFlags()], { stdio: "inherit" });
  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis" }], { key });
  const member = await server.connect("/");
  const other = await server.connect("/");
  await server.command("join", { nsp: "/", socketId: member.id, rooms: ["cpp-room"] });
  const out = execFileSync(exe, [REDIS_URL, key, "cpp-room"], { env: { ...process.env, LD_LIBRARY_PATH: libDir }, encoding: "utf8" });
  assert.match(out, /sent from-cpp/);
  await member.waitForEvent("from-cpp");
  assert.deepStrictEqual(member.received("from-cpp"), [["hello from C++", 17]]);
  server.command("emit", { event: "marker" });
  await other.waitForEvent("marker");
  assert.deepStrictEqual(other.received("from-cpp"), []);
});

// Issue 11, the C adapter handle under a stalled Redis: test/c/fault_test.c (see its header for
// the line protocol) against a PRIVATE redis-server that this test SIGSTOPs and SIGCONTs, with a
// Node server running the official adapter as the other node of the cluster.
test("a C host under a stalled Redis (SIGSTOP): each completion once, within requestsTimeout; error then ready; sio_adapter_free with requests in flight", { timeout: 240000 }, async (t) => {
  const REQUESTS_TIMEOUT = 1000;
  // Under valgrind everything runs slower (one thread at a time): a wider slack for the timings.
  const SLACK = hasValgrind() ? 1500 : 500;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-c-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, "fault_test");
  compile(path.join(__dirname, "c", "fault_test.c"), exe);

  const redis = await privateRedis();
  const stall = () => redis.child.kill("SIGSTOP");
  const resume = () => redis.running && redis.child.kill("SIGCONT");
  t.after(async () => {
    resume();
    await redis.stop();
  });
  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis", redisUrl: redis.url, namespaces: ["/"] }], { key });
  await server.command("onServerEvent", { event: "ping-from-c", reply: "pong-from-node" });
  await server.command("onServerEvent", { event: "never-acked", noAck: true });
  const client = await server.connect("/");

  const host = spawnC(t, exe, [redis.url, key, String(REQUESTS_TIMEOUT), String(SLACK)]);
  const problems = []; // every failed expectation, reported together at the end
  const expect = (ok, what) => ok || problems.push(what);
  const rows = (name) =>
    [...host.out().matchAll(new RegExp(`^${name} (\\S+) (\\S+) (-?\\d+) (\\d+)(?: (.*))?$`, "gm"))].map(([, req, result, ms, runs, json]) => ({
      req,
      result,
      ms: Number(ms),
      runs: Number(runs),
      json,
    }));

  await host.line(/^READY (\S+)$/m);
  const before = await server.command("fetchSockets", {});
  assert.ok(before.ok, JSON.stringify(before));
  assert.deepStrictEqual(before.value.map((s) => s.id).sort(), ["c-sock-1", client.id].sort());

  // 1. Requests during a stall: each completion runs once, within requestsTimeout, not SIO_OK;
  //    the handle reports SIO_EVENT_ERROR.
  stall();
  host.write("STALLED\n");
  await host.line(/^STALL_DONE$/m, 60000);
  const stalled = rows("STALL_REQ");
  expect(stalled.length === 4, `4 requests during the stall, got ${JSON.stringify(stalled)}`);
  for (const r of stalled) {
    expect(r.runs === 1, `during the stall, ${r.req}'s completion ran ${r.runs} times`);
    expect(r.result !== "NEVER" && r.ms <= REQUESTS_TIMEOUT + SLACK, `during the stall, ${r.req} settled after ${r.ms} ms (${r.result}); requestsTimeout ${REQUESTS_TIMEOUT} + ${SLACK}`);
    expect(r.result !== "SIO_OK", `during the stall, ${r.req} succeeded`);
  }
  const errorEvent = /^ERROR_EVENT (\d+)$/m.exec(host.out());
  expect(errorEvent, "no SIO_EVENT_ERROR during the stall");

  // 2. Redis answers again: SIO_EVENT_READY within 1 s, and every request succeeds; the Node node
  //    reaches the C host again.
  resume();
  host.write("RESUMED\n");
  await host.line(/^RECOVERED$/m, 60000);
  const readyAgain = /^READY_AGAIN (-?\d+)$/m.exec(host.out());
  expect(readyAgain && Number(readyAgain[1]) >= -500 && Number(readyAgain[1]) <= 1000 + SLACK, `SIO_EVENT_READY after the stall: ${readyAgain ? `${readyAgain[1]} ms after Redis answered again` : "never"}`);
  const after = Object.fromEntries(rows("AFTER_REQ").map((r) => [r.req, r]));
  for (const r of Object.values(after)) {
    expect(r.runs === 1, `after the stall, ${r.req}'s completion ran ${r.runs} times`);
    expect(r.result === "SIO_OK" && r.ms <= REQUESTS_TIMEOUT + SLACK, `after the stall, ${r.req}: ${r.result} after ${r.ms} ms (${r.json})`);
  }
  if (after.server_count?.result === "SIO_OK") expect(after.server_count.json === "2", `serverCount after the stall: ${after.server_count.json}`);
  if (after.fetch_sockets?.result === "SIO_OK") {
    expect(JSON.stringify(JSON.parse(after.fetch_sockets.json).map((s) => s.id)) === JSON.stringify([client.id]), `fetchSockets after the stall: ${after.fetch_sockets.json}`);
  }
  if (after.all_rooms?.result === "SIO_OK") expect(JSON.parse(after.all_rooms.json).includes(client.id), `allRooms after the stall: ${after.all_rooms.json}`);
  if (after.server_side_emit_ack?.result === "SIO_OK") {
    expect(after.server_side_emit_ack.json === '["pong-from-node"]', `serverSideEmit ack after the stall: ${after.server_side_emit_ack.json}`);
  }
  const fromNode = await server.command("fetchSockets", {});
  expect(fromNode.ok && fromNode.value.some((s) => s.id === "c-sock-1"), `Node's fetchSockets after the stall: ${JSON.stringify(fromNode)}`);

  // 3. sio_adapter_free while requests are in flight on a stalled Redis: every completion ran once,
  //    before it returned, with SIO_ERR_CLOSED (or its own timeout, for the 1 s ones).
  stall();
  host.write("STALLED\n");
  const [, freeMs] = await host.line(/^FREED (\d+)$/m, 90000);
  for (const r of rows("FREE_REQ")) {
    const closedOnly = r.req.startsWith("fetch_sockets_30s");
    const ok = r.runs === 1 && (r.result === "SIO_ERR_CLOSED" || (!closedOnly && ["SIO_ERR_TIMEOUT", "SIO_ERR_REDIS"].includes(r.result)));
    expect(ok, `sio_adapter_free with ${r.req} in flight: ${r.result} after ${r.ms} ms, ran ${r.runs} times (free took ${freeMs} ms)`);
  }
  resume();
  host.write("RESUMED\n");

  // 4. sio_adapter_free while requests wait for acks that never come (healthy Redis).
  await host.line(/^B_SENT$/m, 60000);
  await server.waitForServerEvent("never-acked", 4, 30000);
  host.write("FREE\n");
  const [, bFreeMs] = await host.line(/^B_FREED (\d+)$/m, 60000);
  for (const r of rows("B_FREE_REQ")) {
    expect(r.runs === 1 && r.result === "SIO_ERR_CLOSED", `sio_adapter_free with ${r.req} waiting for acks: ${r.result} after ${r.ms} ms, ran ${r.runs} times (free took ${bFreeMs} ms)`);
  }
  await host.line(/^DONE (\d+)$/m, 30000);
  host.stdin.end();
  const code = await host.exited;
  const resources = /^RESOURCES .*$/m.exec(host.out());
  t.diagnostic(
    `error after ${errorEvent?.[1]} ms; ready ${readyAgain?.[1]} ms after Redis answered; stall requests ${stalled.map((r) => `${r.req} ${r.result} ${r.ms} ms`).join(", ")}; ` +
      `free with 8 in flight took ${freeMs} ms (${rows("FREE_REQ").map((r) => `${r.req} ${r.result} ${r.ms} ms`).join(", ")}); free B took ${bFreeMs} ms; ${resources?.[0]}`,
  );
  for (const [, what] of host.out().matchAll(/^not ok - (.*)$/gm)) problems.push(`C: ${what}`);
  if (code !== 0) problems.push(`fault_test exit ${code}${code === 99 ? " (valgrind found errors or leaks)" : ""}; stderr:\n${host.err()}`);
  assert.deepStrictEqual(problems, [], `stdout:\n${host.out()}`);
});

// Re-entry: test/c/reentry_test.c (see its header) calls into the library from callbacks and
// completions (sio_adapter_new / sio_emitter_new / *_free of other handles, sio_adapter_free of
// the handle itself from on_broadcast and from a completion) and checks sio_result_name on
// every int32_t; against the shared Redis with a unique key, under valgrind when installed.
test("C callbacks and completions may call into the library, sio_adapter_free of their own handle included; sio_result_name takes any int", { timeout: 90000 }, (t) => {
  runCProgram(t, "reentry_test.c", { timeout: 60000 });
});

// Limits: test/c/limits_test.c (see its header): sio_adapter_new_with_limits / sio_emitter_new_with_limits
// (small limits, NULL and zeroed ones = defaults, max_message_depth 5000 → SIO_ERR_INVALID),
// received messages over a limit dropped and reported (SIO_EVENT_DROPPED, at most once a second per
// kind), sio_adapter_stats, SIO_ERR_TOO_LARGE from an adapter and an emitter, and the publish queue
// bounded in bytes on an unreachable URL (SIO_ERR_OVERLOADED); against the shared Redis with a
// unique key, under valgrind when installed (no leaks).
test("C limits: messages over sio_limits dropped and reported (SIO_EVENT_DROPPED, sio_adapter_stats), SIO_ERR_TOO_LARGE, max_queued_bytes", { timeout: 180000 }, (t) => {
  runCProgram(t, "limits_test.c", { flags: ["-pthread"], timeout: 150000, minChecks: 40 });
});

// The receive buffer of a C adapter handle: test/c/receive_test.c (see its header). Its callbacks
// run on their own thread while Redis keeps being read: a callback that blocks makes messages wait
// in a buffer bounded by sio_limits.max_receive_buffer_bytes (drops counted in sio_stats.dropped
// and reported as SIO_EVENT_DROPPED ERR_SIO_OVERLOADED, every message delivered or counted), and
// at the default bound 48 MiB sent while the callback blocks all arrive, where Redis would have
// cut off a subscriber that stopped reading (32 MiB). Against the shared Redis with a unique key,
// under valgrind when installed (no leaks).
test("C receive buffer: a blocking callback does not stall the connection; drops over max_receive_buffer_bytes counted and reported", { timeout: 240000 }, (t) => {
  runCProgram(t, "receive_test.c", { flags: ["-pthread"], timeout: 200000, minChecks: 20 });
});

// sio_set_log_callback: test/c/log_test.c (see its header): the library's debug events (its link
// going down on an unreachable port) reach the callback with their level and module, not above the
// chosen level, and none once it is turned off; under valgrind when installed (no leaks).
test("C log callback: debug events reach sio_set_log_callback's callback, and stop when it is turned off", { timeout: 90000 }, (t) => {
  runCProgram(t, "log_test.c", { timeout: 60000, minChecks: 10 });
});
