"use strict";
// The runtime side of what index.d.ts promises (test/typescript.test.js checks the types):
// RedisAdapter subclassed with the official constructor `(nsp, pubClient, subClient, opts)` and
// installed the official way, the official adapter's public properties (parser, uid, channel
// names, ...), customHook overridden in a subclass, and the emitter's exports (BroadcastOperator,
// RESERVED_EVENTS, Emitter#nsp), from the CommonJS and the ESM entries.
//
// Two socket.io servers in this process run a subclass of ours (A on a node-redis client, B on a
// URL); C, a child process, runs the official adapter on the same key.
const { test, describe, before, after } = require("node:test");
const assert = require("node:assert");
const http = require("node:http");
const path = require("node:path");
const { pathToFileURL } = require("node:url");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { startServers, connectClient, uniqueKey, stopAll, redisClient, waitUntil } = require("./helpers/cluster");

const pkgDir = process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm");
const sioadapter = require(pkgDir);
const { RedisAdapter, createAdapter, Emitter, BroadcastOperator, RESERVED_EVENTS } = sioadapter;
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

/** A subclass as users write it for the official package: counts its broadcasts, answers customRequest. */
class CountingAdapter extends RedisAdapter {
  constructor(nsp, pubClient, subClient, opts) {
    super(nsp, pubClient, subClient, opts);
    this.broadcasts = 0;
  }

  broadcast(packet, opts) {
    this.broadcasts++;
    super.broadcast(packet, opts);
  }

  customHook(data, callback) {
    callback(null, { echo: data, uid: this.uid });
  }
}

/** A socket.io server on a free port whose adapter `make(nsp)` returns; resolves once it listens. */
function startLocalServer(make) {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ["websocket"] });
  // socket.io calls the adapter option with `new`: a function expression, as officially.
  io.adapter(function (nsp) {
    return make(nsp);
  });
  return new Promise((resolve) => httpServer.listen(0, "127.0.0.1", () => resolve({ io, port: httpServer.address().port })));
}

/** The npm package's own notepack.io (what the adapter encodes with). */
const notepack = require(require.resolve("notepack.io", { paths: [pkgDir] }));

describe("RedisAdapter subclassed with the official constructor", () => {
  const key = uniqueKey();
  let a, b, c, pubClient, clientB, clientC;

  before(async () => {
    // node-redis clients as the official README makes them; ours only reads their settings.
    pubClient = createClient({ url: REDIS_URL });
    const subClient = pubClient.duplicate();
    a = await startLocalServer((nsp) => new CountingAdapter(nsp, pubClient, subClient, { key, requestsTimeout: 2000 }));
    b = await startLocalServer((nsp) => new CountingAdapter(nsp, REDIS_URL, undefined, { key, requestsTimeout: 2000 }));
    [c] = await startServers([{ adapter: "official", client: "node-redis", namespaces: ["/"] }], { key, mesh: false });
    await Promise.all([a.io.of("/").adapter.ready, b.io.of("/").adapter.ready]);
    clientB = await connectClient(b.port, "/");
    clientC = await c.connect("/");
    await c.command("join", { nsp: "/", socketId: clientC.id, rooms: ["room-c"] });
    // Every node's subscriptions are in place once A counts all three.
    await waitUntil(() => a.io.of("/").adapter.serverCount().then((n) => n === 3), { what: "serverCount 3 from A" });
  });

  after(async () => {
    await Promise.all([a, b].filter(Boolean).map(({ io }) => new Promise((resolve) => io.close(() => resolve()))));
    await stopAll();
  });

  test("the adapter is the subclass, made with the options given", () => {
    const adapter = a.io.of("/").adapter;
    assert.ok(adapter instanceof CountingAdapter);
    assert.ok(adapter instanceof RedisAdapter);
    assert.strictEqual(adapter.pubClient, pubClient);
    assert.strictEqual(adapter.requestsTimeout, 2000);
    assert.strictEqual(adapter.publishOnSpecificResponseChannel, false);
    assert.strictEqual(adapter.prefix, key);
  });

  test("a broadcast through the subclass reaches the other subclassed node and the official node", async () => {
    const adapter = a.io.of("/").adapter;
    const before = adapter.broadcasts;
    a.io.emit("hello", "from A", { n: 1 });
    a.io.to("room-c").emit("to-room-c", 2);
    await Promise.all([clientB.waitForEvent("hello"), clientC.waitForEvent("hello"), clientC.waitForEvent("to-room-c")]);
    assert.deepStrictEqual(clientB.received("hello"), [["from A", { n: 1 }]]);
    assert.deepStrictEqual(clientC.received("hello"), [["from A", { n: 1 }]]);
    assert.deepStrictEqual(clientC.received("to-room-c"), [[2]]);
    assert.strictEqual(adapter.broadcasts - before, 2, "the subclass's broadcast() was called once per emit");
  });

  test("requests from the subclass: serverCount, allRooms, fetchSockets", async () => {
    const adapter = a.io.of("/").adapter;
    assert.strictEqual(await adapter.serverCount(), 3);
    const rooms = await adapter.allRooms();
    assert.ok(rooms.has("room-c") && rooms.has(clientB.id), `allRooms: ${[...rooms]}`);
    const sockets = await a.io.fetchSockets();
    assert.deepStrictEqual(sockets.map((s) => s.id).sort(), [clientB.id, clientC.id].sort());
  });

  test("customRequest gets the subclass's customHook answer from every ours node", async () => {
    const adapterA = a.io.of("/").adapter;
    const adapterB = b.io.of("/").adapter;
    // The official node has no customHook: leave it out, or the request would wait for it.
    await c.stop();
    await waitUntil(() => adapterA.serverCount().then((n) => n === 2), { what: "serverCount 2 after C stopped" });
    const replies = await adapterA.customRequest({ q: 1 });
    assert.deepStrictEqual(replies, [{ echo: { q: 1 }, uid: adapterA.uid }, { echo: { q: 1 }, uid: adapterB.uid }]);
  });

  test("the official adapter's public properties: parser, uid, channels (as Redis sees them)", async () => {
    const adapter = b.io.of("/").adapter;
    assert.strictEqual(adapter.parser, notepack);
    assert.deepStrictEqual(adapter.parser.decode(adapter.parser.encode([1, "é", { a: null }])), [1, "é", { a: null }]);
    assert.match(adapter.uid, /^\S{6}$/);
    assert.strictEqual(adapter.channel, `${key}#/#`);
    assert.strictEqual(adapter.requestChannel, `${key}-request#/#`);
    assert.strictEqual(adapter.responseChannel, `${key}-response#/#`);
    assert.strictEqual(adapter.specificResponseChannel, `${key}-response#/#${adapter.uid}#`);
    const raw = await redisClient(REDIS_URL);
    const subscribed = await raw.sendCommand(["PUBSUB", "CHANNELS", `${key}*`]);
    for (const channel of [adapter.requestChannel, adapter.responseChannel, adapter.specificResponseChannel]) {
      assert.ok(subscribed.includes(channel), `${channel} not subscribed: ${subscribed}`);
    }
    assert.ok(typeof adapter.requests.size === "number");
  });

  test("a server's namespaces made with the constructor share one Redis connection", () => {
    // White-box: the connection each namespace leased (one per server, as with createAdapter).
    const root = a.io.of("/").adapter;
    const admin = a.io.of("/admin").adapter;
    assert.ok(admin instanceof CountingAdapter);
    assert.strictEqual(root._lease.native, admin._lease.native);
    assert.notStrictEqual(root._lease.native, b.io.of("/").adapter._lease.native);
  });

  test("a wrong option given to the constructor throws ERR_SIO_OPTION", () => {
    const nsp = { name: "/wrong", server: {} };
    assert.throws(() => new CountingAdapter(nsp, REDIS_URL, undefined, { requestsTimeout: "5000" }), { name: "TypeError", code: "ERR_SIO_OPTION" });
    assert.throws(() => new CountingAdapter(nsp, 42), { code: "ERR_SIO_OPTION" });
  });
});

describe("createAdapter's adapter is a RedisAdapter", () => {
  test("io.of('/').adapter instanceof RedisAdapter, with the same properties", async (t) => {
    const key = uniqueKey();
    const { io } = await startLocalServer(createAdapter(REDIS_URL, { key, publishOnSpecificResponseChannel: true }));
    t.after(() => new Promise((resolve) => io.close(() => resolve())));
    const adapter = io.of("/").adapter;
    assert.ok(adapter instanceof RedisAdapter);
    await adapter.ready;
    assert.strictEqual(adapter.publishOnSpecificResponseChannel, true);
    assert.strictEqual(adapter.requestChannel, `${key}-request#/#`);
    assert.strictEqual(adapter.parser, notepack);
  });
});

describe("the emitter's exports", () => {
  test("BroadcastOperator, RESERVED_EVENTS and Emitter#nsp, from CommonJS and ESM", async (t) => {
    const emitter = new Emitter(REDIS_URL, { key: uniqueKey() });
    t.after(() => emitter.close());
    assert.strictEqual(emitter.nsp, "/");
    assert.strictEqual(emitter.of("admin").nsp, "/admin");
    assert.ok(emitter.to("room") instanceof BroadcastOperator);
    assert.ok(emitter.volatile instanceof BroadcastOperator);
    assert.deepStrictEqual([...RESERVED_EVENTS].sort(), ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);
    assert.throws(() => emitter.emit("connect"), /reserved event name/);
    assert.throws(() => emitter.to("room").emit("disconnecting"), /reserved event name/);

    const esm = await import(pathToFileURL(path.join(path.dirname(require.resolve(pkgDir)), "index.mjs")).href);
    for (const name of ["createAdapter", "createShardedAdapter", "RedisAdapter", "Emitter", "BroadcastOperator", "RESERVED_EVENTS", "RequestType"]) {
      assert.strictEqual(esm[name], sioadapter[name], `ESM export ${name}`);
    }
  });
});
