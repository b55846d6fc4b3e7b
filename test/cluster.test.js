'use strict';
// Classic (non-sharded) pub/sub through a Redis Cluster (README "Redis Cluster";
// src/transport/cluster.rs): ours connects both its connections to one primary, PUBLISH and
// PSUBSCRIBE reach every node through the cluster bus, the server count is PUBSUB NUMSUB summed
// over every primary. One private 6-node cluster (3 primaries + 3 replicas, helpers/redis-cluster.js,
// cluster-node-timeout 2000) serves the whole file; every describe has its own key.
//
// (a) A mixed deployment of 6 nodes: ours given the redis+cluster:// URL, a seeds array
//     ([{host, port}, 'host:port']), an ioredis Cluster, a node-redis createCluster() (first seed a
//     replica, to be skipped); the official adapter on a node-redis createCluster() pair and on an
//     ioredis Cluster pair. The ours nodes are pointed at all three primaries (first seed that is a
//     primary), checked through PUBSUB NUMSUB of a namespace only that node has. io.emit and
//     io.to(room) from every node reach every client of every node exactly once.
// (b) Requests in that deployment: serverCount, fetchSockets and serverSideEmitWithAck from every
//     node (ours and official) see all 6 nodes although they are subscribed on different primaries.
// (d) Bad input: redis+cluster:// with nothing listening, and a standalone (non-cluster) Redis: the
//     node starts, the adapter emits 'error' ERR_SIO_REDIS naming the problem, nothing crashes;
//     createAdapter([]) and other bad seeds: ERR_SIO_OPTION.
// (c) Failover (last: it kills a primary of the shared cluster): kill -9 the primary ours nodes A
//     (URL of every node) and A1 (that primary as its only seed) are on; both emit 'error' then
//     'ready' by themselves and move to another primary, broadcasts cross between them and B (ours,
//     on another primary) and the official node (on an ioredis Cluster) again within 30 s;
//     requests count all 4 nodes. In flight across it (helpers/inflight.js): from just before the
//     kill until after recovery A issues a request every 100 ms (fetchSockets, serverCount,
//     serverSideEmitWithAck in turn) and A and B broadcast a numbered event every 20 ms: every
//     request settles within requestsTimeout + 500 ms, they succeed again after recovery, no
//     broadcast reaches an ours node's client twice. Last, the killed node is restarted (it
//     rejoins as a replica of the promoted one, and PUBLISH reaches every node of a cluster):
//     numbered broadcasts from A, A1, B and F reach every client exactly once.
//
// Waiting is on conditions (IPC reports, client events, polled Redis state), never fixed sleeps.
// Run: node --test test/cluster.test.js (from the repository root).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { uniqueKey, startServers, waitUntil, stopAll } = require('./helpers/cluster');
const { startRedisCluster, stopAllRedisClusters, command } = require('./helpers/redis-cluster');
const { privateRedis, stopAllRedis } = require('./helpers/private-redis');
const { adapterEventHelpers, isError, isRedisError, isReady } = require('./helpers/adapter-events');
const { attachTally, streamStats, dupsOf } = require('./helpers/tally');
const { startRequests, stopWhenSucceeding, summarize } = require('./helpers/inflight');

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
const HOST = '127.0.0.1';
const REQ_TIMEOUT = 3000;
/** Bound for a node to recover from the failover of its primary (brief: ~30 s). */
const FAILOVER_BOUND = 30000;
/** A request settled later than requestsTimeout + this (or never) overran. */
const REQ_SLACK = 500;
/** Server commands of the in-flight traffic (trafficStart, requestsStart, emitNumbered, ...). */
const FAULT_COMMANDS = path.join(__dirname, 'helpers', 'fault-commands.js');
/** Numbered broadcasts: event names start with this (helpers/tally.js). */
const NUMBERED = 'n:';
const AFTER_COUNT = 20;

const t0 = Date.now();
const rel = (at) => `+${((at - t0) / 1000).toFixed(3)}s`;

let cluster; // the shared Redis Cluster

before(async () => {
  const start = Date.now();
  cluster = await startRedisCluster();
  process.stderr.write(`redis cluster up in ${Date.now() - start} ms: primaries ${cluster.primaries.join(', ')}, ` +
    `replicas ${cluster.replicas.map((r) => `${r}→${cluster.replicaOf[r]}`).join(', ')}\n`);
});

after(async () => {
  try {
    await stopAll();
  } finally {
    await stopAllRedisClusters();
    await stopAllRedis();
  }
});

// -------------------------------------------------------------------------------------------------
// Helpers

/** The cluster's ports with `first` moved to the front (ours uses the first seed that is a primary). */
const portsFirst = (first) => [first, ...cluster.ports.filter((p) => p !== first)];
const urlFirst = (first) => `redis+cluster://${portsFirst(first).map((p) => `${HOST}:${p}`).join(',')}`;

/** The namespace only node `label` serves: its request channel tells which Redis node it is on. */
const ownNsp = (label) => `/n${label}`;

/** Server spec of a node: every node serves '/' plus its own namespace and reports adapter events. */
function node(label, adapter, source, extra = {}) {
  return { label, adapter, namespaces: ['/', ownNsp(label)], adapterEvents: true, requestsTimeout: REQ_TIMEOUT, ...source, ...extra };
}
/** Sources: ours with the URL string / a seeds array (no Redis client in the process), or clients. */
const viaUrl = (url) => ({ redisUrl: url, redisClients: false });
const viaSeeds = (seeds) => ({ redisUrl: seeds, redisClients: false });
const viaClients = (client, seeds) => ({ client, redisUrl: seeds });

/** { port: n } of the running nodes where `channel` has n > 0 subscribers (PUBSUB NUMSUB). */
async function subscribersOf(channel) {
  const out = {};
  for (const port of cluster.livePorts) {
    const reply = await command(port, ['PUBSUB', 'NUMSUB', channel]).catch((err) => err);
    if (reply instanceof Error) {
      out[port] = `error: ${reply.message}`;
      continue;
    }
    const n = Number(reply[1]);
    if (n > 0) out[port] = n;
  }
  return out;
}

/** The Redis port node `server` (of key `key`) is subscribed on, or null (must be exactly one). */
async function homeOf(server, key) {
  const where = await subscribersOf(`${key}-request#${ownNsp(server.label)}#`);
  const ports = Object.keys(where).filter((p) => where[p] === 1).map(Number);
  return ports.length === 1 && Object.keys(where).length === 1 ? ports[0] : null;
}

/** The replica (as created) of primary `port`. */
const replicaOf = (port) => cluster.replicas.find((r) => cluster.replicaOf[r] === port);

const role = (port, topology) => (topology.primaries.includes(port) ? 'primary' : topology.replicas.includes(port) ? 'replica' : 'failed');

const { eventLog, findEvent, waitForAdapterEvent } = adapterEventHelpers({ nsp: '/', at: rel });

/**
 * `from` broadcasts `event` (io.emit) every 200 ms until client `to` (on another node) has it;
 * resolves with the ms from the first send, rejects after `timeoutMs`.
 */
async function crossing(from, to, event, timeoutMs) {
  const start = Date.now();
  for (;;) {
    await from.command('emit', { event, args: [from.label] });
    try {
      await to.waitForEvent(event, 1, 200);
      return Date.now() - start;
    } catch {
      if (Date.now() - start > timeoutMs) {
        throw new Error(`${from.label} → client on ${to.server.label}: "${event}" never arrived within ${timeoutMs} ms (re-sent every 200 ms)`);
      }
    }
  }
}

function assertHealthy(servers) {
  for (const s of servers) {
    assert.ok(s.alive, `${s.label} exited: ${s.describeState()}`);
    assert.deepEqual(s.uncaught, [], `${s.label}: ${s.describeState()}`);
  }
}

// The mixed deployment of (a) and (b): ours nodes pointed at the three primaries through the four
// ways of naming a cluster (URL, seeds array, ioredis Cluster, node-redis createCluster), and the
// official adapter on both client libraries: 6 nodes.
function mixedSpecs() {
  const [p0, p1, p2] = cluster.primaries;
  return [
    node('OursUrl', 'ours', viaUrl(urlFirst(p0))),
    node('OursSeeds', 'ours', viaSeeds([{ host: HOST, port: p1 }, `${HOST}:${cluster.replicaOf[cluster.replicas[0]] === p1 ? cluster.replicas[1] : cluster.replicas[0]}`])),
    node('OursIoCluster', 'ours', viaClients('ioredis-cluster', portsFirst(p2).map((port) => ({ host: HOST, port })))),
    // First seed a replica (of p0): ours skips it (ROLE is not master) and takes the next, p1.
    node('OursNodeRedis', 'ours', viaClients('node-redis-cluster', [replicaOf(p0), ...portsFirst(p1).filter((p) => p !== replicaOf(p0))].map((port) => ({ host: HOST, port })))),
    node('OfficialNodeRedis', 'official', viaClients('node-redis-cluster', cluster.seeds)),
    node('OfficialIoredis', 'official', viaClients('ioredis-cluster', cluster.seeds)),
  ];
}

/** Checks that the ours nodes sit on the primaries their first seed names; returns where everybody is. */
async function checkPlacement(servers, key) {
  const [p0, p1, p2] = cluster.primaries;
  const expected = { OursUrl: p0, OursSeeds: p1, OursIoCluster: p2, OursNodeRedis: p1 };
  const homes = {};
  for (const s of servers) homes[s.label] = await homeOf(s, key);
  for (const [label, port] of Object.entries(expected)) {
    assert.equal(homes[label], port, `${label} should be subscribed on primary ${port} only; placement: ${JSON.stringify(homes)}`);
  }
  for (const label of ['OfficialNodeRedis', 'OfficialIoredis']) {
    assert.ok(cluster.primaries.includes(homes[label]), `${label} is subscribed on ${homes[label]}, not on a primary; placement: ${JSON.stringify(homes)}`);
  }
  return homes;
}

// -------------------------------------------------------------------------------------------------
// (a) Broadcasts

describe('(a) mixed cluster: ours (URL, seeds array, ioredis Cluster, node-redis cluster) and official (node-redis and ioredis clusters)', { timeout: 60000 }, () => {
  const key = uniqueKey();
  let servers;
  const inRoom = new Map(); // server → client in room 'r'
  const outside = new Map(); // server → client in no room
  const allClients = () => [...inRoom.values(), ...outside.values()];

  before(async () => {
    servers = await startServers(mixedSpecs(), { key });
    for (const s of servers) {
      const [a, b] = await Promise.all([s.connect('/'), s.connect('/')]);
      await s.command('join', { socketId: a.serverSocketId, rooms: 'r' });
      inRoom.set(s, a);
      outside.set(s, b);
    }
  });

  it('each ours node is subscribed on the primary its first seed names, the official ones on a primary', async () => {
    const homes = await checkPlacement(servers, key);
    process.stderr.write(`(a) placement: ${JSON.stringify(homes)}\n`);
  });

  it('io.emit from every node reaches every client of every node exactly once', async () => {
    for (const s of servers) await s.command('emit', { event: `all-${s.label}`, args: [s.label] });
    for (const s of servers) {
      await Promise.all(allClients().map((c) => c.waitForEvent(`all-${s.label}`)));
      await s.flush(allClients());
    }
    for (const s of servers) {
      for (const c of allClients()) {
        assert.deepEqual(c.received(`all-${s.label}`), [[s.label]], `io.emit from ${s.label} → client on ${c.server.label}`);
      }
    }
    assertHealthy(servers);
  });

  it('io.to(room) from every node reaches exactly the room members of every node, once', async () => {
    for (const s of servers) await s.command('emit', { to: 'r', event: `room-${s.label}`, args: [s.label] });
    for (const s of servers) {
      await Promise.all([...inRoom.values()].map((c) => c.waitForEvent(`room-${s.label}`)));
      await s.flush(allClients());
    }
    for (const s of servers) {
      for (const c of inRoom.values()) assert.deepEqual(c.received(`room-${s.label}`), [[s.label]], `to(r) from ${s.label} → member on ${c.server.label}`);
      for (const c of outside.values()) assert.deepEqual(c.received(`room-${s.label}`), [], `to(r) from ${s.label} → non-member on ${c.server.label}`);
    }
    assertHealthy(servers);
  });

  it('the ours nodes emitted ready and no error', () => {
    for (const s of servers.filter((x) => x.config.adapter === 'ours')) {
      assert.ok(findEvent(s, 0, isReady) >= 0, eventLog(s));
      assert.equal(findEvent(s, 0, isError), -1, eventLog(s));
    }
  });
});

// -------------------------------------------------------------------------------------------------
// (b) Requests

describe('(b) requests see every node although they are subscribed on different primaries', { timeout: 60000 }, () => {
  const key = uniqueKey();
  let servers;
  const socketOf = new Map(); // label → server-side socket id of its client

  before(async () => {
    servers = await startServers(mixedSpecs(), { key });
    for (const s of servers) {
      const c = await s.connect('/', { data: { node: s.label } });
      socketOf.set(s.label, c.serverSocketId);
      await s.command('onServerEvent', { event: 'who', reply: s.label });
    }
  });

  it('placement: the ours nodes on the primaries their seeds name (all three primaries used)', async () => {
    const homes = await checkPlacement(servers, key);
    process.stderr.write(`(b) placement: ${JSON.stringify(homes)}\n`);
  });

  it('serverCount() is 6 on every node (NUMSUB summed over the primaries)', async () => {
    const counts = {};
    for (const s of servers) counts[s.label] = await s.command('serverCount', {});
    for (const s of servers) {
      assert.equal(counts[s.label].ok, true, `${s.label}: ${JSON.stringify(counts[s.label])}`);
    }
    assert.deepEqual(Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v.value])),
      Object.fromEntries(servers.map((s) => [s.label, servers.length])), `per-primary NUMSUB: ${JSON.stringify(await subscribersOf(`${key}-request#/#`))}`);
  });

  it('fetchSockets() from every node returns the sockets of all 6 nodes', async () => {
    const expected = [...socketOf.values()].sort();
    for (const s of servers) {
      const res = await s.command('fetchSockets', {});
      assert.equal(res.ok, true, `${s.label}: ${JSON.stringify(res)}`);
      assert.deepEqual(res.value.map((x) => x.id).sort(), expected, `${s.label} fetchSockets: ${JSON.stringify(res.value.map((x) => x.data))}`);
      assert.deepEqual(res.value.map((x) => x.data.node).sort(), servers.map((x) => x.label).sort());
      assert.ok(res.ms < REQ_TIMEOUT, `${s.label} fetchSockets took ${Math.round(res.ms)} ms (waited for the timeout: too many expected answers?)`);
    }
  });

  it('serverSideEmitWithAck() from every node gets the answers of the 5 others', async () => {
    for (const s of servers) {
      const res = await s.command('serverSideEmit', { event: 'who', args: [s.label], mode: 'promise' });
      assert.equal(res.ok, true, `${s.label}: ${JSON.stringify(res)}`);
      assert.deepEqual([...res.value].sort(), servers.filter((x) => x !== s).map((x) => x.label).sort(), `${s.label} serverSideEmitWithAck`);
      assert.ok(res.ms < REQ_TIMEOUT, `${s.label} serverSideEmitWithAck took ${Math.round(res.ms)} ms`);
    }
    assertHealthy(servers);
  });
});

// -------------------------------------------------------------------------------------------------
// (d) Bad input

describe('(d) bad input', { timeout: 30000 }, () => {
  const key = uniqueKey();

  it('redis+cluster:// with nothing listening: the node starts, the adapter emits error ERR_SIO_REDIS naming the problem, no crash', async () => {
    const [N] = await startServers([node('Nowhere', 'ours', viaUrl('redis+cluster://127.0.0.1:1'))], { key, mesh: false });
    const e = N.adapterEvents[await waitForAdapterEvent(N, 0, isError, `${N.label}: adapter 'error'`, 10000)];
    assert.equal(e.error.code, 'ERR_SIO_REDIS', eventLog(N));
    assert.match(e.error.message, /127\.0\.0\.1:1\b/, `the error should name the unreachable seed: ${e.error.message}`);
    assert.match(e.error.message, /cluster|primary/i, `the error should say it is about the cluster: ${e.error.message}`);
    // Still serving local sockets.
    const c = await N.connect('/');
    await N.command('emit', { event: 'local' });
    await c.waitForEvent('local');
    assert.equal(findEvent(N, 0, isReady), -1, eventLog(N));
    assertHealthy([N]);
    process.stderr.write(`(d) nothing listening: ${e.error.message}\n`);
  });

  it('redis+cluster:// naming a standalone Redis (cluster mode off): error ERR_SIO_REDIS saying so, no crash', async () => {
    const redis = await privateRedis();
    const [N] = await startServers([node('Standalone', 'ours', viaUrl(`redis+cluster://127.0.0.1:${redis.port}`))], { key, mesh: false });
    const e = N.adapterEvents[await waitForAdapterEvent(N, 0, isError, `${N.label}: adapter 'error'`, 10000)];
    assert.equal(e.error.code, 'ERR_SIO_REDIS', eventLog(N));
    assert.match(e.error.message, new RegExp(`127\\.0\\.0\\.1:${redis.port}`), e.error.message);
    assert.match(e.error.message, /cluster/i, `the error should say cluster mode is off: ${e.error.message}`);
    assert.equal(findEvent(N, 0, isReady), -1, eventLog(N));
    assertHealthy([N]);
    process.stderr.write(`(d) standalone: ${e.error.message}\n`);
  });

  describe('invalid seeds: TypeError with code ERR_SIO_OPTION (in-process)', () => {
    const { createAdapter } = require(OURS_MODULE);
    const { Server } = require('socket.io');
    /** createAdapter(...args) and attaching it (URL errors are found when the first adapter is made). */
    const attach = (...args) => {
      const io = new Server(); // not attached to an HTTP server: nothing to close but adapters
      io.adapter(createAdapter(...args));
      io.of('/').adapter.close(); // only reached when nothing threw (then the case fails anyway)
    };
    const cases = [
      ['createAdapter([])', [[]], /at least one seed/],
      ['#insecure without TLS (rediss:// seeds are TLS: test/tls-topologies.test.js)', ['redis+cluster://127.0.0.1:7000#insecure'], /needs TLS/],
      ['a fragment other than #insecure', ['rediss+cluster://127.0.0.1:7000#verify'], /#insecure/],
      ['a seed with a non-string host', [[{ host: 5, port: 7000 }]], /host/],
      ['a database in the URL', ['redis+cluster://127.0.0.1:7000/1'], /no databases/],
      ['no host in the URL', ['redis+cluster://'], /host/],
      ['an unknown URL parameter', ['redis+cluster://127.0.0.1:7000?foo=1'], /foo/],
    ];
    for (const [name, args, message] of cases) {
      it(name, () => {
        assert.throws(() => attach(...args), (err) => {
          assert.equal(err.code, 'ERR_SIO_OPTION', `${err.name}: ${err.message}`);
          assert.match(err.message, message);
          return true;
        });
      });
    }
  });
});

// -------------------------------------------------------------------------------------------------
// (c) Failover (kills a primary of the shared cluster: keep last)

describe('(c) kill -9 the primary ours is on: the replica takes over, ours follows by itself', { timeout: 150000 }, () => {
  const key = uniqueKey();
  let A; // ours, URL of every node, first seed = primary p0 (the one killed)
  let A1; // ours, URL with p0 as its only seed: has to find another primary through CLUSTER NODES
  let B; // ours, seeds array [p1]
  let F; // official, ioredis Cluster (a node-redis createCluster() pair does not survive a failover, see report)
  const clients = new Map(); // server → its client
  let victim;
  let killAt;
  const readyAt = new Map(); // server → its adapter's 'ready' after the kill
  let inflight = false; // A's requests and A's and B's numbered broadcasts run (from the kill step)
  const timeline = [];
  const note = (what, at = Date.now()) => timeline.push({ at, what });

  before(async () => {
    const [p0, p1] = cluster.primaries;
    const commands = { commandModules: [FAULT_COMMANDS] };
    [A, A1, B, F] = await startServers([
      node('A', 'ours', viaUrl(urlFirst(p0)), commands),
      node('A1', 'ours', viaUrl(`redis+cluster://${HOST}:${p0}`), commands),
      node('B', 'ours', viaSeeds([{ host: HOST, port: p1 }]), commands),
      node('F', 'official', viaClients('ioredis-cluster', cluster.seeds), commands),
    ], { key });
    for (const s of [A, A1, B, F]) clients.set(s, attachTally(await s.connect('/'), NUMBERED));
  });

  after(async () => {
    // A step that failed half-way must not leave the traffic running.
    if (inflight) {
      await A.command('requestsStop', { tag: 'inflight' }).catch(() => {});
      for (const s of [A, B]) await s.command('trafficStop', { event: `${NUMBERED}${s.label}` }).catch(() => {});
    }
  });

  after(() => {
    if (timeline.length) {
      const lines = timeline.sort((x, y) => x.at - y.at).map((e) => `+${e.at - killAt} ms ${e.what}`);
      process.stderr.write(`(c) timeline after kill -9 of ${victim}:\n  ${lines.join('\n  ')}\n`);
    }
  });

  it('before the kill: A and A1 on the first primary, B on the second; broadcasts cross', async () => {
    const [p0, p1] = cluster.primaries;
    assert.equal(await homeOf(A, key), p0);
    assert.equal(await homeOf(A1, key), p0);
    assert.equal(await homeOf(B, key), p1);
    process.stderr.write(`(c) A, A1 on ${p0}, B on ${p1}, F on ${await homeOf(F, key)}\n`);
    for (const [from, to] of [[A, B], [B, A], [A1, B], [B, A1], [A, F], [F, A]]) {
      await crossing(from, clients.get(to), `pre-${from.label}-${to.label}`, 5000);
    }
  });

  it('after kill -9 of that primary A and A1 emit error then ready, and broadcasts cross with B within 30 s', async () => {
    victim = await homeOf(A, key);
    assert.ok(victim, 'A is subscribed on one node');
    // In flight across the failover (checked by the next step): A's requests, A's and B's broadcasts.
    for (const s of [A1, B, F]) await s.command('onServerEvent', { event: 'faults-ack', reply: s.label });
    inflight = true;
    await startRequests(A, 'inflight', { intervalMs: 100 });
    for (const s of [A, B]) await s.command('trafficStart', { event: `${NUMBERED}${s.label}`, intervalMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const marks = new Map([A, A1].map((s) => [s, s.adapterEvents.length]));
    killAt = Date.now();
    await cluster.kill(victim);
    note(`killed ${victim} (process gone, port refusing)`);
    const failover = cluster.waitForFailover(victim, FAILOVER_BOUND).then((r) => {
      note(`cluster agreed: ${r.promoted} (replica of ${victim}) promoted; primaries ${r.topology.primaries.join(', ')}`);
      return r;
    });
    failover.catch(() => {});

    const remaining = () => Math.max(1000, FAILOVER_BOUND - (Date.now() - killAt));
    await Promise.all([A, A1].map(async (s) => {
      const mark = marks.get(s);
      const err = s.adapterEvents[await waitForAdapterEvent(s, mark, isError, `${s.label}: adapter 'error' after the kill`, remaining())];
      note(`${s.label} error [${err.error.code}] ${err.error.message}`, err.at);
      assert.ok(isRedisError(err), eventLog(s, mark));
      const errIdx = findEvent(s, mark, isError);
      const ready = s.adapterEvents[await waitForAdapterEvent(s, errIdx + 1, isReady, `${s.label}: adapter 'ready' after the error`, remaining())];
      note(`${s.label} ready`, ready.at);
      readyAt.set(s, ready.at);
      for (const [from, to] of [[s, B], [B, s]]) {
        const ms = await crossing(from, clients.get(to), `post-${from.label}-${to.label}`, remaining());
        note(`${from.label} → ${to.label} crossed (${ms} ms after the first try)`);
      }
    }));

    const topology = await cluster.topology();
    for (const s of [A, A1]) {
      const home = await waitUntil(() => homeOf(s, key), { timeoutMs: 5000, what: `${s.label} subscribed on exactly one node` });
      note(`${s.label} now subscribed on ${home} (${role(home, topology)})`);
      assert.notEqual(home, victim);
      assert.equal(role(home, topology), 'primary', `${s.label} should be on a primary: ${JSON.stringify(topology)}`);
    }
    assert.equal(await homeOf(B, key), cluster.primaries[1], 'B did not move');
    await failover;
    assertHealthy([A, A1, B]);
  });

  it('in flight: A\'s requests (every 100 ms) from before the kill until after recovery each settle within requestsTimeout + 500 ms and succeed again; no broadcast reaches an ours client twice', async (t) => {
    assert.ok(readyAt.has(A) && readyAt.has(A1), 'needs the failover step');
    const recoveredAt = Math.max(readyAt.get(A), readyAt.get(A1));
    // After recovery A, A1 and B answer for sure; F (ioredis Cluster) comes back at its own pace.
    const accept = (r) => (r.kind === 'serverSideEmitWithAck' ? ['A1', 'B'].every((x) => r.value.includes(x)) : r.value >= 3);
    const run = await stopWhenSucceeding(A, 'inflight', { from: recoveredAt, accept, timeoutMs: 20000, settleMs: REQ_TIMEOUT + REQ_SLACK + 300 });
    const sent = {};
    for (const s of [A, B]) sent[s.label] = (await s.command('trafficStop', { event: `${NUMBERED}${s.label}` })).sentAt.length;
    inflight = false;
    const s = summarize(run.records, { bound: REQ_TIMEOUT + REQ_SLACK, killAt, recoveredAt });
    const all = [A, A1, B, F];
    const lost = [A, B].flatMap((from) => all.filter((to) => to !== from).map((to) =>
      `${from.label}→${to.label} ${streamStats(clients.get(to), `${NUMBERED}${from.label}`, sent[from.label]).lost}/${sent[from.label]}`));
    const dups = new Map(all.map((x) => [x, dupsOf(clients.get(x), NUMBERED)]));
    t.diagnostic(`requests of A (kill at +0, A and A1 ready at +${recoveredAt - killAt} ms, stopped at +${run.stoppedAt - killAt} ms): ${s.line}`);
    t.diagnostic(`request errors: ${s.errors.slice(0, 6).join(' | ') || 'none'}`);
    t.diagnostic(`broadcasts during the failover (every 20 ms): lost ${lost.join(', ')}; duplicates ${all.map((x) => `${x.label} ${dups.get(x).dups}`).join(', ')}`);
    note(`A's requests stopped (succeeding again: ${run.succeeding})`, run.stoppedAt);
    assert.deepEqual(s.lateDetail, [], `${s.overran.length} of A's ${run.records.length} requests settled later than requestsTimeout ${REQ_TIMEOUT} + ${REQ_SLACK} ms or never\n${s.line}\n${eventLog(A)}`);
    assert.ok(run.succeeding, `A's requests did not succeed again (3 in a row of each kind) within 20 s of A and A1 being ready\n${s.line}\nerrors: ${s.errors.join(' | ')}\n` +
      `last: ${JSON.stringify(run.records.slice(-6))}\n${eventLog(A)}`);
    for (const x of [A, A1, B]) assert.equal(dups.get(x).dups, 0, `duplicate deliveries at the client of ${x.label} during the failover: ${dups.get(x).detail.join(', ')}`);
  });

  it('after the failover: serverCount/fetchSockets from every ours node see all 4 nodes', async () => {
    const expected = [...clients.values()].map((c) => c.serverSocketId).sort();
    for (const s of [A, A1, B]) {
      await waitUntil(async () => {
        const r = await s.command('serverCount', {});
        return r.ok && r.value === 4 ? r : null;
      }, { timeoutMs: 10000, intervalMs: 100, what: `${s.label} serverCount() === 4` });
      note(`${s.label} serverCount 4`);
      const res = await s.command('fetchSockets', {});
      assert.equal(res.ok, true, `${s.label}: ${JSON.stringify(res)}\n${eventLog(s)}`);
      assert.deepEqual(res.value.map((x) => x.id).sort(), expected);
    }
    assertHealthy([A, A1, B]);
  });

  it('after the failover: broadcasts cross between ours and the official node (ioredis Cluster), and its requests see 4 nodes', async () => {
    const remaining = () => Math.max(5000, FAILOVER_BOUND - (Date.now() - killAt));
    for (const [from, to] of [[A, F], [F, A], [A1, F], [F, A1]]) {
      const ms = await crossing(from, clients.get(to), `post-${from.label}-${to.label}`, remaining());
      note(`${from.label} → ${to.label} crossed (${ms} ms after the first try)`);
    }
    // The official adapter asks every node ioredis knows, the dead one included until ioredis
    // refreshed its slots ("Connection is closed."): poll.
    let last;
    await waitUntil(async () => {
      last = await F.command('fetchSockets', {});
      return last.ok && last.value.length === 4;
    }, { timeoutMs: remaining(), intervalMs: 200, what: 'F fetchSockets() returns 4 sockets' }).catch((err) => {
      assert.fail(`${err.message}; last: ${JSON.stringify(last)}`);
    });
    note('F fetchSockets sees 4 sockets');
    assertHealthy([A, A1, B, F]);
  });

  it('the killed node restarts and rejoins as a replica: numbered broadcasts from A, A1, B and F reach every client exactly once; no ours client got anything twice since the kill', async (t) => {
    assert.ok(victim && readyAt.has(A), 'needs the failover step');
    const restartAt = Date.now();
    await cluster.nodes.get(victim).start();
    const topology = await cluster.waitForAgreement(30000, `the restarted ${victim} to rejoin`);
    note(`${victim} restarted and agreed (${role(victim, topology)})`);
    assert.equal(role(victim, topology), 'replica', `the restarted ${victim}: ${JSON.stringify(topology)}`);
    const all = [A, A1, B, F];
    const cls = all.map((x) => clients.get(x));
    for (const s of all) await s.command('emitNumbered', { event: `${NUMBERED}after-${s.label}`, count: AFTER_COUNT, intervalMs: 5 });
    const complete = (c, s) => () => streamStats(c, `${NUMBERED}after-${s.label}`, AFTER_COUNT).received >= AFTER_COUNT;
    await Promise.all(all.flatMap((s) => cls.map((c) => c.waitFor(complete(c, s), 5000, `${NUMBERED}after-${s.label}`).catch(() => {}))));
    for (const s of all) await s.flush(cls, 5000).catch(() => {});
    const got = {};
    for (const s of all) for (const c of cls) got[`${s.label}→${c.server.label}`] = streamStats(c, `${NUMBERED}after-${s.label}`, AFTER_COUNT);
    const dups = new Map(all.map((x) => [x, dupsOf(clients.get(x), NUMBERED)]));
    t.diagnostic(`${victim} rejoined as a replica ${Date.now() - restartAt} ms after its restart; ` +
      `${Object.entries(got).map(([k, v]) => `${k} ${v.received}/${AFTER_COUNT}${v.dups ? ` (+${v.dups} dups)` : ''}`).join(', ')}; ` +
      `duplicates since the kill: ${all.map((x) => `${x.label} ${dups.get(x).dups}`).join(', ')}; ` +
      `subscribers of ${key}-request#/#: ${JSON.stringify(await subscribersOf(`${key}-request#/#`))}`);
    const wrong = Object.entries(got).filter(([k]) => k !== 'F→F').filter(([, v]) => v.received !== AFTER_COUNT || v.dups)
      .map(([k, v]) => `${k}: ${v.received}/${AFTER_COUNT} received, ${v.dups} duplicates`);
    assert.deepEqual(wrong, [], `after the killed node rejoined\n${eventLog(A)}\n${eventLog(A1)}`);
    for (const x of [A, A1, B]) assert.equal(dups.get(x).dups, 0, `duplicate deliveries at the client of ${x.label} since the kill: ${dups.get(x).detail.join(', ')}`);
    assertHealthy([A, A1, B]);
  });
});
