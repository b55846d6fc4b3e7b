'use strict';
// What sioadapter's ShardedEmitter must do to a cluster of sharded adapters (official and ours,
// in one subscription mode), shared by test/sharded.test.js (Redis Cluster) and
// test/sharded-standalone.test.js (a single Redis 7): every broadcast kind with exact delivery
// counts, socketsJoin / socketsLeave / disconnectSockets on sockets of every node, and
// serverSideEmit reaching every node's listeners.

const assert = require('node:assert/strict');
const path = require('node:path');

const { assertExactDeliveries } = require('./deliveries');
const { waitUntil } = require('./cluster');

const { ShardedEmitter } = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', '..', 'npm'));

const BIN = Buffer.from([0, 1, 2, 0xc1, 0xff]);

/**
 * Runs the checks with a ShardedEmitter on `redis` (what `new ShardedEmitter` takes: a URL, seeds
 * or a client) with `prefix` and `mode`, against `servers` (the nodes) and `clients` (their
 * clients of namespace "/", each with `.server` and `.rooms`, a Set of its rooms and own id; at
 * least one client in room `room` on every node). Returns a line for the report.
 */
async function checkShardedEmitter({ redis, prefix, mode, servers, clients, room }) {
  const start = Date.now();
  const emitter = new ShardedEmitter(redis, { channelPrefix: prefix, subscriptionMode: mode });
  const tag = `se${Date.now().toString(36)}`;
  try {
    // 1. Broadcasts, exact counts.
    const sids = servers.map((s) => clients.find((c) => c.server === s).serverSocketId);
    const sent = [];
    const send = (name, recipients, emit, args) => {
      const event = `${tag}-${name}`;
      emit(event, args);
      sent.push({ event, args, recipients: new Set(clients.filter(recipients)) });
    };
    send('all', () => true, (ev, args) => emitter.emit(ev, ...args), ['x', { n: 1 }]);
    send('room', (c) => c.rooms.has(room), (ev, args) => emitter.to(room).emit(ev, ...args), [2]);
    send('except', (c) => !c.rooms.has(room), (ev, args) => emitter.except(room).emit(ev, ...args), [3]);
    send('two', (c) => c.rooms.has(room) || c.serverSocketId === sids[0], (ev, args) => emitter.to([room, sids[0]]).emit(ev, ...args), [4]);
    send('bin', () => true, (ev, args) => emitter.emit(ev, ...args), [BIN, { nested: BIN }]);
    send('binroom', (c) => c.rooms.has(room), (ev, args) => emitter.to(room).compress(false).emit(ev, ...args), [BIN]);
    send('of', () => true, (ev, args) => emitter.of('/').emit(ev, ...args), ['of']);
    sids.forEach((sid, i) => send(`sid${i}`, (c) => c.serverSocketId === sid, (ev, args) => emitter.to(sid).emit(ev, ...args), [i]));
    await Promise.all(sent.flatMap(({ event, recipients }) => [...recipients].map((c) => c.waitForEvent(event, 1, 10000))));
    // Barrier through every channel used (main, room, socket ids): what was sent before is in.
    for (const [i, to] of [undefined, room, ...sids].entries()) {
      const event = `${tag}-barrier${i}`;
      (to === undefined ? emitter : emitter.to(to)).emit(event);
      await Promise.all(clients.filter((c) => to === undefined || c.rooms.has(to)).map((c) => c.waitForEvent(event, 1, 10000)));
    }
    assertExactDeliveries(sent, clients);
    const bin = clients[0].received(`${tag}-bin`)[0];
    assert.ok(Buffer.isBuffer(Buffer.from(bin[0])) && Buffer.compare(Buffer.from(bin[0]), BIN) === 0, `binary intact: ${JSON.stringify(bin)}`);

    // 2. socketsJoin / socketsLeave, on one socket of each node.
    const joined = `${tag}-joined`;
    emitter.in(sids).socketsJoin(joined);
    await waitForRooms(servers, sids, (rooms) => rooms.includes(joined), `sockets joined ${joined}`);
    emitter.in(joined).socketsLeave(joined);
    await waitForRooms(servers, sids, (rooms) => !rooms.includes(joined), `sockets left ${joined}`);

    // 3. disconnectSockets(true) of a socket of each node.
    const extra = await Promise.all(servers.map((s) => s.connect('/')));
    emitter.in(extra.map((c) => c.serverSocketId)).disconnectSockets(true);
    assert.deepEqual(await Promise.all(extra.map((c) => c.waitForDisconnect(10000))), extra.map(() => 'io server disconnect'));
    for (const c of clients) assert.equal(c.disconnectReason, null, `${c.role} on ${c.server.label} was disconnected`);

    // 4. serverSideEmit reaches every node's listener once.
    const sse = `${tag}-sse`;
    for (const s of servers) await s.command('onServerEvent', { event: sse });
    emitter.serverSideEmit(sse, 'from-emitter', 5);
    for (const s of servers) await s.waitForServerEvent(sse, 1, 10000);
    for (const s of servers) assert.deepEqual(s.serverEventCalls(sse).map((c) => c.args), [['from-emitter', 5]], s.label);
    // Ours must stay clean. The official node is only reported: with node-redis's cluster client
    // in dynamic-private mode, a socket that disconnects makes it SUNSUBSCRIBE the socket's
    // channel, which can reject unhandled ("The client is closed", upstream).
    for (const s of servers.filter((x) => x.config.adapter === 'ours')) assert.deepEqual(s.uncaught, [], s.describeState());
    const official = servers.filter((x) => x.config.adapter !== 'ours' && x.uncaught.length > 0).map((x) => `${x.label}: ${x.uncaught.map((u) => `${u.source}: ${u.error.message}`).join('; ')}`);
    return `ShardedEmitter: ${sent.length} broadcasts exact, socketsJoin/Leave, disconnectSockets, serverSideEmit ok in ${Date.now() - start} ms` +
      (official.length ? `; official node's own errors (not asserted): ${official.join(' | ')}` : '');
  } finally {
    await emitter.close();
  }
}

/** Waits until every socket of `sids` has rooms (its own server's view) that satisfy `pred`. */
async function waitForRooms(servers, sids, pred, what) {
  await waitUntil(async () => {
    const infos = await Promise.all(servers.map((s) => s.command('adapterInfo', { nsp: '/' })));
    return sids.every((sid) => {
      const info = infos.find((i) => Object.values(i.rooms).some((ids) => ids.includes(sid)));
      const rooms = info ? Object.entries(info.rooms).filter(([, ids]) => ids.includes(sid)).map(([r]) => r) : [];
      return pred(rooms);
    });
  }, { timeoutMs: 10000, intervalMs: 50, what });
}

module.exports = { checkShardedEmitter };
