"use strict";
// A Rust socket.io server (socketioxide, bindings/socketioxide's SioAdapter) in one cluster with
// a Node server running the official adapter and one running ours, on one Redis
// (bindings/socketioxide/examples/socketioxide_node.rs; its clients ask it to act on the
// cluster). Every operation in every direction, with exact delivery counts, in both protocols:
// the classic adapter's (createAdapter) and the sharded adapter's (createShardedAdapter,
// subscriptionMode "static", the one a socketioxide server can take part in), on one Redis and
// on a Redis Cluster.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const { startServers, uniqueKey, stopAll, connectClient, waitUntil, redisClient } = require("./helpers/cluster");
const { privateRedis, stopAllRedis } = require("./helpers/private-redis");
const { redisCommand } = require("./helpers/redis-process");
const { startRedisCluster, stopAllRedisClusters } = require("./helpers/redis-cluster");

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const EXAMPLE = path.join(__dirname, "..", "target", "release", "examples", "socketioxide_node");

const children = new Set();
after(async () => {
  for (const child of children) child.kill("SIGKILL");
  await stopAll();
  await stopAllRedisClusters();
  await stopAllRedis();
});

const PROTOCOLS = ["classic", "sharded"];

/** The Node servers' options for `protocol`: the sharded one with createShardedAdapter. */
const protocolOptions = (protocol, key) => (protocol === "sharded" ? { adapterFactory: "sharded", channelPrefix: key, subscriptionMode: "static" } : {});

/** How many nodes Redis counts in the cluster of `key` (`command` runs a Redis command). */
async function nodesCounted(command, protocol, key) {
  const counted = protocol === "sharded" ? ["PUBSUB", "SHARDNUMSUB", `${key}#/#`] : ["PUBSUB", "NUMSUB", `${key}-request#/#`];
  return (await command(counted))[1];
}

/** Starts the socketioxide node on a free port; resolves with `{ port, child, out() }`. */
async function startRustNode(key, redisUrl = REDIS_URL, protocol = "classic") {
  const child = spawn(EXAMPLE, [redisUrl, key, "0", protocol], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  children.add(child);
  await waitUntil(async () => /^LISTENING \d+$/m.test(out), { timeoutMs: 20000, what: `the socketioxide node listening; output:\n${out}` });
  return { port: Number(/^LISTENING (\d+)$/m.exec(out)[1]), child, out: () => out };
}

/** `client` emits `event` with `payload` and resolves with the server's ack. */
const ask = (client, event, payload) => client.socket.timeout(10000).emitWithAck(event, ...(payload === undefined ? [] : [payload]));

/**
 * A client on each of the official, ours and Rust nodes (`clients`, and `all` as entries), and
 * `emitters`: for each node, `(event, arg, to?)` broadcasts `arg` from it (to room `to`).
 */
async function threeNodes(official, ours, rust) {
  const clients = {
    official: await official.connect("/"),
    ours: await ours.connect("/"),
    rust: await connectClient(rust.port, "/", { tag: `rust-${rust.port}` }),
  };
  const room = (to) => (to ? { to } : {});
  const emitters = {
    official: (event, arg, to) => official.command("emit", { event, args: [arg], ...room(to) }),
    ours: (event, arg, to) => ours.command("emit", { event, args: [arg], ...room(to) }),
    rust: async (event, arg, to) => clients.rust.socket.emit("broadcast", { event, arg, ...room(to) }),
  };
  return { clients, all: Object.entries(clients), emitters };
}

/**
 * The Rust server's fetchSockets (asked by its client `asker`) returns `rustClients` by their ids
 * and `nodeClients` by stand-in ids, through which it reaches them (`emit-to`).
 */
async function rustFetchReaches(asker, rustClients, nodeClients, tag) {
  const seen = await ask(asker, "fetch");
  assert.strictEqual(seen.length, rustClients.length + nodeClients.length, `fetchSockets from Rust (${tag}): ${JSON.stringify(seen)}`);
  const local = new Set(rustClients.map((c) => c.id));
  for (const c of rustClients) assert.ok(seen.includes(c.id), `fetchSockets from Rust (${tag}) has ${c.id}: ${JSON.stringify(seen)}`);
  const event = `to-fetched-${tag}`;
  for (const id of seen.filter((id) => !local.has(id))) assert.strictEqual(await ask(asker, "emit-to", { id, event, arg: tag }), true);
  await Promise.all(nodeClients.map((c) => c.waitForEvent(event)));
  for (const c of nodeClients) assert.deepStrictEqual(c.received(event), [[tag]], `a fetched Node socket reached from Rust (${tag})`);
}

// The main suite also runs with the Node node of ours on perRoomSubscriptions (its own way of
// subscribing, same wire): the Rust node's single-room broadcasts reach it through the rooms'
// channels.
const VARIANTS = [
  { name: "classic protocol", protocol: "classic", ours: {} },
  { name: "classic protocol, ours with perRoomSubscriptions", protocol: "classic", ours: { perRoomSubscriptions: true } },
  { name: "sharded protocol", protocol: "sharded", ours: {} },
];

for (const { name, protocol, ours: oursOptions } of VARIANTS) describe(`a socketioxide server in a cluster of Node servers (official and sioadapter adapters), ${name}`, () => {
  let key, official, ours, rust, clients;
  const all = () => Object.values(clients);
  let seq = 0;
  const uniq = (name) => `${name}-${++seq}`;

  before(async () => {
    key = uniqueKey();
    const options = protocolOptions(protocol, key);
    [official, ours] = await startServers([{ adapter: "official", label: "official", ...options }, { adapter: "ours", label: "ours", ...options, ...oursOptions }], { key });
    rust = await startRustNode(key, REDIS_URL, protocol);
    clients = {
      official: await official.connect("/"),
      ours: await ours.connect("/"),
      rust1: await connectClient(rust.port, "/", { tag: "rust1" }),
      rust2: await connectClient(rust.port, "/", { tag: "rust2" }),
    };
    await official.command("join", { nsp: "/", socketId: clients.official.id, rooms: ["node-room"] });
    // The Rust node is subscribed once Node counts it and its broadcasts arrive.
    const raw = await redisClient(REDIS_URL);
    await waitUntil(async () => (await nodesCounted((c) => raw.sendCommand(c), protocol, key)) === 3, { timeoutMs: 20000, what: "3 nodes subscribed" });
    await waitUntil(async () => {
      const event = uniq("mesh");
      await official.command("emit", { event });
      await new Promise((r) => setTimeout(r, 100));
      return clients.rust1.received(event).length > 0;
    }, { timeoutMs: 20000, what: "a Node broadcast reaching the Rust node" });
  });

  it("a broadcast from each server reaches every client of the cluster exactly once", async () => {
    for (const [from, emit] of [
      ["official", (event) => official.command("emit", { event, args: [{ from: "official" }] })],
      ["ours", (event) => ours.command("emit", { event, args: [{ from: "ours" }] })],
      ["rust", async (event) => clients.rust1.socket.emit("broadcast", { event, arg: { from: "rust" } })],
    ]) {
      const event = uniq(`all-from-${from}`);
      await emit(event);
      await Promise.all(all().map((c) => c.waitForEvent(event)));
      await new Promise((r) => setTimeout(r, 200));
      for (const [name, c] of Object.entries(clients)) assert.deepStrictEqual(c.received(event), [[{ from }]], `${name} from ${from}`);
    }
  });

  it("rooms and except select the same clients on every server, both ways", async () => {
    // Node → Rust: to the Rust clients' room, and except it.
    const toRust = uniq("to-rust-room");
    await official.command("emit", { to: "rust-room", event: toRust, args: [1] });
    const notRust = uniq("not-rust-room");
    await ours.command("emit", { except: "rust-room", event: notRust, args: [2] });
    // Rust → Node: to the Node room, and to everyone except it.
    const toNode = uniq("to-node-room");
    clients.rust1.socket.emit("broadcast", { event: toNode, arg: 3, to: "node-room" });
    const notNode = uniq("not-node-room");
    clients.rust1.socket.emit("broadcast", { event: notNode, arg: 4, except: "node-room" });
    await Promise.all([clients.rust1.waitForEvent(toRust), clients.rust2.waitForEvent(toRust), clients.official.waitForEvent(notRust), clients.official.waitForEvent(toNode), clients.rust2.waitForEvent(notNode)]);
    await new Promise((r) => setTimeout(r, 300));
    const got = (event) => Object.fromEntries(Object.entries(clients).map(([name, c]) => [name, c.received(event).length]));
    assert.deepStrictEqual(got(toRust), { official: 0, ours: 0, rust1: 1, rust2: 1 });
    assert.deepStrictEqual(got(notRust), { official: 1, ours: 1, rust1: 0, rust2: 0 });
    assert.deepStrictEqual(got(toNode), { official: 1, ours: 0, rust1: 0, rust2: 0 });
    assert.deepStrictEqual(got(notNode), { official: 0, ours: 1, rust1: 1, rust2: 1 });
  });

  it("a Node server targets one Rust client by its socket id, and binary arrives intact both ways", async () => {
    const single = uniq("to-one");
    await official.command("emit", { to: clients.rust2.id, event: single, args: [{ __buffer: [1, 2, 3] }] });
    await clients.rust2.waitForEvent(single);
    const [[bytes]] = clients.rust2.received(single);
    assert.deepStrictEqual([...Buffer.from(bytes)], [1, 2, 3]);
    const fromRust = uniq("binary-from-rust");
    clients.rust1.socket.emit("broadcast", { event: fromRust, bytes: [4, 5, 6], to: "node-room" });
    await clients.official.waitForEvent(fromRust);
    const [[nodeBytes]] = clients.official.received(fromRust);
    assert.deepStrictEqual([...Buffer.from(nodeBytes)], [4, 5, 6]);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepStrictEqual(clients.rust1.received(single), []);
  });

  it("fetchSockets: Node sees the Rust clients, and Rust sees and reaches the Node clients", async () => {
    const fetched = await official.command("fetchSockets", {});
    assert.ok(fetched.ok, JSON.stringify(fetched));
    const ids = fetched.value.map((s) => s.id).sort();
    assert.deepStrictEqual(ids, [clients.official.id, clients.ours.id, clients.rust1.id, clients.rust2.id].sort());
    const rustSocket = fetched.value.find((s) => s.id === clients.rust1.id);
    assert.ok(rustSocket.rooms.includes("rust-room"), JSON.stringify(rustSocket));

    const seen = await ask(clients.rust1, "fetch");
    assert.strictEqual(seen.length, 4, JSON.stringify(seen));
    // A Node socket, through the id the Rust server knows it by.
    const local = new Set([clients.rust1.id, clients.rust2.id]);
    const nodeIds = seen.filter((id) => !local.has(id));
    const event = uniq("to-fetched");
    for (const id of nodeIds) assert.strictEqual(await ask(clients.rust1, "emit-to", { id, event, arg: "via fetchSockets" }), true);
    await Promise.all([clients.official.waitForEvent(event), clients.ours.waitForEvent(event)]);
    assert.deepStrictEqual([clients.official.received(event), clients.ours.received(event)], [[["via fetchSockets"]], [["via fetchSockets"]]]);
  });

  it("a Node socket fetched by the Rust server: its rooms, join, leave, emit with ack and disconnect, from Rust", async () => {
    const victim = await ours.connect("/");
    await ours.command("join", { nsp: "/", socketId: victim.id, rooms: ["victim-room"] });
    const ids = await ask(clients.rust1, "fetch-in", { in: "victim-room" });
    assert.strictEqual(ids.length, 1, JSON.stringify(ids));
    const [id] = ids;
    const remote = (op, extra = {}) => ask(clients.rust1, "remote-socket", { id, op, ...extra });
    assert.deepStrictEqual([...(await remote("rooms"))].sort(), [victim.id, "victim-room"].sort());
    // Each join / leave is followed by a rooms request: it travels after it on the Rust node's
    // connection, so the change is applied before anything is sent to the room.
    assert.strictEqual(await remote("join", { room: "joined-from-rust" }), true);
    assert.ok((await remote("rooms")).includes("joined-from-rust"));
    const toJoined = uniq("to-joined-from-rust");
    await official.command("emit", { to: "joined-from-rust", event: toJoined, args: [1] });
    await victim.waitForEvent(toJoined);
    assert.strictEqual(await remote("leave", { room: "joined-from-rust" }), true);
    assert.ok(!(await remote("rooms")).includes("joined-from-rust"));
    // After the leave, a broadcast to that room misses it; one to its other room (sent after,
    // from the same node) is the barrier.
    const toLeft = uniq("to-left-from-rust");
    await official.command("emit", { to: "joined-from-rust", event: toLeft, args: [2] });
    const barrier = uniq("barrier");
    await official.command("emit", { to: "victim-room", event: barrier, args: [3] });
    await victim.waitForEvent(barrier);
    assert.deepStrictEqual([victim.received(toJoined), victim.received(toLeft)], [[[1]], []]);
    const asked = uniq("ask-fetched");
    victim.setAckHandler(asked, "victim-ack");
    assert.deepStrictEqual(await remote("emit-with-ack", { event: asked, arg: "q" }), ["victim-ack"]);
    assert.strictEqual(await remote("disconnect"), true);
    await victim.waitForDisconnect();
  });

  it("socketsJoin / socketsLeave / allRooms / serverCount across servers", async () => {
    // Node makes the Rust clients join a room, then broadcasts to it.
    const joined = uniq("joined-by-node");
    await official.command("socketsJoin", { in: "rust-room", rooms: [joined] });
    await waitUntil(async () => (await ask(clients.rust1, "rooms")).includes(joined), { what: "the Rust node's rooms after a Node socketsJoin" });
    const event = uniq("to-joined");
    await ours.command("emit", { to: joined, event, args: [] });
    await Promise.all([clients.rust1.waitForEvent(event), clients.rust2.waitForEvent(event)]);
    // Rust makes the Node room's sockets join a room; Node's allRooms sees the Rust rooms.
    const byRust = uniq("joined-by-rust");
    assert.strictEqual(await ask(clients.rust1, "join", { in: "node-room", room: byRust }), true);
    if (protocol === "classic") {
      const rooms = await waitUntil(async () => {
        const r = await ours.command("allRooms", {});
        return r.ok && r.value.includes(byRust) && r.value.includes("rust-room") ? r.value : false;
      }, { what: "allRooms with the Rust room and the room joined from Rust" });
      assert.ok(rooms);
    } else {
      // The sharded protocol has no allRooms: Node sees the rooms through fetchSockets.
      await waitUntil(async () => {
        const r = await ours.command("fetchSockets", {});
        const rooms = (id) => r.value?.find((s) => s.id === id)?.rooms ?? [];
        return r.ok && rooms(clients.official.id).includes(byRust) && rooms(clients.rust1.id).includes("rust-room");
      }, { what: "fetchSockets with the Rust room and the room joined from Rust" });
    }
    // The Rust server's io.rooms() has the Node servers' rooms (socket ids too) and its own.
    const rustRooms = await ask(clients.rust1, "rooms");
    for (const room of ["node-room", byRust, "rust-room", clients.official.id, clients.ours.id]) assert.ok(rustRooms.includes(room), `${room} in ${JSON.stringify(rustRooms)}`);
    assert.strictEqual(await ask(clients.rust1, "leave", { in: "node-room", room: byRust }), true);
    const count = await official.command("serverCount", {});
    assert.deepStrictEqual(count.ok ? count.value : count, 3);
  });

  it("a Node broadcast with acks gets the Rust clients' acks too, without a timeout", async () => {
    for (const [from, server] of [["official", official], ["ours", ours]]) {
      const event = uniq(`ask-from-${from}`);
      for (const [name, c] of Object.entries(clients)) c.setAckHandler(event, `ack-${name}`);
      const res = await server.command("emitWithAck", { event, args: [1], timeout: 3000 });
      assert.strictEqual(res.err, null, `${from}: ${JSON.stringify(res)}`);
      assert.deepStrictEqual([...res.responses].sort(), ["ack-official", "ack-ours", "ack-rust1", "ack-rust2"], from);
      const toRust = uniq(`ask-rust-room-from-${from}`);
      for (const [name, c] of Object.entries(clients)) c.setAckHandler(toRust, `ack-${name}`);
      const inRoom = await server.command("emitWithAck", { event: toRust, to: "rust-room", args: [], timeout: 3000 });
      assert.strictEqual(inRoom.err, null, `${from}: ${JSON.stringify(inRoom)}`);
      assert.deepStrictEqual([...inRoom.responses].sort(), ["ack-rust1", "ack-rust2"], from);
    }
  });

  it("the Rust server's broadcast with acks gets every client's ack in the cluster, as a Node server's does", async () => {
    const event = uniq("ask-from-rust");
    for (const [name, c] of Object.entries(clients)) c.setAckHandler(event, `ack-${name}`);
    const res = await ask(clients.rust1, "broadcast-with-ack", { event, arg: 1, timeoutMs: 3000 });
    assert.strictEqual(res.errors, 0, JSON.stringify(res));
    assert.deepStrictEqual([...res.acks].sort(), ["ack-official", "ack-ours", "ack-rust1", "ack-rust2"], JSON.stringify(res));
    assert.ok(res.ms < 2000, `every ack came, so no wait for the timeout: ${res.ms} ms`);
    // To a room that only a client of the official node is in.
    const toNode = uniq("ask-node-room-from-rust");
    for (const [name, c] of Object.entries(clients)) c.setAckHandler(toNode, `ack-${name}`);
    const inRoom = await ask(clients.rust1, "broadcast-with-ack", { event: toNode, to: "node-room", timeoutMs: 3000 });
    assert.deepStrictEqual(inRoom, { acks: ["ack-official"], errors: 0, ms: inRoom.ms });
    assert.ok(inRoom.ms < 2000, `${inRoom.ms} ms`);
    // A client of the ours node that does not answer: what did arrives, and the stream ends at the
    // timeout (the Node server's count said one more was coming).
    const silent = uniq("ask-one-silent-from-rust");
    for (const [name, c] of Object.entries(clients)) if (name !== "ours") c.setAckHandler(silent, `ack-${name}`);
    clients.ours.socket.on(silent, () => {});
    const partial = await ask(clients.rust1, "broadcast-with-ack", { event: silent, timeoutMs: 1000 });
    assert.deepStrictEqual([...partial.acks].sort(), ["ack-official", "ack-rust1", "ack-rust2"], JSON.stringify(partial));
    assert.ok(partial.ms >= 900 && partial.ms < 3000, `ended at the 1 s timeout: ${partial.ms} ms`);
  });

  it("serverSideEmit with and without ack, both ways", async () => {
    for (const [from, server, other, otherName] of [["official", official, ours, "ours"], ["ours", ours, official, "official"]]) {
      const event = uniq(`srv-from-${from}`);
      await other.command("onServerEvent", { event, reply: `pong-from-${otherName}` });
      const res = await server.command("serverSideEmit", { event, args: [1, "two"], mode: "promise" });
      assert.ok(res.ok, `${from}: ${JSON.stringify(res)}`);
      assert.deepStrictEqual([...res.value].sort(), [`pong-from-${otherName}`, "pong-from-rust"], from);
      await waitUntil(async () => rust.out().includes(`SERVER_SIDE ${event} [1,"two"]`), { what: `the Rust listener called for ${event}` });
      const noAck = uniq(`srv-no-ack-from-${from}`);
      await server.command("serverSideEmit", { event: noAck, args: [3], mode: "none" });
      await waitUntil(async () => rust.out().includes(`SERVER_SIDE ${noAck} [3]`), { what: `the Rust listener called for ${noAck}` });
    }
    const event = uniq("srv-from-rust");
    await official.command("onServerEvent", { event, reply: "pong-from-official" });
    await ours.command("onServerEvent", { event, reply: "pong-from-ours" });
    const acks = await ask(clients.rust1, "server-side-emit", { event, args: [4] });
    assert.deepStrictEqual([...acks].sort(), ["pong-from-official", "pong-from-ours"]);
    assert.deepStrictEqual(official.serverEventCalls(event)[0].args, [4]);
  });

  it("disconnectSockets from Node closes a Rust client, and from Rust a Node client", async () => {
    const victimRust = await connectClient(rust.port, "/", { tag: "victim-rust" });
    await official.command("disconnectSockets", { in: victimRust.id });
    await victimRust.waitForDisconnect();
    const victimNode = await ours.connect("/");
    await ours.command("join", { nsp: "/", socketId: victimNode.id, rooms: ["doomed"] });
    assert.strictEqual(await ask(clients.rust1, "disconnect-sockets", { in: "doomed" }), true);
    await victimNode.waitForDisconnect();
  });
});

for (const protocol of PROTOCOLS) describe(`a socketioxide server through a Redis restart, beside the official adapter, ${protocol} protocol`, () => {
  it("once Redis is back, every operation works again in every direction, and nothing arrives twice", { timeout: 120000 }, async (t) => {
    const redis = await privateRedis();
    const key = uniqueKey();
    const options = protocolOptions(protocol, key);
    const [official, ours] = await startServers(
      [{ adapter: "official", label: "official", redisUrl: redis.url, ...options }, { adapter: "ours", label: "ours", redisUrl: redis.url, ...options }],
      { key, namespaces: ["/"] },
    );
    const rust = await startRustNode(key, redis.url, protocol);
    const { clients, all, emitters } = await threeNodes(official, ours, rust);
    const subscribed = async () => (await nodesCounted((c) => redisCommand(redis.port, c), protocol, key)) === 3;
    let probes = 0;
    /** Until a broadcast from every node reaches every client (each node subscribed again). */
    const meshed = (what) => waitUntil(async () => {
      if (!(await subscribed())) return false;
      const events = Object.keys(emitters).map((from) => `probe-${from}-${++probes}`);
      await Promise.all(Object.values(emitters).map((emit, i) => emit(events[i], "probe")));
      await new Promise((r) => setTimeout(r, 300));
      return all.every(([, c]) => events.every((e) => c.received(e).length > 0));
    }, { timeoutMs: 30000, intervalMs: 100, what });
    await meshed("the three nodes meshed before the fault");

    await redis.kill();
    // During the outage each node broadcasts once: queued, sent when Redis is back (the official
    // adapter's node-redis too), at most once.
    for (const [from, emit] of Object.entries(emitters)) await emit(`during-from-${from}`, from);
    await new Promise((r) => setTimeout(r, 1000));
    await redis.start();
    const back = Date.now();
    await meshed("every node subscribed again and meshed after the restart");
    t.diagnostic(`meshed again ${Date.now() - back} ms after Redis was back`);

    for (const [from, emit] of Object.entries(emitters)) {
      const event = `after-from-${from}`;
      await emit(event, from);
      await Promise.all(all.map(([, c]) => c.waitForEvent(event)));
      await new Promise((r) => setTimeout(r, 200));
      for (const [name, c] of all) assert.deepStrictEqual(c.received(event), [[from]], `${from} → ${name} after the restart`);
    }
    await rustFetchReaches(clients.rust, [clients.rust], [clients.official, clients.ours], "after-restart");
    const asked = "ask-after-restart";
    for (const [name, c] of all) c.setAckHandler(asked, `ack-${name}`);
    const res = await ask(clients.rust, "broadcast-with-ack", { event: asked, timeoutMs: 3000 });
    assert.deepStrictEqual([...res.acks].sort(), ["ack-official", "ack-ours", "ack-rust"], JSON.stringify(res));
    const fetched = await official.command("fetchSockets", {});
    assert.ok(fetched.ok && fetched.value.some((s) => s.id === clients.rust.id), `the official node fetches the Rust client: ${JSON.stringify(fetched)}`);

    const during = [];
    for (const from of Object.keys(emitters)) {
      for (const [name, c] of all) {
        const copies = c.received(`during-from-${from}`).length;
        assert.ok(copies <= 1, `${from} → ${name}: the broadcast sent during the outage arrived ${copies} times`);
        during.push(`${from}→${name} ${copies}`);
      }
    }
    t.diagnostic(`broadcasts sent during the outage, copies received: ${during.join(", ")}`);
  });
});

for (const protocol of PROTOCOLS) describe(`a socketioxide server in a cluster of Node servers on a Redis Cluster, ${protocol} protocol`, () => {
  it("broadcasts, rooms, requests and acks cross between nodes subscribed on different primaries", { timeout: 120000 }, async (t) => {
    const redisCluster = await startRedisCluster();
    t.after(() => redisCluster.stop());
    const [, p1, p2] = redisCluster.primaries;
    // Ours and the Rust node each on another primary (the first seed that is one); the official
    // node on a node-redis cluster client.
    const url = (first) => `redis+cluster://${[first, ...redisCluster.ports.filter((p) => p !== first)].map((p) => `127.0.0.1:${p}`).join(",")}`;
    const key = uniqueKey();
    const options = protocolOptions(protocol, key);
    const [official, ours] = await startServers(
      [
        { adapter: "official", label: "official", client: "node-redis-cluster", redisUrl: redisCluster.seeds, ...options },
        { adapter: "ours", label: "ours", redisUrl: url(p1), redisClients: false, ...options },
      ],
      { key, namespaces: ["/"] },
    );
    const rust = await startRustNode(key, url(p2), protocol);
    const { clients, all, emitters } = await threeNodes(official, ours, rust);
    let probes = 0;
    await waitUntil(async () => {
      const event = `probe-${++probes}`;
      await emitters.official(event, "probe");
      await new Promise((r) => setTimeout(r, 200));
      return clients.rust.received(event).length > 0;
    }, { timeoutMs: 30000, what: "an official broadcast reaching the Rust node through the cluster" });

    for (const [from, emit] of Object.entries(emitters)) {
      const event = `all-from-${from}`;
      await emit(event, from);
      await Promise.all(all.map(([, c]) => c.waitForEvent(event)));
      const toRust = `rust-room-from-${from}`;
      await emit(toRust, from, "rust-room");
      await clients.rust.waitForEvent(toRust);
      await new Promise((r) => setTimeout(r, 200));
      for (const [name, c] of all) {
        assert.deepStrictEqual(c.received(event), [[from]], `${from} → ${name}`);
        assert.deepStrictEqual(c.received(toRust), name === "rust" ? [[from]] : [], `${from} → ${name} in rust-room`);
      }
    }
    const count = await official.command("serverCount", {});
    assert.deepStrictEqual(count.ok ? count.value : count, 3, "serverCount from the official node (NUMSUB over every primary, or SHARDNUMSUB)");
    await rustFetchReaches(clients.rust, [clients.rust], [clients.official, clients.ours], "on-cluster");
    const fetched = await ours.command("fetchSockets", {});
    assert.deepStrictEqual(fetched.value.map((s) => s.id).sort(), [clients.official.id, clients.ours.id, clients.rust.id].sort(), "fetchSockets from ours");
    const asked = "ask-on-cluster";
    for (const [name, c] of all) c.setAckHandler(asked, `ack-${name}`);
    const res = await ask(clients.rust, "broadcast-with-ack", { event: asked, timeoutMs: 3000 });
    assert.deepStrictEqual({ acks: [...res.acks].sort(), errors: res.errors }, { acks: ["ack-official", "ack-ours", "ack-rust"], errors: 0 }, JSON.stringify(res));
    const fromOfficial = await official.command("emitWithAck", { event: asked, args: [], timeout: 3000 });
    assert.deepStrictEqual([...fromOfficial.responses].sort(), ["ack-official", "ack-ours", "ack-rust"], JSON.stringify(fromOfficial));
    // Both wait for as many servers as Redis counts (PUBSUB NUMSUB over the primaries, or
    // SHARDNUMSUB in the sharded protocol): the Rust node
    // settles without waiting for the timeout whenever the official one does.
    t.diagnostic(`broadcast with acks on the cluster: Rust ${res.ms} ms, official ${Math.round(fromOfficial.ms)} ms (${fromOfficial.err ? `error: ${JSON.stringify(fromOfficial.err)}` : "no error"})`);
    if (!fromOfficial.err) assert.ok(res.ms < 2000, `every ack came, no wait for the timeout: ${res.ms} ms`);
    const event = "srv-on-cluster";
    await official.command("onServerEvent", { event, reply: "pong-from-official" });
    await ours.command("onServerEvent", { event, reply: "pong-from-ours" });
    assert.deepStrictEqual([...(await ask(clients.rust, "server-side-emit", { event, args: [5] }))].sort(), ["pong-from-official", "pong-from-ours"]);
  });
});
