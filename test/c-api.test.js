"use strict";
// The C API end to end: test/c/emitter_test.c is compiled with -Wall -Wextra -Werror against
// include/sioadapter.h and libsioadapter.so, then run (under valgrind when installed) against a
// Node socket.io server that uses the OFFICIAL adapter; its clients must get what C emitted.
const { test, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync, spawnSync } = require("node:child_process");
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

  const useValgrind = hasValgrind();
  const command = useValgrind
    ? ["valgrind", ["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "--quiet", exe, REDIS_URL, key]]
    : [exe, [REDIS_URL, key]];
  const run = spawnSync(command[0], command[1], { env: { ...process.env, LD_LIBRARY_PATH: libDir }, encoding: "utf8", timeout: 90000 });
  assert.strictEqual(run.status, 0, `C test failed (valgrind: ${useValgrind}):\n${run.stdout}\n${run.stderr}`);
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

test("include/sioadapter.h compiles as C++ too", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-cpp-"));
  try {
    const source = path.join(dir, "check.cpp");
    fs.writeFileSync(source, '#include "sioadapter.h"\nint main() { return sio_version() == nullptr; }\n');
    execFileSync("c++", ["-std=c++17", "-Wall", "-Wextra", "-Werror", `-I${path.join(root, "include")}`, source, `-L${libDir}`, "-lsioadapter", "-o", path.join(dir, "check")], { stdio: "inherit" });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
