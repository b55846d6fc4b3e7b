'use strict';
// One socket.io server node of the benchmark cluster, with either adapter:
//   kind 'ours'     — require('../npm').createAdapter(redisUrl, { key })
//   kind 'official' — @socket.io/redis-adapter 8.3.0 over two node-redis v5 clients
// and, for bench/scale.js, either's variants: `perRoom` (ours only: perRoomSubscriptions) and
// `sharded` ('dynamic' | 'static': createShardedAdapter with that subscriptionMode, `key` as its
// channelPrefix). Everything else (workloads, measurements) is identical for all kinds; the
// coordinator (bench.js, scale.js) drives it over IPC with the commands at the bottom.

const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { Server } = require('socket.io');
const { serve, childConfig, wallNow, usageHandlers } = require('./lib/proc');

const config = childConfig(); // { kind, key, redisUrl, perRoom?, sharded? }

/** Problems the adapter or its Redis clients reported (e.g. a pub/sub client cut off by Redis), with counts. */
const incidents = new Map();
function incident(source, err) {
  const text = `${source}: ${String((err && err.message) || err).replace(/\s*\n\s*/g, ' / ')}`;
  if (incidents.size < 20 || incidents.has(text)) incidents.set(text, (incidents.get(text) || 0) + 1);
}

/** Extra options for our classic adapter (BENCH_OURS_OPTIONS, JSON), e.g. to try another maxReceiveBufferBytes. */
const OURS_OPTIONS = JSON.parse(process.env.BENCH_OURS_OPTIONS || '{}');

/** BENCH_PARSER=json: both classic adapters get the `parser` option `{ encode: JSON.stringify, decode: JSON.parse }`. */
const PARSER_OPTIONS = { '': {}, json: { parser: { encode: JSON.stringify, decode: JSON.parse } } }[process.env.BENCH_PARSER || ''];
if (!PARSER_OPTIONS) throw new Error(`BENCH_PARSER: unknown parser ${process.env.BENCH_PARSER} (json, or unset for notepack.io)`);

/** Builds the adapter factory of `config` (see the top of this file), and a closer for what it opened. */
async function adapterFor({ kind, redisUrl, key, perRoom = false, sharded = null }) {
  if (perRoom && (kind !== 'ours' || sharded)) throw new Error('perRoom applies to the classic adapter of kind ours only');
  if (kind === 'ours') {
    const ours = require(path.join(__dirname, '..', 'npm'));
    const factory = sharded
      ? ours.createShardedAdapter(redisUrl, undefined, { channelPrefix: key, subscriptionMode: sharded })
      : ours.createAdapter(redisUrl, { ...OURS_OPTIONS, ...PARSER_OPTIONS, key, ...(perRoom ? { perRoomSubscriptions: true } : {}) });
    return { factory, close: async () => {} };
  }
  if (kind === 'official') {
    const official = require('@socket.io/redis-adapter');
    const { createClient } = require('redis');
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    pub.on('error', (err) => incident('redis pub', err));
    sub.on('error', (err) => incident('redis sub', err));
    await Promise.all([pub.connect(), sub.connect()]);
    const factory = sharded
      ? official.createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode: sharded })
      : official.createAdapter(pub, sub, { ...PARSER_OPTIONS, key });
    return { factory, close: () => Promise.allSettled([pub.close(), sub.close()]) };
  }
  throw new Error(`unknown adapter kind ${kind}`);
}

/** Payloads by name; built here so no IPC encoding sits between the payload and socket.io. */
function makePayload(name) {
  switch (name) {
    case 'small': // ~100 bytes as JSON
      return { user: 'alice', room: 'lobby', text: 'hello from the emitting node, how are you?', seq: 42, ts: 1700000000000 };
    case 'large': // ~10 KB string
      return 'x'.repeat(10 * 1024);
    case 'buffer': // ~1 KB binary attachment
      return { kind: 'blob', data: Buffer.alloc(1024, 7) };
    default:
      throw new Error(`unknown payload ${name}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The name of room `r` of a room set `tag` (bench/scale.js counts their Redis channels by `tag-*`). */
const roomName = (tag, r) => `${tag}-${r}`;

let io;

/** RSS sampled every 10 ms, for `peakMemory` (unref'd: it keeps nothing alive). */
const rssPeak = { value: 0 };
setInterval(() => {
  rssPeak.value = Math.max(rssPeak.value, process.memoryUsage.rss());
}, 10).unref();
let closeAdapter;

/** `n` requests of one kind, one at a time; latencies in ms of the successful ones. */
async function sequentialRequests(op, n, expected, budgetMs) {
  const adapter = io.of('/').adapter;
  const ops = {
    fetchSockets: async () => (await io.fetchSockets()).length,
    serverSideEmitWithAck: async () => (await io.serverSideEmitWithAck('ping')).length,
    allRooms: async () => (await adapter.allRooms()).size,
    serverCount: () => adapter.serverCount(),
  };
  const run = ops[op];
  const latencies = [];
  const errors = [];
  const started = performance.now();
  for (let i = 0; i < n && errors.length < 3 && performance.now() - started < budgetMs; i++) {
    const t = performance.now();
    try {
      const size = await run();
      if (size !== expected) throw new Error(`${op} returned ${size} items, expected ${expected}`);
      latencies.push(performance.now() - t);
    } catch (err) {
      errors.push(err.message);
    }
  }
  return { latencies, errors };
}

serve({
  async start() {
    const server = http.createServer();
    io = new Server(server, { transports: ['websocket'] });
    const adapter = await adapterFor(config);
    closeAdapter = adapter.close;
    io.adapter(adapter.factory);
    io.of('/').adapter.on('error', (err) => incident('adapter', err));
    io.on('ping', (cb) => cb('pong'));
    if (io.of('/').adapter.ready) await io.of('/').adapter.ready;
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: server.address().port, pid: process.pid };
  },

  /** Waits (bounded) until `nodes` servers are subscribed to the namespace's request channel. */
  async waitForNodes({ nodes, timeoutMs = 10000 }) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const count = await io.of('/').adapter.serverCount();
      if (count >= nodes) return count;
      if (Date.now() > deadline) throw new Error(`only ${count} of ${nodes} nodes subscribed after ${timeoutMs} ms`);
      await sleep(20);
    }
  },

  /**
   * Emits `n` broadcasts, `chunk` per event-loop turn (chunk >= n: one synchronous burst), or
   * `chunk` every `everyMs` ms: to every socket, or with `rooms` ({ tag, total }) the i-th to
   * the single room `roomName(tag, i % total)`, round robin.
   */
  emit({ event, payload, n, chunk, rooms, everyMs = 0 }) {
    const data = makePayload(payload);
    const target = rooms ? (i) => io.to(roomName(rooms.tag, i % rooms.total)) : () => io;
    const t0 = wallNow();
    let sent = 0;
    return new Promise((resolve) => {
      const step = () => {
        const end = Math.min(n, sent + chunk);
        for (; sent < end; sent++) target(sent).emit(event, data);
        if (sent < n) everyMs > 0 ? setTimeout(step, everyMs) : setImmediate(step);
        else resolve({ t0, t1: wallNow() });
      };
      step();
    });
  },

  /**
   * Puts every local socket in this node's share of `total` rooms named `roomName(tag, r)` (the
   * rooms r with r % nodes === index) and out of every other room but its own; resolves once
   * the joins have (for adapters whose join is asynchronous, e.g. per-room subscriptions).
   */
  async setRooms({ tag, total, nodes, index }) {
    const mine = [];
    for (let r = index; r < total; r += nodes) mine.push(roomName(tag, r));
    const wanted = new Set(mine);
    const joins = [];
    for (const socket of io.of('/').sockets.values()) {
      for (const room of [...socket.rooms]) if (room !== socket.id && !wanted.has(room)) joins.push(socket.leave(room));
      joins.push(socket.join(mine));
    }
    await Promise.all(joins);
    return mine.length;
  },

  ...usageHandlers(),

  memory() {
    return process.memoryUsage().rss;
  },

  /** The highest RSS sampled (every 10 ms) since the last call, and a new sampling window. */
  peakMemory() {
    const peak = Math.max(rssPeak.value, process.memoryUsage.rss());
    rssPeak.value = process.memoryUsage.rss();
    return peak;
  },

  requests({ op, n, expected, budgetMs }) {
    return sequentialRequests(op, n, expected, budgetMs);
  },

  incidents() {
    return [...incidents].map(([text, count]) => (count > 1 ? `${text} (×${count})` : text));
  },

  async close() {
    io.close();
    await closeAdapter();
  },
});
