'use strict';
// createShardedAdapter on a single (non-cluster) Redis >= 7 (npm/lib/sharded.js, Rust
// `Conns::Pair { sharded: true }`): SPUBLISH / SSUBSCRIBE / PUBSUB SHARDNUMSUB on that server, like
// the official sharded adapter. A PRIVATE redis-server (helpers/private-redis.js) serves the file,
// so it can be killed and restarted on the same port.
//
// For subscriptionMode static, dynamic and dynamic-private, three nodes in the same mode (own
// channelPrefix each): ours given the redis:// URL (no client of its own), ours given a standalone
// ioredis client pair, and the official sharded adapter on a standalone node-redis createClient()
// pair.
// (a) broadcasts from every node: io.emit, io.to(room), io.to(socketId), a Buffer payload; exact
//     delivery counts on every client (after an ordering barrier); the main channel is a SHARD
//     channel with 3 subscribers (PUBSUB SHARDCHANNELS / SHARDNUMSUB).
// (b) serverCount() = 3, fetchSockets() sees every socket, serverSideEmitWithAck answered by the
//     two others, from every node.
// (c) (dynamic mode only) kill -9 the private Redis, restart it on the same port: both ours nodes
//     emit 'error' then 'ready'; broadcasts ours <-> ours cross again, a room joined before the
//     outage still receives, and the restarted server sees ours' shard channels again. The official
//     node is only observed (reported, not asserted; it recovered in every run so far).
//     Observed, not asserted: the first broadcasts each ours node sends after the restart arrive
//     ~0.4-0.5 s late (none lost: the report prints "received/sends" after a barrier), whichever
//     channel (main or room) is used first; later ones cross in 1-2 ms. SHARDNUMSUB already shows
//     the subscriptions back at that point.
// (f) sioadapter's ShardedEmitter (no official package has one) against the three nodes: every
//     broadcast kind with exact counts, socketsJoin/Leave, disconnectSockets, serverSideEmit
//     (helpers/sharded-emitter.js).
// (d) (own group, mode dynamic) CLIENT PAUSE 3000 ALL while ours and the official node issue
//     fetchSockets / serverCount / serverSideEmitWithAck: every request of ours settles within
//     5000 + 500 + 500 ms (a rejection is fine), they succeed again after the pause, and the ours
//     nodes stay up without unhandled rejections. The official node's figures are reported only.
//
// Waits on conditions (IPC reports, client events, polled Redis state), never fixed sleeps.
// Run: node --test test/sharded-standalone.test.js (from the repository root).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { assertExactDeliveries } = require('./helpers/deliveries');
const { uniqueKey, startServers, waitUntil, stopAll } = require('./helpers/cluster');
const { privateRedis, stopAllRedis } = require('./helpers/private-redis');
const { command, redisCommand } = require('./helpers/redis-process');
const { KINDS, startRequests, stopWhenSucceeding, summarize } = require('./helpers/inflight');
const { adapterEventHelpers, isError, isReady } = require('./helpers/adapter-events');
const { checkShardedEmitter } = require('./helpers/sharded-emitter');

const SHARDED_COMMANDS = path.join(__dirname, 'helpers', 'sharded-commands.js');
const MODES = ['static', 'dynamic', 'dynamic-private'];
const RESTART_MODE = 'dynamic';
const RECOVERY_TIMEOUT = 15000;
const BIN = Buffer.from([0, 1, 2, 0xc1, 0xff]);

const t0 = Date.now();
const rel = (at) => `+${((at - t0) / 1000).toFixed(3)}s`;
const { eventLog, findEvent, waitForAdapterEvent } = adapterEventHelpers({ nsp: '/', at: rel, timeoutMs: RECOVERY_TIMEOUT });

let redis; // the private redis-server
const groups = new Map(); // mode → { prefix, servers, OU, OI, OF, clients }
const report = [];
const note = (line) => {
  report.push(line);
  process.stderr.write(`${line}\n`);
};

before(async () => {
  redis = await privateRedis();
  note(`private redis-server on port ${redis.port}: ${String(await command(redis.port, ['INFO', 'server'])).match(/redis_version:(\S+)/)[1]}`);
});

after(async () => {
  try {
    await stopAll();
  } finally {
    await stopAllRedis();
    process.stderr.write(`\n=== sharded-standalone.test.js report (${((Date.now() - t0) / 1000).toFixed(1)} s) ===\n  ${report.join('\n  ')}\n`);
  }
});

/** { channel: subscribers } of the shard channels matching `pattern` on the private Redis. */
async function shardChannels(pattern) {
  const channels = await command(redis.port, ['PUBSUB', 'SHARDCHANNELS', pattern]);
  if (channels instanceof Error) throw channels;
  if (channels.length === 0) return {};
  const counts = await command(redis.port, ['PUBSUB', 'SHARDNUMSUB', ...channels]);
  const out = {};
  for (let i = 0; i < counts.length; i += 2) if (Number(counts[i + 1]) > 0) out[counts[i]] = Number(counts[i + 1]);
  return out;
}

async function waitSubscribed(pattern, expected, what, timeoutMs = 10000) {
  let last;
  try {
    await waitUntil(async () => {
      last = await shardChannels(pattern).catch(() => ({}));
      return Object.entries(expected).every(([ch, n]) => (last[ch] || 0) >= n);
    }, { timeoutMs, intervalMs: 30, what });
  } catch {
    assert.fail(`${what}: expected at least ${JSON.stringify(expected)}; seen ${JSON.stringify(last)}`);
  }
  return last;
}

function node(label, adapter, source, mode, prefix) {
  return {
    label,
    adapter,
    key: prefix,
    adapterFactory: 'sharded',
    channelPrefix: prefix,
    subscriptionMode: mode,
    namespaces: ['/'],
    adapterEvents: true,
    requestsTimeout: 3000,
    commandModules: [SHARDED_COMMANDS],
    ...source,
  };
}

async function ok(server, name, payload) {
  const res = await server.command(name, payload, 8000);
  assert.equal(res.ok, true, `${server.label} ${name}(${JSON.stringify(payload)}): ${JSON.stringify(res)}`);
  return res.value;
}

/**
 * `from` emits (io[.to(room)].emit) every 200 ms until `client` has it; resolves with
 * { ms, sends } (ms from the first send, number of sends).
 */
async function crossing(from, client, event, timeoutMs, room) {
  const start = Date.now();
  for (let sends = 1; ; sends++) {
    await from.command('emit', { event, ...(room === undefined ? {} : { to: room }) });
    try {
      await client.waitForEvent(event, 1, 200);
      return { ms: Date.now() - start, sends };
    } catch {
      if (Date.now() - start > timeoutMs) {
        throw new Error(`${from.label} → client on ${client.server.label}: "${event}"${room === undefined ? '' : ` to ${room}`} not received within ${timeoutMs} ms`);
      }
    }
  }
}

for (const mode of MODES) {
  const dynamic = mode !== 'static';

  describe(`subscriptionMode "${mode}" on a standalone Redis: ours (URL), ours (ioredis), official (node-redis)`, { timeout: 40000 }, () => {
    let prefix;
    let servers;
    let OU;
    let OI;
    let OF;
    const clients = []; // role 'n' (no room) and 'r1' (room r1) on every node

    before(async () => {
      const start = Date.now();
      prefix = uniqueKey();
      servers = await startServers([
        node('OursUrl', 'ours', { redisUrl: redis.url, redisClients: false }, mode, prefix),
        node('OursIoredis', 'ours', { client: 'ioredis', redisUrl: redis.url }, mode, prefix),
        node('Official', 'official', { client: 'node-redis', redisUrl: redis.url }, mode, prefix),
      ], { key: prefix });
      [OU, OI, OF] = servers;
      for (const s of servers) {
        for (const role of ['n', 'r1']) {
          const c = await s.connect('/', { data: { node: s.label, role } });
          if (role === 'r1') await s.command('join', { socketId: c.serverSocketId, rooms: 'r1' });
          c.role = role;
          c.rooms = new Set([c.serverSocketId, ...(role === 'r1' ? ['r1'] : [])]);
          clients.push(c);
        }
        await s.command('onServerEvent', { event: 'sse', reply: `ack-${s.label}` });
      }
      const expected = { [`${prefix}#/#`]: 3 };
      if (dynamic) expected[`${prefix}#/#r1#`] = 3;
      if (mode === 'dynamic-private') for (const c of clients) expected[`${prefix}#/#${c.serverSocketId}#`] = 1;
      await waitSubscribed(`${prefix}#*`, expected, `[${mode}] shard channels subscribed`);
      groups.set(mode, { prefix, servers, OU, OI, OF, clients });
      note(`[${mode}] 3 nodes up, meshed and subscribed in ${Date.now() - start} ms`);
    });

    after(async () => {
      if (mode !== RESTART_MODE) await Promise.all(servers.map((s) => s.stop()));
    });

    it('(a) io.emit / to(room) / to(socketId) / Buffer from every node: exact counts; channels are shard channels', async () => {
      const start = Date.now();
      const sent = [];
      for (const s of servers) {
        const ops = [
          { name: 'all', payload: {} },
          { name: 'r1', payload: { to: 'r1' } },
          { name: 'bin', payload: { args: [BIN, { nested: BIN }] } },
          { name: 'binr1', payload: { to: 'r1', args: [BIN] } },
          ...servers.map((t) => ({ name: `sid-${t.label}`, payload: { to: clients.find((c) => c.server === t && c.role === 'n').serverSocketId } })),
        ];
        for (const op of ops) {
          const event = `${op.name}@${s.label}`;
          const args = op.payload.args || [s.label];
          await s.command('emit', { ...op.payload, event, args });
          const to = op.payload.to;
          sent.push({ event, args, recipients: new Set(clients.filter((c) => to === undefined || c.rooms.has(to))) });
        }
      }
      await Promise.all(sent.flatMap(({ event, recipients }) => [...recipients].map((c) => c.waitForEvent(event, 1, 10000))));
      // Barrier through every channel used (main, r1, socket ids): earlier messages are delivered by then.
      const targets = [undefined, 'r1', ...clients.filter((c) => c.role === 'n').map((c) => c.serverSocketId)];
      for (const s of servers) {
        await Promise.all(targets.map(async (to, i) => {
          const event = `__barrier${i}@${s.label}`;
          await s.command('emit', { event, ...(to === undefined ? {} : { to }) });
          await Promise.all(clients.filter((c) => to === undefined || c.rooms.has(to)).map((c) => c.waitForEvent(event, 1, 10000)));
        }));
      }
      assertExactDeliveries(sent, clients);
      const bin = clients.find((c) => c.server === OU && c.role === 'n').received(`bin@${OF.label}`)[0];
      assert.ok(Buffer.isBuffer(bin[0]) && Buffer.isBuffer(bin[1].nested), `official → ours: ${JSON.stringify(bin)}`);
      // Sharded pub/sub, not classic: the main channel is a shard channel (3 subscribers), and no
      // classic channel of this prefix exists.
      const shard = await shardChannels(`${prefix}#*`);
      assert.equal(shard[`${prefix}#/#`], 3, JSON.stringify(shard));
      const classic = await command(redis.port, ['PUBSUB', 'CHANNELS', `${prefix}*`]);
      assert.deepEqual(classic, [], `classic channels of ${prefix}: ${JSON.stringify(classic)}`);
      note(`[${mode}] (a) ${sent.length} broadcasts × ${clients.length} clients exact in ${Date.now() - start} ms; shard channels ${JSON.stringify(Object.keys(shard).map((k) => k.slice(prefix.length)))}`);
    });

    it('(b) serverCount = 3, fetchSockets sees every socket, serverSideEmitWithAck answered by the others (every node)', async () => {
      const start = Date.now();
      const allIds = clients.map((c) => c.serverSocketId).sort();
      for (const s of servers) {
        assert.equal(await ok(s, 'serverCount', {}), 3, `${s.label} serverCount`);
        const sockets = await ok(s, 'fetchSockets', {});
        assert.deepEqual(sockets.map((x) => x.id).sort(), allIds, `${s.label} fetchSockets`);
        for (const x of sockets) {
          const c = clients.find((y) => y.serverSocketId === x.id);
          assert.deepEqual(x.data, { node: c.server.label, role: c.role });
          assert.equal(x.kind, c.server === s ? 'Socket' : 'RemoteSocket');
        }
        const inR1 = await ok(s, 'fetchSockets', { in: 'r1' });
        assert.equal(inR1.length, 3, `${s.label} fetchSockets in r1`);
        const acks = await ok(s, 'serverSideEmit', { event: 'sse', args: [s.label, BIN], mode: 'promise' });
        assert.deepEqual([...acks].sort(), servers.filter((x) => x !== s).map((x) => `ack-${x.label}`).sort(), `${s.label} serverSideEmitWithAck`);
      }
      for (const s of servers) await s.waitForServerEvent('sse', 2);
      for (const s of servers) assert.equal(s.serverEventCalls('sse').length, 2, s.label);
      for (const s of servers) assert.deepEqual(s.uncaught, [], s.describeState());
      note(`[${mode}] (b) requests from every node ok in ${Date.now() - start} ms`);
    });

    it('(g) a node that never answers: fetchSockets and serverSideEmitWithAck time out with ClusterAdapter\'s text and the answers that came, ours as the official', async () => {
      // A silent subscriber of the main channel counts as a node (SHARDNUMSUB) and answers nothing.
      const { createClient } = require('redis');
      const silent = createClient({ url: redis.url });
      await silent.connect();
      try {
        await silent.sSubscribe(`${prefix}#/#`, () => {});
        const start = Date.now();
        const [fetches, emits] = await Promise.all([
          Promise.all(servers.map((s) => s.command('fetchSockets', { timeout: 400 }, 8000))),
          Promise.all(servers.map((s) => s.command('serverSideEmit', { event: 'sse', args: [s.label], mode: 'callback' }, 9000))),
        ]);
        servers.forEach((s, i) => {
          assert.equal(fetches[i].ok, false, `${s.label} fetchSockets: ${JSON.stringify(fetches[i])}`);
          assert.equal(fetches[i].error.message, 'timeout reached: only 2 responses received out of 3', `${s.label} fetchSockets`);
          assert.ok(fetches[i].ms >= 390 && fetches[i].ms < 1500, `${s.label} fetchSockets settled after ${fetches[i].ms} ms`);
          const { err, responses, ms } = emits[i];
          assert.equal(err && err.message, 'timeout reached: only 2 responses received out of 3', `${s.label} serverSideEmit: ${JSON.stringify(emits[i])}`);
          assert.deepEqual([...responses].sort(), servers.filter((x) => x !== s).map((x) => `ack-${x.label}`).sort(), `${s.label} serverSideEmit: the answers that came`);
          assert.ok(ms >= 4900 && ms < 6500, `${s.label} serverSideEmit settled after ${ms} ms`);
        });
        note(`[${mode}] (g) with a silent node: every node's requests timed out alike in ${Date.now() - start} ms`);
      } finally {
        await silent.quit();
      }
      // Without it, the requests succeed again.
      for (const s of servers) assert.equal((await ok(s, 'fetchSockets', {})).length, clients.length, `${s.label} fetchSockets after`);
    });

    it('(h) a count slower than the request\'s timeout: the timeout runs from the count, as ClusterAdapter\'s, on every node', async () => {
      // Redis answers nothing for 300 ms; each node's fetchSockets has 150 ms, counted (as
      // ClusterAdapter counts it) from when the nodes were counted, after the pause.
      await command(redis.port, ['CLIENT', 'PAUSE', '300', 'ALL']);
      const results = await Promise.all(servers.map((s) => s.command('fetchSockets', { timeout: 150 }, 8000)));
      servers.forEach((s, i) => {
        assert.equal(results[i].ok, true, `${s.label}: ${JSON.stringify(results[i])}`);
        assert.equal(results[i].value.length, clients.length, `${s.label} fetchSockets`);
      });
      note(`[${mode}] (h) fetchSockets with 150 ms behind a 300 ms pause: ${results.map((r, i) => `${servers[i].label} ${Math.round(r.ms)} ms`).join(', ')}`);
    });

    it('(f) sioadapter\'s ShardedEmitter: broadcasts (exact counts), socketsJoin/Leave, disconnectSockets, serverSideEmit on every node', async () => {
      note(`[${mode}] (f) ${await checkShardedEmitter({ redis: redis.url, prefix, mode, servers, clients, room: 'r1' })}`);
    });
  });
}

describe(`(c) kill -9 the private Redis, restart on the same port (mode "${RESTART_MODE}")`, { timeout: 40000 }, () => {
  it('ours emit error then ready; ours ↔ ours broadcasts and a pre-outage room cross again; shard channels are back', async (t) => {
    const g = groups.get(RESTART_MODE);
    assert.ok(g, `the ${RESTART_MODE} group must have started`);
    const { prefix, OU, OI, OF, clients } = g;
    const on = (s, role) => clients.find((c) => c.server === s && c.role === role);
    const marks = [OU.adapterEvents.length, OI.adapterEvents.length];
    const killAt = Date.now();
    const killed = await redis.kill('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    for (const [i, s] of [OU, OI].entries()) {
      const idx = await waitForAdapterEvent(s, marks[i], isError, `${s.label}: adapter 'error' after the kill`);
      t.diagnostic(`${s.label}: 'error' ${s.adapterEvents[idx].at - killAt} ms after the kill: [${s.adapterEvents[idx].error.code}] ${s.adapterEvents[idx].error.message}`);
    }
    await redis.start();
    const restartAt = Date.now();
    note(`(c) Redis down ${restartAt - killAt} ms`);
    for (const [i, s] of [OU, OI].entries()) {
      const err = findEvent(s, marks[i], isError);
      const idx = await waitForAdapterEvent(s, err + 1, isReady, `${s.label}: adapter 'ready' after the restart`);
      note(`(c) ${s.label}: 'ready' ${s.adapterEvents[idx].at - restartAt} ms after the restart`);
    }
    // Ours' channels are back on the restarted server (main, own response channel, room r1), one
    // subscriber per ours node.
    const want = { [`${prefix}#/#`]: 2, [`${prefix}#/#r1#`]: 2 };
    for (const s of [OU, OI]) want[`${prefix}#/#${(await s.command('shardedInfo', {})).uid}#`] = 1;
    const seen = await waitSubscribed(`${prefix}#*`, want, 'ours\' shard channels back on the restarted Redis', RECOVERY_TIMEOUT);
    note(`(c) shard channels ${Date.now() - restartAt} ms after the restart: ${JSON.stringify(Object.fromEntries(Object.entries(seen).map(([k, v]) => [k.slice(prefix.length), v])))}`);
    // ours ↔ ours: io.emit both ways, and the room r1 joined before the outage.
    const ms = [
      await crossing(OU, on(OI, 'n'), 'after-OU', RECOVERY_TIMEOUT),
      await crossing(OI, on(OU, 'n'), 'after-OI', RECOVERY_TIMEOUT),
      await crossing(OU, on(OI, 'r1'), 'after-OU-r1', RECOVERY_TIMEOUT, 'r1'),
      await crossing(OI, on(OU, 'r1'), 'after-OI-r1', RECOVERY_TIMEOUT, 'r1'),
    ];
    // Barrier (per-publisher order), then how many of the sends arrived: copies sent right after
    // 'ready' may be lost (not asserted, reported).
    await Promise.all([OU.flush([on(OI, 'n'), on(OI, 'r1')]), OI.flush([on(OU, 'n'), on(OU, 'r1')])]);
    const got = [[on(OI, 'n'), 'after-OU'], [on(OU, 'n'), 'after-OI'], [on(OI, 'r1'), 'after-OU-r1'], [on(OU, 'r1'), 'after-OI-r1']]
      .map(([c, e]) => c.received(e).length);
    note(`(c) ours ↔ ours crossings after 'ready' (emit OU→OI, OI→OU, r1 OU→OI, r1 OI→OU): ` +
      ms.map((x, i) => `${x.ms} ms, ${got[i]}/${x.sends} sends received`).join(' | '));
    assert.equal(on(OI, 'n').received('after-OU-r1').length, 0, 'to(r1) must not reach the client outside r1');
    const count = await ok(OU, 'serverCount', {});
    assert.ok(count === 2 || count === 3, `OursUrl serverCount after the restart: ${count} (2 ours + the official node if it resubscribed)`);
    note(`(c) OursUrl serverCount after the restart: ${count}`);
    for (const s of [OU, OI]) {
      assert.ok(s.alive, s.describeState());
      assert.deepEqual(s.uncaught, [], s.describeState());
    }
    // The official node (node-redis createClient) is only observed, not asserted.
    let official;
    try {
      const a = await crossing(OF, on(OU, 'n'), 'after-OF', 5000);
      const b = await crossing(OU, on(OF, 'r1'), 'after-OU-OF-r1', 5000, 'r1');
      official = `recovered: official → ours ${a.ms} ms (${a.sends} sends), ours → official (room r1) ${b.ms} ms (${b.sends} sends)`;
    } catch (err) {
      official = `did NOT recover within 5 s: ${err.message}; errors: ${[...new Set(OF.errors.map((e) => `${e.source}: ${e.error.message}`))].join('; ')}`;
    }
    note(`(c) official node after the restart: ${official}`);
    t.diagnostic(eventLog(OU, marks[0]));
    t.diagnostic(eventLog(OI, marks[1]));
  });
});

// (d) Requests under a stalled Redis. ClusterAdapter (socket.io-adapter), which runs the official
// sharded adapter's requests, first awaits serverCount() and only then starts the request's own
// timeout (flags.timeout || 5000 ms). Ours publishes the request with the count (PUBSUB
// SHARDNUMSUB) in one pipeline, bounds the count to 500 ms and hands its failure to
// serverSideEmit's ack, so every request of ours settles within 5000 + 500 ms (+ slack),
// whatever Redis does. A fresh group (own channelPrefix, mode "dynamic"): OursUrl and the official
// node each issue fetchSockets / serverCount / serverSideEmitWithAck in turn (helpers/inflight.js)
// while Redis is paused (CLIENT PAUSE ALL); every node acks the event. Asserted for ours; the
// official node's figures are reported only.
// Observed, not asserted: during the pause ours rejects in ~500 ms ("cannot count the nodes");
// the official requests wait for SHARDNUMSUB and last as long as the pause (max ~2.9 s here, so
// under 3 s they stay within the bound; with PAUSE_MS 8000, 16 of 65 ran up to ~8.3 s).
const PAUSE_MS = 3000;
const REQUEST_BOUND_MS = 5000 + 500 + 500; // ClusterAdapter timeout + our count bound + slack
const PAUSE_REQUEST_INTERVAL_MS = 150;
const FAULT_COMMANDS = path.join(__dirname, 'helpers', 'fault-commands.js');

describe(`(d) CLIENT PAUSE ${PAUSE_MS} ALL under requests (mode "dynamic", own prefix)`, { timeout: 60000 }, () => {
  let servers = [];

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it(`requests of ours settle within ${REQUEST_BOUND_MS} ms during and after a stalled Redis, and succeed again; official reported`, async (t) => {
    if (!redis.running) await redis.start(); // (c) restarts it; only a failure there leaves it down
    const prefix = uniqueKey();
    const spec = (label, adapter, source) => ({
      ...node(label, adapter, source, 'dynamic', prefix),
      commandModules: [SHARDED_COMMANDS, FAULT_COMMANDS],
    });
    servers = await startServers([
      spec('PauseOursUrl', 'ours', { redisUrl: redis.url, redisClients: false }),
      spec('PauseOursIoredis', 'ours', { client: 'ioredis', redisUrl: redis.url }),
      spec('PauseOfficial', 'official', { client: 'node-redis', redisUrl: redis.url }),
    ], { key: prefix });
    const [OU, OI, OF] = servers;
    for (const s of servers) {
      await s.connect('/', { data: { node: s.label } });
      await s.command('onServerEvent', { event: 'faults-ack', reply: s.label });
    }
    await waitSubscribed(`${prefix}#*`, { [`${prefix}#/#`]: 3 }, '(d) main shard channel subscribed by the 3 nodes');
    const marks = [OU.adapterEvents.length, OI.adapterEvents.length];
    // Complete answers: 3 sockets, 3 nodes, the 2 other nodes' acks.
    const accept = (r) => r.ok && (r.kind === 'serverSideEmitWithAck' ? r.value.length === 2 : r.value === 3);
    const requesters = [OU, OF];
    const tag = 'pause';
    for (const s of requesters) await startRequests(s, tag, { intervalMs: PAUSE_REQUEST_INTERVAL_MS });
    // Every kind answered in full on both requesters before the fault.
    await waitUntil(async () => {
      const reports = await Promise.all(requesters.map((s) => s.command('requestsReport', { tag })));
      return reports.every((records) => KINDS.every((kind) => records.some((r) => r.kind === kind && accept(r))));
    }, { timeoutMs: 10000, intervalMs: 50, what: '(d) every kind of request answered in full before the pause' });

    const pauseAt = Date.now();
    await redisCommand(redis.port, ['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
    // PING waits, queued, until the pause ends: the moment Redis answers again.
    assert.equal(await command(redis.port, ['PING'], PAUSE_MS + 5000), 'PONG');
    const answersAt = Date.now();
    assert.ok(answersAt - pauseAt >= PAUSE_MS - 100, `Redis answered PING ${answersAt - pauseAt} ms after CLIENT PAUSE ${PAUSE_MS} ALL: the pause did not take`);

    const [ours, official] = await Promise.all(requesters.map((s) => stopWhenSucceeding(s, tag, {
      from: answersAt, accept, timeoutMs: 15000, settleMs: REQUEST_BOUND_MS + 1000,
    })));
    const bounds = { bound: REQUEST_BOUND_MS, killAt: pauseAt, recoveredAt: answersAt };
    const so = summarize(ours.records, bounds);
    const sf = summarize(official.records, bounds);
    const maxMs = (records) => Math.round(Math.max(0, ...records.map((r) => (r.ms === null ? Infinity : r.ms))));
    note(`(d) CLIENT PAUSE ${PAUSE_MS} ALL: Redis answered again ${answersAt - pauseAt} ms after the pause was sent`);
    note(`(d) ours (${OU.label}): ${so.line}`);
    note(`(d) official (${OF.label}): ${sf.line}`);
    note(`(d) official: ${sf.overran.length} of ${official.records.length} requests overran ${REQUEST_BOUND_MS} ms or never settled, ` +
      `max ${maxMs(official.records)} ms, succeeding again: ${official.succeeding}; uncaught: ${OF.uncaught.map((u) => `${u.source}: ${u.error.message}`).join('; ') || 'none'}; ` +
      `alive: ${OF.alive}${sf.lateDetail.length ? `; late: ${sf.lateDetail.join('; ')}` : ''}`);
    t.diagnostic(`ours: ${so.overran.length} overran, max ${maxMs(ours.records)} ms; errors: ${so.errors.join(' | ') || 'none'}`);
    t.diagnostic(`official: ${sf.overran.length} overran, max ${maxMs(official.records)} ms; errors: ${sf.errors.join(' | ') || 'none'}`);
    t.diagnostic(eventLog(OU, marks[0]));
    t.diagnostic(eventLog(OI, marks[1]));

    assert.equal(so.overran.length, 0,
      `${so.overran.length} of ours' ${ours.records.length} requests settled later than ${REQUEST_BOUND_MS} ms or never: ${so.lateDetail.join('; ')}\n${so.line}`);
    assert.ok(ours.succeeding, `ours' requests do not succeed again after the pause: ${so.line}; errors: ${so.errors.join(' | ')}`);
    for (const s of [OU, OI]) {
      assert.ok(s.alive, s.describeState());
      assert.deepEqual(s.uncaught, [], s.describeState());
    }
  });
});
