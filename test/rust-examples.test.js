"use strict";
// The Rust examples against a Node socket.io server running the official adapter:
// examples/rust_emitter.rs emits to a room (classic nodes, and sharded ones); examples/rust_host.rs
// is a node of the cluster (also with per-room subscriptions); examples/rust_sharded_node.rs is a
// node of a cluster of sharded adapters.
const { test, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync, spawn } = require("node:child_process");
const path = require("node:path");
const { startServers, uniqueKey, stopAll, redisClient } = require("./helpers/cluster");

const examples = path.join(__dirname, "..", "target", "release", "examples");
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

after(stopAll);

/**
 * Starts examples/`name` with `args`, SIGKILLed after the test: `line(re)` resolves with the first
 * match of `re` in what it printed (waiting up to 10 s), `exited` with its exit code, `out()`.
 */
function spawnExample(t, name, args) {
  const child = spawn(path.join(examples, name), args, { stdio: ["pipe", "pipe", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const line = async (re) => {
    for (let i = 0; i < 500; i++) {
      const m = re.exec(out);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no line ${re}; output:\n${out}`);
  };
  return { stdin: child.stdin, line, exited, out: () => out };
}

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

/**
 * examples/rust_host.rs next to a Node server with the official adapter: Node fetches its
 * sockets, it sees Node's rooms and broadcasts. `perRoom`: the example subscribes per room.
 */
async function rustHostInTheCluster(t, perRoom) {
  const key = uniqueKey();
  const [server] = await startServers([{ adapter: "official", client: "node-redis" }], { key });
  const client = await server.connect("/");
  await server.command("join", { nsp: "/", socketId: client.id, rooms: ["node-room"] });
  const host = spawnExample(t, "rust_host", [REDIS_URL, key, ...(perRoom ? ["per-room"] : [])]);
  const { line, exited } = host;
  await line(/^READY \S{6}$/m);
  const [, rooms] = await line(/^ALL_ROOMS (.*)$/m);
  assert.ok(JSON.parse(rooms).includes("node-room"), rooms);
  const fetched = await server.command("fetchSockets", {});
  assert.ok(fetched.ok, JSON.stringify(fetched));
  assert.deepStrictEqual(fetched.value.map((s) => s.id).sort(), [client.id, "rust-sock-1"].sort());
  await server.command("emit", { event: "from-node", args: [1] });
  await line(/^BROADCAST "from-node"$/m);
  if (perRoom) {
    // Its rooms' channels, and not the pattern: a broadcast to its room arrives through them.
    const raw = await redisClient(REDIS_URL);
    const channels = await raw.sendCommand(["PUBSUB", "CHANNELS", `${key}#/#*`]);
    for (const channel of [`${key}#/#`, `${key}#/#rust-room#`, `${key}#/#rust-sock-1#`]) assert.ok(channels.includes(channel), `${channel} in ${channels}`);
    assert.deepStrictEqual((await raw.sendCommand(["PUBSUB", "NUMSUB", `${key}#/#node-room#`]))[1], 0);
    await server.command("emit", { to: "rust-room", event: "to-rust-room", args: [2] });
    await line(/^BROADCAST "to-rust-room"$/m);
  }
  host.stdin.end();
  assert.strictEqual(await exited, 0, host.out());
}

test("the Rust host example is a node: Node fetches its sockets, it sees Node's rooms and broadcasts", { timeout: 60000 }, (t) => rustHostInTheCluster(t, false));

test("the Rust host example with per-room subscriptions: its rooms' channels, and the same exchanges", { timeout: 60000 }, (t) => rustHostInTheCluster(t, true));

// examples/rust_sharded_node.rs (a ShardedNode) next to an official sharded node (the local
// Redis is ≥ 7), in each subscription mode: it counts both nodes, fetches the node's sockets,
// answers its fetchSockets, prints its broadcasts (to everybody and to its room), and its own
// broadcast reaches the node's client.
for (const mode of ["static", "dynamic", "dynamic-private"]) {
  test(`the Rust sharded node example (${mode}): a node of a cluster of sharded adapters, both directions`, { timeout: 60000 }, async (t) => {
    const key = uniqueKey();
    const [server] = await startServers([{ adapter: "official", client: "node-redis", adapterFactory: "sharded", channelPrefix: key, subscriptionMode: mode }], { key });
    const client = await server.connect("/", { data: { lang: "js" } });
    const node = spawnExample(t, "rust_sharded_node", [REDIS_URL, key, mode]);
    const { line, exited } = node;
    await line(/^READY 2 nodes$/m);
    const [, fetched] = await line(/^FETCHED (.*)$/m);
    assert.deepStrictEqual(JSON.parse(fetched).map((s) => [s.id, s.data]), [[client.id, { lang: "js" }]]);
    await line(/^SENT$/m);
    await client.waitForEvent("from-rust-node");
    assert.deepStrictEqual(client.received("from-rust-node"), [["hello from a Rust node"]]);
    const sockets = await server.command("fetchSockets", {});
    assert.ok(sockets.ok, JSON.stringify(sockets));
    assert.deepStrictEqual(sockets.value.map((s) => s.id).sort(), [client.id, "rust-sock-1"].sort());
    assert.deepStrictEqual(sockets.value.find((s) => s.id === "rust-sock-1").data, { lang: "Rust" });
    await server.command("emit", { event: "from-node", args: [1] });
    await line(/^BROADCAST "from-node"$/m);
    await server.command("emit", { to: "rust-room", event: "to-rust-room", args: [2] });
    await line(/^BROADCAST "to-rust-room"$/m);
    node.stdin.end();
    assert.strictEqual(await exited, 0, node.out());
  });
}
