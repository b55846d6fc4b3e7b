'use strict';
// Cluster requests (project issue #3): fetchSockets / RemoteSocket, socketsJoin / socketsLeave /
// disconnectSockets, serverSideEmit (with and without ack), broadcasts with client acks,
// serverCount / allRooms, mixed publishOnSpecificResponseChannel, timeouts and pending-table
// cleanup, the answering rules (empty results, unknown namespaces), and the seeds' API of ours
// (sockets, clients, clientRooms, remoteJoin/Leave/Disconnect, customRequest).
//
// For each pairing [requesting kind, other kind] (env SIO_PAIRINGS, default all four) and each
// Redis client library (env SIO_CLIENTS, default both), node A (requesting kind) asks, nodes B and
// C (other kind) answer; A is always part of the count, so missing, duplicated or self-answered
// responses change the numbers asserted. Waiting is on conditions (IPC reports, client events,
// polled server state), never on fixed sleeps; "did not happen" is checked after an ordering
// barrier that went through Redis after the operation under test.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { uniqueKey, pairings, clientKinds, startServers, redisClient, waitUntil, stopAll } = require('./helpers/cluster');

/** requestsTimeout of the main suites: far above normal latency, below the harness' timeouts. */
const REQ_TIMEOUT = 3000;
/** "Quickly": a request that must complete without waiting for its timeout. */
const QUICK = 1000;
/** requestsTimeout of the timeout suites. */
const SHORT_TIMEOUT = 300;
/** IPC command timeout for calls that may wait for a requestsTimeout. */
const CMD_TIMEOUT = REQ_TIMEOUT + 4000;

let seq = 0;
const uniq = (prefix) => `${prefix}-${++seq}`;
const sorted = (list) => [...list].map(String).sort();
const byName = (a, b) => (String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0);

// -------------------------------------------------------------------------------------------------
// Helpers

/** The value of a settled command result (see server.js `settle`), or a failure naming the error. */
function ok(res, what) {
  if (!res || res.ok !== true) {
    assert.fail(`${what} failed after ${res && Math.round(res.ms)} ms: ${res && res.error && res.error.message} (${JSON.stringify(res && res.error)})`);
  }
  return res.value;
}

/** The error of a settled command result that must have failed. */
function failed(res, what) {
  if (!res || res.ok !== false) assert.fail(`${what} should have failed, but resolved after ${res && Math.round(res.ms)} ms with ${JSON.stringify(res && res.value)}`);
  return res.error;
}

/**
 * Starts servers, then waits until every node counts `expected[nsp]` servers on every namespace it
 * has (the request channel subscriptions are in place), and until the mesh probes are gone.
 */
async function startCluster(specs, common, expectedCounts) {
  const servers = await startServers(specs, common);
  for (const server of servers) {
    for (const nsp of server.config.namespaces) {
      const want = expectedCounts[nsp];
      if (want === undefined) continue;
      await waitUntil(async () => {
        const res = await server.command('serverCount', { nsp });
        return res.ok && res.value === want;
      }, { what: `${server.label}: serverCount(${nsp}) === ${want}` });
    }
  }
  await noLocalSockets(servers);
  return servers;
}

/** Waits until no node has a local socket left (the mesh probes / previous cases' clients). */
async function noLocalSockets(servers) {
  for (const server of servers) {
    for (const nsp of server.config.namespaces) {
      await waitUntil(async () => (await server.command('localSockets', { nsp })).length === 0, {
        what: `${server.label}: no local sockets in ${nsp}`,
      });
    }
  }
}

/**
 * Connects clients: name → { node, rooms = [], nsp = '/', data }. Each socket's `data` (set by the
 * server on connection) defaults to { name, node, nested: {...} }. Returns name → TestClient.
 */
async function connectAll(suite, spec) {
  const clients = {};
  for (const [name, { node, rooms = [], nsp = '/', data }] of Object.entries(spec)) {
    const server = suite.nodes[node];
    const socketData = data === undefined ? { name, node, nested: { list: [1, 'two', null], flag: true, n: 1.5 } } : data;
    const client = await server.connect(nsp, { data: socketData });
    client.name = name;
    client.node = node;
    client.data = socketData;
    client.rooms = rooms;
    if (rooms.length > 0) await server.command('join', { nsp, socketId: client.serverSocketId, rooms });
    clients[name] = client;
    suite.clients.push(client);
  }
  return clients;
}

/** socket id → sorted rooms, of `server`'s local sockets in `nsp`. */
async function localRooms(server, nsp = '/') {
  const sockets = await server.command('localSockets', { nsp });
  return new Map(sockets.map((s) => [s.id, sorted(s.rooms)]));
}

/** Waits until `predicate(roomsById)` holds on every listed node. */
async function waitForRooms(nodes, predicate, what, nsp = '/') {
  const last = {};
  try {
    await waitUntil(async () => {
      for (const node of nodes) {
        const rooms = await localRooms(node, nsp);
        last[node.label] = Object.fromEntries(rooms);
        if (!predicate(rooms, node)) return false;
      }
      return true;
    }, { what });
  } catch (err) {
    err.message += `\nlocal rooms: ${JSON.stringify(last)}`;
    throw err;
  }
}

/**
 * Ordering barrier for requests: B and then C each make every socket join a fresh room, and we wait
 * until every socket of every node is in both. B's and C's requests were published after the
 * operation under test had been applied on B and C, so each node (A included, which may only act on
 * its own echo) has by then processed everything that request caused, duplicates included.
 */
async function requestBarrier(suite, nsp = '/') {
  const { A, B, C } = suite.nodes;
  const rooms = [];
  for (const from of [B, C]) {
    const room = uniq('barrier');
    rooms.push(room);
    await from.command('socketsJoin', { nsp, rooms: [room] });
  }
  await waitForRooms([A, B, C], (byId) => [...byId.values()].every((r) => rooms.every((room) => r.includes(room))), `barrier rooms ${rooms}`, nsp);
}

/** Ordering barrier for server-side emits: B and C each serverSideEmit a marker; wait for A, B, C. */
async function serverEmitBarrier(suite) {
  const { A, B, C } = suite.nodes;
  const evB = uniq('barrierB');
  const evC = uniq('barrierC');
  for (const node of [A, B, C]) for (const event of [evB, evC]) await node.command('onServerEvent', { event });
  await B.command('serverSideEmit', { event: evB });
  await C.command('serverSideEmit', { event: evC });
  await Promise.all([A.waitForServerEvent(evB), A.waitForServerEvent(evC), B.waitForServerEvent(evC), C.waitForServerEvent(evB)]);
}

/** [op, id, room] calls of adapter.addAll/del on `node` for `room` (config recordRoomOps). */
async function roomOpsFor(node, room, op, nsp = '/') {
  return (await node.command('roomOps', { nsp })).filter(([o, , r]) => o === op && r === room);
}

/** Asserts each listed socket id saw `op` on `room` exactly `times` times on its node. */
async function assertRoomOps(clients, room, op, times) {
  for (const client of clients) {
    const ops = (await roomOpsFor(client.server, room, op)).filter(([, id]) => id === client.serverSocketId);
    assert.equal(ops.length, times, `${client.name} (node ${client.node}): ${op} "${room}" applied ${ops.length} time(s), expected ${times}`);
  }
}

/** The requester's pending tables are empty (immediately: nothing should be left to time out). */
async function assertNothingPending(node, what, nsp = '/') {
  const pending = await node.command('pending', { nsp });
  assert.equal(pending.requests, 0, `${node.label}: adapter.requests.size after ${what}: ${JSON.stringify(pending)}`);
  if (pending.stats) assert.equal(pending.stats.pendingRequests, 0, `${node.label}: stats().pendingRequests after ${what}: ${JSON.stringify(pending)}`);
}

/** Waits until the ack tables are empty too (they are cleaned after the broadcast's timeout). */
async function waitNoPendingAcks(node, what, timeoutMs, nsp = '/') {
  let last;
  await waitUntil(async () => {
    last = await node.command('pending', { nsp });
    return last.requests === 0 && last.ackRequests === 0 && (!last.stats || (last.stats.pendingRequests === 0 && last.stats.pendingAcks === 0));
  }, { timeoutMs, what: `${node.label}: empty pending tables after ${what} (last: ${JSON.stringify(last)})` }).catch((err) => {
    err.message += ` last: ${JSON.stringify(last)}`;
    throw err;
  });
}

/** Suite plumbing shared by every describe below. */
function suiteHooks(suite) {
  afterEach(async () => {
    const clients = suite.clients;
    suite.clients = [];
    for (const c of clients) c.close();
    // Wait until every server dropped them, so "all sockets" results of the next case are exact.
    await Promise.all(clients.map((c) => c.server.waitForDisconnect(c.serverSocketId)));
    for (const node of Object.values(suite.nodes || {})) {
      if (node.stopping) continue;
      assert.ok(node.alive, `${node.label} exited: ${JSON.stringify(node.exit)}${node.outputTail()}`);
      assert.deepStrictEqual(node.uncaught, [], `${node.label} reported uncaught errors${node.outputTail()}`);
    }
  });
  after(stopAll);
}

function closeCase(suite) {
  it('servers close and exit by themselves', async () => {
    const results = await Promise.all(Object.values(suite.nodes).map((n) => n.stop()));
    for (const r of results) {
      assert.equal(r.closeError, null, `${r.label}: close failed: ${r.closeError && r.closeError.message}`);
      assert.ok(r.exitedByItself, `${r.label} did not exit after close; still active: ${JSON.stringify(r.closeResult)}`);
      assert.equal(r.code, 0, `${r.label} exit code`);
    }
  });
}

/** Checks one fetchSockets entry against the client it describes. */
function assertSocketDetails(entry, client, requesterNode) {
  const what = `fetchSockets entry of ${client.name} (node ${client.node})`;
  assert.equal(entry.id, client.serverSocketId, `${what}: id`);
  assert.deepStrictEqual(sorted(entry.rooms), sorted([client.serverSocketId, ...client.rooms]), `${what}: rooms`);
  assert.deepStrictEqual(entry.data, client.data, `${what}: data`);
  const h = entry.handshake;
  assert.ok(h && typeof h === 'object', `${what}: handshake missing`);
  assert.deepStrictEqual(h.auth, { tag: client.tag, data: client.data }, `${what}: handshake.auth`);
  assert.equal(h.query && h.query.EIO, '4', `${what}: handshake.query.EIO`);
  assert.equal(h.query.transport, 'websocket', `${what}: handshake.query.transport`);
  assert.equal(typeof h.time, 'string', `${what}: handshake.time`);
  assert.equal(typeof h.issued, 'number', `${what}: handshake.issued`);
  assert.equal(typeof h.address, 'string', `${what}: handshake.address`);
  assert.equal(h.xdomain, false, `${what}: handshake.xdomain`);
  assert.equal(h.secure, false, `${what}: handshake.secure`);
  assert.ok(typeof h.url === 'string' && h.url.startsWith('/socket.io/'), `${what}: handshake.url ${h.url}`);
  assert.ok(h.headers && typeof h.headers === 'object' && typeof h.headers.host === 'string', `${what}: handshake.headers`);
  assert.ok(!('sessionStore' in h), `${what}: handshake must not carry sessionStore`);
  assert.equal(entry.kind, client.node === requesterNode ? 'Socket' : 'RemoteSocket', `${what}: kind`);
}

/** Asserts a fetchSockets result is exactly `clients` (by id), with full details. */
function assertFetched(list, clients, requesterNode, what) {
  assert.deepStrictEqual(sorted(list.map((s) => s.id)), sorted(clients.map((c) => c.serverSocketId)),
    `${what}: ids (expected ${clients.map((c) => c.name).join(', ') || 'none'})`);
  assert.equal(list.length, clients.length, `${what}: ${list.length} entries (duplicates?)`);
  for (const client of clients) assertSocketDetails(list.find((s) => s.id === client.serverSocketId), client, requesterNode);
}

// -------------------------------------------------------------------------------------------------
// 1–5, 8: the main suite, three nodes [A requester, B, C]

for (const [reqKind, otherKind] of pairings()) {
  for (const client of clientKinds()) {
    describe(`requests ${reqKind} → ${otherKind} (${client})`, () => {
      const suite = { nodes: null, clients: [] };

      before(async () => {
        const [A, B, C] = await startCluster(
          [
            { adapter: reqKind, label: `A:${reqKind}`, namespaces: ['/', '/admin', '/other'] },
            { adapter: otherKind, label: `B:${otherKind}`, namespaces: ['/', '/admin'] },
            { adapter: otherKind, label: `C:${otherKind}`, namespaces: ['/', '/admin', '/other'] },
          ],
          { key: uniqueKey(), client, requestsTimeout: REQ_TIMEOUT, recordRoomOps: true },
          { '/': 3, '/admin': 3, '/other': 2 },
        );
        suite.nodes = { A, B, C };
      });
      suiteHooks(suite);

      // ---- 1. fetchSockets and RemoteSocket

      it('io.fetchSockets() returns every socket of every node with id, handshake, rooms and data', async () => {
        const { A } = suite.nodes;
        const r1 = uniq('r1');
        const r2 = uniq('r2');
        const c = await connectAll(suite, {
          a1: { node: 'A', rooms: [r1] }, a2: { node: 'A' },
          b1: { node: 'B', rooms: [r1, r2] }, b2: { node: 'B' },
          c1: { node: 'C', rooms: [r2] },
        });
        const res = await A.command('fetchSockets', {}, CMD_TIMEOUT);
        assertFetched(ok(res, 'fetchSockets()'), Object.values(c), 'A', 'io.fetchSockets()');
        assert.ok(res.ms < QUICK, `fetchSockets took ${Math.round(res.ms)} ms (requestsTimeout ${REQ_TIMEOUT})`);
        await assertNothingPending(A, 'fetchSockets');
      });

      it('io.in(room).fetchSockets() and .except(): only the matching sockets of every node', async () => {
        const { A } = suite.nodes;
        const r1 = uniq('r1');
        const r2 = uniq('r2');
        const c = await connectAll(suite, {
          a1: { node: 'A', rooms: [r1] }, a2: { node: 'A', rooms: [r2] }, a3: { node: 'A' },
          b1: { node: 'B', rooms: [r1, r2] }, b2: { node: 'B' },
          c1: { node: 'C', rooms: [r2] }, c2: { node: 'C', rooms: [r1] },
        });
        const cases = [
          [{ in: r1 }, [c.a1, c.b1, c.c2]],
          [{ in: r2 }, [c.a2, c.b1, c.c1]],
          [{ in: [r1, r2] }, [c.a1, c.a2, c.b1, c.c1, c.c2]],
          [{ in: r2, except: r1 }, [c.a2, c.c1]],
          [{ except: [r1, r2] }, [c.a3, c.b2]],
          [{ in: c.b2.serverSocketId }, [c.b2]],
        ];
        for (const [modifiers, expected] of cases) {
          const list = ok(await A.command('fetchSockets', modifiers, CMD_TIMEOUT), `fetchSockets ${JSON.stringify(modifiers)}`);
          assertFetched(list, expected, 'A', `fetchSockets ${JSON.stringify(modifiers)}`);
        }
        await assertNothingPending(A, 'fetchSockets');
      });

      it('RemoteSocket.emit / join / leave / disconnect act on a socket of another node', async () => {
        const { A, B, C } = suite.nodes;
        const c = await connectAll(suite, { a1: { node: 'A' }, target: { node: 'B' }, b2: { node: 'B' }, c1: { node: 'C' } });
        const id = c.target.serverSocketId;

        // emit: exactly once, to the target only.
        const emitted = ok(await A.command('remoteSocket', { socketId: id, op: 'emit', args: ['rs-hello', 'x', { n: 1 }] }, CMD_TIMEOUT), 'RemoteSocket.emit');
        assert.equal(emitted.kind, 'RemoteSocket');
        await c.target.waitForEvent('rs-hello');
        await A.flush(Object.values(c));
        assert.deepStrictEqual(c.target.received('rs-hello'), [['x', { n: 1 }]], 'target: RemoteSocket.emit deliveries');
        for (const other of [c.a1, c.b2, c.c1]) assert.equal(other.received('rs-hello').length, 0, `${other.name} got the RemoteSocket.emit`);

        // join / leave: the target's rooms on B change, nobody else's.
        const room = uniq('rs-room');
        ok(await A.command('remoteSocket', { socketId: id, op: 'join', args: [room] }, CMD_TIMEOUT), 'RemoteSocket.join');
        await waitForRooms([B], (byId) => byId.get(id).includes(room), `target joined ${room} on B`);
        await requestBarrier(suite);
        for (const node of [A, B, C]) {
          for (const [sid, rooms] of await localRooms(node)) {
            assert.equal(rooms.includes(room), sid === id, `${node.label} socket ${sid}: membership of ${room}`);
          }
        }
        await assertRoomOps([c.target], room, 'add', 1);
        ok(await A.command('remoteSocket', { socketId: id, op: 'leave', args: [room] }, CMD_TIMEOUT), 'RemoteSocket.leave');
        await waitForRooms([B], (byId) => !byId.get(id).includes(room), `target left ${room} on B`);
        await requestBarrier(suite);
        await assertRoomOps([c.target], room, 'del', 1);

        // disconnect: only the target.
        ok(await A.command('remoteSocket', { socketId: id, op: 'disconnect' }, CMD_TIMEOUT), 'RemoteSocket.disconnect');
        assert.equal(await c.target.waitForDisconnect(), 'io server disconnect', 'target: client-side disconnect reason');
        assert.equal((await B.waitForDisconnect(id)).reason, 'server namespace disconnect', 'target: server-side reason');
        await requestBarrier(suite);
        for (const other of [c.a1, c.b2, c.c1]) assert.ok(other.socket.connected, `${other.name} was disconnected too`);
        await assertNothingPending(A, 'RemoteSocket operations');
      });

      // ---- 2. socketsJoin / socketsLeave / disconnectSockets

      it('io.in(room).socketsJoin([j1, j2]) is applied exactly once on every node, the sender included', async () => {
        const { A, B, C } = suite.nodes;
        const src = uniq('src');
        const j1 = uniq('j1');
        const j2 = uniq('j2');
        const c = await connectAll(suite, {
          a_in: { node: 'A', rooms: [src] }, a_out: { node: 'A' },
          b_in: { node: 'B', rooms: [src] }, b_out: { node: 'B' },
          c_in: { node: 'C', rooms: [src] }, c_out: { node: 'C' },
        });
        const members = [c.a_in, c.b_in, c.c_in];
        const others = [c.a_out, c.b_out, c.c_out];
        await A.command('socketsJoin', { in: src, rooms: [j1, j2] });
        await waitForRooms([A, B, C], (byId, node) =>
          members.filter((m) => m.server === node).every((m) => byId.get(m.serverSocketId).includes(j1) && byId.get(m.serverSocketId).includes(j2)),
        `members in ${j1} and ${j2}`);
        await requestBarrier(suite);
        for (const node of [A, B, C]) {
          const byId = await localRooms(node);
          for (const o of others.filter((x) => x.server === node)) {
            assert.ok(!byId.get(o.serverSocketId).includes(j1) && !byId.get(o.serverSocketId).includes(j2), `${o.name} joined although not in ${src}`);
          }
        }
        await assertRoomOps(members, j1, 'add', 1);
        await assertRoomOps(members, j2, 'add', 1);
        await assertRoomOps(others, j1, 'add', 0);
      });

      it('io.except(room).socketsJoin(r) reaches the other sockets of every node', async () => {
        const { A, B, C } = suite.nodes;
        const src = uniq('src');
        const j = uniq('j');
        const c = await connectAll(suite, {
          a_in: { node: 'A', rooms: [src] }, a_out: { node: 'A' },
          b_in: { node: 'B', rooms: [src] }, b_out: { node: 'B' }, c_out: { node: 'C' },
        });
        const targets = [c.a_out, c.b_out, c.c_out];
        await A.command('socketsJoin', { except: src, rooms: j });
        await waitForRooms([A, B, C], (byId, node) => targets.filter((t) => t.server === node).every((t) => byId.get(t.serverSocketId).includes(j)), `non-members in ${j}`);
        await requestBarrier(suite);
        await assertRoomOps(targets, j, 'add', 1);
        await assertRoomOps([c.a_in, c.b_in], j, 'add', 0);
      });

      it('io.in(room).socketsLeave(j1) is applied exactly once on every node, the sender included', async () => {
        const { A, B, C } = suite.nodes;
        const src = uniq('src');
        const j1 = uniq('j1');
        const j2 = uniq('j2');
        const c = await connectAll(suite, {
          a_in: { node: 'A', rooms: [src, j1, j2] }, a_out: { node: 'A', rooms: [j1] },
          b_in: { node: 'B', rooms: [src, j1, j2] }, b_out: { node: 'B', rooms: [j1] },
          c_in: { node: 'C', rooms: [src, j1, j2] },
        });
        const members = [c.a_in, c.b_in, c.c_in];
        await A.command('socketsLeave', { in: src, rooms: j1 });
        await waitForRooms([A, B, C], (byId, node) => members.filter((m) => m.server === node).every((m) => !byId.get(m.serverSocketId).includes(j1)), `members left ${j1}`);
        await requestBarrier(suite);
        for (const m of members) {
          const rooms = (await localRooms(m.server)).get(m.serverSocketId);
          assert.ok(rooms.includes(j2) && rooms.includes(src), `${m.name} lost other rooms: ${rooms}`);
        }
        for (const o of [c.a_out, c.b_out]) {
          assert.ok((await localRooms(o.server)).get(o.serverSocketId).includes(j1), `${o.name} left ${j1} although not in ${src}`);
        }
        await assertRoomOps(members, j1, 'del', 1);
        await assertRoomOps([c.a_out, c.b_out], j1, 'del', 0);
      });

      for (const close of [false, true]) {
        it(`io.in(room).disconnectSockets(${close}) disconnects the room's sockets of every node, only them`, async () => {
          const src = uniq('src');
          const c = await connectAll(suite, {
            a_in: { node: 'A', rooms: [src] }, a_out: { node: 'A' },
            b_in: { node: 'B', rooms: [src] }, b_out: { node: 'B' },
            c_in: { node: 'C', rooms: [src] }, c_out: { node: 'C' },
          });
          const members = [c.a_in, c.b_in, c.c_in];
          await suite.nodes.A.command('disconnectSockets', { in: src, close });
          for (const m of members) {
            assert.equal(await m.waitForDisconnect(), 'io server disconnect', `${m.name}: client-side reason`);
            assert.equal((await m.server.waitForDisconnect(m.serverSocketId)).reason, 'server namespace disconnect', `${m.name}: server-side reason`);
            // close=true closes the underlying connection from the server side; close=false lets the client do it.
            assert.equal(await m.server.waitForConnClose(m.serverSocketId), close ? 'forced close' : 'transport close', `${m.name}: connection close reason (close=${close})`);
          }
          await requestBarrier(suite);
          for (const o of [c.a_out, c.b_out, c.c_out]) {
            assert.ok(o.socket.connected, `${o.name} was disconnected although not in ${src} (${o.disconnectReason})`);
            assert.ok(!o.server.disconnects.some((d) => d.id === o.serverSocketId), `${o.name}: server reported a disconnect`);
          }
        });
      }

      // ---- 3. serverSideEmit

      it('io.serverSideEmit(event, ...args) without ack: once on every other node, never on the sender', async () => {
        const { A, B, C } = suite.nodes;
        const event = uniq('srv');
        for (const node of [A, B, C]) await node.command('onServerEvent', { event, reply: `reply-${node.label}` });
        const args = ['x', 42, { nested: { list: [1, 'two', null] } }, [true, false]];
        await A.command('serverSideEmit', { event, args });
        await Promise.all([B.waitForServerEvent(event), C.waitForServerEvent(event)]);
        await serverEmitBarrier(suite);
        assert.equal(A.serverEventCalls(event).length, 0, 'the sender received its own serverSideEmit');
        for (const node of [B, C]) {
          const calls = node.serverEventCalls(event);
          assert.equal(calls.length, 1, `${node.label}: serverSideEmit delivered ${calls.length} time(s)`);
          assert.deepStrictEqual(calls[0].args, args, `${node.label}: arguments`);
          assert.equal(calls[0].withAck, false, `${node.label}: listener got an ack callback for a serverSideEmit without ack`);
        }
      });

      for (const mode of ['callback', 'promise']) {
        it(`io.serverSideEmit${mode === 'promise' ? 'WithAck' : ' with ack callback'}: one response per other node`, async () => {
          const { A, B, C } = suite.nodes;
          const event = uniq('srv-ack');
          for (const node of [A, B, C]) await node.command('onServerEvent', { event, reply: { from: node.label, list: [1, 'x'] } });
          const args = ['q', 7];
          const res = await A.command('serverSideEmit', { event, args, mode }, CMD_TIMEOUT);
          let responses;
          if (mode === 'callback') {
            assert.equal(res.err, null, `serverSideEmit callback error: ${JSON.stringify(res.err)}`);
            responses = res.responses;
          } else {
            responses = ok(res, 'serverSideEmitWithAck');
          }
          assert.ok(res.ms < QUICK, `serverSideEmit with ack took ${Math.round(res.ms)} ms`);
          assert.deepStrictEqual([...responses].sort((a, b) => (a.from < b.from ? -1 : 1)),
            [{ from: B.label, list: [1, 'x'] }, { from: C.label, list: [1, 'x'] }], 'responses');
          await serverEmitBarrier(suite);
          assert.equal(A.serverEventCalls(event).length, 0, 'the sender received its own serverSideEmit');
          for (const node of [B, C]) {
            const calls = node.serverEventCalls(event);
            assert.equal(calls.length, 1, `${node.label}: delivered ${calls.length} time(s)`);
            assert.deepStrictEqual(calls[0].args, args, `${node.label}: arguments`);
            assert.equal(calls[0].withAck, true, `${node.label}: listener got no ack callback`);
          }
          await assertNothingPending(A, 'serverSideEmit with ack');
        });
      }

      // ---- 4. broadcasts with client acks

      for (const mode of ['callback', 'promise']) {
        it(`io.timeout(ms).${mode === 'promise' ? 'emitWithAck' : 'emit(ev, cb)'} collects the acks of every node's clients`, async () => {
          const { A } = suite.nodes;
          const room = uniq('ack-room');
          const c = await connectAll(suite, {
            a1: { node: 'A', rooms: [room] }, a2: { node: 'A' },
            b1: { node: 'B', rooms: [room] }, b2: { node: 'B', rooms: [room] }, b3: { node: 'B' },
            c1: { node: 'C' },
          });
          const event = uniq('ack-ev');
          for (const [name, cl] of Object.entries(c)) cl.setAckHandler(event, (...args) => ({ name, args }));
          const args = ['q', 1, { deep: [true] }];

          // Everybody: 6 acks, each with the arguments the client got.
          let res = await A.command('emitWithAck', { event, args, timeout: REQ_TIMEOUT, mode }, CMD_TIMEOUT);
          let responses = mode === 'promise' ? ok(res, 'emitWithAck') : res.responses;
          if (mode === 'callback') assert.equal(res.err, null, `emit with ack error: ${JSON.stringify(res.err)}`);
          assert.ok(res.ms < QUICK, `emit with ack took ${Math.round(res.ms)} ms`);
          assert.deepStrictEqual([...responses].sort(byName), Object.keys(c).sort().map((name) => ({ name, args })), 'acks of io.emit');

          // A room (no member on C: C answers with a client count of 0).
          res = await A.command('emitWithAck', { to: room, event, args, timeout: REQ_TIMEOUT, mode }, CMD_TIMEOUT);
          responses = mode === 'promise' ? ok(res, 'emitWithAck to room') : res.responses;
          if (mode === 'callback') assert.equal(res.err, null, `emit with ack to room error: ${JSON.stringify(res.err)}`);
          assert.ok(res.ms < QUICK, `emit with ack to a room took ${Math.round(res.ms)} ms`);
          assert.deepStrictEqual(responses.map((r) => r.name).sort(), ['a1', 'b1', 'b2'], 'acks of io.to(room).emit');

          for (const [name, cl] of Object.entries(c)) {
            const expected = ['a1', 'b1', 'b2'].includes(name) ? 2 : 1;
            assert.equal(cl.received(event).length, expected, `${name} received the event ${cl.received(event).length} time(s)`);
          }
        });
      }

      it('after broadcasts with ack complete, the ack tables empty once the ack timeout passed', async () => {
        const { A } = suite.nodes;
        const c = await connectAll(suite, { a1: { node: 'A' }, b1: { node: 'B' }, c1: { node: 'C' } });
        const event = uniq('ack-clean');
        for (const [name, cl] of Object.entries(c)) cl.setAckHandler(event, name);
        const res = await A.command('emitWithAck', { event, timeout: 600, mode: 'callback' }, CMD_TIMEOUT);
        assert.equal(res.err, null, `emit with ack error: ${JSON.stringify(res.err)}`);
        assert.deepStrictEqual(sorted(res.responses), ['a1', 'b1', 'c1']);
        await waitNoPendingAcks(A, 'a completed broadcast with ack (timeout 600 ms)', 4000);
      });

      // ---- 5. serverCount / allRooms

      it('adapter.serverCount() equals the number of nodes of each namespace', async () => {
        const { A, B, C } = suite.nodes;
        for (const node of [A, B, C]) {
          for (const nsp of ['/', '/admin']) assert.equal(ok(await node.command('serverCount', { nsp }), 'serverCount'), 3, `${node.label} serverCount(${nsp})`);
        }
        for (const node of [A, C]) assert.equal(ok(await node.command('serverCount', { nsp: '/other' }), 'serverCount'), 2, `${node.label} serverCount(/other)`);
      });

      it('adapter.allRooms() includes the rooms of every node', async () => {
        const { A } = suite.nodes;
        const [ra, rb, rc, shared] = ['ra', 'rb', 'rc', 'shared'].map(uniq);
        const c = await connectAll(suite, {
          a1: { node: 'A', rooms: [ra, shared] }, b1: { node: 'B', rooms: [rb, shared] }, b2: { node: 'B', rooms: [rb] }, c1: { node: 'C', rooms: [rc] },
        });
        const res = await A.command('allRooms', {}, CMD_TIMEOUT);
        const rooms = ok(res, 'allRooms');
        assert.ok(res.ms < QUICK, `allRooms took ${Math.round(res.ms)} ms`);
        const expected = [ra, rb, rc, shared, ...Object.values(c).map((cl) => cl.serverSocketId)];
        for (const room of expected) assert.ok(rooms.includes(room), `allRooms lacks ${room}: ${JSON.stringify(rooms)}`);
        assert.equal(new Set(rooms).size, rooms.length, 'allRooms has duplicates');
        await assertNothingPending(A, 'allRooms');
      });

      // ---- 8. answering rules

      it('a node without matching sockets still answers: fetchSockets of an empty room resolves [] quickly', async () => {
        const { A, B, C } = suite.nodes;
        await connectAll(suite, { a1: { node: 'A' }, b1: { node: 'B' }, c1: { node: 'C' } });
        for (const node of [A, B, C]) {
          const res = await node.command('fetchSockets', { in: uniq('nobody') }, CMD_TIMEOUT);
          assert.deepStrictEqual(ok(res, `${node.label} fetchSockets of an empty room`), []);
          assert.ok(res.ms < QUICK, `${node.label}: fetchSockets of an empty room took ${Math.round(res.ms)} ms (requestsTimeout ${REQ_TIMEOUT}): somebody did not answer`);
        }
        // Nobody connected at all in /admin: still answered by every node.
        const res = await A.command('fetchSockets', { nsp: '/admin' }, CMD_TIMEOUT);
        assert.deepStrictEqual(ok(res, 'fetchSockets in an empty namespace'), []);
        assert.ok(res.ms < QUICK, `fetchSockets in an empty namespace took ${Math.round(res.ms)} ms`);
        await assertNothingPending(A, 'fetchSockets of an empty room');
      });

      it('a request for a namespace a node does not have is ignored by it: /other completes with A and C', async () => {
        const { A, C } = suite.nodes;
        const c = await connectAll(suite, {
          a1: { node: 'A', nsp: '/other' }, c1: { node: 'C', nsp: '/other' }, b_root: { node: 'B' }, c_root: { node: 'C' },
        });
        for (const [node, label] of [[A, 'A'], [C, 'C']]) {
          const res = await node.command('fetchSockets', { nsp: '/other' }, CMD_TIMEOUT);
          assertFetched(ok(res, `${node.label} fetchSockets on /other`), [c.a1, c.c1], label, `${node.label} fetchSockets on /other`);
          assert.ok(res.ms < QUICK, `${node.label}: fetchSockets on /other took ${Math.round(res.ms)} ms`);
          const rooms = ok(await node.command('allRooms', { nsp: '/other' }, CMD_TIMEOUT), 'allRooms on /other');
          assert.deepStrictEqual(rooms, sorted([c.a1.serverSocketId, c.c1.serverSocketId]), `${node.label}: allRooms on /other`);
        }
        await assertNothingPending(A, 'requests on /other', '/other');
      });

      closeCase(suite);
    });
  }
}

// -------------------------------------------------------------------------------------------------
// 6. publishOnSpecificResponseChannel mixed

for (const [reqKind, otherKind] of pairings()) {
  for (const client of clientKinds()) {
    describe(`requests with mixed publishOnSpecificResponseChannel ${reqKind} → ${otherKind} (${client})`, () => {
      const suite = { nodes: null, clients: [] };

      before(async () => {
        const [A, B, C] = await startCluster(
          [
            { adapter: reqKind, label: `A:${reqKind}:specific`, publishOnSpecificResponseChannel: true },
            { adapter: otherKind, label: `B:${otherKind}:specific`, publishOnSpecificResponseChannel: true },
            { adapter: otherKind, label: `C:${otherKind}:shared`, publishOnSpecificResponseChannel: false },
          ],
          { key: uniqueKey(), client, requestsTimeout: REQ_TIMEOUT, namespaces: ['/'] },
          { '/': 3 },
        );
        suite.nodes = { A, B, C };
      });
      suiteHooks(suite);

      for (const requester of ['A', 'B', 'C']) {
        it(`requests from ${requester} complete: fetchSockets, allRooms, serverSideEmitWithAck, emitWithAck`, async () => {
          const node = suite.nodes[requester];
          const r = uniq('psrc');
          const c = await connectAll(suite, { a1: { node: 'A', rooms: [r] }, b1: { node: 'B', rooms: [r] }, c1: { node: 'C' } });

          let res = await node.command('fetchSockets', {}, CMD_TIMEOUT);
          assertFetched(ok(res, 'fetchSockets'), Object.values(c), requester, `${node.label} fetchSockets`);
          assert.ok(res.ms < QUICK, `fetchSockets took ${Math.round(res.ms)} ms`);

          res = await node.command('fetchSockets', { in: r }, CMD_TIMEOUT);
          assertFetched(ok(res, 'fetchSockets in room'), [c.a1, c.b1], requester, `${node.label} fetchSockets in room`);

          res = await node.command('allRooms', {}, CMD_TIMEOUT);
          const rooms = ok(res, 'allRooms');
          assert.ok(res.ms < QUICK, `allRooms took ${Math.round(res.ms)} ms`);
          for (const room of [r, c.a1.serverSocketId, c.b1.serverSocketId, c.c1.serverSocketId]) assert.ok(rooms.includes(room), `allRooms lacks ${room}`);

          const event = uniq('psrc-srv');
          for (const n of Object.values(suite.nodes)) await n.command('onServerEvent', { event, reply: n.label });
          res = await node.command('serverSideEmit', { event, mode: 'promise' }, CMD_TIMEOUT);
          assert.deepStrictEqual(sorted(ok(res, 'serverSideEmitWithAck')), sorted(Object.values(suite.nodes).filter((n) => n !== node).map((n) => n.label)));
          assert.ok(res.ms < QUICK, `serverSideEmitWithAck took ${Math.round(res.ms)} ms`);

          const ackEvent = uniq('psrc-ack');
          for (const [name, cl] of Object.entries(c)) cl.setAckHandler(ackEvent, name);
          res = await node.command('emitWithAck', { event: ackEvent, timeout: REQ_TIMEOUT, mode: 'promise' }, CMD_TIMEOUT);
          assert.deepStrictEqual(sorted(ok(res, 'emitWithAck')), ['a1', 'b1', 'c1']);
          assert.ok(res.ms < QUICK, `emitWithAck took ${Math.round(res.ms)} ms`);

          await assertNothingPending(node, 'requests with mixed response channels');
        });
      }

      closeCase(suite);
    });
  }
}

// -------------------------------------------------------------------------------------------------
// 7. Timeouts: a subscriber of the request channel that never answers

for (const [reqKind, otherKind] of pairings()) {
  for (const client of clientKinds()) {
    describe(`request timeouts ${reqKind} → ${otherKind} with a silent subscriber (${client})`, () => {
      const suite = { nodes: null, clients: [] };
      const isOurs = reqKind === 'ours';

      before(async () => {
        const key = uniqueKey();
        const [A, B] = await startCluster(
          [{ adapter: reqKind, label: `A:${reqKind}` }, { adapter: otherKind, label: `B:${otherKind}` }],
          { key, client, requestsTimeout: SHORT_TIMEOUT, namespaces: ['/'] },
          { '/': 2 },
        );
        suite.nodes = { A, B };
        // Counted by PUBSUB NUMSUB like a node, but never answers anything.
        const silent = await redisClient();
        await silent.subscribe(`${key}-request#/#`, () => {});
        await waitUntil(async () => (await A.command('serverCount', {})).value === 3, { what: 'serverCount 3 with the silent subscriber' });
      });
      suiteHooks(suite);

      /** A timed-out request: exact message, about requestsTimeout late, numbers on ours. */
      function assertTimeout(res, message, what, received, expected) {
        const err = failed(res, what);
        assert.equal(err.message, message, `${what}: error message`);
        assert.ok(res.ms >= SHORT_TIMEOUT - 30, `${what} rejected after ${Math.round(res.ms)} ms, before requestsTimeout ${SHORT_TIMEOUT}`);
        assert.ok(res.ms < SHORT_TIMEOUT + 1500, `${what} rejected after ${Math.round(res.ms)} ms`);
        if (isOurs) {
          assert.equal(err.received, received, `${what}: error.received (${JSON.stringify(err)})`);
          assert.equal(err.expected, expected, `${what}: error.expected (${JSON.stringify(err)})`);
        }
      }

      it('fetchSockets() rejects with "timeout reached while waiting for fetchSockets response"', async () => {
        const { A } = suite.nodes;
        await connectAll(suite, { a1: { node: 'A' }, b1: { node: 'B' } });
        const res = await A.command('fetchSockets', {}, CMD_TIMEOUT);
        assertTimeout(res, 'timeout reached while waiting for fetchSockets response', 'fetchSockets', 1, 2);
        await assertNothingPending(A, 'a timed-out fetchSockets');
      });

      it('allRooms() rejects with "timeout reached while waiting for allRooms response"', async () => {
        const { A } = suite.nodes;
        await connectAll(suite, { a1: { node: 'A' }, b1: { node: 'B' } });
        const res = await A.command('allRooms', {}, CMD_TIMEOUT);
        assertTimeout(res, 'timeout reached while waiting for allRooms response', 'allRooms', 1, 2);
        await assertNothingPending(A, 'a timed-out allRooms');
      });

      it('serverSideEmit with ack reports "timeout reached: only 1 responses received out of 2" with the partial responses', async () => {
        const { A, B } = suite.nodes;
        const event = uniq('srv-timeout');
        for (const node of [A, B]) await node.command('onServerEvent', { event, reply: { from: node.label } });
        const res = await A.command('serverSideEmit', { event, args: ['x'], mode: 'callback' }, CMD_TIMEOUT);
        assert.ok(res.err, `serverSideEmit callback got no error; responses ${JSON.stringify(res.responses)}`);
        assert.equal(res.err.message, 'timeout reached: only 1 responses received out of 2');
        assert.deepStrictEqual(res.responses, [{ from: B.label }], 'partial responses');
        assert.ok(res.ms >= SHORT_TIMEOUT - 30 && res.ms < SHORT_TIMEOUT + 1500, `callback after ${Math.round(res.ms)} ms`);
        if (isOurs) assert.deepStrictEqual([res.err.received, res.err.expected], [1, 2], `error numbers ${JSON.stringify(res.err)}`);
        await assertNothingPending(A, 'a timed-out serverSideEmit with ack');

        const promised = await A.command('serverSideEmit', { event, args: ['y'], mode: 'promise' }, CMD_TIMEOUT);
        assert.equal(failed(promised, 'serverSideEmitWithAck').message, 'timeout reached: only 1 responses received out of 2');
        assert.deepStrictEqual(B.serverEventCalls(event).map((e) => e.args), [['x'], ['y']], 'B listener calls');
        assert.equal(A.serverEventCalls(event).length, 0, 'the sender received its own serverSideEmit');
        await assertNothingPending(A, 'a timed-out serverSideEmitWithAck');
      });

      it('a broadcast with ack times out with the acks received, then the ack tables empty', async () => {
        const { A } = suite.nodes;
        const c = await connectAll(suite, { a1: { node: 'A' }, b1: { node: 'B' }, b2: { node: 'B' } });
        const event = uniq('ack-timeout');
        for (const [name, cl] of Object.entries(c)) cl.setAckHandler(event, name);
        const res = await A.command('emitWithAck', { event, timeout: SHORT_TIMEOUT, mode: 'callback' }, CMD_TIMEOUT);
        assert.ok(res.err, `emit with ack did not time out: ${JSON.stringify(res.responses)}`);
        assert.equal(res.err.message, 'operation has timed out');
        assert.deepStrictEqual(sorted(res.responses), ['a1', 'b1', 'b2'], 'acks received before the timeout');
        await waitNoPendingAcks(A, 'a timed-out broadcast with ack', 3000);
      });

      it('fetchSockets with the local flag never asks: it resolves at once despite the silent subscriber', async () => {
        const { A } = suite.nodes;
        const c = await connectAll(suite, { a1: { node: 'A' }, b1: { node: 'B' } });
        const res = await A.command('fetchSockets', { local: true }, CMD_TIMEOUT);
        assertFetched(ok(res, 'local fetchSockets'), [c.a1], 'A', 'io.local.fetchSockets()');
        assert.ok(res.ms < SHORT_TIMEOUT, `local fetchSockets took ${Math.round(res.ms)} ms`);
        await assertNothingPending(A, 'a local fetchSockets');
      });

      closeCase(suite);
    });
  }
}

// -------------------------------------------------------------------------------------------------
// 9. The seeds' API on ours (requester ours; other nodes ours or official)

const SEEDS_TIMEOUT = 800;

for (const [reqKind, otherKind] of pairings().filter(([r]) => r === 'ours')) {
  for (const client of clientKinds()) {
    describe(`seeds' API ${reqKind} → ${otherKind} (${client})`, () => {
      const suite = { nodes: null, clients: [] };

      before(async () => {
        const [A, B, C] = await startCluster(
          [{ adapter: reqKind, label: `A:${reqKind}` }, { adapter: otherKind, label: `B:${otherKind}` }, { adapter: otherKind, label: `C:${otherKind}` }],
          { key: uniqueKey(), client, requestsTimeout: SEEDS_TIMEOUT, namespaces: ['/'], recordRoomOps: true },
          { '/': 3 },
        );
        suite.nodes = { A, B, C };
      });
      suiteHooks(suite);

      const call = (method, args, extra = {}) => suite.nodes.A.command('adapterCall', { method, args, ...extra }, CMD_TIMEOUT);

      async function fixture() {
        const s1 = uniq('s1');
        const s2 = uniq('s2');
        const c = await connectAll(suite, {
          a1: { node: 'A', rooms: [s1] }, a2: { node: 'A' },
          b1: { node: 'B', rooms: [s1, s2] }, b2: { node: 'B' },
          c1: { node: 'C', rooms: [s2] },
        });
        const ids = (...names) => sorted(names.map((n) => c[n].serverSocketId));
        return { s1, s2, c, ids };
      }

      for (const callback of [false, true]) {
        const form = callback ? ' (callback)' : '';

        it(`adapter.sockets(new Set([room])) and clients([room]) are cluster-wide${form}`, async () => {
          const { s1, s2, ids } = await fixture();
          let res = await call('sockets', [[s1]], { setArgs: [0], callback });
          const set = ok(res, 'sockets([s1])');
          assert.ok(set && Array.isArray(set.set), `sockets() must resolve a Set, got ${JSON.stringify(set)}`);
          assert.deepStrictEqual(sorted(set.set), ids('a1', 'b1'), 'sockets(new Set([s1]))');
          assert.ok(res.ms < QUICK, `sockets() took ${Math.round(res.ms)} ms`);
          res = await call('sockets', [[]], { setArgs: [0], callback });
          assert.deepStrictEqual(sorted(ok(res, 'sockets(new Set())').set), ids('a1', 'a2', 'b1', 'b2', 'c1'), 'sockets(new Set())');
          res = await call('clients', [[s2]], { callback });
          const list = ok(res, 'clients([s2])');
          assert.ok(Array.isArray(list), `clients() must resolve an array, got ${JSON.stringify(list)}`);
          assert.deepStrictEqual(sorted(list), ids('b1', 'c1'), 'clients([s2])');
          await assertNothingPending(suite.nodes.A, 'sockets/clients');
        });

        it(`adapter.allRooms() and clientRooms(id of a socket on another node)${form}`, async () => {
          const { s1, s2, c } = await fixture();
          const rooms = ok(await call('allRooms', [], { callback }), 'allRooms');
          const list = rooms && rooms.set ? rooms.set : rooms;
          for (const room of [s1, s2, ...Object.values(c).map((x) => x.serverSocketId)]) assert.ok(list.includes(room), `allRooms lacks ${room}`);
          for (const target of [c.b1, c.c1, c.a1]) {
            const res = await call('clientRooms', [target.serverSocketId], { callback });
            assert.deepStrictEqual(sorted(ok(res, `clientRooms(${target.name})`)), sorted([target.serverSocketId, ...target.rooms]), `clientRooms(${target.name})`);
            assert.ok(res.ms < QUICK, `clientRooms took ${Math.round(res.ms)} ms`);
          }
          await assertNothingPending(suite.nodes.A, 'allRooms/clientRooms');
        });

        it(`adapter.remoteJoin / remoteLeave act on a socket of another node before resolving${form}`, async () => {
          const { c } = await fixture();
          const { B, C } = suite.nodes;
          const room = uniq('remote');
          for (const target of [c.b2, c.c1]) {
            let res = await call('remoteJoin', [target.serverSocketId, room], { callback });
            ok(res, `remoteJoin(${target.name})`);
            assert.ok(res.ms < QUICK, `remoteJoin took ${Math.round(res.ms)} ms`);
            // The owning node joins, then answers: the room is there once the call resolved.
            assert.ok((await localRooms(target.server)).get(target.serverSocketId).includes(room), `${target.name} not in ${room} after remoteJoin resolved`);
            res = await call('remoteLeave', [target.serverSocketId, room], { callback });
            ok(res, `remoteLeave(${target.name})`);
            assert.ok(!(await localRooms(target.server)).get(target.serverSocketId).includes(room), `${target.name} still in ${room} after remoteLeave resolved`);
          }
          await requestBarrier(suite);
          for (const node of [B, C]) {
            for (const [sid, rooms] of await localRooms(node)) assert.ok(!rooms.includes(room), `${node.label} socket ${sid} is in ${room}`);
          }
          await assertRoomOps([c.b2, c.c1], room, 'add', 1);
          await assertRoomOps([c.b2, c.c1], room, 'del', 1);
          await assertRoomOps([c.b1], room, 'add', 0);
          await assertNothingPending(suite.nodes.A, 'remoteJoin/remoteLeave');
        });

        it(`adapter.remoteDisconnect(id, close) disconnects a socket of another node; an unknown id rejects${form}`, async () => {
          const { c } = await fixture();
          let res = await call('remoteDisconnect', [c.c1.serverSocketId, false], { callback });
          ok(res, 'remoteDisconnect(c1, false)');
          assert.equal(await c.c1.waitForDisconnect(), 'io server disconnect');
          assert.equal(await c.c1.server.waitForConnClose(c.c1.serverSocketId), 'transport close', 'c1: close=false keeps the connection to the client');
          res = await call('remoteDisconnect', [c.b2.serverSocketId, true], { callback });
          ok(res, 'remoteDisconnect(b2, true)');
          assert.equal(await c.b2.waitForDisconnect(), 'io server disconnect');
          assert.equal(await c.b2.server.waitForConnClose(c.b2.serverSocketId), 'forced close', 'b2: close=true closes the connection');
          await requestBarrier(suite);
          for (const other of [c.a1, c.a2, c.b1]) assert.ok(other.socket.connected, `${other.name} was disconnected too`);

          res = await call('remoteDisconnect', ['no-such-socket-0000', false], { callback });
          const err = failed(res, 'remoteDisconnect of an unknown id');
          // The text the official adapter (≤ v7, which had remoteDisconnect) used for this timeout.
          assert.equal(err.message, 'timeout reached while waiting for remoteDisconnect response', 'remoteDisconnect of an unknown id: error message');
          assert.ok(res.ms >= SEEDS_TIMEOUT - 30 && res.ms < SEEDS_TIMEOUT + 1500, `unknown id rejected after ${Math.round(res.ms)} ms (requestsTimeout ${SEEDS_TIMEOUT})`);
          await assertNothingPending(suite.nodes.A, 'remoteDisconnect');
        });
      }

      closeCase(suite);
    });
  }
}

// customRequest / customHook: an ours-only cluster (official nodes have no customHook).
if (pairings().some(([r, o]) => r === 'ours' && o === 'ours')) {
  for (const client of clientKinds()) {
    describe(`seeds' customRequest ours → ours (${client})`, () => {
      const suite = { nodes: null, clients: [] };

      before(async () => {
        const [A, B, C] = await startCluster(
          [{ adapter: 'ours', label: 'A:ours' }, { adapter: 'ours', label: 'B:ours' }, { adapter: 'ours', label: 'C:ours' }],
          { key: uniqueKey(), client, requestsTimeout: REQ_TIMEOUT, namespaces: ['/'] },
          { '/': 3 },
        );
        suite.nodes = { A, B, C };
        for (const node of [A, B, C]) await node.command('setCustomHook', { reply: node.label });
      });
      suiteHooks(suite);

      for (const callback of [false, true]) {
        it(`customRequest(data) gets every node's customHook reply, its own first${callback ? ' (callback)' : ''}`, async () => {
          const { A, B, C } = suite.nodes;
          const data = { q: uniq('custom'), list: [1, 'two'] };
          const before = [A, B, C].map((n) => n.customHookCalls.length);
          const res = await A.command('adapterCall', { method: 'customRequest', args: [data], callback }, CMD_TIMEOUT);
          const replies = ok(res, 'customRequest');
          assert.ok(res.ms < QUICK, `customRequest took ${Math.round(res.ms)} ms`);
          assert.ok(Array.isArray(replies), `customRequest must resolve an array, got ${JSON.stringify(replies)}`);
          assert.equal(replies.length, 3, `one reply per node: ${JSON.stringify(replies)}`);
          assert.deepStrictEqual(replies[0], { reply: A.label, data }, 'the requester\'s own reply comes first');
          assert.deepStrictEqual([...replies.slice(1)].sort((a, b) => (a.reply < b.reply ? -1 : 1)), [{ reply: B.label, data }, { reply: C.label, data }]);
          await Promise.all([B, C].map((n, i) => n.waitForMessages('customHook', () => n.customHookCalls.length >= before[i + 1] + 1)));
          [A, B, C].forEach((n, i) => {
            const calls = n.customHookCalls.slice(before[i]);
            assert.equal(calls.length, 1, `${n.label}: customHook called ${calls.length} time(s)`);
            assert.deepStrictEqual(calls[0].data, data, `${n.label}: customHook data`);
          });
          await assertNothingPending(A, 'customRequest');
        });
      }

      closeCase(suite);
    });
  }
}
