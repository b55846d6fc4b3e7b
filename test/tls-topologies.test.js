'use strict';
// TLS on every topology, against TLS-ONLY redis-servers (`--port 0 --tls-port P`: a client
// speaking plaintext gets nothing at all), next to the official adapter on the same servers.
// Certificates are made at test time (helpers/tls-redis.js: a throwaway CA no system trusts, a
// server certificate with SAN IP:127.0.0.1 + DNS:localhost, and a "wrong" one whose only SAN is
// DNS:wrong.example). One file-wide set of servers: a 3-primary Redis Cluster (bus and replication
// over TLS too), a Sentinel deployment (primary, replica, 3 sentinels, all TLS; the sentinels also
// have a plaintext port for the `?sentinelTls=false` case), and a standalone server with the wrong
// certificate. Every describe / test has its own key.
//
// 1. Cluster, classic pub/sub (createAdapter): official O (node-redis createCluster with TLS
//    defaults and the CA), ours A (`{ url: 'rediss+cluster://…', socket: { tls: true, ca } }`),
//    ours B (node-redis createCluster TLS client): io.emit / io.to(room).emit from each node
//    reach every client exactly once, fetchSockets (all and in a room) and serverSideEmitWithAck
//    from each node see all of them. Then ours C (ioredis Cluster with `redisOptions.tls.ca`)
//    joins and the same checks run on the four nodes.
// 2. Cluster, sharded pub/sub (createShardedAdapter, subscriptionMode 'dynamic'): official O
//    (node-redis TLS cluster), ours A (`{ url: 'rediss+cluster://…', tls: { ca } }`), ours B
//    (node-redis TLS cluster client): the same checks (room channels waited on with PUBSUB
//    SHARDNUMSUB). Then ours C given a node-redis createCluster whose only TLS settings are in
//    `rootNodes: [{ socket: { host, port, tls: true, ca } }]` (never connected: node-redis itself
//    would reach the discovered nodes in plaintext; ours only reads its settings).
// 3. Sentinel: official O (ioredis `{ sentinels, name, tls: { ca }, enableTLSForSentinelMode,
//    sentinelTLS: { ca } }`), ours A (`{ url: 'rediss+sentinel://…/mymaster', tls: { ca } }`),
//    ours B (the ioredis-style settings object itself): the same checks. Then ours C (a connected
//    ioredis client with those settings) and ours D (`rediss+sentinel://` on the sentinels'
//    plaintext ports with `?sentinelTls=false`, data node over TLS) each join and the checks run.
//    Last, SENTINEL FAILOVER: once the sentinels name the former replica, broadcasts cross between
//    all nodes again (within 30 s) and the checks pass (adapter errors during it are allowed).
// 4. Failures (ours only):
//    - missing CA (system roots only) — `rediss+cluster://` URL, a seeds array of `rediss://`
//      URLs, `rediss+sentinel://` URL, `?sentinelTls=false` on the plaintext sentinel ports (the
//      data node's certificate fails) and `redis+sentinel://…?sentinelTls=true` (the sentinels'
//      certificate fails): each emits 'error' ERR_SIO_REDIS about the certificate, never 'ready';
//      nothing crosses between them and official nodes on the same key; Redis counts only the
//      official nodes as subscribers;
//    - hostname mismatch: `{ url: 'rediss://127.0.0.1:P', tls: { ca } }` against the wrong-name
//      certificate: 'error' about the name/certificate, never 'ready', nothing delivered; the same
//      server with `rediss://127.0.0.1:P#insecure` connects and exchanges broadcasts with an
//      official node (ioredis verifying the certificate under servername 'wrong.example'), and
//      that process emitted exactly one SIO_TLS_INSECURE warning (the mismatching one none);
//    - ioredis Sentinel settings with `tls` but without `enableTLSForSentinelMode` (as a plain
//      object and as an ioredis client): ERR_SIO_OPTION, never a plaintext connection.
//
// SIO_TLS_SELF_CHECK=1: every ours node of 1-3 is replaced by an official node on the official
// node's client settings and the failures of 4 (ours only) are skipped: checks the servers and the
// harness without ours.
//
// Run: node --test test/tls-topologies.test.js (from the repository root).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const { uniqueKey, startServer, startServers, awaitMesh, waitUntil, stopAll } = require('./helpers/cluster');
const { makeCerts, startTlsCluster, startTlsSentinel, startTlsServer, stopAllTls } = require('./helpers/tls-redis');
const { adapterEventHelpers, isRedisError } = require('./helpers/adapter-events');

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
const TLS_COMMANDS = path.join(__dirname, 'helpers', 'tls-commands.js');
const SELF_CHECK = process.env.SIO_TLS_SELF_CHECK === '1';
const HOST = '127.0.0.1';
const REQ_TIMEOUT = 3000;
/** How long an ours node has to report its first 'error'. */
const ERROR_WAIT = 15000;
/** Missing / untrusted CA as ours reports it (rustls: UnknownIssuer, "invalid peer certificate"). */
const CERT_RE = /certificate|UnknownIssuer|invalid peer/i;
/** A certificate for another name (rustls: NotValidForName). */
const NAME_RE = /NotValidForName|not valid for name|hostname|certificate/i;

const t0 = Date.now();
const rel = (at) => `+${((at - t0) / 1000).toFixed(3)}s`;
const { eventLog, waitForAdapterEvent } = adapterEventHelpers({ nsp: '/', at: rel, timeoutMs: ERROR_WAIT });

let certs;
let cluster; // TLS-only Redis Cluster, 3 primaries
let dep; // TLS-only Sentinel deployment (sentinels with a plaintext port as well)
let wrong; // standalone TLS-only server with the wrong-name certificate

before(async () => {
  const start = Date.now();
  certs = makeCerts();
  // allSettled: whatever did start is tracked (and stopped by stopAllTls) before a failure is thrown.
  const started = await Promise.allSettled([
    startTlsCluster(certs),
    startTlsSentinel(certs, { plainSentinelPorts: true }),
    startTlsServer(certs.wrong, { label: 'wrong-name TLS redis-server' }),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  [cluster, dep, wrong] = started.map((r) => r.value);
  process.stderr.write(`# TLS servers up in ${Date.now() - start} ms: cluster ${cluster.url}; sentinel ${dep.url} ` +
    `(primary :${dep.primary.port}, replica :${dep.replica.port}; plaintext sentinel ports ` +
    `${dep.sentinels.map((s) => s.plainPort).join(',')}); wrong-name ${wrong.url}${SELF_CHECK ? '; SIO_TLS_SELF_CHECK: official nodes only' : ''}\n`);
});

after(async () => {
  try {
    await stopAll();
  } finally {
    await stopAllTls();
  }
});

// -------------------------------------------------------------------------------------------------
// Client settings (JSON: they travel to the server processes in their config)

/** node-redis createCluster options: every node over TLS (`defaults.socket`), verified with the test CA. */
const nodeRedisClusterTls = () => ({
  rootNodes: cluster.ports.map((port) => ({ url: `rediss://${HOST}:${port}` })),
  defaults: { socket: { tls: true, ca: certs.ca } },
});
/** node-redis createCluster options with TLS only in the root nodes' own socket settings. */
const nodeRedisClusterRootSocketTls = () => ({
  rootNodes: cluster.ports.map((port) => ({ socket: { host: HOST, port, tls: true, ca: certs.ca } })),
});
/** ioredis Cluster (helpers/server.js `{ nodes, options }`): `redisOptions.tls.ca`. */
const ioredisClusterTls = () => ({ nodes: cluster.seeds, options: { redisOptions: { tls: { ca: certs.ca } } } });
/** ioredis Sentinel settings: TLS to the data nodes (`tls` + `enableTLSForSentinelMode`) and to the sentinels (`sentinelTLS`). */
const ioredisSentinelTls = () => ({ ...dep.ioredisOptions, tls: { ca: certs.ca }, enableTLSForSentinelMode: true, sentinelTLS: { ca: certs.ca } });

/** Server spec: namespace '/' only, adapter events reported, process warnings recorded. */
function spec(label, adapter, source, extra = {}) {
  return { label, adapter, namespaces: ['/'], adapterEvents: true, requestsTimeout: REQ_TIMEOUT, commandModules: [TLS_COMMANDS], ...source, ...extra };
}
/** Ours given `settings` itself (no Redis client in its process). */
const viaSettings = (settings) => ({ redisUrl: settings, redisClients: false });
/** Clients of kind `client` made (and connected, unless `connect` is false) by the server from `settings`. */
const viaClients = (client, settings, connect = true) => ({ client, redisUrl: settings, ...(connect ? {} : { connectClients: false }) });

/** An ours node, or with SIO_TLS_SELF_CHECK an official node on `officialSource` instead. */
function ours(label, source, officialSource, extra = {}) {
  return SELF_CHECK ? spec(label, 'official', officialSource, extra) : spec(label, 'ours', source, extra);
}

function assertHealthy(servers) {
  for (const s of servers) {
    assert.ok(s.alive, `${s.label} exited: ${s.describeState()}`);
    assert.deepEqual(s.uncaught, [], `${s.label}: ${s.describeState()}`);
  }
}

/**
 * Ours nodes reported no adapter 'error' (the TLS connections never failed) since index
 * `from(server)` of their adapter events (default: ever).
 */
function assertNoAdapterErrors(servers, from = () => 0) {
  for (const s of servers.filter((x) => x.config.adapter === 'ours')) {
    assert.equal(s.adapterEvents.slice(from(s)).filter((e) => e.event === 'error').length, 0, eventLog(s));
  }
}

/** A command whose settled result ({ ok, value | error, ms }) must be ok; returns the value. */
async function ok(server, name, payload, timeoutMs = REQ_TIMEOUT + 3000) {
  const res = await server.command(name, payload, timeoutMs);
  assert.equal(res.ok, true, `${server.label} ${name}(${JSON.stringify(payload)}): ${JSON.stringify(res)}\n${eventLog(server)}`);
  return res.value;
}

// -------------------------------------------------------------------------------------------------
// A mesh of nodes on one key, and the checks run on it

/**
 * The nodes of one key, each with two clients (one in room 'r'). `check()` runs the broadcast and
 * request checks over every node; nodes can join (`add`) and leave (`remove`) between checks.
 * `roomsReady(mesh)`: waits until a room join is visible to the other nodes (sharded: the room's
 * shard channel has every node's subscription).
 */
class Mesh {
  constructor({ roomsReady = null } = {}) {
    this.servers = [];
    this.inRoom = new Map();
    this.outside = new Map();
    this.round = 0;
    this.roomsReady = roomsReady;
    this.errorsFrom = new Map(); // server → index of its adapter events from which an 'error' fails check()
  }

  /** Adapter errors reported so far (e.g. during a failover) no longer fail check(). */
  forgiveErrorsSoFar() {
    for (const s of this.servers) this.errorsFrom.set(s, s.adapterEvents.length);
  }

  clients() {
    return [...this.inRoom.values(), ...this.outside.values()];
  }

  async add(servers) {
    for (const s of [].concat(servers)) {
      const [a, b] = await Promise.all([s.connect('/'), s.connect('/')]);
      await s.command('join', { socketId: a.serverSocketId, rooms: 'r' });
      this.servers.push(s);
      this.inRoom.set(s, a);
      this.outside.set(s, b);
    }
    if (this.roomsReady) await this.roomsReady(this);
  }

  /** Closes the server's clients and stops it; resolves with ServerHandle#stop's result. */
  async remove(server) {
    for (const clients of [this.inRoom, this.outside]) {
      if (clients.has(server)) clients.get(server).close();
      clients.delete(server);
    }
    this.servers = this.servers.filter((s) => s !== server);
    return server.stop();
  }

  /** Broadcasts (exactly once, rooms honoured), fetchSockets, serverSideEmitWithAck from every node. */
  async check(t) {
    const round = ++this.round;
    const clients = this.clients();
    const labels = this.servers.map((s) => s.label);
    // Broadcasts: io.emit and io.to('r').emit from every node. Each client waits for what it must
    // get, then a barrier from every node, then the counts. (Not the barrier alone: a node-redis
    // cluster client sends each PUBLISH of the official adapter to a random node, so two broadcasts
    // of one node may reach the others in either order.)
    const member = (c) => [...this.inRoom.values()].includes(c);
    for (const s of this.servers) {
      await s.command('emit', { event: `all${round}:${s.label}`, args: [s.label] });
      await s.command('emit', { event: `room${round}:${s.label}`, to: 'r', args: [s.label] });
    }
    await Promise.all(clients.map((c) => {
      const expected = this.servers.flatMap((s) => [`all${round}:${s.label}`, ...(member(c) ? [`room${round}:${s.label}`] : [])]);
      return c.waitFor((events) => expected.every((e) => events.some((x) => x.event === e)), REQ_TIMEOUT + 5000, `round ${round} broadcasts`).catch(() => {});
    }));
    for (const s of this.servers) await s.flush(clients, REQ_TIMEOUT + 5000);
    const problems = [];
    for (const s of this.servers) {
      for (const c of clients) {
        const all = c.received(`all${round}:${s.label}`).length;
        const room = c.received(`room${round}:${s.label}`).length;
        const inR = member(c);
        if (all !== 1) problems.push(`${s.label} io.emit → ${inR ? 'room' : 'other'} client of ${c.server.label}: ${all} times`);
        if (room !== (inR ? 1 : 0)) problems.push(`${s.label} io.to('r').emit → ${inR ? 'room' : 'other'} client of ${c.server.label}: ${room} times`);
      }
    }
    assert.deepEqual(problems, [], `round ${round}: deliveries other than exactly once:\n  ${problems.join('\n  ')}\n` +
      this.servers.map((s) => eventLog(s)).join('\n'));

    // fetchSockets (every socket; the room) from every node.
    const ids = clients.map((c) => c.serverSocketId).sort();
    const roomIds = [...this.inRoom.values()].map((c) => c.serverSocketId).sort();
    for (const s of this.servers) {
      const every = await ok(s, 'fetchSockets', {});
      assert.deepEqual(every.map((x) => x.id).sort(), ids, `fetchSockets from ${s.label}`);
      const inR = await ok(s, 'fetchSockets', { in: 'r' });
      assert.deepEqual(inR.map((x) => x.id).sort(), roomIds, `fetchSockets in 'r' from ${s.label}`);
    }

    // serverSideEmitWithAck from every node: every other node answers with its label.
    for (const s of this.servers) await s.command('onServerEvent', { event: 'tls-ping', reply: s.label });
    for (const s of this.servers) {
      const replies = await ok(s, 'serverSideEmit', { event: 'tls-ping', args: [s.label, round], mode: 'promise' });
      assert.deepEqual([...replies].sort(), labels.filter((l) => l !== s.label).sort(), `serverSideEmitWithAck from ${s.label}`);
    }
    assertHealthy(this.servers);
    assertNoAdapterErrors(this.servers, (s) => this.errorsFrom.get(s) || 0);
    t.diagnostic(`round ${round}: ${labels.join(', ')}: ${clients.length} clients, broadcasts exactly once, fetchSockets and serverSideEmitWithAck OK`);
  }
}

/** Subscribers of `channel` (classic pub/sub) summed over every cluster node (PUBSUB NUMSUB is per node). */
async function clusterNumsub(channel) {
  let n = 0;
  for (const port of cluster.livePorts) n += Number((await cluster.command(port, ['PUBSUB', 'NUMSUB', channel]))[1]);
  return n;
}

/** Subscribers of shard channel `channel`, summed over every cluster node. */
async function clusterShardNumsub(channel) {
  let n = 0;
  for (const port of cluster.livePorts) {
    const reply = await cluster.command(port, ['PUBSUB', 'SHARDNUMSUB', channel]);
    if (!(reply instanceof Error)) n += Number(reply[1]);
  }
  return n;
}

/**
 * The nodes of `specs` start (on `common`, e.g. { key }) and join `mesh` (once their broadcasts
 * cross with every node's of it), and the checks run; they stay in the mesh.
 */
async function joinAndCheck(t, mesh, specs, common = {}) {
  assert.ok(mesh.servers.length > 0, 'the official node did not start');
  const servers = await startServers(specs, { ...common, mesh: false });
  try {
    await awaitMesh([...mesh.servers, ...servers], ['/']);
  } catch (err) {
    // Nodes that do not reach the others leave, so that they cannot disturb the tests after.
    const states = servers.map((s) => `${eventLog(s)}\n${s.describeState()}`).join('\n');
    await Promise.all(servers.map((s) => s.stop()));
    throw new Error(`${err.message}\n${states}`);
  }
  await mesh.add(servers);
  await mesh.check(t);
  return servers;
}

/**
 * Ours' `extraSpec` joins `mesh` (which holds the official node, and ours' nodes of the test
 * before unless they failed to start), the checks run, then it leaves (also when they fail).
 */
async function joinCheckLeave(t, mesh, extraSpec) {
  const before = new Set(mesh.servers);
  let passed = false;
  try {
    await joinAndCheck(t, mesh, [extraSpec]);
    passed = true;
  } finally {
    for (const s of mesh.servers.filter((x) => !before.has(x))) {
      const stopped = await mesh.remove(s);
      if (passed) assert.equal(stopped.closeError, null, `${s.label} close: ${stopped.closeError && stopped.closeError.message}`);
    }
  }
}

// -------------------------------------------------------------------------------------------------
// 1. Cluster, classic pub/sub

describe('TLS Redis Cluster, classic pub/sub: ours (rediss+cluster:// URL, node-redis and ioredis TLS clusters) next to official (node-redis TLS cluster)', { timeout: 90000 }, () => {
  const key = uniqueKey();
  const mesh = new Mesh();
  const official = () => viaClients('node-redis-cluster', nodeRedisClusterTls());

  it('official node on a node-redis createCluster with TLS defaults subscribes over TLS', async (t) => {
    const O = await startServer(spec('O', 'official', official(), { key }));
    await waitUntil(async () => (await clusterNumsub(`${key}-request#/#`)) === 1, { timeoutMs: 10000, what: `O subscribed to ${key}-request#/#` });
    await mesh.add(O);
    await mesh.check(t);
  });

  it('ours A (URL + CA in settings) and B (node-redis TLS cluster client): broadcasts exactly once, fetchSockets, serverSideEmitWithAck', async (t) => {
    await joinAndCheck(t, mesh, [
      ours('A', viaSettings({ url: cluster.url, socket: { tls: true, ca: certs.ca } }), official()),
      ours('B', viaClients('node-redis-cluster', nodeRedisClusterTls()), official()),
    ], { key });
    assert.equal(await clusterNumsub(`${key}-request#/#`), 3, 'subscribers of the request channel over the cluster');
  });

  it('ours C (ioredis Cluster with redisOptions.tls.ca) joins: the same checks', async (t) => {
    await joinCheckLeave(t, mesh, ours('C', viaClients('ioredis-cluster', ioredisClusterTls()), official(), { key }));
  });
});

// -------------------------------------------------------------------------------------------------
// 2. Cluster, sharded pub/sub

describe('TLS Redis Cluster, sharded pub/sub: ours createShardedAdapter (rediss+cluster:// URL, node-redis TLS clusters) next to official createShardedAdapter', { timeout: 90000 }, () => {
  const prefix = uniqueKey();
  const roomChannel = `${prefix}#/#r#`;
  const mesh = new Mesh({
    // Official (and ours) SSUBSCRIBE a room's channel when it is created: wait until every node did.
    roomsReady: (m) => waitUntil(async () => (await clusterShardNumsub(roomChannel)) >= m.servers.length, {
      timeoutMs: 10000, intervalMs: 50, what: `${m.servers.length} subscribers of shard channel ${roomChannel}`,
    }),
  });
  const sharded = { key: prefix, adapterFactory: 'sharded', channelPrefix: prefix, subscriptionMode: 'dynamic' };
  const official = () => viaClients('node-redis-cluster', nodeRedisClusterTls());

  it('official createShardedAdapter on a node-redis TLS cluster subscribes its shard channels over TLS', async (t) => {
    const O = await startServer(spec('O', 'official', official(), sharded));
    await waitUntil(async () => (await clusterShardNumsub(`${prefix}#/#`)) === 1, { timeoutMs: 10000, what: `O subscribed to ${prefix}#/#` });
    await mesh.add(O);
    await mesh.check(t);
  });

  it('ours A (URL + CA in settings) and B (node-redis TLS cluster client): broadcasts exactly once, fetchSockets, serverSideEmitWithAck', async (t) => {
    await joinAndCheck(t, mesh, [
      ours('A', viaSettings({ url: cluster.url, tls: { ca: certs.ca } }), official(), sharded),
      ours('B', viaClients('node-redis-cluster', nodeRedisClusterTls()), official(), sharded),
    ]);
    assert.equal(await clusterShardNumsub(`${prefix}#/#`), 3, `subscribers of shard channel ${prefix}#/#`);
  });

  it("ours C (node-redis createCluster with TLS only in rootNodes' socket settings, not connected) joins: the same checks", async (t) => {
    await joinCheckLeave(t, mesh, ours('C', viaClients('node-redis-cluster', nodeRedisClusterRootSocketTls(), false), official(), sharded));
  });
});

// -------------------------------------------------------------------------------------------------
// 3. Sentinel

describe('TLS Sentinel: ours (rediss+sentinel:// URL, ioredis-style settings and client, sentinelTls=false) next to official (ioredis Sentinel TLS)', { timeout: 90000 }, () => {
  const key = uniqueKey();
  const mesh = new Mesh();
  const official = () => viaClients('ioredis', ioredisSentinelTls());
  const channel = `${key}-request#/#`;
  const numsub = async (port) => Number((await dep.command(port, ['PUBSUB', 'NUMSUB', channel]))[1]);
  const primaryNumsub = async () => numsub(await dep.primaryPort());

  it('official node on ioredis Sentinel clients (tls + enableTLSForSentinelMode + sentinelTLS) subscribes on the primary over TLS', async (t) => {
    const O = await startServer(spec('O', 'official', official(), { key }));
    await waitUntil(async () => (await primaryNumsub()) === 1, { timeoutMs: 10000, what: `O subscribed to ${channel} on the primary :${dep.primary.port}` });
    await mesh.add(O);
    await mesh.check(t);
  });

  it('ours A (rediss+sentinel:// URL + CA in settings) and B (ioredis-style settings object): broadcasts exactly once, fetchSockets, serverSideEmitWithAck', async (t) => {
    await joinAndCheck(t, mesh, [
      ours('A', viaSettings({ url: dep.url, tls: { ca: certs.ca } }), official()),
      ours('B', viaSettings(ioredisSentinelTls()), official()),
    ], { key });
    assert.equal(await numsub(dep.primary.port), 3, `subscribers of ${channel} on the primary`);
    assert.equal(await numsub(dep.replica.port), 0, `subscribers of ${channel} on the replica`);
  });

  it('ours C (a connected ioredis client with the Sentinel TLS settings) joins: the same checks', async (t) => {
    await joinCheckLeave(t, mesh, ours('C', viaClients('ioredis', ioredisSentinelTls()), official(), { key }));
  });

  it('ours D (rediss+sentinel:// on the plaintext sentinel ports, ?sentinelTls=false; data node over TLS) joins: the same checks', async (t) => {
    const url = `${dep.plainSentinelUrl}?sentinelTls=false`;
    await joinCheckLeave(t, mesh, ours('D', viaSettings({ url, tls: { ca: certs.ca } }), official(), { key }));
  });

  // Last: it swaps the primary and the replica for the rest of the file.
  it('SENTINEL FAILOVER: every node follows the new primary (over TLS) and the checks pass again', async (t) => {
    const before = await dep.primaryPort();
    const next = before === dep.primary.port ? dep.replica.port : dep.primary.port;
    const start = Date.now();
    await dep.command(dep.sentinels[0].port, ['SENTINEL', 'FAILOVER', dep.name]);
    await dep.waitForPrimary(next, 20000);
    const switched = Date.now() - start;
    await awaitMesh(mesh.servers, ['/'], 30000).catch(async (err) => {
      throw new Error(`${err.message}\n${mesh.servers.map((s) => eventLog(s)).join('\n')}\nSentinel deployment:\n${await dep.describe()}`);
    });
    const crossed = Date.now() - start;
    const ready = mesh.servers.filter((s) => s.config.adapter === 'ours').map((s) => {
      const errors = s.adapterEvents.filter((e) => e.event === 'error' && e.at >= start).length;
      const readies = s.adapterEvents.filter((e) => e.event === 'ready' && e.at >= start).length;
      return `${s.label}: ${errors} error(s), ${readies} ready`;
    });
    mesh.forgiveErrorsSoFar();
    // Right after the switch a node may still publish on the demoted primary (ours moves within
    // a second, the official ioredis client when Sentinel kills its connection), so a request
    // can miss an answer: the checks must pass again within 20 s of the failover.
    let rounds = 0;
    for (;;) {
      rounds += 1;
      try {
        await mesh.check(t);
        break;
      } catch (err) {
        if (Date.now() - start > 20000) throw err;
        t.diagnostic(`check round ${rounds} after the failover failed (retried): ${String(err.message).split('\n')[0]}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        mesh.forgiveErrorsSoFar();
      }
    }
    t.diagnostic(`checks passed again after the failover in round ${rounds}, ${Date.now() - start} ms after it began`);
    // Every node is subscribed once, on the new primary or (Redis 7.0's Sentinel does not kill the
    // pubsub clients of the demoted primary; what is published on the new primary is replicated to
    // them) still on the former one: reported, not asserted.
    const where = async () => ({ [next]: await numsub(next), [before]: await numsub(before) });
    await waitUntil(async () => Object.values(await where()).reduce((a, b) => a + b, 0) === mesh.servers.length, {
      timeoutMs: 10000, what: `${mesh.servers.length} subscribers of ${channel} on :${next} and :${before} together`,
    });
    t.diagnostic(`failover :${before} → :${next}: sentinels agreed after ${switched} ms, broadcasts crossed between all nodes after ${crossed} ms; ` +
      `subscribers of the request channel on the new primary :${next} / former :${before}: ${Object.values(await where()).join(' / ')}` +
      `${ready.length ? `; ${ready.join(', ')}` : ''}`);
  });
});

// -------------------------------------------------------------------------------------------------
// 4. Failures

/**
 * Waits for `server`'s first adapter 'error' (ERR_SIO_REDIS) and checks its message against `re`;
 * returns the messages seen so far.
 */
async function expectTlsError(server, re) {
  await waitForAdapterEvent(server, 0, isRedisError, `${server.label}: adapter 'error' ERR_SIO_REDIS`);
  const errors = server.adapterEvents.filter((e) => e.event === 'error');
  assert.ok(errors.every((e) => e.error && e.error.code === 'ERR_SIO_REDIS'), eventLog(server));
  assert.match(errors[0].error.message, re, `${server.label}: the error should say what failed\n${eventLog(server)}`);
  return errors.map((e) => e.error.message);
}

const readyEvents = (server) => server.adapterEvents.filter((e) => e.event === 'ready' || e.event === 'readyPromise');

/**
 * Nothing crosses between `bad` nodes and `good` nodes (all on one key): every node emits, each
 * good node's barrier to its own client passes, and after `settleMs` more no client got an event
 * from the other side.
 */
async function expectIsolated(bad, good, settleMs = 1500) {
  const clients = new Map();
  for (const s of [...bad, ...good]) clients.set(s, await s.connect('/'));
  for (const s of [...bad, ...good]) await s.command('emit', { event: `from:${s.label}` });
  for (const s of good) await s.flush([clients.get(s)], REQ_TIMEOUT + 5000);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const leaks = [];
  for (const from of [...bad, ...good]) {
    for (const [to, c] of clients) {
      if (to === from || bad.includes(from) === bad.includes(to)) continue;
      const n = c.received(`from:${from.label}`).length;
      if (n !== 0) leaks.push(`${from.label} → client of ${to.label}: ${n}`);
    }
  }
  assert.deepEqual(leaks, [], 'broadcasts crossed between nodes that failed TLS and working nodes');
  for (const c of clients.values()) c.close();
}

describe('TLS failures: missing CA, hostname mismatch, refused settings', { timeout: 120000 }, () => {
  describe('missing CA (system roots only): an error about the certificate, never ready, nothing delivered, not subscribed', { skip: SELF_CHECK && 'SIO_TLS_SELF_CHECK' }, () => {
    const key = uniqueKey();
    const channel = `${key}-request#/#`;
    let OC; // official, node-redis TLS cluster with the CA
    let OS; // official, ioredis Sentinel TLS with the CA
    const subscribers = {
      cluster: () => clusterNumsub(channel),
      sentinel: async () => Number((await dep.command(await dep.primaryPort(), ['PUBSUB', 'NUMSUB', channel]))[1]),
    };

    before(async () => {
      [OC, OS] = await startServers([
        spec('OC', 'official', viaClients('node-redis-cluster', nodeRedisClusterTls())),
        spec('OS', 'official', viaClients('ioredis', ioredisSentinelTls())),
      ], { key, mesh: false });
    });

    // [label, where, ours' source (no CA anywhere), what]
    const forms = [
      ['ClusterUrl', 'cluster', () => cluster.url, "'rediss+cluster://…' URL"],
      ['ClusterSeeds', 'cluster', () => cluster.ports.map((port) => `rediss://${HOST}:${port}`), "seeds array of 'rediss://' URLs"],
      ['SentinelUrl', 'sentinel', () => dep.url, "'rediss+sentinel://…' URL (TLS to the sentinels and the primary)"],
      ['SentinelDataOnly', 'sentinel', () => `${dep.plainSentinelUrl}?sentinelTls=false`, "'rediss+sentinel://…?sentinelTls=false' on the plaintext sentinel ports (the primary's certificate fails)"],
      ['SentinelOnly', 'sentinel', () => `${dep.url.replace(/^rediss\+/, 'redis+')}?sentinelTls=true`, "'redis+sentinel://…?sentinelTls=true' (the sentinels' certificate fails)"],
    ];
    for (const [label, where, source, what] of forms) {
      it(what, async (t) => {
        const official = where === 'cluster' ? OC : OS;
        assert.ok(official, 'the official nodes did not start');
        const bad = await startServer(spec(label, 'ours', viaSettings(source()), { key }));
        try {
          const messages = await expectTlsError(bad, CERT_RE);
          await expectIsolated([bad], [official]);
          assert.deepEqual(readyEvents(bad), [], `${label} must never be ready\n${eventLog(bad)}`);
          // Only the official node subscribed: ours never got a working connection (and a TLS-only
          // server cannot be used in plaintext at all).
          assert.equal(await subscribers[where](), 1, `subscribers of ${channel} (${where}): ${official.label} only`);
          assertHealthy([bad, official]);
          t.diagnostic(`${label}: ${messages.length} error(s) so far, first: ${messages[0]}`);
        } finally {
          await bad.stop();
        }
      });
    }
  });

  it('hostname mismatch: error about the name, never ready, nothing delivered; #insecure connects and warns once', { skip: SELF_CHECK && 'SIO_TLS_SELF_CHECK' }, async (t) => {
    const key = uniqueKey();
    // The official node checks the certificate too, under the name it was made for.
    const W = await startServer(spec('W', 'official', viaClients('ioredis', { host: HOST, port: wrong.port, tls: { ca: certs.ca, servername: 'wrong.example' } }), { key }));
    const [Mismatch, Insecure] = await startServers([
      spec('Mismatch', 'ours', viaSettings({ url: wrong.url, tls: { ca: certs.ca } })),
      spec('Insecure', 'ours', viaSettings(`${wrong.url}#insecure`)),
    ], { key, mesh: false });
    const messages = await expectTlsError(Mismatch, NAME_RE);
    await awaitMesh([W, Insecure], ['/']).catch((err) => {
      throw new Error(`${err.message}\n${eventLog(Insecure)}\n${Insecure.describeState()}`);
    });
    await expectIsolated([Mismatch], [W, Insecure]);
    assert.deepEqual(readyEvents(Mismatch), [], `Mismatch must never be ready\n${eventLog(Mismatch)}`);
    assert.ok(readyEvents(Insecure).length > 0, `Insecure should be ready\n${eventLog(Insecure)}`);
    assert.equal(Number((await wrong.command(['PUBSUB', 'NUMSUB', `${key}-request#/#`]))[1]), 2, 'subscribers on the wrong-name server (W and Insecure)');
    const insecureWarnings = (await Insecure.command('processWarnings')).filter((w) => w.code === 'SIO_TLS_INSECURE');
    assert.equal(insecureWarnings.length, 1, `SIO_TLS_INSECURE warnings of Insecure: ${JSON.stringify(insecureWarnings)}`);
    const mismatchWarnings = (await Mismatch.command('processWarnings')).filter((w) => w.code === 'SIO_TLS_INSECURE');
    assert.deepEqual(mismatchWarnings, [], 'Mismatch verifies certificates: no SIO_TLS_INSECURE warning');
    assertHealthy([W, Mismatch, Insecure]);
    assertNoAdapterErrors([Insecure]);
    t.diagnostic(`Mismatch: ${messages.length} error(s) so far, first: ${messages[0]}`);
    await Promise.all([W, Mismatch, Insecure].map((s) => s.stop()));
  });

  it('ioredis Sentinel settings with tls but without enableTLSForSentinelMode: ERR_SIO_OPTION (settings object and ioredis client)', () => {
    // In a child process, so that an adapter made by mistake cannot keep this one alive.
    const settings = { ...dep.ioredisOptions, tls: { ca: certs.ca } };
    const script = `
      const { createAdapter } = require(${JSON.stringify(OURS_MODULE)});
      const Redis = require('ioredis');
      const settings = ${JSON.stringify(settings)};
      const client = new Redis({ ...settings, lazyConnect: true });
      const rows = [['settings object', settings], ['ioredis client', client], ['settings with sentinelTLS too', { ...settings, sentinelTLS: settings.tls }]];
      const out = rows.map(([what, source]) => {
        try {
          createAdapter(source, undefined, { key: 'tls-refused' });
          return { what, threw: false };
        } catch (err) {
          return { what, threw: true, code: err.code, message: err.message };
        }
      });
      client.disconnect();
      console.log(JSON.stringify(out));
      process.exit(0);`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: __dirname, timeout: 20000 });
    const rows = JSON.parse(out.trim().split('\n').pop());
    for (const row of rows) {
      assert.equal(row.threw, true, `${row.what}: createAdapter must refuse tls without enableTLSForSentinelMode`);
      assert.equal(row.code, 'ERR_SIO_OPTION', `${row.what}: ${row.message}`);
      assert.match(row.message, /TLS|enableTLSForSentinelMode/i, row.what);
    }
  });
});
