'use strict';
// The configurable limits of ours (issue "bounds in bytes, all configurable, all reported"), on the
// shared Redis with a unique key per suite, socket.io servers as child processes, ours next to the
// official adapter:
//
// (a) Option validation, in-process: each of maxMessageBytes, maxMessageValues, maxMessageDepth,
//     maxReceiveBufferBytes, maxQueuedPublishes, maxQueuedBytes rejects 0, -1, 1.5, "10" and NaN
//     (maxMessageDepth also 1025) with a synchronous TypeError, code ERR_SIO_OPTION, naming the
//     option, from createAdapter and from createShardedAdapter; valid values (1, ceilings, large
//     values) are accepted. A sharded adapter on the shared (standalone, Redis >= 7) server with
//     small limits: its stats() shape, and SPUBLISHed too large / too complex messages counted
//     and reported.
// (b) A official, B ours with maxMessageBytes 4096 / maxMessageValues 200 / maxMessageDepth 8,
//     C ours with the defaults, one key, one client each (a, b, c). A broadcasts a 10 KB string,
//     an array of 500 numbers, an array nested 20 deep and a small message: b gets only the small
//     one, c all four (exact payloads); B's stats: tooLarge 1, tooComplex 2, malformed 0; B emits
//     one 'error' ERR_SIO_TOO_LARGE and ONE ERR_SIO_TOO_COMPLEX (the second too complex message
//     came within the second); more than a second later a socketsJoin of 300 rooms from A is
//     dropped by B (tooComplex 3, 'error' "dropped 2 too complex messages") and applied by C.
// (c) B's own 10 KB broadcast: 'error' ERR_SIO_TOO_LARGE before io.emit returns, tooLarge +1,
//     not published (a and c get nothing, after a barrier), delivered to b (local delivery).
// (d) The publish queue in bytes: D (ours, maxQueuedBytes 100000) reaches Redis through a TCP gate
//     (helpers/gate-proxy.js) that the test closes (connections refused) while E (ours) and F
//     (official) stay on Redis directly. With D's link down, 20 broadcasts of 10 KB in one loop:
//     the first k fit (k * size <= 100000 < (k + 1) * size, 8 <= k <= 10), each later one emits
//     'error' ERR_SIO_OVERLOADED; stats().redis: pending k, pendingBytes <= 100000, dropped +20-k.
//     Gate reopened: D 'ready', and e and f get exactly broadcasts 0..k-1, in order, once each.
// (e) The receive buffer: B2 (ours, maxReceiveBufferBytes 1 MiB) blocks its event loop for 2 s
//     (busy loop) while P (official) publishes 200 broadcasts of 20 KB: B2's stats().dropped > 0,
//     b2 got the 200 - dropped others in order, B2 emitted 'error' ERR_SIO_OVERLOADED; C2 (ours,
//     defaults) got all 200.
//
// Commands in helpers/limits-commands.js (`stats`, `busyWait`, `emitMany`).
// Run: node --test test/limits.test.js (from the repository root).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { uniqueKey, startServers, waitUntil, redisClient, stopAll } = require('./helpers/cluster');
const { gate, closeAllGates } = require('./helpers/gate-proxy');
const { adapterEventHelpers, isRedisError, isReady } = require('./helpers/adapter-events');

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
const COMMANDS = path.join(__dirname, 'helpers', 'limits-commands.js');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const MiB = 1024 * 1024;
const LIMIT_OPTIONS = ['maxMessageBytes', 'maxMessageValues', 'maxMessageDepth', 'maxReceiveBufferBytes', 'maxQueuedPublishes', 'maxQueuedBytes'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);
const { eventLog, findEvent, waitForAdapterEvent } = adapterEventHelpers({ timeoutMs: 15000 });

after(async () => {
  try {
    await stopAll();
  } finally {
    await closeAllGates();
  }
});

/** Server spec of an ours node: the adapter gets the URL, its events are reported, namespace '/' only. */
function ours(label, extra = {}) {
  return { label, adapter: 'ours', redisUrl: REDIS_URL, redisClients: false, adapterEvents: true, namespaces: ['/'], commandModules: [COMMANDS], ...extra };
}

/** Server spec of an official node (node-redis clients), namespace '/' only. */
function official(label) {
  return { label, adapter: 'official', client: 'node-redis', namespaces: ['/'], commandModules: [COMMANDS] };
}

/** The adapter 'error' events of `node` with `code` since event index `from`. */
function errorsSince(node, from, code) {
  return node.adapterEvents.slice(from).filter((e) => e.event === 'error' && e.error && e.error.code === code);
}

/** Waits until `node` reported `n` adapter 'error' events with `code` since `from`; then, after an IPC round trip, returns them all. */
async function waitErrors(node, from, code, n = 1, timeoutMs = 5000) {
  try {
    await node.waitForMessages('adapterEvent', () => errorsSince(node, from, code).length >= n, timeoutMs, `${n} adapter 'error' ${code}`);
  } catch (err) {
    assert.fail(`${err.message}\n${eventLog(node, from)}`);
  }
  await node.command('ping'); // anything the node reported before this reply has arrived
  return errorsSince(node, from, code);
}

/** An array nested `depth` deep around 'core'. */
function nested(depth) {
  let value = ['core'];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

const STATS_KEYS = ['published', 'delivered', 'malformed', 'tooLarge', 'tooComplex', 'skipped', 'pendingRequests', 'pendingAcks', 'dropped'];
const REDIS_STATS_KEYS = ['published', 'dropped', 'received', 'pending', 'unconfirmed', 'pendingBytes'];

function assertStatsShape(st, keys, label) {
  assert.ok(st && typeof st === 'object', `${label}: stats() returned ${JSON.stringify(st)}`);
  for (const k of keys) assert.equal(typeof st[k], 'number', `${label}: stats().${k} in ${JSON.stringify(st)}`);
  assert.ok(st.redis && typeof st.redis === 'object', `${label}: stats().redis in ${JSON.stringify(st)}`);
  for (const k of REDIS_STATS_KEYS) assert.equal(typeof st.redis[k], 'number', `${label}: stats().redis.${k} in ${JSON.stringify(st.redis)}`);
  assert.ok(['connecting', 'up', 'down', 'closed'].includes(st.redis.link), `${label}: stats().redis.link ${JSON.stringify(st.redis.link)}`);
}

// -------------------------------------------------------------------------------------------------
// (a) Option validation

describe('(a) limit options: ERR_SIO_OPTION for bad values, valid values accepted', () => {
  const { createAdapter, createShardedAdapter } = require(OURS_MODULE);
  const URL = 'redis://127.0.0.1:6379'; // never connected to: the factories are not called
  const FACTORIES = {
    createAdapter: (opts) => createAdapter(URL, undefined, opts),
    createShardedAdapter: (opts) => createShardedAdapter(URL, undefined, opts),
  };
  const BAD = [['0', 0], ['-1', -1], ['1.5', 1.5], ['"10"', '10'], ['NaN', NaN]];
  const VALID = {
    maxMessageBytes: [1, 4096, 2 ** 31, 2 ** 40],
    maxMessageValues: [1, 200, 10 ** 9],
    maxMessageDepth: [1, 8, 1024],
    maxReceiveBufferBytes: [1, MiB, 2 ** 40],
    maxQueuedPublishes: [1, 100000, 2 ** 32 - 1],
    maxQueuedBytes: [1, 100000, 2 ** 40],
  };

  for (const [factoryName, make] of Object.entries(FACTORIES)) {
    for (const option of LIMIT_OPTIONS) {
      const bad = option === 'maxMessageDepth' ? [...BAD, ['1025', 1025]] : BAD;
      it(`${factoryName}: ${option} rejects ${bad.map(([l]) => l).join(', ')}`, () => {
        const problems = [];
        for (const [label, value] of bad) {
          let thrown = null;
          try {
            make({ [option]: value });
          } catch (err) {
            thrown = err;
          }
          if (!thrown) {
            problems.push(`${option}: ${label} accepted`);
            continue;
          }
          if (!(thrown instanceof TypeError)) problems.push(`${option}: ${label}: ${thrown.name}, not a TypeError: ${thrown.message}`);
          if (thrown.code !== 'ERR_SIO_OPTION') problems.push(`${option}: ${label}: code ${JSON.stringify(thrown.code)}: ${thrown.message}`);
          if (!String(thrown.message).includes(option)) problems.push(`${option}: ${label}: the message does not name the option: ${thrown.message}`);
        }
        assert.deepEqual(problems, []);
      });
    }

    it(`${factoryName}: valid values are accepted (alone, and all six together)`, () => {
      const problems = [];
      for (const [option, values] of Object.entries(VALID)) {
        for (const value of values) {
          try {
            const factory = make({ [option]: value });
            if (typeof factory !== 'function') problems.push(`${option}: ${value}: returned ${typeof factory}`);
          } catch (err) {
            problems.push(`${option}: ${value}: threw [${err.code}] ${err.message}`);
          }
        }
      }
      try {
        make({ maxMessageBytes: 4096, maxMessageValues: 200, maxMessageDepth: 8, maxReceiveBufferBytes: MiB, maxQueuedPublishes: 10, maxQueuedBytes: 100000 });
      } catch (err) {
        problems.push(`all six: threw [${err.code}] ${err.message}`);
      }
      // An explicit `undefined` is "not given" (the default).
      try {
        make(Object.fromEntries(LIMIT_OPTIONS.map((o) => [o, undefined])));
      } catch (err) {
        problems.push(`all six undefined: threw [${err.code}] ${err.message}`);
      }
      assert.deepEqual(problems, []);
    });
  }

  it('createShardedAdapter on the shared standalone Redis (>= 7): stats() shape; too large and too complex SPUBLISHed messages counted and reported', { timeout: 30000 }, async (t) => {
    const raw = await redisClient(REDIS_URL);
    const version = String(await raw.sendCommand(['INFO', 'server'])).match(/redis_version:(\d+)/);
    if (!version || Number(version[1]) < 7) {
      t.skip(`sharded pub/sub needs Redis >= 7 (got ${version ? version[1] : '?'})`);
      return;
    }
    const { Server } = require('socket.io');
    const prefix = uniqueKey();
    const io = new Server(); // never attached to an HTTP server: only its adapter holds resources
    t.after(() => io.of('/').adapter.close());
    io.adapter(createShardedAdapter(REDIS_URL, undefined, { channelPrefix: prefix, subscriptionMode: 'static', maxMessageBytes: 4096, maxMessageValues: 200, maxMessageDepth: 8 }));
    const adapter = io.of('/').adapter;
    const errors = [];
    adapter.on('error', (err) => errors.push(err));
    const channel = `${prefix}#/#`;
    await waitUntil(async () => Number((await raw.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel]))[1]) >= 1, { timeoutMs: 10000, what: `a shard subscriber of ${channel}` });

    const st0 = adapter.stats();
    for (const k of ['malformed', 'tooLarge', 'tooComplex', 'dropped']) assert.equal(typeof st0[k], 'number', `sharded stats().${k} in ${JSON.stringify(st0)}`);
    for (const k of REDIS_STATS_KEYS) assert.equal(typeof st0.redis[k], 'number', `sharded stats().redis.${k} in ${JSON.stringify(st0.redis)}`);
    assert.deepEqual([st0.malformed, st0.tooLarge, st0.tooComplex, st0.dropped], [0, 0, 0, 0]);

    const message = (data) => JSON.stringify({ uid: 'other1', nsp: '/', type: 3, data: { packet: { type: 2, data: ['x', data], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } } });
    await raw.sendCommand(['SPUBLISH', channel, message('x'.repeat(10000))]);
    await raw.sendCommand(['SPUBLISH', channel, message(range(0, 500))]);
    await waitUntil(() => adapter.stats().tooLarge === 1 && adapter.stats().tooComplex === 1, { timeoutMs: 5000, what: `tooLarge 1 and tooComplex 1 (${JSON.stringify(adapter.stats())})` });
    await waitUntil(() => errors.length >= 2, { timeoutMs: 5000, what: `two 'error' events (${errors.map((e) => e.code).join(', ')})` });
    assert.deepEqual(errors.map((e) => e.code).sort(), ['ERR_SIO_TOO_COMPLEX', 'ERR_SIO_TOO_LARGE']);
    const st = adapter.stats();
    assert.equal(st.malformed, 0, JSON.stringify(st));
  });
});

// -------------------------------------------------------------------------------------------------
// (b), (c) Received and own messages over configured limits

describe('(b, c) A official, B ours with small limits, C ours with the defaults', { timeout: 60000 }, () => {
  const key = uniqueKey();
  const LIMITS = { maxMessageBytes: 4096, maxMessageValues: 200, maxMessageDepth: 8 };
  let A;
  let B;
  let C;
  let a;
  let b;
  let c;
  let complexReportAt; // when B reported its first ERR_SIO_TOO_COMPLEX

  before(async () => {
    [A, B, C] = await startServers([official('A'), ours('B', LIMITS), ours('C')], { key });
    [a, b, c] = await Promise.all([A.connect('/'), B.connect('/'), C.connect('/')]);
  });

  it('(b) broadcasts over B\'s limits: b gets only the small one, c all four; B counts tooLarge 1, tooComplex 2 and reports each kind once', async () => {
    const big = 'x'.repeat(10 * 1024);
    const many = range(0, 500);
    const deep = nested(20);
    const small = [{ n: 1, s: 'ok' }, 'small'];
    const mark = B.adapterEvents.length;
    const statsBefore = await B.command('stats');
    assertStatsShape(statsBefore, STATS_KEYS, 'B');
    assert.deepEqual([statsBefore.malformed, statsBefore.tooLarge, statsBefore.tooComplex, statsBefore.dropped], [0, 0, 0, 0], JSON.stringify(statsBefore));

    await A.command('emit', { event: 'too-large', args: [big] });
    await A.command('emit', { event: 'too-many', args: [many] });
    await A.command('emit', { event: 'too-deep', args: [deep] });
    await A.command('emit', { event: 'small', args: small });
    await A.flush([b, c]);

    assert.deepEqual(c.received('too-large'), [[big]], 'C (defaults) delivers the 10 KB string');
    assert.deepEqual(c.received('too-many'), [[many]], 'C (defaults) delivers the 500 numbers');
    assert.deepEqual(c.received('too-deep'), [[deep]], 'C (defaults) delivers the 20-deep array');
    assert.deepEqual(c.received('small'), [small]);
    assert.equal(b.received('too-large').length, 0, 'B delivered the 10 KB string (maxMessageBytes 4096)');
    assert.equal(b.received('too-many').length, 0, 'B delivered the 500 numbers (maxMessageValues 200)');
    assert.equal(b.received('too-deep').length, 0, 'B delivered the 20-deep array (maxMessageDepth 8)');
    assert.deepEqual(b.received('small'), [small]);

    const large = await waitErrors(B, mark, 'ERR_SIO_TOO_LARGE');
    const complex = await waitErrors(B, mark, 'ERR_SIO_TOO_COMPLEX');
    assert.equal(large.length, 1, eventLog(B, mark));
    assert.match(large[0].error.message, /^dropped 1 too large message: /);
    assert.match(large[0].error.message, /maxMessageBytes \(4096\)/);
    // The too deep one came within the second of the too many one: counted, reported later.
    assert.equal(complex.length, 1, `one report per second per kind\n${eventLog(B, mark)}`);
    assert.match(complex[0].error.message, /^dropped 1 too complex message: /);
    assert.match(complex[0].error.message, /200 values \(maxMessageValues\)/);
    assert.deepEqual(errorsSince(B, mark, 'ERR_SIO_MALFORMED'), [], eventLog(B, mark));
    complexReportAt = complex[0].at;

    const st = await B.command('stats');
    assert.deepEqual({ malformed: st.malformed, tooLarge: st.tooLarge, tooComplex: st.tooComplex, dropped: st.dropped }, { malformed: 0, tooLarge: 1, tooComplex: 2, dropped: 0 }, JSON.stringify(st));
    const stC = await C.command('stats');
    assertStatsShape(stC, STATS_KEYS, 'C');
    assert.deepEqual({ malformed: stC.malformed, tooLarge: stC.tooLarge, tooComplex: stC.tooComplex, dropped: stC.dropped }, { malformed: 0, tooLarge: 0, tooComplex: 0, dropped: 0 }, JSON.stringify(stC));
    assert.deepEqual(C.adapterEvents.filter((e) => e.event === 'error'), [], eventLog(C));
  });

  it('(b) a socketsJoin of 300 rooms from A, more than a second later: dropped by B ("dropped 2 too complex messages"), applied by C', async () => {
    assert.ok(complexReportAt, 'needs the previous step');
    await sleep(Math.max(0, complexReportAt + 1200 - Date.now()));
    const mark = B.adapterEvents.length;
    const rooms = range(0, 300).map((i) => `room-${i}`);
    await A.command('socketsJoin', { rooms });
    await A.command('socketsJoin', { rooms: ['join-barrier'] }); // same channel, after it
    const roomsOf = async (client) => (await client.server.command('localSockets')).find((s) => s.id === client.serverSocketId).rooms;
    await waitUntil(async () => (await roomsOf(b)).includes('join-barrier'), { what: 'B applies the barrier socketsJoin' });
    await waitUntil(async () => (await roomsOf(c)).includes('join-barrier'), { what: 'C applies the barrier socketsJoin' });

    const bRooms = (await roomsOf(b)).sort();
    assert.deepEqual(bRooms, [b.serverSocketId, 'join-barrier'].sort(), 'B applied the 300-room socketsJoin');
    const cRooms = new Set(await roomsOf(c));
    assert.deepEqual(rooms.filter((r) => !cRooms.has(r)), [], 'rooms C did not join');

    const complex = await waitErrors(B, mark, 'ERR_SIO_TOO_COMPLEX');
    assert.equal(complex.length, 1, eventLog(B, mark));
    // The too deep broadcast of the previous step (not reported then) and this request.
    assert.match(complex[0].error.message, /^dropped 2 too complex messages: /);
    const st = await B.command('stats');
    assert.deepEqual({ malformed: st.malformed, tooLarge: st.tooLarge, tooComplex: st.tooComplex }, { malformed: 0, tooLarge: 1, tooComplex: 3 }, JSON.stringify(st));
    const stC = await C.command('stats');
    assert.deepEqual({ malformed: stC.malformed, tooLarge: stC.tooLarge, tooComplex: stC.tooComplex }, { malformed: 0, tooLarge: 0, tooComplex: 0 }, JSON.stringify(stC));
  });

  it('(c) B\'s own 10 KB broadcast: \'error\' ERR_SIO_TOO_LARGE before io.emit returns, not published, delivered to b', async () => {
    const payload = 'y'.repeat(10000);
    const before = await B.command('stats');
    const mark = B.adapterEvents.length;
    await B.command('emit', { event: 'own-big', args: [payload] });
    // Synchronous: B sent the 'error' before the command's reply.
    const large = errorsSince(B, mark, 'ERR_SIO_TOO_LARGE');
    assert.equal(large.length, 1, `ERR_SIO_TOO_LARGE reported synchronously by io.emit\n${eventLog(B, mark)}`);
    assert.match(large[0].error.message, /^dropped 1 too large message: /);
    assert.match(large[0].error.message, /maxMessageBytes \(4096\)/);
    const mid = await B.command('stats');
    assert.equal(mid.tooLarge, before.tooLarge + 1, `tooLarge counts the own refused broadcast: ${JSON.stringify(before)} → ${JSON.stringify(mid)}`);
    assert.equal(mid.published, before.published, `published: ${JSON.stringify(before)} → ${JSON.stringify(mid)}`);
    assert.equal(mid.redis.dropped, before.redis.dropped, 'the publish queue never saw it');

    await B.flush([a, b, c]);
    assert.deepEqual(b.received('own-big'), [[payload]], 'local delivery on B');
    assert.equal(a.received('own-big').length, 0, 'A\'s client got B\'s too large broadcast');
    assert.equal(c.received('own-big').length, 0, 'C\'s client got B\'s too large broadcast');
    assert.equal(errorsSince(B, mark, 'ERR_SIO_TOO_LARGE').length, 1, eventLog(B, mark));
    const stC = await C.command('stats');
    assert.equal(stC.tooLarge, 0, 'C saw no too large message either');
  });

  it('(c) B\'s own too large requests: socketsJoin reports ERR_SIO_TOO_LARGE (applied on B only), fetchSockets and serverSideEmitWithAck reject at once with it', async () => {
    const before = await B.command('stats');
    const mark = B.adapterEvents.length;
    const rooms = range(0, 1000).map((i) => `own-room-${i}`); // ~18 KB of JSON
    await B.command('socketsJoin', { rooms });
    const large = errorsSince(B, mark, 'ERR_SIO_TOO_LARGE');
    assert.equal(large.length, 1, `ERR_SIO_TOO_LARGE reported synchronously by socketsJoin\n${eventLog(B, mark)}`);
    assert.match(large[0].error.message, /^dropped 1 too large message: .*maxMessageBytes \(4096\)/);
    await B.command('socketsJoin', { rooms: ['own-join-barrier'] });
    const roomsOf = async (client) => (await client.server.command('localSockets')).find((s) => s.id === client.serverSocketId).rooms;
    await waitUntil(async () => (await roomsOf(c)).includes('own-join-barrier'), { what: 'C applies B\'s barrier socketsJoin' });
    assert.ok(!(await roomsOf(c)).includes('own-room-0'), 'C applied B\'s too large socketsJoin');
    const bRooms = new Set(await roomsOf(b));
    assert.deepEqual(rooms.filter((r) => !bRooms.has(r)), [], 'rooms B did not join locally');

    const fetched = await B.command('fetchSockets', { in: rooms });
    assert.equal(fetched.ok, false, `fetchSockets with an 18 KB request: ${JSON.stringify(fetched).slice(0, 300)}`);
    assert.equal(fetched.error.code, 'ERR_SIO_TOO_LARGE', JSON.stringify(fetched.error));
    assert.ok(fetched.ms < 1000, `fetchSockets rejected after ${fetched.ms} ms`);
    await C.command('onServerEvent', { event: 'own-srv', reply: 'answer' });
    const sse = await B.command('serverSideEmit', { event: 'own-srv', args: ['q'.repeat(10000)], mode: 'promise' });
    assert.equal(sse.ok, false, `serverSideEmitWithAck of 10 KB: ${JSON.stringify(sse).slice(0, 300)}`);
    assert.equal(sse.error.code, 'ERR_SIO_TOO_LARGE', JSON.stringify(sse.error));
    assert.ok(sse.ms < 1000, `serverSideEmitWithAck rejected after ${sse.ms} ms`);
    await B.command('serverSideEmit', { event: 'own-srv', args: ['small'] }); // after it on the request channel
    await C.waitForServerEvent('own-srv', 1);
    assert.deepEqual(C.serverEventCalls('own-srv').map((call) => call.args[0]), ['small'], 'C\'s server-side listener');

    const st = await B.command('stats');
    assert.equal(st.tooLarge, before.tooLarge + 3, `tooLarge ${before.tooLarge} → ${st.tooLarge}`);
    assert.equal(st.pendingRequests, 0, JSON.stringify(st));
  });

  it('no node exited or threw', () => {
    for (const node of [A, B, C]) {
      assert.ok(node.alive, node.describeState());
      assert.deepEqual(node.uncaught, [], node.describeState());
    }
  });
});

// -------------------------------------------------------------------------------------------------
// (d) The publish queue in bytes

describe('(d) maxQueuedBytes while Redis is unreachable (D behind a gate; E ours and F official on Redis)', { timeout: 90000 }, () => {
  const key = uniqueKey();
  const MAX_QUEUED_BYTES = 100000;
  const COUNT = 20;
  const SIZE = 10000;
  let g;
  let D;
  let E;
  let F;
  let d;
  let e;
  let f;

  before(async () => {
    g = await gate(REDIS_URL);
    [D, E, F] = await startServers([ours('D', { redisUrl: g.url, maxQueuedBytes: MAX_QUEUED_BYTES }), ours('E'), official('F')], { key });
    [d, e, f] = await Promise.all([D.connect('/'), E.connect('/'), F.connect('/')]);
  });

  it('about 9 broadcasts of 10 KB are queued, the others refused with ERR_SIO_OVERLOADED; once back, exactly the queued ones arrive, in order', async (t) => {
    const mark = D.adapterEvents.length;
    await g.close();
    await waitForAdapterEvent(D, mark, isRedisError, 'D: adapter \'error\' ERR_SIO_REDIS once its Redis is unreachable');
    await waitUntil(async () => (await D.command('stats')).redis.link === 'down', { timeoutMs: 10000, what: 'D\'s link down' });
    const before = await D.command('stats');
    assert.deepEqual([before.redis.pending, before.redis.pendingBytes], [0, 0], JSON.stringify(before.redis));

    const res = await D.command('emitMany', { event: 'queued', count: COUNT, size: SIZE });
    const st = await D.command('stats');
    const overloaded = res.errors.filter((x) => x.code === 'ERR_SIO_OVERLOADED');
    const k = COUNT - overloaded.length;
    t.diagnostic(`queued ${k} of ${COUNT}; stats().redis ${JSON.stringify(st.redis)}; first refusal: ${overloaded[0] && overloaded[0].message}`);
    assert.deepEqual(res.errors.filter((x) => x.code !== 'ERR_SIO_OVERLOADED'), [], 'other errors during the emits');
    assert.deepEqual(overloaded.map((x) => x.i), range(k, COUNT), 'the refused emits: every one after the first refusal, one \'error\' each');
    assert.ok(k >= 8 && k <= 10, `${k} broadcasts of ${SIZE} bytes queued under maxQueuedBytes ${MAX_QUEUED_BYTES}`);
    assert.match(overloaded[0].message, /maxQueuedBytes/);
    assert.equal(st.redis.pending, k, JSON.stringify(st.redis));
    assert.ok(st.redis.pendingBytes <= MAX_QUEUED_BYTES, `pendingBytes ${st.redis.pendingBytes} > maxQueuedBytes`);
    const each = st.redis.pendingBytes / k;
    assert.ok(each > SIZE && each < SIZE + 200, `${each} bytes counted per ${SIZE}-byte broadcast`);
    assert.ok(st.redis.pendingBytes + each > MAX_QUEUED_BYTES, `one more (${each} bytes) would have fitted in ${MAX_QUEUED_BYTES - st.redis.pendingBytes}`);
    assert.equal(st.redis.dropped - before.redis.dropped, COUNT - k, `stats().redis.dropped ${before.redis.dropped} → ${st.redis.dropped}`);
    assert.equal(st.redis.link, 'down');
    await d.waitForEvent('queued', COUNT, 5000); // local delivery does not depend on Redis
    assert.deepEqual(d.received('queued').map((args) => args[0]), range(0, COUNT));
    assert.equal(e.received('queued').length + f.received('queued').length, 0, 'something crossed the closed gate');

    const readyMark = D.adapterEvents.length;
    await g.open();
    await waitForAdapterEvent(D, readyMark, isReady, 'D: adapter \'ready\' once the gate is open again');
    await Promise.all([e.waitForEvent('queued', k, 15000), f.waitForEvent('queued', k, 15000)]);
    await D.flush([e, f]);
    for (const [client, label] of [[e, 'E (ours)'], [f, 'F (official)']]) {
      const got = client.received('queued');
      assert.deepEqual(got.map((args) => args[0]), range(0, k), `${label}'s client: the queued broadcasts, in order, once each`);
      assert.ok(got.every((args) => args[1] === 'z'.repeat(SIZE)), `${label}'s client: payloads intact`);
    }
    // The flush's own marker counts as pending until Redis confirms it, which may come just after
    // the clients got it: the queue must drain, not be empty at one instant.
    let after;
    await waitUntil(async () => {
      after = await D.command('stats');
      return after.redis.pending === 0;
    }, { timeoutMs: 5000, what: 'D\'s publish queue drained' });
    assert.deepEqual([after.redis.pending, after.redis.pendingBytes], [0, 0], JSON.stringify(after.redis));
    assert.equal(after.redis.dropped, st.redis.dropped, 'nothing more dropped after the reconnection');
    assert.ok(after.redis.published - before.redis.published >= k + 1, `redis.published ${before.redis.published} → ${after.redis.published}`);
  });

  it('no node exited or threw', () => {
    for (const node of [D, E, F]) {
      assert.ok(node.alive, node.describeState());
      assert.deepEqual(node.uncaught, [], node.describeState());
    }
  });
});

// -------------------------------------------------------------------------------------------------
// (e) The receive buffer in bytes

describe('(e) maxReceiveBufferBytes: B2 blocks its event loop while P publishes 4 MB', { timeout: 90000 }, () => {
  const key = uniqueKey();
  const COUNT = 200;
  const SIZE = 20000;
  const BLOCK_MS = 2000;
  let P;
  let B2;
  let C2;
  let b2;
  let c2;

  before(async () => {
    [P, B2, C2] = await startServers([official('P'), ours('B2', { maxReceiveBufferBytes: MiB }), ours('C2')], { key });
    [b2, c2] = await Promise.all([B2.connect('/'), C2.connect('/')]);
  });

  it('B2 drops beyond 1 MiB waiting for its event loop (stats().dropped, ERR_SIO_OVERLOADED), delivers the rest in order; C2 gets all', async (t) => {
    const before = await B2.command('stats');
    const mark = B2.adapterEvents.length;
    // Both commands arrive at once and wait for their time (same clock): B2 spins from `at`, P
    // publishes from `at` + 300 ms.
    const at = Date.now() + 300;
    const busy = B2.command('busyWait', { ms: BLOCK_MS, at }, BLOCK_MS + 10000);
    const burst = await P.command('emitMany', { event: 'burst', count: COUNT, size: SIZE, at: at + 300 }, 15000);
    const blocked = await busy;
    assert.ok(burst.startedAt >= blocked.startedAt && burst.endedAt <= blocked.endedAt - 300,
      `the burst (${burst.startedAt}..${burst.endedAt}) was not published well within B2's busy loop (${blocked.startedAt}..${blocked.endedAt})`);
    // B2's event loop takes what waits right after it replied; the barrier's marker must not find
    // the receive buffer still full.
    await sleep(200);
    await P.flush([b2, c2], 20000);

    const st = await B2.command('stats');
    const dropped = st.dropped - before.dropped;
    const got = b2.received('burst').map((args) => args[0]);
    t.diagnostic(`B2 dropped ${dropped} of ${COUNT}, delivered ${got.length}; stats ${JSON.stringify(st)}`);
    assert.ok(dropped > 0, `nothing dropped with maxReceiveBufferBytes 1 MiB: ${JSON.stringify(st)}`);
    assert.equal(got.length, COUNT - dropped, `b2 got ${got.length}, B2 dropped ${dropped}`);
    assert.ok(got.every((n, i) => i === 0 || n > got[i - 1]), `b2's broadcasts out of order or repeated: ${got.join(',')}`);
    assert.ok(b2.received('burst').every((args) => args[1].length === SIZE), 'b2: payloads intact');
    const overloaded = await waitErrors(B2, mark, 'ERR_SIO_OVERLOADED');
    assert.match(overloaded[0].error.message, /maxReceiveBufferBytes/);
    assert.deepEqual(c2.received('burst').map((args) => args[0]), range(0, COUNT), 'C2 (defaults) delivers all, in order');
    const stC = await C2.command('stats');
    assert.equal(stC.dropped, 0, JSON.stringify(stC));
    assert.equal(findEvent(C2, 0, (ev) => ev.event === 'error'), -1, eventLog(C2));
  });

  it('no node exited or threw', () => {
    for (const node of [P, B2, C2]) {
      assert.ok(node.alive, node.describeState());
      assert.deepEqual(node.uncaught, [], node.describeState());
    }
  });
});
