'use strict';
// One socket.io server node of the benchmark cluster, with either adapter:
//   kind 'ours'     — require('../npm').createAdapter(redisUrl, { key })
//   kind 'official' — @socket.io/redis-adapter 8.3.0 over two node-redis v5 clients
// Everything else (workloads, measurements) is identical for both kinds; the coordinator
// (bench.js) drives it over IPC with the commands at the bottom.

const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { Server } = require('socket.io');
const { serve, childConfig, wallNow, usageHandlers } = require('./lib/proc');

const config = childConfig(); // { kind, key, redisUrl, label }

/** Problems the adapter or its Redis clients reported (e.g. a pub/sub client cut off by Redis), with counts. */
const incidents = new Map();
function incident(source, err) {
  const text = `${source}: ${String((err && err.message) || err).replace(/\s*\n\s*/g, ' / ')}`;
  if (incidents.size < 20 || incidents.has(text)) incidents.set(text, (incidents.get(text) || 0) + 1);
}

/** Builds the adapter factory for `kind`, and a closer for what it opened. */
async function adapterFor(kind, redisUrl, key) {
  if (kind === 'ours') {
    const { createAdapter } = require(path.join(__dirname, '..', 'npm'));
    return { factory: createAdapter(redisUrl, { key }), close: async () => {} };
  }
  if (kind === 'official') {
    const { createAdapter } = require('@socket.io/redis-adapter');
    const { createClient } = require('redis');
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    pub.on('error', (err) => incident('redis pub', err));
    sub.on('error', (err) => incident('redis sub', err));
    await Promise.all([pub.connect(), sub.connect()]);
    return { factory: createAdapter(pub, sub, { key }), close: () => Promise.allSettled([pub.close(), sub.close()]) };
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

let io;
let closeAdapter;

/** `n` requests of one kind, one at a time; latencies in ms of the successful ones. */
async function sequentialRequests(op, n, expected, budgetMs) {
  const run = op === 'fetchSockets' ? () => io.fetchSockets() : () => io.serverSideEmitWithAck('ping');
  const latencies = [];
  const errors = [];
  const started = performance.now();
  for (let i = 0; i < n && errors.length < 3 && performance.now() - started < budgetMs; i++) {
    const t = performance.now();
    try {
      const result = await run();
      if (result.length !== expected) throw new Error(`${op} returned ${result.length} items, expected ${expected}`);
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
    const adapter = await adapterFor(config.kind, config.redisUrl, config.key);
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

  /** Emits `n` broadcasts, `chunk` per event-loop turn (chunk >= n: one synchronous burst). */
  emit({ event, payload, n, chunk }) {
    const data = makePayload(payload);
    const t0 = wallNow();
    let sent = 0;
    return new Promise((resolve) => {
      const step = () => {
        const end = Math.min(n, sent + chunk);
        for (; sent < end; sent++) io.emit(event, data);
        if (sent < n) setImmediate(step);
        else resolve({ t0, t1: wallNow() });
      };
      step();
    });
  },

  ...usageHandlers(),

  memory() {
    return process.memoryUsage().rss;
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
