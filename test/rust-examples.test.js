"use strict";
// The Rust examples against a Node socket.io server running the official adapter:
// examples/rust_emitter.rs emits to a room (classic nodes, and sharded ones); examples/rust_host.rs
// is a node of the cluster.
const { test, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync, spawn } = require("node:child_process");
const path = require("node:path");
const { startServers, uniqueKey, stopAll } = require("./helpers/cluster");

const examples = path.join(__dirname, "..", "target", "release", "examples");
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

after(stopAll);

/**
 * examples/rust_emitter.rs against a Node server with the official adapter (`spec`): a room
 * member gets its event, binary intact, and the other client not; `mode`: the sharded nodes'
 * subscription mode, passed to the example (its ShardedEmitter).
 */
async function rustEmitterReachesTheRoom(spec, mode) {
  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis", ...spec, ...(mode ? { channelPrefix: key, subscriptionMode: mode } : {}) }], { key });
  const member = await server.connect("/");
  const other = await server.connect("/");
  await server.command("join", { nsp: "/", socketId: member.id, rooms: ["rust-room"] });
  assert.match(execFileSync(path.join(examples, "rust_emitter"), [REDIS_URL, key, "rust-room", ...(mode ? [mode] : [])], { encoding: "utf8" }), /sent from-rust/);
  await member.waitForEvent("from-rust");
  const [[text, bin]] = member.received("from-rust");
  assert.deepStrictEqual([text, [...Buffer.from(bin)]], ["hello from Rust", [1, 2, 3]]);
  await server.command("emit", { event: "marker" });
  await other.waitForEvent("marker");
  assert.deepStrictEqual(other.received("from-rust"), []);
}

test("the Rust emitter example reaches the room's clients, binary intact", { timeout: 60000 }, () => rustEmitterReachesTheRoom({}));

// Its ShardedEmitter, to an official sharded node (the local Redis is ≥ 7): the room's channel.
test("the Rust emitter example, as a ShardedEmitter, reaches the room's clients of an official sharded node", { timeout: 60000 }, () =>
  rustEmitterReachesTheRoom({ adapterFactory: "sharded" }, "dynamic"));

test("the Rust host example is a node: Node fetches its sockets, it sees Node's rooms and broadcasts", { timeout: 60000 }, async (t) => {
  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis" }], { key });
  const client = await server.connect("/");
  await server.command("join", { nsp: "/", socketId: client.id, rooms: ["node-room"] });
  const host = spawn(path.join(examples, "rust_host"), [REDIS_URL, key], { stdio: ["pipe", "pipe", "pipe"] });
  t.after(() => host.kill("SIGKILL"));
  let out = "";
  host.stdout.on("data", (d) => (out += d));
  host.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => host.on("exit", resolve));
  const line = async (re) => {
    for (let i = 0; i < 500; i++) {
      const m = re.exec(out);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no line ${re}; output:\n${out}`);
  };
  await line(/^READY \S{6}$/m);
  const [, rooms] = await line(/^ALL_ROOMS (.*)$/m);
  assert.ok(JSON.parse(rooms).includes("node-room"), rooms);
  const fetched = await server.command("fetchSockets", {});
  assert.ok(fetched.ok, JSON.stringify(fetched));
  assert.deepStrictEqual(fetched.value.map((s) => s.id).sort(), [client.id, "rust-sock-1"].sort());
  await server.command("emit", { event: "from-node", args: [1] });
  await line(/^BROADCAST "from-node"$/m);
  host.stdin.end();
  assert.strictEqual(await exited, 0, out);
});
