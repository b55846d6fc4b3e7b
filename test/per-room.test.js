'use strict';
// Option `perRoomSubscriptions: true` of ours: instead of PSUBSCRIBE `K#N#*`, a node SUBSCRIBEs
// `K#N#` (main broadcast channel), its request/response channels and `K#N#R#` for every room R
// with local sockets (socket-id rooms included); a room's channel is unsubscribed when the room
// empties, `socket.join(room)` resolves once the channel is subscribed, and close unsubscribes
// everything. The wire format is unchanged, so official nodes interoperate.
//
// Node roles in every cluster: A = official adapter, B = ours with perRoomSubscriptions, C = ours
// with default options (pattern subscription). What B is subscribed to is read from Redis itself
// (PUBSUB CHANNELS / NUMSUB / NUMPAT). A and C only PSUBSCRIBE broadcast channels, so every
// broadcast *channel* (`K#…`) Redis reports for a test's unique key is one of B's. PUBSUB NUMPAT
// and CLIENT LIST are server-wide, so the case that counts patterns runs on a private redis-server.
//
// Cases: 1. deliveries in a mixed cluster (from A, B, C and @socket.io/redis-emitter); 2. B's
// subscriptions in Redis (exact channel set, no pattern, rooms dropped when they empty, present
// once `await socket.join()` resolved); 3. no loss of a broadcast published right after
// `await socket.join()` (from A and C over IPC, and from a second Redis connection in B's own
// process, which is tight enough to catch a join that resolves early); 4. cluster requests with B
// in per-room mode; 5. close unsubscribes everything; 6. Redis restart (rooms emptied during the
// outage are not resubscribed); 7. option validation.

const path = require('node:path');
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Emitter } = require('@socket.io/redis-emitter');


const { uniqueKey, startServers, awaitMesh, redisClient, flush, waitUntil, stopAll } = require('./helpers/cluster');
const { privateRedis, stopAllRedis } = require('./helpers/private-redis');

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
const COMMANDS_MODULE = path.join(__dirname, 'helpers', 'per-room-commands.js');

/** The three kinds of node of every cluster here. */
const OFFICIAL = { adapter: 'official', label: 'A:official' };
const PER_ROOM = { adapter: 'ours', perRoomSubscriptions: true, label: 'B:ours/per-room' };
const DEFAULT_OURS = { adapter: 'ours', label: 'C:ours/default' };

const REQ_TIMEOUT = 3000;
const CMD_TIMEOUT = REQ_TIMEOUT + 4000;

let seq = 0;
const uniq = (prefix) => `${prefix}-${++seq}`;
const sorted = (list) => [...list].map(String).sort();

// -------------------------------------------------------------------------------------------------
// Redis observations

/** Channels with at least one subscriber whose name matches the glob `pattern`, sorted. */
async function channels(redis, pattern) {
  return sorted(await redis.sendCommand(['PUBSUB', 'CHANNELS', pattern]));
}

/** Broadcast channels subscribed for `key` (`K#…`: main and room channels of every namespace). */
const broadcastChannels = (redis, key) => channels(redis, `${key}#*`);

/** Number of subscribers of `channel`. */
async function numsub(redis, channel) {
  const [, count] = await redis.sendCommand(['PUBSUB', 'NUMSUB', channel]);
  return Number(count);
}

/** Number of distinct patterns subscribed on the whole Redis server. */
async function numpat(redis) {
  return Number(await redis.sendCommand(['PUBSUB', 'NUMPAT']));
}

/**
 * Pattern subscriptions of all connections of the Redis server together (sum of CLIENT LIST
 * `psub`): unlike NUMPAT, two nodes subscribing the same pattern count twice.
 */
async function patternSubscriptions(redis) {
  const list = String(await redis.sendCommand(['CLIENT', 'LIST']));
  return list.split('\n').reduce((sum, line) => sum + Number((/ psub=(\d+)/.exec(line) || [0, 0])[1]), 0);
}

/** The channel a broadcast to exactly `room` of namespace `nsp` is published on. */
const roomChannel = (key, room, nsp = '/') => `${key}#${nsp}#${room}#`;
const mainChannel = (key, nsp = '/') => `${key}#${nsp}#`;

/** Waits until B's broadcast channels for `key` are exactly `expected` (any order). */
async function waitForChannels(redis, key, expected, what) {
  const want = sorted(expected);
  let last;
  try {
    await waitUntil(async () => {
      last = await broadcastChannels(redis, key);
      return JSON.stringify(last) === JSON.stringify(want);
    }, { what });
  } catch (err) {
    assert.deepStrictEqual(last, want, err.message);
  }
}

/** Waits until no node has a local socket left in `nsps` (e.g. the mesh probes). */
async function noLocalSockets(servers, nsps = ['/', '/admin']) {
  for (const server of servers) {
    for (const nsp of nsps.filter((n) => server.config.namespaces.includes(n))) {
      await waitUntil(async () => (await server.command('localSockets', { nsp })).length === 0, {
        what: `${server.label}: no local sockets in ${nsp}`,
      });
    }
  }
}

/**
 * Has `from` send a probe to each client's own room (io.to(<socket id>)), again every 100 ms,
 * until every client got one: a socket's own room is joined (and, in per-room mode, its channel
 * subscribed) without anybody waiting for it.
 */
async function awaitReachable(from, clients, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  const probe = uniq('__reachable');
  const missing = () => clients.filter((c) => c.received(probe).length === 0);
  while (missing().length > 0) {
    if (Date.now() > deadline) assert.fail(`io.to(<id>) from ${from.label} did not reach ${missing().map((c) => c.name).join(', ')}`);
    for (const c of missing()) await from.command('emit', { nsp: c.nsp, to: c.serverSocketId, event: probe });
    await Promise.race([Promise.all(missing().map((c) => c.waitForEvent(probe))).catch(() => {}), new Promise((r) => setTimeout(r, 100))]);
  }
}

/** The value of a settled command result, or a failure naming the error. */
function ok(res, what) {
  if (!res || res.ok !== true) assert.fail(`${what} failed: ${res && res.error && res.error.message} (${JSON.stringify(res)})`);
  return res.value;
}

/**
 * Connects clients: name → { node, rooms = [], nsp = '/' } (nodes: { A, B, C }); each joins its
 * rooms with `await socket.join()` on its server. Returns name → TestClient (`.name`, `.node`).
 */
async function connectAll(nodes, spec) {
  const clients = {};
  for (const [name, { node, rooms = [], nsp = '/' }] of Object.entries(spec)) {
    const client = await nodes[node].connect(nsp);
    client.name = `${name} (node ${node}, ${nsp})`;
    client.node = node;
    if (rooms.length > 0) await nodes[node].command('join', { nsp, socketId: client.serverSocketId, rooms });
    clients[name] = client;
  }
  return clients;
}

/** Fails if a server died or reported an uncaught error. */
function assertHealthy(nodes) {
  for (const node of Object.values(nodes)) {
    if (node.stopping) continue;
    assert.ok(node.alive, `${node.label} exited: ${JSON.stringify(node.exit)}${node.outputTail()}`);
    assert.deepStrictEqual(node.uncaught, [], `${node.label} reported uncaught errors`);
  }
}

// -------------------------------------------------------------------------------------------------
// 1. Mixed cluster: deliveries

describe('perRoomSubscriptions: broadcasts in a mixed cluster (A official, B per-room, C default)', () => {
  const suite = { nodes: null, clients: null, emitter: null, key: null, redis: null };

  // Rooms: r1 and r2 live on every node, onlyA / onlyB / onlyC on one node each.
  const CLIENTS = {
    a_r1: { node: 'A', rooms: ['r1'] },
    a_r2: { node: 'A', rooms: ['r2'] },
    a_onlyA: { node: 'A', rooms: ['onlyA'] },
    b_r1: { node: 'B', rooms: ['r1'] },
    b_r1r2: { node: 'B', rooms: ['r1', 'r2'] },
    b_none: { node: 'B' },
    b_onlyB: { node: 'B', rooms: ['onlyB'] },
    c_r1: { node: 'C', rooms: ['r1'] },
    c_r2: { node: 'C', rooms: ['r2'] },
    c_onlyC: { node: 'C', rooms: ['onlyC'] },
    b_admin: { node: 'B', rooms: ['r1'], nsp: '/admin' },
  };
  const ROOT = Object.keys(CLIENTS).filter((n) => (CLIENTS[n].nsp || '/') === '/');
  const only = (...names) => Object.fromEntries(names.map((n) => [n, 1]));
  const everyone = only(...ROOT);
  const idOf = (name) => suite.clients[name].serverSocketId;

  // act({ A, B, C, emitter, event }) broadcasts `event`; `source` (node name or 'emitter') sends
  // the ordering barrier; expect: client name → copies (others: 0).
  const CASES = [
    { name: 'A: io.emit reaches every client of the namespace', source: 'A', act: ({ A, event }) => A.command('emit', { event }), expect: everyone },
    { name: "A: io.to('r1')", source: 'A', act: ({ A, event }) => A.command('emit', { to: 'r1', event }), expect: only('a_r1', 'b_r1', 'b_r1r2', 'c_r1') },
    { name: "A: io.to('r2')", source: 'A', act: ({ A, event }) => A.command('emit', { to: 'r2', event }), expect: only('a_r2', 'b_r1r2', 'c_r2') },
    {
      name: 'A: io.to(<socket id of a B client>)', source: 'A',
      act: ({ A, event }) => A.command('emit', { to: idOf('b_none'), event }), expect: only('b_none'),
    },
    {
      name: "A: io.to(['r1', 'r2']) (main channel) delivers once to a socket in both", source: 'A',
      act: ({ A, event }) => A.command('emit', { to: ['r1', 'r2'], event }), expect: only('a_r1', 'a_r2', 'b_r1', 'b_r1r2', 'c_r1', 'c_r2'),
    },
    {
      name: "A: io.except('r1')", source: 'A',
      act: ({ A, event }) => A.command('emit', { except: 'r1', event }), expect: only('a_r2', 'a_onlyA', 'b_none', 'b_onlyB', 'c_r2', 'c_onlyC'),
    },
    {
      name: "A: io.to('r1').except('r2')", source: 'A',
      act: ({ A, event }) => A.command('emit', { to: 'r1', except: 'r2', event }), expect: only('a_r1', 'b_r1', 'c_r1'),
    },
    { name: "A: io.to('onlyB')", source: 'A', act: ({ A, event }) => A.command('emit', { to: 'onlyB', event }), expect: only('b_onlyB') },
    { name: "A: io.to('onlyC')", source: 'A', act: ({ A, event }) => A.command('emit', { to: 'onlyC', event }), expect: only('c_onlyC') },
    { name: "A: io.to('nobody') reaches nobody", source: 'A', act: ({ A, event }) => A.command('emit', { to: 'nobody', event }), expect: {} },
    { name: "B: io.to('onlyA') reaches A's client", source: 'B', act: ({ B, event }) => B.command('emit', { to: 'onlyA', event }), expect: only('a_onlyA') },
    { name: "C: io.to('onlyA') reaches A's client", source: 'C', act: ({ C, event }) => C.command('emit', { to: 'onlyA', event }), expect: only('a_onlyA') },
    { name: "C: io.to('onlyB') reaches B's client", source: 'C', act: ({ C, event }) => C.command('emit', { to: 'onlyB', event }), expect: only('b_onlyB') },
    {
      name: "B: io.to(<socket id of an A client>)", source: 'B',
      act: ({ B, event }) => B.command('emit', { to: idOf('a_r1'), event }), expect: only('a_r1'),
    },
    { name: "B: io.to('r1')", source: 'B', act: ({ B, event }) => B.command('emit', { to: 'r1', event }), expect: only('a_r1', 'b_r1', 'b_r1r2', 'c_r1') },
    { name: 'B: io.emit', source: 'B', act: ({ B, event }) => B.command('emit', { event }), expect: everyone },
    { name: "C: io.to('r2')", source: 'C', act: ({ C, event }) => C.command('emit', { to: 'r2', event }), expect: only('a_r2', 'b_r1r2', 'c_r2') },
    { name: "redis-emitter: to('onlyB')", source: 'emitter', act: ({ emitter, event }) => emitter.to('onlyB').emit(event, 'x'), expect: only('b_onlyB') },
    { name: "redis-emitter: to('r1')", source: 'emitter', act: ({ emitter, event }) => emitter.to('r1').emit(event, 'x'), expect: only('a_r1', 'b_r1', 'b_r1r2', 'c_r1') },
    { name: 'redis-emitter: emit', source: 'emitter', act: ({ emitter, event }) => emitter.emit(event, 'x'), expect: everyone },
    {
      name: "A: io.of('/admin').to('r1') reaches only /admin members", source: 'A',
      act: ({ A, event }) => A.command('emit', { nsp: '/admin', to: 'r1', event }), expect: { b_admin: 1 },
    },
  ];

  before(async () => {
    suite.key = uniqueKey();
    const [A, B, C] = await startServers([OFFICIAL, PER_ROOM, DEFAULT_OURS], { key: suite.key, namespaces: ['/', '/admin'] });
    suite.nodes = { A, B, C };
    suite.redis = await redisClient();
    suite.emitter = new Emitter(suite.redis, { key: suite.key });
    await noLocalSockets([A, B, C]);
    suite.clients = await connectAll(suite.nodes, CLIENTS);
    // Socket-id rooms are subscribed in the background (socket.io does not wait for the join of
    // a socket's own room): poll until io.to(<id>) from A reaches every client of B.
    await awaitReachable(A, Object.values(suite.clients).filter((c) => c.node === 'B'));
  });

  afterEach(() => assertHealthy(suite.nodes || {}));
  after(stopAll);

  it('B runs in per-room mode (its room channels are subscribed)', async () => {
    const now = await broadcastChannels(suite.redis, suite.key);
    for (const room of ['r1', 'r2', 'onlyB']) assert.ok(now.includes(roomChannel(suite.key, room)), `${room} channel missing: ${now.join(', ')}`);
    for (const room of ['onlyA', 'onlyC']) assert.ok(!now.includes(roomChannel(suite.key, room)), `${room} channel subscribed`);
  });

  for (const testCase of CASES) {
    it(testCase.name, async () => {
      const { nodes, emitter, clients } = suite;
      const event = uniq('ev');
      await testCase.act({ ...nodes, emitter, event });
      const expected = (name) => testCase.expect[name] || 0;
      await Promise.all(Object.entries(clients).filter(([n]) => expected(n) > 0).map(([n, c]) => c.waitForEvent(event, expected(n))));
      const all = Object.values(clients);
      if (testCase.source === 'emitter') await flush(all, (marker, nsp) => emitter.of(nsp).emit(marker));
      else await nodes[testCase.source].flush(all);
      for (const [name, client] of Object.entries(clients)) {
        assert.equal(client.received(event).length, expected(name), `${client.name} received "${testCase.name}" ${client.received(event).length} time(s)`);
      }
    });
  }
});

// -------------------------------------------------------------------------------------------------
// 2. Subscriptions as seen by Redis

describe('perRoomSubscriptions: subscriptions as seen by Redis', () => {
  let redisServer;
  let redis;
  let nodes;
  const key = uniqueKey();

  before(async () => {
    // A private Redis: PUBSUB NUMPAT counts the patterns of every client of the server.
    redisServer = await privateRedis();
    redis = await redisClient(redisServer.url);
  });
  after(async () => {
    await stopAll();
    await stopAllRedis();
  });
  afterEach(() => assertHealthy(nodes || {}));

  it('B subscribes K#N#, its request/response channels and one channel per local room; no pattern', async () => {
    const common = { key, redisUrl: redisServer.url, namespaces: ['/', '/admin'], requestsTimeout: REQ_TIMEOUT };
    // B alone first: no pattern at all on this Redis.
    const [B] = await startServers([PER_ROOM], common);
    await noLocalSockets([B]);
    await waitForChannels(redis, key, [mainChannel(key), mainChannel(key, '/admin')], 'only the main channels of B (B alone)');
    assert.equal(await numpat(redis), 0, 'PUBSUB NUMPAT with B alone');
    assert.equal(await patternSubscriptions(redis), 0, 'pattern subscriptions with B alone');

    const [A, C] = await startServers([OFFICIAL, DEFAULT_OURS], common);
    nodes = { A, B, C };
    // A and C: one pattern K#N#* per namespace each, none of B.
    const patternsWithoutB = 4;
    assert.equal(await patternSubscriptions(redis), patternsWithoutB, 'pattern subscriptions of A and C');
    await awaitMesh([A, B, C], ['/', '/admin']);
    await noLocalSockets([A, B, C]);
    const uid = (await B.command('adapterInfo', { nsp: '/' })).uid;
    const uidAdmin = (await B.command('adapterInfo', { nsp: '/admin' })).uid;

    // Only the main channels once the mesh probes are gone.
    await waitForChannels(redis, key, [mainChannel(key), mainChannel(key, '/admin')], 'only the main channels of B');
    assert.equal(await patternSubscriptions(redis), patternsWithoutB, 'B subscribed a pattern');
    for (const nsp of ['/', '/admin']) {
      assert.equal(await numsub(redis, `${key}-request#${nsp}#`), 3, `subscribers of the request channel of ${nsp}`);
      assert.equal(await numsub(redis, `${key}-response#${nsp}#`), 3, `subscribers of the response channel of ${nsp}`);
    }
    assert.equal(await numsub(redis, `${key}-response#/#${uid}#`), 1, "B's own response channel of /");
    assert.equal(await numsub(redis, `${key}-response#/admin#${uidAdmin}#`), 1, "B's own response channel of /admin");
    assert.equal(ok(await A.command('serverCount', { nsp: '/' }), 'serverCount'), 3, 'server count seen from A');

    // Clients on every node; B's rooms must show up as channels, A's and C's must not.
    const c = await connectAll(nodes, {
      a1: { node: 'A', rooms: ['r1', 'onlyA'] },
      b1: { node: 'B', rooms: ['r1'] },
      b2: { node: 'B', rooms: ['r1', 'r2'] },
      b_admin: { node: 'B', rooms: ['r1'], nsp: '/admin' },
      c1: { node: 'C', rooms: ['r2', 'onlyC'] },
    });
    // `await socket.join()` resolved (the join command replied): the room channels exist now.
    const now = await broadcastChannels(redis, key);
    for (const channel of [roomChannel(key, 'r1'), roomChannel(key, 'r2'), roomChannel(key, 'r1', '/admin')]) {
      assert.ok(now.includes(channel), `${channel} not subscribed right after join resolved; channels: ${now.join(', ')}`);
    }
    const sidChannel = (client) => roomChannel(key, client.serverSocketId, client.nsp);
    const expected = [
      mainChannel(key), mainChannel(key, '/admin'),
      roomChannel(key, 'r1'), roomChannel(key, 'r2'), roomChannel(key, 'r1', '/admin'),
      sidChannel(c.b1), sidChannel(c.b2), sidChannel(c.b_admin),
    ];
    await waitForChannels(redis, key, expected, "B's main, room and socket-id channels");
    for (const channel of expected) assert.equal(await numsub(redis, channel), 1, `subscribers of ${channel}`);
    assert.equal(await patternSubscriptions(redis), patternsWithoutB, 'pattern subscriptions after joins');

    // Leaving: the channel stays while another local socket is in the room...
    await B.command('leave', { socketId: c.b2.serverSocketId, room: 'r1' });
    // A join that adds no room still resolves only once every room change reported so far is
    // applied: a barrier after which a (wrong) unsubscription of r1 would be visible.
    await B.command('join', { socketId: c.b2.serverSocketId, rooms: 'r2' });
    assert.ok((await broadcastChannels(redis, key)).includes(roomChannel(key, 'r1')), 'r1 channel dropped while b1 is still in r1');
    // ...and goes when the last one leaves.
    await B.command('leave', { socketId: c.b1.serverSocketId, room: 'r1' });
    const withoutR1 = expected.filter((ch) => ch !== roomChannel(key, 'r1'));
    await waitForChannels(redis, key, withoutR1, 'r1 channel gone after the last local socket left r1');

    // Disconnecting the last socket of r2 drops r2's channel and the socket's own channel.
    c.b2.close();
    const afterDisconnect = withoutR1.filter((ch) => ch !== roomChannel(key, 'r2') && ch !== sidChannel(c.b2));
    await waitForChannels(redis, key, afterDisconnect, 'r2 and socket-id channels gone after disconnect');

    // Joining r3: subscribed once `await socket.join('r3')` resolved, no polling.
    await B.command('join', { socketId: c.b1.serverSocketId, rooms: 'r3' });
    const afterJoin = await broadcastChannels(redis, key);
    assert.ok(afterJoin.includes(roomChannel(key, 'r3')), `r3 not subscribed when join resolved; channels: ${afterJoin.join(', ')}`);
    assert.deepStrictEqual(afterJoin, sorted([...afterDisconnect, roomChannel(key, 'r3')]), 'channels after joining r3');

    // Rejoining a room whose channel was dropped subscribes it again.
    await B.command('join', { socketId: c.b1.serverSocketId, rooms: ['r1'] });
    assert.ok((await broadcastChannels(redis, key)).includes(roomChannel(key, 'r1')), 'r1 not subscribed again after rejoin');

    // A numeric room.
    await B.command('join', { socketId: c.b1.serverSocketId, rooms: [123] });
    assert.ok((await broadcastChannels(redis, key)).includes(roomChannel(key, '123')), 'numeric room 123 not subscribed');
    assert.equal(await patternSubscriptions(redis), patternsWithoutB, 'pattern subscriptions at the end');
    assert.equal(await numpat(redis), 2, 'PUBSUB NUMPAT at the end (K#/#* and K#/admin#* of A and C)');
  });
});

// -------------------------------------------------------------------------------------------------
// 3. No loss right after join

describe('perRoomSubscriptions: a broadcast sent right after `await socket.join()` is not lost', () => {
  let nodes;
  before(async () => {
    const [A, B, C] = await startServers([OFFICIAL, { ...PER_ROOM, commandModules: [COMMANDS_MODULE] }, DEFAULT_OURS], { key: uniqueKey(), namespaces: ['/'] });
    nodes = { A, B, C };
  });
  afterEach(() => assertHealthy(nodes || {}));
  after(stopAll);

  it('B joins a fresh room, then A (official) and C (ours) emit to it at once', async () => {
    const { A, B, C } = nodes;
    const b = await B.connect('/');
    const other = await B.connect('/');
    const ROUNDS = 25;
    const events = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Alternately one fresh room, or a fresh room among others in one join.
      const room = uniq('fresh');
      const rooms = i % 2 === 0 ? room : [uniq('side'), room, uniq('side')];
      // The `join` command replies only after `await socket.join(rooms)` resolved on B.
      await B.command('join', { socketId: b.serverSocketId, rooms });
      const event = uniq('ev');
      events.push(event);
      await Promise.all([A.command('emit', { to: room, event, args: ['A'] }), C.command('emit', { to: room, event, args: ['C'] })]);
    }
    await Promise.all(events.map((event) => b.waitForEvent(event, 2)));
    await A.flush([b, other]);
    await C.flush([b, other]);
    for (const event of events) {
      assert.deepStrictEqual(b.received(event).map(([from]) => from).sort(), ['A', 'C'], `copies of ${event}`);
      assert.equal(other.received(event).length, 0, `${event} reached a socket outside the room`);
    }
  });

  it("B joins a fresh room and publishes to it through a second Redis connection as soon as join resolved", async () => {
    // The tight version: the publish (same bytes as an official node's, via redis-emitter) is
    // sent from B's process right when `await socket.join()` resolves, with no IPC hop between.
    const { A, B } = nodes;
    const b = await B.connect('/');
    const ROUNDS = 60;
    const events = [];
    for (let i = 0; i < ROUNDS; i++) {
      const room = uniq('tight');
      const event = uniq('ev');
      events.push(event);
      const rooms = await B.command('joinThenPublish', { socketId: b.serverSocketId, rooms: i % 2 === 0 ? room : [room, uniq('side')], to: room, event, args: [i] });
      assert.ok(rooms.includes(room), `join of ${room}`);
    }
    await A.flush([b]);
    const lost = events.filter((event) => b.received(event).length === 0);
    assert.deepStrictEqual(lost, [], `lost ${lost.length} of ${ROUNDS} broadcasts published right after join resolved`);
    for (const event of events) assert.equal(b.received(event).length, 1, `copies of ${event}`);
  });
});

// -------------------------------------------------------------------------------------------------
// 4. Requests

describe('perRoomSubscriptions: cluster requests with B in per-room mode', () => {
  let nodes;
  let c;
  before(async () => {
    const [A, B, C] = await startServers([OFFICIAL, PER_ROOM, DEFAULT_OURS], { key: uniqueKey(), namespaces: ['/'], requestsTimeout: REQ_TIMEOUT });
    nodes = { A, B, C };
    for (const node of [A, B, C]) {
      await waitUntil(async () => {
        const res = await node.command('serverCount', {});
        return res.ok && res.value === 3;
      }, { what: `${node.label}: serverCount === 3` });
    }
    await noLocalSockets([A, B, C], ['/']);
    c = await connectAll(nodes, {
      a1: { node: 'A', rooms: ['r1', 'roomA'] },
      b1: { node: 'B', rooms: ['r1', 'roomB'] },
      b2: { node: 'B' },
      c1: { node: 'C', rooms: ['roomC'] },
    });
  });
  afterEach(() => assertHealthy(nodes || {}));
  after(stopAll);

  const ids = (list) => sorted(list.map((s) => s.id));

  for (const from of ['A', 'B']) {
    it(`from ${from}: serverCount, fetchSockets, allRooms, serverSideEmitWithAck, emitWithAck see all three nodes`, async () => {
      const node = nodes[from];
      assert.equal(ok(await node.command('serverCount', {}), 'serverCount'), 3, 'serverCount');

      const all = ok(await node.command('fetchSockets', {}, CMD_TIMEOUT), 'fetchSockets()');
      assert.deepStrictEqual(ids(all), sorted(Object.values(c).map((x) => x.serverSocketId)), 'fetchSockets()');
      const inR1 = ok(await node.command('fetchSockets', { in: 'r1' }, CMD_TIMEOUT), "fetchSockets in('r1')");
      assert.deepStrictEqual(ids(inR1), sorted([c.a1.serverSocketId, c.b1.serverSocketId]), "fetchSockets in('r1')");
      const b1 = all.find((s) => s.id === c.b1.serverSocketId);
      assert.deepStrictEqual(sorted(b1.rooms), sorted([c.b1.serverSocketId, 'r1', 'roomB']), "rooms of B's socket");

      const rooms = ok(await node.command('allRooms', {}, CMD_TIMEOUT), 'allRooms');
      for (const room of ['r1', 'roomA', 'roomB', 'roomC', ...Object.values(c).map((x) => x.serverSocketId)]) {
        assert.ok(rooms.includes(room), `allRooms() from ${from} lacks ${room}: ${rooms.join(', ')}`);
      }

      const event = uniq('sse');
      for (const [name, n] of Object.entries(nodes)) await n.command('onServerEvent', { event, reply: name });
      const responses = ok(await node.command('serverSideEmit', { event, args: [from], mode: 'promise' }, CMD_TIMEOUT), 'serverSideEmitWithAck');
      assert.deepStrictEqual(sorted(responses), sorted(['A', 'B', 'C'].filter((n) => n !== from)), 'serverSideEmitWithAck responses');

      const ackEvent = uniq('ack');
      for (const [name, client] of Object.entries(c)) client.setAckHandler(ackEvent, name);
      const acks = ok(await node.command('emitWithAck', { event: ackEvent, timeout: REQ_TIMEOUT, mode: 'promise' }, CMD_TIMEOUT), 'emitWithAck');
      assert.deepStrictEqual(sorted(acks), sorted(Object.keys(c)), 'client acks of every node');
      const roomAcks = ok(await node.command('emitWithAck', { to: 'roomB', event: ackEvent, timeout: REQ_TIMEOUT, mode: 'promise' }, CMD_TIMEOUT), "emitWithAck to('roomB')");
      assert.deepStrictEqual(roomAcks, ['b1'], "client acks of to('roomB')");
    });
  }

  it("A's socketsJoin puts B's socket in a room whose channel B then subscribes", async () => {
    const { A, B } = nodes;
    const room = uniq('joined');
    await A.command('socketsJoin', { in: c.b2.serverSocketId, rooms: [room] });
    await waitUntil(async () => (await B.command('localSockets', {})).find((s) => s.id === c.b2.serverSocketId).rooms.includes(room), {
      what: `B's socket in ${room}`,
    });
    const redis = await redisClient();
    await waitUntil(async () => (await numsub(redis, roomChannel(A.config.key, room))) === 1, { what: `channel of ${room} subscribed` });
    const event = uniq('ev');
    await A.command('emit', { to: room, event });
    await c.b2.waitForEvent(event);
    await A.flush(Object.values(c));
    for (const client of Object.values(c)) assert.equal(client.received(event).length, client === c.b2 ? 1 : 0, client.name);
  });
});

// -------------------------------------------------------------------------------------------------
// 5. Closing

describe('perRoomSubscriptions: close unsubscribes every channel of B', () => {
  let nodes;
  after(stopAll);
  afterEach(() => assertHealthy(nodes || {}));

  it("adapter.close() of '/' drops all of its channels while '/admin' keeps its own; server close drops the rest", async () => {
    const key = uniqueKey();
    const [B, C] = await startServers([PER_ROOM, DEFAULT_OURS], { key, namespaces: ['/', '/admin'] });
    nodes = { B, C };
    const redis = await redisClient();
    await noLocalSockets([B, C]);
    const uid = (await B.command('adapterInfo', { nsp: '/' })).uid;
    const uidAdmin = (await B.command('adapterInfo', { nsp: '/admin' })).uid;
    const c = await connectAll({ B, C }, {
      b1: { node: 'B', rooms: ['r1', 'r2'] },
      b2: { node: 'B', rooms: ['r2'] },
      b_admin: { node: 'B', rooms: ['r1'], nsp: '/admin' },
      c1: { node: 'C', rooms: ['r1'] },
    });
    const rootChannels = [mainChannel(key), roomChannel(key, 'r1'), roomChannel(key, 'r2'), roomChannel(key, c.b1.serverSocketId), roomChannel(key, c.b2.serverSocketId)];
    const adminChannels = [mainChannel(key, '/admin'), roomChannel(key, 'r1', '/admin'), roomChannel(key, c.b_admin.serverSocketId, '/admin')];
    await waitForChannels(redis, key, [...rootChannels, ...adminChannels], "B's channels before close");

    ok(await B.command('adapterCall', { nsp: '/', method: 'close' }), "adapter.close() of '/'");
    // close() resolved: its unsubscriptions are done.
    assert.deepStrictEqual(await broadcastChannels(redis, key), sorted(adminChannels), "channels left after closing '/'");
    assert.equal(await numsub(redis, `${key}-request#/#`), 1, "subscribers of '/' request channel (C only)");
    assert.equal(await numsub(redis, `${key}-response#/#`), 1, "subscribers of '/' response channel (C only)");
    assert.equal(await numsub(redis, `${key}-response#/#${uid}#`), 0, "B's own '/' response channel");
    assert.equal(await numsub(redis, `${key}-request#/admin#`), 2, "'/admin' request channel (B and C)");
    assert.equal(await numsub(redis, `${key}-response#/admin#${uidAdmin}#`), 1, "B's own '/admin' response channel");

    // Room changes on the closed adapter subscribe nothing.
    await B.command('join', { socketId: c.b1.serverSocketId, rooms: ['late'] });
    await B.command('join', { nsp: '/admin', socketId: c.b_admin.serverSocketId, rooms: ['late'] }); // a barrier: '/admin' still subscribes
    assert.deepStrictEqual(await broadcastChannels(redis, key), sorted([...adminChannels, roomChannel(key, 'late', '/admin')]), 'channels after joins on the closed adapter');

    const result = await B.stop();
    assert.equal(result.closeError, null, `close failed: ${result.closeError && result.closeError.message}`);
    assert.ok(result.exitedByItself, `B did not exit after close: ${JSON.stringify(result.closeResult)}`);
    assert.deepStrictEqual(await broadcastChannels(redis, key), [], "B's broadcast channels after the server closed");
    assert.equal(await numsub(redis, `${key}-response#/admin#${uidAdmin}#`), 0, "B's own '/admin' response channel after the server closed");
    assert.equal(await numsub(redis, `${key}-request#/admin#`), 1, "'/admin' request channel after B closed (C only)");
  });

  it('io.close() (server close command) unsubscribes before the process exits', async () => {
    const key = uniqueKey();
    const [B] = await startServers([PER_ROOM], { key, namespaces: ['/'] });
    nodes = { B };
    const redis = await redisClient();
    const b = await B.connect('/');
    await B.command('join', { socketId: b.serverSocketId, rooms: ['r1'] });
    assert.ok((await broadcastChannels(redis, key)).includes(roomChannel(key, 'r1')));
    // The close command replies after io.close() resolved, while the process still runs.
    const closeResult = await B.command('close');
    assert.ok(closeResult, 'close replied');
    assert.deepStrictEqual(await broadcastChannels(redis, key), [], 'broadcast channels after io.close() resolved');
    assert.equal(await numsub(redis, `${key}-request#/#`), 0, 'request channel after io.close() resolved');
    // The process exits by itself after the close command; mark it stopped for the hooks.
    if (B.alive) await new Promise((resolve) => B.once('exit', resolve));
    await B.stop();
  });
});

// -------------------------------------------------------------------------------------------------
// 6. Redis restart

describe('perRoomSubscriptions: a Redis restart', () => {
  let nodes;
  after(async () => {
    await stopAll();
    await stopAllRedis();
  });
  afterEach(() => assertHealthy(nodes || {}));

  /** A private Redis and B on it, with client `b` in rooms `rooms` and `b2` in none. */
  async function setup(rooms) {
    const redisServer = await privateRedis();
    const key = uniqueKey();
    const [B] = await startServers([{ ...PER_ROOM, redisClients: false }], { key, redisUrl: redisServer.url, namespaces: ['/'] });
    nodes = { B };
    const b = await B.connect('/');
    const b2 = await B.connect('/');
    await B.command('join', { socketId: b.serverSocketId, rooms });
    const redis = await redisClient(redisServer.url);
    const sids = [b, b2].map((x) => roomChannel(key, x.serverSocketId));
    await waitForChannels(redis, key, [mainChannel(key), ...rooms.map((r) => roomChannel(key, r)), ...sids], 'channels before the restart');
    await redis.close();
    return { redisServer, key, B, b, b2 };
  }

  /** Waits until every channel of `expected` is subscribed; returns all of `key`'s broadcast channels. */
  async function waitForAtLeast(redis, key, expected, what) {
    let last;
    await waitUntil(async () => {
      last = await broadcastChannels(redis, key);
      return expected.every((ch) => last.includes(ch));
    }, { what: `${what}; last: ${JSON.stringify(last)}` });
    return last;
  }

  it('B resubscribes the channels of its rooms, including one joined while Redis was down', async () => {
    const { redisServer, key, B, b } = await setup(['stay']);
    await redisServer.kill();
    // Joined while Redis is down: the join must not hang (with Redis away it may resolve before
    // the channel is subscribed; the subscription is then retried).
    const joined = B.command('join', { socketId: b.serverSocketId, rooms: ['r2'] }, 15000);
    await redisServer.start();
    await joined;
    const redis = await redisClient(redisServer.url);
    await waitForAtLeast(redis, key, [mainChannel(key), roomChannel(key, 'stay'), roomChannel(key, 'r2'), roomChannel(key, b.serverSocketId)], 'channels after the restart');

    // Deliveries from an external publisher reach B again, on room and main channels.
    const emitter = new Emitter(redis, { key });
    for (const to of ['stay', 'r2', null]) {
      const event = uniq('ev');
      if (to) emitter.to(to).emit(event);
      else emitter.emit(event);
      await b.waitForEvent(event);
    }
  });

  // An UNSUBSCRIBE that Redis never confirmed (sent during an outage, or in flight when the
  // connection died) must not come back with the resubscription after the reconnect: the
  // transport subscribes again only what is wanted, and undoes what a reconnect restored.
  it('rooms that empty during an outage are not subscribed again after the reconnect', async () => {
    const { redisServer, key, B, b, b2 } = await setup(['r1', 'stay']);
    await redisServer.kill();
    await B.command('leave', { socketId: b.serverSocketId, room: 'r1' }); // r1 empties
    b2.close(); // b2's own room empties
    await B.waitForDisconnect(b2.serverSocketId);
    // The outage lasts long enough for the UNSUBSCRIBE to fail (and be retried) instead of
    // waiting for the reconnect: a fixed duration is the point here.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await redisServer.start();
    const redis = await redisClient(redisServer.url);
    const expected = [mainChannel(key), roomChannel(key, 'stay'), roomChannel(key, b.serverSocketId)];
    const now = await waitForAtLeast(redis, key, expected, 'channels after the restart');
    // One more room change: resolves once B's subscription task caught up.
    await B.command('join', { socketId: b.serverSocketId, rooms: 'stay' });
    assert.deepStrictEqual(await broadcastChannels(redis, key), sorted(expected), `leaked after the reconnect (first look: ${now.join(', ')})`);
  });
});

// -------------------------------------------------------------------------------------------------
// 7. Option validation

describe('perRoomSubscriptions: option validation', () => {
  const { createAdapter } = require(OURS_MODULE);

  for (const value of ['yes', 1, 0, null, {}, 'true']) {
    it(`perRoomSubscriptions: ${JSON.stringify(value)} throws ERR_SIO_OPTION naming the option`, () => {
      assert.throws(() => createAdapter('redis://127.0.0.1:6379', { perRoomSubscriptions: value }), (err) => {
        assert.equal(err.code, 'ERR_SIO_OPTION', `code of ${err.message}`);
        assert.match(err.message, /perRoomSubscriptions/);
        return true;
      });
    });
  }

  it('perRoomSubscriptions: true and false are accepted', () => {
    for (const value of [true, false]) {
      assert.equal(typeof createAdapter('redis://127.0.0.1:6379', { perRoomSubscriptions: value }), 'function');
    }
  });
});
