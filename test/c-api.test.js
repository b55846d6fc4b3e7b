"use strict";
// The C API end to end: test/c/emitter_test.c is compiled with -Wall -Wextra -Werror against
// include/sioadapter.h and libsioadapter.so, then run (under valgrind when installed) against a
// Node socket.io server that uses the OFFICIAL adapter; its clients must get what C emitted.
const { test, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync, spawnSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startServers, uniqueKey, stopAll } = require("./helpers/cluster");

const root = path.join(__dirname, "..");
const libDir = path.join(root, "target", "release");
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

after(stopAll);

function compile(source, out, extra = []) {
  execFileSync("cc", ["-std=c11", "-Wall", "-Wextra", "-Werror", `-I${path.join(root, "include")}`, source, `-L${libDir}`, "-lsioadapter", "-o", out, ...extra], { stdio: "inherit" });
}

function hasValgrind() {
  return spawnSync("valgrind", ["--version"]).status === 0;
}

test("a C emitter's events reach socket.io clients of a Node server running the official adapter", { timeout: 120000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-c-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, "emitter_test");
  compile(path.join(__dirname, "c", "emitter_test.c"), exe);

  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis" }], { key });
  await server.command("onServerEvent", { event: "srv-from-c" });
  const member = await server.connect("/");
  const other = await server.connect("/");
  await server.command("join", { nsp: "/", socketId: member.id, rooms: ["c-room"] });

  const { command, argv, env } = runC(exe, [REDIS_URL, key]);
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
  assert.deepStrictEqual([...Buffer.from(bytes)], [1, 2, 3]);
  await server.waitForServerEvent("srv-from-c");
  assert.deepStrictEqual(server.serverEventCalls("srv-from-c")[0].args, [42]);
  const rooms = await server.command("join", { nsp: "/", socketId: member.id, rooms: [] });
  assert.ok(rooms.includes("joined-by-c"), `socketsJoin from C: rooms are ${rooms}`);
});

/** Runs `exe args` (under valgrind when installed) with the library on its path. */
function runC(exe, args) {
  const [command, argv] = hasValgrind()
    ? ["valgrind", ["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "--quiet", exe, ...args]]
    : [exe, args];
  return { command, argv, env: { ...process.env, LD_LIBRARY_PATH: libDir } };
}

test("a C host is a node of the cluster: Node (official adapter) fetches its sockets, and it queries Node", { timeout: 120000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-c-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, "host_test");
  compile(path.join(__dirname, "c", "host_test.c"), exe);

  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis" }], { key });
  await server.command("onServerEvent", { event: "ping-from-c", reply: "pong-from-node" });
  const client = await server.connect("/", { data: { lang: "js" } });
  await server.command("join", { nsp: "/", socketId: client.id, rooms: ["node-room"] });

  const { command, argv, env } = runC(exe, [REDIS_URL, key]);
  const host = spawn(command, argv, { env, stdio: ["pipe", "pipe", "pipe"] });
  t.after(() => host.kill("SIGKILL"));
  let out = "";
  let err = "";
  host.stdout.on("data", (d) => (out += d));
  host.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => host.on("exit", resolve));
  const line = async (re) => {
    for (let i = 0; i < 1500; i++) {
      const m = re.exec(out);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no line ${re} from the C host; stdout:\n${out}\nstderr:\n${err}`);
  };

  const [, uid] = await line(/^READY (\S+)$/m);
  assert.strictEqual(uid.length, 6);
  // Node → C: fetchSockets answered by the C host, then a broadcast the C host receives.
  const fetched = await server.command("fetchSockets", {});
  assert.ok(fetched.ok, JSON.stringify(fetched));
  const ids = fetched.value.map((s) => s.id).sort();
  assert.deepStrictEqual(ids, ["c-sock-1", "c-sock-2", client.id].sort());
  const cSock = fetched.value.find((s) => s.id === "c-sock-1");
  assert.deepStrictEqual([cSock.rooms, cSock.data], [["c-sock-1", "c-room"], { lang: "C" }]);
  await server.command("emit", { event: "from-node", args: ["hello C"] });
  await line(/^BROADCAST from-node \d+$/m);

  // C → Node: allRooms, serverCount, fetchSockets, serverSideEmit with ack, broadcast.
  host.stdin.write("go\n");
  const [, rooms] = await line(/^ALL_ROOMS SIO_OK (.*)$/m);
  assert.ok(JSON.parse(rooms).includes("node-room"), rooms);
  const [, count] = await line(/^COUNT SIO_OK (\d+)$/m);
  assert.strictEqual(Number(count), 2);
  const [, sockets] = await line(/^FETCH SIO_OK (.*)$/m);
  assert.deepStrictEqual(JSON.parse(sockets).map((s) => [s.id, s.data]), [[client.id, { lang: "js" }]]);
  const [, acks] = await line(/^SSE_ACK SIO_OK (.*)$/m);
  assert.deepStrictEqual(JSON.parse(acks), ["pong-from-node"]);
  assert.deepStrictEqual(server.serverEventCalls("ping-from-c")[0].args, [1]);
  await line(/^BROADCAST_SENT$/m);
  await client.waitForEvent("from-c");
  assert.deepStrictEqual(client.received("from-c"), [["hi from C"]]);

  host.stdin.end();
  const code = await exited;
  assert.strictEqual(code, 0, `C host exit ${code}; stderr:\n${err}`);
  assert.match(out, /^FREED$/m);
});

/** Compiler flags for the library: pkg-config with include/sioadapter.pc when installed. */
function pkgConfigFlags() {
  const env = { ...process.env, PKG_CONFIG_PATH: path.join(root, "include") };
  const run = spawnSync("pkg-config", ["--cflags", "--libs", "sioadapter"], { env, encoding: "utf8" });
  if (run.status === 0) return run.stdout.trim().split(/\s+/);
  return [`-I${path.join(root, "include")}`, `-L${libDir}`, "-lsioadapter"];
}

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
