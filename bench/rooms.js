'use strict';
// What per-room subscriptions save: Redis's outbound bytes on a workload of many rooms.
//
// A private redis-server (a free loopback port, so nothing else's traffic is counted) serves
// four socket.io nodes in this process; each node has BENCH_ROOMS / 4 rooms with one client
// each. Node 0 broadcasts BENCH_ROOM_MSGS messages of ~100 B, each to one room (round robin over
// all rooms, so three quarters live on other nodes). Redis's `total_net_output_bytes` is read
// before and after, for: the official adapter (PSUBSCRIBE), ours with the same pattern, ours
// with `perRoomSubscriptions`. Every message must reach its room's client; the table is
// printed and appended to bench/RESULTS.md. Usage: node bench/rooms.js (run by bench/run.sh).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Server } = require('socket.io');
const { createClient } = require('redis');
const { privateRedis } = require('../test/helpers/private-redis');
const { io: connect } = require('socket.io-client');

const ROOMS = Math.max(4, Number(process.env.BENCH_ROOMS || 200));
const MESSAGES = Math.max(1, Number(process.env.BENCH_ROOM_MSGS || 5000));
const NODES = 4;
const RESULTS_FILE = path.join(__dirname, 'RESULTS.md');
const PAYLOAD = { user: 'alice', text: 'hello from the emitting node, how are you today?', seq: 42, ts: 1700000000000 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A throwaway redis-server on a loopback port (the tests' helper), and a client to read its INFO. */
async function startRedis() {
  const server = await privateRedis();
  const client = createClient({ url: server.url });
  await client.connect();
  return { url: server.url, client, stop: () => server.stop() };
}

async function outputBytes(client) {
  const info = await client.info('stats');
  return Number(/total_net_output_bytes:(\d+)/.exec(info)[1]);
}

/** An adapter factory of `mode` and a closer for the Redis clients it opened. */
async function adapterFor(mode, url, key) {
  if (mode === 'official') {
    const { createAdapter } = require('@socket.io/redis-adapter');
    const pub = createClient({ url });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    return { factory: createAdapter(pub, sub, { key }), close: () => Promise.allSettled([pub.close(), sub.close()]) };
  }
  const { createAdapter } = require(path.join(__dirname, '..', 'npm'));
  return { factory: createAdapter(url, { key, perRoomSubscriptions: mode === 'per-room' }), close: async () => {} };
}

/** One measurement: four nodes, ROOMS rooms, MESSAGES single-room broadcasts from node 0. */
async function measure(mode, redis) {
  const key = `bench-rooms-${mode}-${process.pid}`;
  const nodes = [];
  const clients = [];
  let received = 0;
  try {
    for (let n = 0; n < NODES; n++) {
      const adapter = await adapterFor(mode, redis.url, key);
      const io = new Server({ transports: ['websocket'] });
      io.adapter(adapter.factory);
      io.on('connection', (socket) => socket.join(socket.handshake.query.room));
      io.listen(0);
      nodes.push({ io, port: io.httpServer.address().port, adapter });
    }
    for (let r = 0; r < ROOMS; r++) {
      const node = nodes[r % NODES];
      const client = connect(`http://127.0.0.1:${node.port}`, { transports: ['websocket'], query: { room: `room-${r}` }, reconnection: false });
      client.on('m', () => received++);
      clients.push(client);
    }
    await Promise.all(clients.map((c) => (c.connected ? null : new Promise((resolve) => c.once('connect', resolve)))));
    // Every node sees every room before the measurement (joins and subscriptions settled).
    for (let tries = 0; ; tries++) {
      const rooms = await nodes[0].io.of('/').adapter.allRooms();
      if (rooms.size >= ROOMS + ROOMS * 1 /* socket-id rooms */) break;
      if (tries > 100) throw new Error(`only ${rooms.size} rooms visible after 10 s`);
      await sleep(100);
    }
    await sleep(200);
    const before = await outputBytes(redis.client);
    const started = Date.now();
    for (let i = 0; i < MESSAGES; i++) {
      nodes[0].io.to(`room-${i % ROOMS}`).emit('m', PAYLOAD);
      if (i % 500 === 499) await sleep(0);
    }
    let last = -1;
    let idleSince = Date.now();
    while (received < MESSAGES && Date.now() - idleSince < 3000) {
      await sleep(20);
      if (received !== last) {
        last = received;
        idleSince = Date.now();
      }
    }
    const seconds = (Date.now() - started) / 1000;
    await sleep(200); // let Redis finish sending what it counts
    const bytes = (await outputBytes(redis.client)) - before;
    return { mode, bytes, received, seconds };
  } finally {
    for (const c of clients) c.disconnect();
    for (const node of nodes) {
      await new Promise((resolve) => node.io.close(() => resolve()));
      await node.adapter.close();
    }
  }
}

const LABELS = {
  official: '@socket.io/redis-adapter (PSUBSCRIBE)',
  pattern: 'sioadapter, default (PSUBSCRIBE)',
  'per-room': 'sioadapter, `perRoomSubscriptions: true`',
};

async function main() {
  const redis = await startRedis();
  const results = [];
  try {
    for (const mode of ['official', 'pattern', 'per-room']) {
      process.stderr.write(`rooms: ${mode}...\n`);
      results.push(await measure(mode, redis));
    }
  } finally {
    await redis.client.close().catch(() => {});
    await redis.stop();
  }
  const base = results[0].bytes;
  const lines = [
    '',
    '## Per-room subscriptions: Redis outbound bytes',
    '',
    `- command: \`bash bench/run.sh\` (this part: \`node bench/rooms.js\`), ${new Date().toISOString()}, ${os.cpus().length} cores`,
    `- ${NODES} nodes on a private redis-server, ${ROOMS} rooms with one client each (spread evenly), ${MESSAGES} single-room broadcasts of ~100 B from node 0, round robin over the rooms (BENCH_ROOMS, BENCH_ROOM_MSGS)`,
    '- bytes: the delta of Redis `INFO stats` `total_net_output_bytes` over the broadcasts (everything Redis sent to every client)',
    '',
    '| subscriptions | Redis output bytes | per broadcast | vs official | delivered |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map(
      (r) => `| ${LABELS[r.mode]} | ${r.bytes.toLocaleString('en-US')} | ${Math.round(r.bytes / MESSAGES)} | ${(r.bytes / base).toFixed(2)}× | ${r.received} / ${MESSAGES} |`,
    ),
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  if (process.env.BENCH_ROOMS_APPEND !== '0') fs.appendFileSync(RESULTS_FILE, `${text}\n`);
  const lost = results.filter((r) => r.received < MESSAGES);
  if (lost.length) {
    process.stderr.write(`rooms: messages lost in ${lost.map((r) => r.mode).join(', ')}\n`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
