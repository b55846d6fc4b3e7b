"use strict";
// Broadcasts whose client text the Rust core makes (npm/lib/client-text.js): what a client
// receives from a node of ours must be exactly what it receives from a node of the official
// adapter, for thousands of random values (numbers of every magnitude, 64-bit integers, strings
// with control characters and lone surrogates, objects with numeric and odd keys, dates,
// undefined, binary). One cluster, one Redis: node A (ours) emits; node B (ours) and node C
// (official, node-redis) deliver to a client each, which records the raw engine.io frames.
const { test, before, after } = require("node:test");
const assert = require("node:assert");
const http = require("node:http");
const path = require("node:path");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient } = require("redis");
const official = require("@socket.io/redis-adapter");
const { uniqueKey } = require("./helpers/cluster");

const ours = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"));
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const SEED = Number(process.env.CLIENT_TEXT_SEED || Date.now() % 1e9);
const COUNT = 3000;

/** A small deterministic PRNG (mulberry32), so a failure can be replayed with CLIENT_TEXT_SEED. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SPECIAL_NUMBERS = [0, -0, 1, -1, 0.1, 1e21, 1e20, 1e-6, 1e-7, 1.5e-7, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 5e-324, Number.MAX_VALUE, NaN, Infinity, -Infinity, 4294967295, 123.456, 1 / 3];
const SPECIAL_STRINGS = ["", "\u0000", "\u0001\u001f\u007f", '"quoted"\\', "\n\r\t\b\f", "\u2028\u2029", "é中文🙂", "\ud800", "x\udc00y", "__proto__", "</script>"];
const SPECIAL_KEYS = ["0", "1", "01", "-1", "10", "2", "4294967294", "4294967295", "1.5", "", "a", "b", "constructor", "toJSON", "é", "__proto__"];

function randomValue(rand, depth = 0) {
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const r = rand();
  if (depth > 3 || r < 0.35) {
    switch (Math.floor(rand() * 9)) {
      case 0: return pick(SPECIAL_NUMBERS);
      case 1: return Math.floor((rand() - 0.5) * 2 ** (rand() * 64));
      case 2: return (rand() - 0.5) * 10 ** Math.floor(rand() * 60 - 30);
      case 3: return pick(SPECIAL_STRINGS);
      case 4: return Array.from({ length: Math.floor(rand() * 12) }, () => String.fromCharCode(Math.floor(rand() ** 3 * 0x10000))).join("");
      case 5: return pick([true, false, null]);
      case 6: return rand() < 0.5 ? undefined : new Date(Math.floor(rand() * 4e12));
      case 7: return rand() < 0.7 ? "plain text " + Math.floor(rand() * 1000) : Buffer.from([1, 2, 3]);
      default: return Math.fround(rand() * 100);
    }
  }
  if (r < 0.6) return Array.from({ length: Math.floor(rand() * 5) }, () => randomValue(rand, depth + 1));
  const object = {};
  for (let i = Math.floor(rand() * 6); i > 0; i--) {
    const key = rand() < 0.5 ? pick(SPECIAL_KEYS) : `k${Math.floor(rand() * 20)}`;
    // An own `__proto__` is decoded as the prototype by both adapters: only a primitive there,
    // as an object (a Buffer) would make socket.io's encoder throw on either.
    const value = key === "__proto__" ? pick(SPECIAL_STRINGS) : randomValue(rand, depth + 1);
    Object.defineProperty(object, key, { value, enumerable: true, configurable: true, writable: true });
  }
  return object;
}

async function listen(server) {
  const httpServer = http.createServer();
  server.attach(httpServer);
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return httpServer.address().port;
}

/** A client of node `port` that records every engine.io message (the socket.io packets as sent). */
async function recordingClient(port) {
  const client = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true });
  const frames = [];
  client.io.on("open", () => client.io.engine.on("packet", (p) => p.type === "message" && frames.push(p.data)));
  await new Promise((resolve, reject) => {
    client.on("connect", resolve);
    client.on("connect_error", reject);
  });
  return { client, frames };
}

const cleanup = [];
/** Errors any adapter or Redis client reported: there must be none. */
const errors = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
});

let emitter, receiver, officialReceiver, oursClient, officialClient;
/** Packets node B's encoder was handed with their text made by the core. */
let madeAhead = 0;

before(async () => {
  const key = uniqueKey();
  const nodes = [];
  for (const kind of ["ours", "ours", "official"]) {
    let adapter;
    if (kind === "ours") {
      adapter = ours.createAdapter(REDIS_URL, { key });
    } else {
      const [pub, sub] = [createClient({ url: REDIS_URL }), createClient({ url: REDIS_URL })];
      for (const client of [pub, sub]) client.on("error", (err) => errors.push(`official node's client: ${err.message}`));
      await Promise.all([pub.connect(), sub.connect()]);
      cleanup.push(() => Promise.all([pub.quit(), sub.quit()]));
      adapter = official.createAdapter(pub, sub, { key });
    }
    const server = new Server({ adapter });
    server.of("/").adapter.on("error", (err) => errors.push(`${kind} node: ${err.message}`));
    cleanup.push(() => new Promise((resolve) => server.close(() => resolve())));
    nodes.push({ server, port: await listen(server) });
  }
  emitter = nodes[0].server;
  receiver = nodes[1].server;
  officialReceiver = nodes[2].server;
  const adapter = receiver.of("/").adapter;
  const encoder = adapter.encoder;
  adapter.encoder = {
    encode(packet) {
      if (Object.getOwnPropertySymbols(packet).length) madeAhead++;
      return encoder.encode(packet);
    },
  };
  oursClient = await recordingClient(nodes[1].port);
  officialClient = await recordingClient(nodes[2].port);
  cleanup.push(async () => [oursClient, officialClient].forEach(({ client }) => client.close()));
  await Promise.all(nodes.map(({ server }) => server.of("/").adapter.ready || Promise.resolve()));
  // Both receivers must hear the emitting node before the values are sent.
  for (let i = 0; !oursClient.frames.length || !officialClient.frames.length; i++) {
    if (i > 250) throw new Error("the receiving nodes never heard the emitting one");
    emitter.emit("probe", i);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});

test(`random values reach clients of ours exactly as clients of the official adapter (seed ${SEED})`, async () => {
  const rand = prng(SEED);
  const start = [oursClient.frames.length, officialClient.frames.length];
  // What onAnyOutgoing listeners see on each receiving node: for a text packet of ours, the data
  // parsed from its text, which must equal what the official node decoded from the message.
  const outgoing = [[], []];
  [[receiver, oursClient], [officialReceiver, officialClient]].forEach(([server, { client }], i) => {
    server.of("/").sockets.get(client.id).onAnyOutgoing((event, ...args) => event === "v" && outgoing[i].push(args));
  });
  // The probes still in flight end with this marker on both sides.
  emitter.emit("start");
  const values = Array.from({ length: COUNT }, () => randomValue(rand));
  values.forEach((value, i) => emitter.emit("v", value, i));
  emitter.emit("end");
  const text = (frames) => frames.filter((f) => typeof f === "string");
  const ended = (frames) => text(frames).some((f) => f.startsWith('2["end"'));
  const deadline = Date.now() + 20000;
  while (!(ended(oursClient.frames) && ended(officialClient.frames)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const after = (frames, from) => {
    const list = text(frames.slice(from));
    return list.slice(list.findIndex((f) => f.startsWith('2["start"')) + 1, list.findIndex((f) => f.startsWith('2["end"')));
  };
  const [got, expected] = [after(oursClient.frames, start[0]), after(officialClient.frames, start[1])];
  assert.strictEqual(expected.length >= COUNT, true, `the official node delivered ${expected.length} frames`);
  assert.strictEqual(got.length, expected.length, `frames: ours ${got.length}, official ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    if (got[i] !== expected[i]) assert.fail(`frame ${i} differs (seed ${SEED}):\n ours:     ${String(got[i]).slice(0, 400)}\n official: ${String(expected[i]).slice(0, 400)}`);
  }
  assert.strictEqual(outgoing[0].length, COUNT, `onAnyOutgoing calls on ours: ${outgoing[0].length}`);
  for (let i = 0; i < COUNT; i++) {
    try {
      assert.deepStrictEqual(outgoing[0][i], outgoing[1][i]);
    } catch (err) {
      assert.fail(`onAnyOutgoing arguments of value ${i} differ (seed ${SEED}): ${err.message.slice(0, 600)}`);
    }
  }
  assert.deepStrictEqual(errors, []);
  // Most values are plain JSON: their text must have come from the core.
  assert.ok(madeAhead > COUNT / 2, `only ${madeAhead} of ${COUNT} packets had their text made ahead`);
});

test("onAnyOutgoing listeners on the receiving node still see the decoded arguments", async () => {
  const socket = receiver.of("/").sockets.get(oursClient.client.id);
  const seen = [];
  socket.onAnyOutgoing((...args) => seen.push(args));
  const arrived = new Promise((resolve) => oursClient.client.on("outgoing-check", (...args) => resolve(args)));
  emitter.emit("outgoing-check", { a: [1, 2] }, "x");
  assert.deepStrictEqual(await arrived, [{ a: [1, 2] }, "x"]);
  assert.deepStrictEqual(seen, [["outgoing-check", { a: [1, 2] }, "x"]]);
});

test("texts around every websocket frame-length boundary reach websocket, polling and compressed-websocket clients intact", async () => {
  // The core frames each text for websocket clients (7-bit, 16-bit and 64-bit lengths); polling
  // clients and permessage-deflate connections get the text through engine.io's own encoding.
  const key = uniqueKey();
  const make = async (options = {}) => {
    const server = new Server({ adapter: ours.createAdapter(REDIS_URL, { key }), ...options });
    server.of("/").adapter.on("error", (err) => errors.push(`frame test node: ${err.message}`));
    cleanup.push(() => new Promise((resolve) => server.close(() => resolve())));
    return { server, port: await listen(server) };
  };
  const source = await make();
  const plain = await make();
  const deflate = await make({ perMessageDeflate: { threshold: 0 } });
  const clients = [
    ["websocket", plain.port, ["websocket"]],
    ["polling", plain.port, ["polling"]],
    ["compressed websocket", deflate.port, ["websocket"]],
  ].map(([name, port, transports]) => {
    const client = connect(`http://127.0.0.1:${port}`, { transports, forceNew: true });
    cleanup.push(async () => client.close());
    const got = new Map();
    client.on("v", (s, i) => got.set(i, got.has(i) ? null : s));
    let probes = 0;
    client.on("probe", () => probes++);
    return { name, client, got, heard: () => probes > 0 };
  });
  await Promise.all(clients.map(({ client }) => new Promise((resolve, reject) => {
    client.on("connect", resolve);
    client.on("connect_error", reject);
  })));
  for (let i = 0; !clients.every((c) => c.heard()); i++) {
    if (i > 250) throw new Error("the receiving nodes never heard the emitting one");
    source.server.emit("probe", i);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const lengths = [0, 1, ...Array.from({ length: 41 }, (_, k) => 100 + k), ...Array.from({ length: 81 }, (_, k) => 65480 + k), 70000];
  const values = lengths.map((n, i) => (i % 3 === 2 ? "é".repeat(n >> 1) + "x".repeat(n & 1) : "a".repeat(n)));
  values.push("🙂".repeat(20000));
  values.forEach((value, i) => source.server.emit("v", value, i));
  const deadline = Date.now() + 20000;
  while (clients.some((c) => c.got.size < values.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const { name, got } of clients) {
    assert.strictEqual(got.size, values.length, `${name}: ${got.size} of ${values.length} values`);
    values.forEach((value, i) => {
      if (got.get(i) !== value) assert.fail(`${name}: value ${i} (${value.length} chars) arrived as ${got.get(i) === null ? "a duplicate" : `${String(got.get(i)).length} chars`}`);
    });
  }
  assert.deepStrictEqual(errors, []);
});
