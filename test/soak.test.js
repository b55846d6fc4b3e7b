'use strict';
// Soak and size limits of ours, each suite against a PRIVATE redis-server it starts itself
// (helpers/private-redis.js), nodes with `redisClients: false` (the adapter's own two connections
// are the node's only Redis connections).
//
// 1. Soak: 3 ours nodes, 4 clients on each (in no room, r1, r2, r1+r2), for SIO_SOAK_SECONDS
//    (default 60): every node broadcasts every BROADCAST_INTERVAL_MS (io.emit, to r1, to r2,
//    to [r1, r2], to r1 except r2; a per-node sequence number in each) and issues a request every
//    REQUEST_INTERVAL_MS (fetchSockets, allRooms, serverSideEmitWithAck in turn; several may be in
//    flight). Asserted: every broadcast reaches exactly its intended clients exactly once (after an
//    ordering barrier, see cluster.js flush), every request resolves with the right answer, the
//    pending tables are empty at the end, the RSS of each node grows by at most RSS_BOUND_MIB and
//    its fd count by at most FD_BOUND between a warm-up sample (after WARMUP_MS) and the end, and
//    Redis CLIENT LIST shows exactly 2 connections per node (attributed by local port), 6 + our
//    raw client, the same connections at warm-up and at the end.
// 2. Large payloads: 8 MiB+ string, Buffer, and both in one broadcast, from node A to a client on
//    node B (and A's own client), intact (length and sha256).
// 3. 10,000 rooms: a socket on B joins room-0..room-9999; A broadcasts to 200 random ones,
//    fetchSockets in room-9999 and allRooms.
//
// No fixed sleeps for correctness: waits are on conditions; sleeps only pace the load and the RSS
// sampling. Run: node --test test/soak.test.js (from the repository root); SIO_SOAK_SECONDS=20
// for a shorter soak.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');

const { uniqueKey, startServers, redisClient, waitUntil, stopAll } = require('./helpers/cluster');
const { privateRedis, stopAllRedis, oursNodeWith } = require('./helpers/private-redis');

const SOAK_COMMANDS = path.join(__dirname, 'helpers', 'soak-commands.js');
const SOAK_SECONDS = Number(process.env.SIO_SOAK_SECONDS || 60);
if (!(SOAK_SECONDS > 0)) throw new Error(`bad SIO_SOAK_SECONDS: ${process.env.SIO_SOAK_SECONDS}`);
const SOAK_MS = SOAK_SECONDS * 1000;
/** When the warm-up sample (RSS, fds, CLIENT LIST) is taken: ~10 s, earlier for a short soak. */
const WARMUP_MS = Math.min(10000, SOAK_MS / 2);
const RSS_BOUND_MIB = 40;
const FD_BOUND = 5;
/** Per node. */
const BROADCAST_INTERVAL_MS = 20;
const REQUEST_INTERVAL_MS = 100;
const MAX_INFLIGHT_REQUESTS = 8;
const SAMPLE_INTERVAL_MS = 2000;
const REQ_TIMEOUT = 5000;
const MiB = 1024 * 1024;
const BIG = 8 * MiB + 123;
const ROOM_COUNT = 10000;
const ROOM_SAMPLE = 200;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes) => (bytes / MiB).toFixed(1);
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

/** Settings of an ours node on `redisUrl` that opens no Redis client besides the adapter's. */
const oursNode = oursNodeWith({ commandModules: SOAK_COMMANDS, requestsTimeout: REQ_TIMEOUT });

/** CLIENT LIST as [{ id, addr, name, cmd, sub, psub, ... }]. */
async function clientList(client) {
  const text = await client.sendCommand(['CLIENT', 'LIST']);
  return String(text).trim().split('\n').filter(Boolean).map((line) =>
    Object.fromEntries(line.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
}

const describeClients = (list) => list.map((c) => `id=${c.id} addr=${c.addr} cmd=${c.cmd} sub=${c.sub} psub=${c.psub}`).join('; ') || 'none';

/** Health of the nodes: alive, no uncaught error, no adapter 'error' event. */
function assertHealthy(nodes) {
  for (const node of nodes) {
    assert.ok(node.alive, `${node.label} exited: ${node.describeState()}`);
    assert.deepEqual(node.uncaught, [], `${node.label}: ${node.describeState()}`);
    const errors = node.adapterEvents.filter((e) => e.event === 'error');
    assert.deepEqual(errors, [], `${node.label}: adapter 'error' events: ${JSON.stringify(errors)}`);
  }
}

/** The adapter's pending tables and counters of every node must be clean. */
async function assertPendingEmpty(t, nodes) {
  for (const node of nodes) {
    const p = await node.command('pending', {});
    t.diagnostic(`${node.label}: pending ${JSON.stringify(p)}`);
    assert.ok(p.stats, `${node.label}: adapter has no stats(): ${JSON.stringify(p)}`);
    assert.equal(p.stats.pendingRequests, 0, `${node.label}: pendingRequests ${JSON.stringify(p)}`);
    assert.equal(p.stats.pendingAcks, 0, `${node.label}: pendingAcks ${JSON.stringify(p)}`);
    assert.equal(p.stats.dropped, 0, `${node.label}: messages dropped (receive buffer full) ${JSON.stringify(p)}`);
    assert.equal(p.stats.malformed, 0, `${node.label}: malformed messages ${JSON.stringify(p)}`);
    if (p.requests !== null) assert.equal(p.requests, 0, `${node.label}: requests table ${JSON.stringify(p)}`);
    if (p.ackRequests !== null) assert.equal(p.ackRequests, 0, `${node.label}: ackRequests table ${JSON.stringify(p)}`);
  }
}

// -------------------------------------------------------------------------------------------------
// 1. Soak

const ROOM_SETS = [[], ['r1'], ['r2'], ['r1', 'r2']];
const TARGETS = [
  { name: 'all' },
  { name: 'to r1', to: 'r1' },
  { name: 'to r2', to: 'r2' },
  { name: 'to [r1,r2]', to: ['r1', 'r2'] },
  { name: 'to r1 except r2', to: 'r1', except: 'r2' },
];
const REQUEST_KINDS = ['fetchSockets', 'allRooms', 'serverSideEmitWithAck'];
const asList = (x) => (x === undefined ? undefined : [].concat(x));
/** Whether a socket in `rooms` is meant to get a broadcast with `target`. */
function intended(rooms, target) {
  const to = asList(target.to);
  const except = asList(target.except);
  if (to && !to.some((r) => rooms.includes(r))) return false;
  if (except && except.some((r) => rooms.includes(r))) return false;
  return true;
}

describe(`soak: 3 ours nodes for ${SOAK_SECONDS} s of broadcasts and requests`, { timeout: SOAK_MS + 90000 }, () => {
  const key = uniqueKey();
  let redis;
  let raw; // our own connection to the private Redis
  let rawId;
  let nodes;
  const clients = []; // { client, node: index, rooms }
  let soak = null; // the figures of the run, for the later steps

  before(async () => {
    redis = await privateRedis();
    nodes = await startServers(['A', 'B', 'C'].map((l) => oursNode(redis.url, l)), { key });
    for (const [n, node] of nodes.entries()) {
      await node.command('onQuietAck', { event: 'soak-sse', reply: node.label });
      for (const rooms of ROOM_SETS) {
        const client = await node.connect('/');
        if (rooms.length) await node.command('join', { socketId: client.serverSocketId, rooms });
        const got = new Map(); // `${node}:${seq}` → times received
        client.socket.on('soak', (m) => {
          const k = `${m.n}:${m.s}`;
          got.set(k, (got.get(k) || 0) + 1);
        });
        clients.push({ client, node: n, rooms, got });
      }
    }
    raw = await redisClient(redis.url);
    rawId = String(await raw.sendCommand(['CLIENT', 'ID']));
    // The mesh probes of startServers are gone once every node sees exactly our 12 sockets.
    const ids = clients.map((c) => c.client.serverSocketId).sort();
    for (const node of nodes) {
      await waitUntil(async () => {
        const res = await node.command('fetchSockets', {});
        return res.ok && JSON.stringify(res.value.map((s) => s.id).sort()) === JSON.stringify(ids);
      }, { timeoutMs: 10000, intervalMs: 50, what: `${node.label}: fetchSockets sees exactly the 12 soak clients` });
    }
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  /** Per node: RSS, fds and its Redis connections (local ports matched against CLIENT LIST). */
  async function sample() {
    const [stats, list] = await Promise.all([
      Promise.all(nodes.map((node) => node.command('procStats', { redisPort: redis.port }))),
      clientList(raw),
    ]);
    return { at: Date.now(), stats, list };
  }

  it(`every broadcast reaches exactly its intended clients once and every request completes (${1000 / BROADCAST_INTERVAL_MS} broadcasts/s and ${1000 / REQUEST_INTERVAL_MS} requests/s per node)`, async (t) => {
    const socketIds = clients.map((c) => c.client.serverSocketId).sort();
    const expectedRooms = [...socketIds, 'r1', 'r2'].sort();
    const labels = nodes.map((n) => n.label);
    const sent = []; // { n, s, target }
    const broadcastFailures = [];
    const requestFailures = [];
    const requests = Object.fromEntries(REQUEST_KINDS.map((k) => [k, { ok: 0, failed: 0, sumMs: 0, maxMs: 0 }]));
    const sseSent = nodes.map(() => 0);
    let requestsSkipped = 0;
    const samples = [];
    let warm = null;

    const start = Date.now();
    const endAt = start + SOAK_MS;

    async function request(node, n, kind, r) {
      const cmdTimeout = REQ_TIMEOUT + 10000;
      let res;
      let problem = null;
      try {
        if (kind === 'fetchSockets') {
          res = await node.command('fetchSockets', {}, cmdTimeout);
          if (res.ok) {
            const got = res.value.map((s) => s.id).sort();
            if (JSON.stringify(got) !== JSON.stringify(socketIds)) problem = `got sockets ${JSON.stringify(got)}`;
          }
        } else if (kind === 'allRooms') {
          res = await node.command('allRooms', {}, cmdTimeout);
          if (res.ok && JSON.stringify(res.value) !== JSON.stringify(expectedRooms)) problem = `got rooms ${JSON.stringify(res.value)}`;
        } else {
          sseSent[n]++;
          res = await node.command('serverSideEmit', { event: 'soak-sse', args: [{ n, r }], mode: 'promise' }, cmdTimeout);
          const want = labels.filter((l) => l !== node.label).sort();
          if (res.ok && JSON.stringify([...res.value].sort()) !== JSON.stringify(want)) problem = `got responses ${JSON.stringify(res.value)}`;
        }
        if (!res.ok) problem = `rejected after ${Math.round(res.ms)} ms: ${JSON.stringify(res.error)}`;
      } catch (err) {
        problem = `command failed: ${err.message}`;
      }
      const stat = requests[kind];
      if (problem) {
        stat.failed++;
        requestFailures.push(`${node.label} ${kind} #${r} at +${Date.now() - start} ms: ${problem}`);
      } else {
        stat.ok++;
        stat.sumMs += res.ms;
        stat.maxMs = Math.max(stat.maxMs, res.ms);
      }
    }

    async function load(node, n) {
      const inflight = new Set();
      const nodeStart = Date.now();
      let k = 0;
      let r = 0;
      let nextRequestAt = nodeStart + (n * REQUEST_INTERVAL_MS) / nodes.length;
      let seq = 0;
      while (Date.now() < endAt) {
        const target = TARGETS[k % TARGETS.length];
        const s = ++seq;
        try {
          await node.command('emit', { event: 'soak', to: target.to, except: target.except, args: [{ n, s }] });
          sent.push({ n, s, target });
        } catch (err) {
          broadcastFailures.push(`${node.label} broadcast #${s} (${target.name}): ${err.message}`);
        }
        k++;
        if (Date.now() >= nextRequestAt) {
          nextRequestAt += REQUEST_INTERVAL_MS;
          if (inflight.size >= MAX_INFLIGHT_REQUESTS) {
            requestsSkipped++;
          } else {
            const kind = REQUEST_KINDS[(r + n) % REQUEST_KINDS.length];
            const p = request(node, n, kind, ++r).finally(() => inflight.delete(p));
            inflight.add(p);
          }
        }
        const wait = nodeStart + k * BROADCAST_INTERVAL_MS - Date.now();
        if (wait > 0) await sleep(wait);
      }
      await Promise.all(inflight);
    }

    async function sampler() {
      await sleep(Math.max(0, start + WARMUP_MS - Date.now()));
      warm = await sample();
      samples.push(warm);
      while (Date.now() + SAMPLE_INTERVAL_MS < endAt) {
        await sleep(SAMPLE_INTERVAL_MS);
        samples.push(await sample());
      }
    }

    await Promise.all([...nodes.map((node, n) => load(node, n)), sampler()]);
    const loadMs = Date.now() - start;

    // Ordering barrier from every node: what they broadcast is delivered now or never.
    const all = clients.map((c) => c.client);
    for (const node of nodes) await node.flush(all, 15000);

    // Delivery, per client.
    let expectedDeliveries = 0;
    let delivered = 0;
    const deliveryProblems = [];
    for (const c of clients) {
      const want = new Set(sent.filter((m) => intended(c.rooms, m.target)).map((m) => `${m.n}:${m.s}`));
      expectedDeliveries += want.size;
      const missing = [...want].filter((k) => !c.got.has(k));
      const dups = [...c.got].filter(([, times]) => times > 1);
      const unexpected = [...c.got.keys()].filter((k) => !want.has(k));
      for (const times of c.got.values()) delivered += times;
      if (missing.length || dups.length || unexpected.length) {
        deliveryProblems.push(`client on ${nodes[c.node].label} in [${c.rooms}]: ${missing.length} missing (first ${missing.slice(0, 5)}), ` +
          `${dups.length} duplicated (first ${JSON.stringify(dups.slice(0, 5))}), ${unexpected.length} unexpected (first ${unexpected.slice(0, 5)})`);
      }
    }
    const sseReceived = (await Promise.all(nodes.map((node) => node.command('quietCounts', {})))).map((q) => q['soak-sse']);
    const end = await sample();
    const engine = await Promise.all(nodes.map((node) => node.command('pending', {})));
    soak = { warm, end, samples, loadMs };

    const perNode = nodes.map((node, n) => `${node.label} ${sent.filter((m) => m.n === n).length}`).join(', ');
    t.diagnostic(`load ran ${loadMs} ms; broadcasts sent: ${sent.length} (${perNode}); deliveries expected ${expectedDeliveries}, received ${delivered}`);
    for (const [kind, s] of Object.entries(requests)) {
      t.diagnostic(`${kind}: ${s.ok} ok, ${s.failed} failed; avg ${(s.sumMs / Math.max(1, s.ok)).toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms`);
    }
    t.diagnostic(`requests skipped because ${MAX_INFLIGHT_REQUESTS} were in flight on the node: ${requestsSkipped}`);
    t.diagnostic(`serverSideEmit calls received per node: ${nodes.map((node, n) => `${node.label} ${sseReceived[n]}`).join(', ')}`);
    t.diagnostic(`engine stats: ${nodes.map((node, n) => `${node.label} ${JSON.stringify(engine[n].stats)}`).join('; ')}`);

    assert.deepEqual(broadcastFailures, [], 'broadcast commands failed');
    assert.deepEqual(deliveryProblems, [], 'broadcast delivery');
    assert.equal(expectedDeliveries, delivered);
    assert.deepEqual(requestFailures.slice(0, 20), [], `${requestFailures.length} request(s) failed`);
    // Each node's listener got every serverSideEmit of the two others.
    for (const [n, node] of nodes.entries()) {
      const want = sseSent.reduce((sum, count, m) => (m === n ? sum : sum + count), 0);
      assert.equal(sseReceived[n], want, `${node.label}: serverSideEmit calls received`);
    }
    assert.ok(sent.length > 0 && Object.values(requests).every((s) => s.ok > 0), 'some load ran');
    assert.ok(warm, 'the warm-up sample was taken');
    assertHealthy(nodes);
  });

  it('the pending tables are empty at the end (stats().pendingRequests === 0, nothing dropped)', async (t) => {
    assert.ok(soak, 'needs the soak step');
    await assertPendingEmpty(t, nodes);
  });

  it(`RSS grows by at most ${RSS_BOUND_MIB} MiB and open fds by at most ${FD_BOUND} per node between the warm-up sample (+${WARMUP_MS / 1000} s) and the end`, (t) => {
    assert.ok(soak && soak.warm, 'needs the soak step');
    const { warm, end, samples } = soak;
    const problems = [];
    for (const [n, node] of nodes.entries()) {
      const w = warm.stats[n];
      const e = end.stats[n];
      const maxRss = Math.max(...samples.map((s) => s.stats[n].rss), e.rss);
      const fdSeries = [...samples.map((s) => s.stats[n].fds), e.fds];
      t.diagnostic(`${node.label}: RSS ${mib(w.rss)} → ${mib(e.rss)} MiB (${e.rss >= w.rss ? '+' : ''}${mib(e.rss - w.rss)}; max sampled ${mib(maxRss)}), ` +
        `heapUsed ${mib(w.heapUsed)} → ${mib(e.heapUsed)} MiB, fds ${w.fds} → ${e.fds} (range ${Math.min(...fdSeries)}..${Math.max(...fdSeries)})`);
      if (e.rss - w.rss > RSS_BOUND_MIB * MiB) problems.push(`${node.label}: RSS grew by ${mib(e.rss - w.rss)} MiB (${mib(w.rss)} → ${mib(e.rss)})`);
      if (e.fds - w.fds > FD_BOUND) problems.push(`${node.label}: fds grew by ${e.fds - w.fds} (${w.fds} → ${e.fds})`);
    }
    t.diagnostic(`RSS series (MiB): ${nodes.map((node, n) => `${node.label} [${[...samples, end].map((s) => mib(s.stats[n].rss)).join(' ')}]`).join('; ')}`);
    assert.deepEqual(problems, []);
  });

  it('Redis CLIENT LIST: exactly 2 connections per node (6) + our raw client, the same ones at warm-up and at the end', (t) => {
    assert.ok(soak && soak.warm, 'needs the soak step');
    const problems = [];
    const idsOf = {};
    for (const [when, s] of [['warm-up', soak.warm], ['end', soak.end]]) {
      const byAddr = new Map(s.list.map((c) => [c.addr, c]));
      const attributed = new Set([rawId]);
      idsOf[when] = [];
      for (const [n, node] of nodes.entries()) {
        const ports = s.stats[n].redisLocalPorts;
        const mine = ports.map((p) => byAddr.get(`127.0.0.1:${p}`)).filter(Boolean);
        t.diagnostic(`${when}: ${node.label} holds ${ports.length} connection(s) to Redis (local ports ${ports.join(', ')}): ${describeClients(mine)}`);
        if (ports.length !== 2) problems.push(`${when}: ${node.label} holds ${ports.length} connections to Redis (local ports ${ports.join(', ')})`);
        if (mine.length !== ports.length) problems.push(`${when}: ${node.label}: only ${mine.length} of its ports in CLIENT LIST`);
        for (const c of mine) {
          attributed.add(c.id);
          idsOf[when].push(`${node.label}:${c.id}`);
        }
      }
      const others = s.list.filter((c) => !attributed.has(c.id));
      t.diagnostic(`${when}: CLIENT LIST has ${s.list.length} connections (ours: our raw client id=${rawId})`);
      if (s.list.length !== nodes.length * 2 + 1) problems.push(`${when}: CLIENT LIST has ${s.list.length} connections, expected ${nodes.length * 2 + 1}: ${describeClients(s.list)}`);
      if (others.length) problems.push(`${when}: connections of nobody known: ${describeClients(others)}`);
    }
    if (JSON.stringify(idsOf['warm-up'].sort()) !== JSON.stringify(idsOf.end.sort())) {
      problems.push(`the nodes' connections changed between warm-up and end: ${idsOf['warm-up']} → ${idsOf.end}`);
    }
    assert.deepEqual(problems, []);
  });

  it('no node exited, threw or reported an adapter error', () => {
    assertHealthy(nodes);
  });
});

// -------------------------------------------------------------------------------------------------
// 2. Large payloads

describe(`large payloads (${BIG} bytes) from ours node A to a client on ours node B`, { timeout: 90000 }, () => {
  const key = uniqueKey();
  let A;
  let B;
  let a;
  let b;
  const arrivals = new Map(); // `${client tag}:${event}` → [{ at, args }]

  before(async () => {
    const redis = await privateRedis();
    // Two 8 MiB arguments make a message just over the default maxMessageBytes (16 MiB), which
    // would be refused (test/limits.test.js checks that): this suite raises it on both nodes.
    const limits = { maxMessageBytes: 64 * 1024 * 1024 };
    [A, B] = await startServers([oursNode(redis.url, 'A', limits), oursNode(redis.url, 'B', limits)], { key });
    a = await A.connect('/');
    b = await B.connect('/');
    for (const c of [a, b]) {
      c.socket.onAny((event, ...args) => {
        const k = `${c.tag}:${event}`;
        if (!arrivals.has(k)) arrivals.set(k, []);
        arrivals.get(k).push({ at: Date.now(), args });
      });
    }
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  /** What a client received, described like emitLarge describes what was sent. */
  function describeReceived(args) {
    return args.map((v) => {
      if (typeof v === 'string') return { kind: 'string', length: v.length, bytes: Buffer.byteLength(v), sha256: sha256(v) };
      const buf = Buffer.isBuffer(v) ? v : ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v instanceof ArrayBuffer ? Buffer.from(v) : null;
      if (!buf) return { kind: typeof v, value: String(v).slice(0, 100) };
      return { kind: 'buffer', length: buf.length, bytes: buf.length, sha256: sha256(buf) };
    });
  }

  for (const kinds of [['string'], ['buffer'], ['string', 'buffer']]) {
    const event = `big-${kinds.join('-')}`;
    it(`a ${kinds.join(' + ')} broadcast (${kinds.length * BIG} bytes) arrives intact at B's client (and A's), once`, async (t) => {
      const res = await A.command('emitLarge', { event, kinds, bytes: BIG }, 30000);
      await Promise.all([b.waitForEvent(event, 1, 30000), a.waitForEvent(event, 1, 30000)]);
      await A.flush([a, b], 15000);
      for (const [c, where] of [[b, 'B'], [a, 'A']]) {
        const got = arrivals.get(`${c.tag}:${event}`);
        assert.equal(got.length, 1, `client on ${where} got "${event}" ${got.length} times`);
        t.diagnostic(`client on ${where}: arrived ${got[0].at - res.emittedAt} ms after emit (generation ${res.genMs.toFixed(0)} ms, emit call ${res.emitMs.toFixed(1)} ms)`);
        assert.deepEqual(describeReceived(got[0].args), res.args, `payload at the client on ${where}`);
      }
      t.diagnostic(`sent: ${JSON.stringify(res.args)}`);
      assertHealthy([A, B]);
    });
  }

  it('nothing pending or dropped afterwards', async (t) => {
    await assertPendingEmpty(t, [A, B]);
  });
});

// -------------------------------------------------------------------------------------------------
// 3. 10,000 rooms

describe(`${ROOM_COUNT} rooms: a socket on ours node B in all of them, requests and broadcasts from ours node A`, { timeout: 90000 }, () => {
  const key = uniqueKey();
  let A;
  let B;
  let a; // on A, in no room
  let b; // on B, in room-0..room-9999
  let b2; // on B, in no room

  before(async () => {
    const redis = await privateRedis();
    // Two 8 MiB arguments make a message just over the default maxMessageBytes (16 MiB), which
    // would be refused (test/limits.test.js checks that): this suite raises it on both nodes.
    const limits = { maxMessageBytes: 64 * 1024 * 1024 };
    [A, B] = await startServers([oursNode(redis.url, 'A', limits), oursNode(redis.url, 'B', limits)], { key });
    a = await A.connect('/');
    b = await B.connect('/');
    b2 = await B.connect('/');
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  it(`the socket on B joins ${ROOM_COUNT} rooms in one call`, async (t) => {
    const res = await B.command('joinRange', { socketId: b.serverSocketId, prefix: 'room-', count: ROOM_COUNT }, 30000);
    t.diagnostic(`socket.join of ${ROOM_COUNT} rooms took ${res.ms.toFixed(1)} ms; the socket is in ${res.rooms} rooms`);
    assert.equal(res.rooms, ROOM_COUNT + 1);
  });

  it(`io.to(room-i).emit from A for ${ROOM_SAMPLE} random rooms: each arrives exactly once at that socket, nowhere else`, async (t) => {
    const sample = new Set();
    while (sample.size < ROOM_SAMPLE) sample.add(crypto.randomInt(ROOM_COUNT));
    const indices = [...sample];
    const start = Date.now();
    for (const i of indices) await A.command('emit', { to: `room-${i}`, event: 'tenk', args: [i] });
    const emitted = Date.now();
    await b.waitForEvent('tenk', ROOM_SAMPLE, 20000);
    const arrived = Date.now();
    await A.flush([a, b, b2], 15000);
    t.diagnostic(`${ROOM_SAMPLE} emits issued in ${emitted - start} ms; all arrived ${arrived - start} ms after the first`);
    assert.deepEqual(b.received('tenk').map((args) => args[0]).sort((x, y) => x - y), indices.sort((x, y) => x - y));
    assert.equal(a.received('tenk').length, 0, 'client on A (no room) got room broadcasts');
    assert.equal(b2.received('tenk').length, 0, 'other client on B (no room) got room broadcasts');
  });

  it("io.in('room-9999').fetchSockets() from A returns exactly that socket with its 10,001 rooms", async (t) => {
    const res = await A.command('fetchSockets', { in: `room-${ROOM_COUNT - 1}` }, 30000);
    assert.equal(res.ok, true, `fetchSockets: ${JSON.stringify(res.error)}`);
    t.diagnostic(`fetchSockets in room-${ROOM_COUNT - 1} took ${res.ms.toFixed(1)} ms`);
    assert.deepEqual(res.value.map((s) => s.id), [b.serverSocketId]);
    const rooms = new Set(res.value[0].rooms);
    assert.equal(rooms.size, ROOM_COUNT + 1);
    for (let i = 0; i < ROOM_COUNT; i++) assert.ok(rooms.has(`room-${i}`), `room-${i} missing from the socket's rooms`);
    assert.ok(rooms.has(b.serverSocketId));
  });

  it(`allRooms() from A includes all ${ROOM_COUNT} rooms and the socket ids`, async (t) => {
    const res = await A.command('allRooms', {}, 30000);
    assert.equal(res.ok, true, `allRooms: ${JSON.stringify(res.error)}`);
    const rooms = new Set(res.value);
    t.diagnostic(`allRooms took ${res.ms.toFixed(1)} ms and returned ${rooms.size} rooms`);
    const missing = [];
    for (let i = 0; i < ROOM_COUNT; i++) if (!rooms.has(`room-${i}`)) missing.push(`room-${i}`);
    for (const c of [a, b, b2]) if (!rooms.has(c.serverSocketId)) missing.push(c.serverSocketId);
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} missing`);
  });

  it('nothing pending, no node exited, threw or reported an adapter error', async (t) => {
    await assertPendingEmpty(t, [A, B]);
    assertHealthy([A, B]);
  });
});
