'use strict';
// Leniency towards what other nodes and emitters publish: ours must accept and deliver exactly
// what @socket.io/redis-adapter 8.3 accepts and delivers, and drop what the official adapter
// cannot make sense of (its `onmessage` / `onrequest` throw), without crashing.
//
// The official onmessage does `const [uid, packet, opts] = parser.decode(msg)`, ignores a
// message with its own uid, a missing packet or another namespace (a packet without `nsp` counts
// as "/"), then `opts.rooms = new Set(opts.rooms); opts.except = new Set(opts.except);
// super.broadcast(packet, opts)`. So "" or null rooms mean everybody, a string is the Set of its
// characters, numbers are rooms as they are (7 is not "7"), and `rooms: 5`, `opts` missing, a
// non-array message or bad msgpack throw (nothing delivered). Its onrequest does the same
// `new Set(request.opts.rooms)` / `new Set(request.opts.except)` and `socket.join(request.rooms)`.
//
// One key, two nodes, both given ioredis clients: O (official adapter; a throw in an ioredis
// message listener becomes an uncaughtException the server reports and survives, whereas a
// node-redis v5 subscriber stops delivering after one) and U (ours). Each has the same six clients, one per role (ROLES: the rooms joined on
// the server side; `num7` joins the number 7). A raw node-redis client publishes each row's bytes,
// then an ordering barrier on the same channel (a valid broadcast to everybody for broadcast rows,
// a valid REMOTE_JOIN of everybody to a fresh room for request rows). Then, per role, what U's
// client received (for request rows: what the row changed in U's socket's rooms, or its
// disconnection) must equal the same for O; O is also checked against
// the expectation written in the row (read off the official code), so that a row neither node
// understands cannot pass unnoticed. Both processes must stay alive, U without uncaught errors or
// adapter 'error' events; U's stats() malformed/skipped deltas are reported per row.

const path = require('node:path');
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const notepack = require('notepack.io');

const { uniqueKey, startServers, redisClient, waitUntil, stopAll, DEFAULT_TIMEOUT } = require('./helpers/cluster');

const COMMANDS = path.join(__dirname, 'helpers/lenient-commands.js');

// role → rooms its socket joins on the server side (socket.join(rooms); 7 is a number).
const ROLES = { a: ['a'], b: ['b'], ab: ['ab'], num7: [7], str7: ['7'], none: [] };
const ROLE_NAMES = Object.keys(ROLES);

// ------------------------------------------------------------------------------------------------
// Rows

const UID = 'raw-sender';
const packetOf = (event, i) => ({ type: 2, data: [event, i, 'lenient'], nsp: '/' });
const OPTS = { rooms: [], except: [], flags: {} };
/** msgpack of [uid, packet, opts] (opts default well-formed). */
const message = (event, i, opts = OPTS, { uid = UID, packet = packetOf(event, i) } = {}) => notepack.encode([uid, packet, opts]);

// Expected receivers, given the roles still connected.
const everybody = (connected) => connected;
const allBut = (...roles) => (connected) => connected.filter((r) => !roles.includes(r));
const only = (...roles) => (connected) => connected.filter((r) => roles.includes(r));
const nobody = () => [];

// Broadcast rows, published on `${key}#/#`. `official`: what the official onmessage does with it
// ('delivers' to the expected roles, 'ignores' it without error, 'throws').
const b = (name, bytes, expect, official = 'delivers') => ({ kind: 'broadcast', name, bytes, expect, official });
const BROADCAST_ROWS = [
  b('older emitter: rooms "", except "", flags ""', (e, i) => message(e, i, { rooms: '', except: '', flags: '' }), everybody),
  b('opts {} (no keys)', (e, i) => message(e, i, {}), everybody),
  b('opts { rooms: null }', (e, i) => message(e, i, { rooms: null }), everybody),
  b('rooms, except and flags null', (e, i) => message(e, i, { rooms: null, except: null, flags: null }), everybody),
  b('rooms ["a"], except ""', (e, i) => message(e, i, { rooms: ['a'], except: '' }), only('a')),
  b('rooms [7] (numeric room)', (e, i) => message(e, i, { rooms: [7], except: [], flags: {} }), only('num7')),
  b('rooms ["7"] (string room)', (e, i) => message(e, i, { rooms: ['7'], except: [], flags: {} }), only('str7')),
  b('rooms ["a", 7]', (e, i) => message(e, i, { rooms: ['a', 7], except: [], flags: {} }), only('a', 'num7')),
  b('rooms "a" (a string: the Set of its characters)', (e, i) => message(e, i, { rooms: 'a', except: [], flags: {} }), only('a')),
  b('rooms "ab" (rooms "a" and "b", not "ab")', (e, i) => message(e, i, { rooms: 'ab', except: [], flags: {} }), only('a', 'b')),
  b('rooms [7.0] as a msgpack float64 (hand-made bytes)', (e, i) => Buffer.concat([
    Buffer.from([0x93]), notepack.encode(UID), notepack.encode(packetOf(e, i)),
    Buffer.from([0x83]), notepack.encode('rooms'), Buffer.from([0x91, 0xcb]), (() => { const f = Buffer.alloc(8); f.writeDoubleBE(7); return f; })(),
    notepack.encode('except'), Buffer.from([0x90]), notepack.encode('flags'), Buffer.from([0x80]),
  ]), only('num7')),
  b('rooms ["ab"]', (e, i) => message(e, i, { rooms: ['ab'], except: [], flags: {} }), only('ab')),
  b('rooms [], except "a" (string)', (e, i) => message(e, i, { rooms: [], except: 'a', flags: {} }), allBut('a')),
  b('rooms "", except "ab" (excepts "a" and "b")', (e, i) => message(e, i, { rooms: '', except: 'ab' }), allBut('a', 'b')),
  b('except [7] (numeric room)', (e, i) => message(e, i, { rooms: [], except: [7], flags: {} }), allBut('num7')),
  b('flags 5 (not an object)', (e, i) => message(e, i, { rooms: [], except: [], flags: 5 }), everybody),
  b('uid a number (42)', (e, i) => message(e, i, OPTS, { uid: 42 }), everybody),
  b('uid null', (e, i) => message(e, i, OPTS, { uid: null }), everybody),
  b('4-element array [uid, packet, opts, "extra"]', (e, i) => notepack.encode([UID, packetOf(e, i), OPTS, 'extra']), everybody),
  b('packet without nsp (→ "/")', (e, i) => message(e, i, OPTS, { packet: { type: 2, data: [e, i, 'lenient'] } }), everybody),
  b('packet nsp "/other" (another namespace)', (e, i) => message(e, i, OPTS, { packet: { ...packetOf(e, i), nsp: '/other' } }), nobody, 'ignores'),
  b('packet null', (e, i) => message(e, i, OPTS, { packet: null }), nobody, 'ignores'),
  b('1-element array [uid]', () => notepack.encode([UID]), nobody, 'ignores'),
  b('empty array []', () => notepack.encode([]), nobody, 'ignores'),
  b('rooms [["a"]] (an array as a room)', (e, i) => message(e, i, { rooms: [['a']], except: [], flags: {} }), nobody),
  b('rooms 5 (a number)', (e, i) => message(e, i, { rooms: 5, except: [], flags: {} }), nobody, 'throws'),
  b('rooms true', (e, i) => message(e, i, { rooms: true, except: [], flags: {} }), nobody, 'throws'),
  b('rooms {} (a map)', (e, i) => message(e, i, { rooms: {}, except: [], flags: {} }), nobody, 'throws'),
  b('except 0', (e, i) => message(e, i, { rooms: [], except: 0, flags: {} }), nobody, 'throws'),
  b('except 5', (e, i) => message(e, i, { rooms: [], except: 5, flags: {} }), nobody, 'throws'),
  b('opts missing (2-element array)', (e, i) => notepack.encode([UID, packetOf(e, i)]), nobody, 'throws'),
  b('opts null', (e, i) => message(e, i, null), nobody, 'throws'),
  b('packet a string', (e, i) => message(e, i, OPTS, { packet: 'not-a-packet' }), nobody, 'throws'),
  b('a map instead of an array', (e, i) => notepack.encode({ uid: UID, packet: packetOf(e, i), opts: OPTS }), nobody, 'throws'),
  b('garbage bytes', () => Buffer.from('8f3a00ffc7deadbeef13d9e0c1c1ff', 'hex'), nobody, 'throws'),
  b('valid message + 1 trailing byte', (e, i) => Buffer.concat([message(e, i), Buffer.from([0xc0])]), nobody, 'throws'),
];

// Request rows, published on `${key}-request#/#`. `apply(model)` changes the state before the row
// (model.rooms: role → rooms; model.connected: roles whose socket is connected) as the official
// onrequest does; `official`: 'applies' or 'throws' (an unhandled rejection of its async onrequest).
// Each row is judged by its own effect (rooms joined/left, sockets disconnected), so that one row
// where ours differs does not show up again in the rows after it.
const r = (name, bytes, apply, official = 'applies') => ({ kind: 'request', name, bytes, apply, official });
const join = (roles, room) => (m) => roles.filter((x) => m.connected.includes(x)).forEach((x) => m.rooms[x].push(room));
const leave = (roles, room) => (m) => roles.forEach((x) => (m.rooms[x] = m.rooms[x].filter((y) => !sameRoom(y, room))));
const disconnect = (roles) => (m) => (m.connected = m.connected.filter((x) => !roles.includes(x)));

// The rows in the order they run: request rows and the broadcasts that check their effect go
// last, the disconnect at the very end (it takes client "a" away on both nodes).
const ROWS = [
  ...BROADCAST_ROWS,
  r('REMOTE_JOIN {"type":2,"opts":{"rooms":"","except":""},"rooms":"joined-x"}',
    () => '{"type":2,"opts":{"rooms":"","except":""},"rooms":"joined-x"}', join(ROLE_NAMES, 'joined-x')),
  b('rooms ["joined-x"] (after the REMOTE_JOIN)', (e, i) => message(e, i, { rooms: ['joined-x'], except: [], flags: {} }), everybody),
  r('REMOTE_LEAVE {"type":3,"opts":{"rooms":["a"]},"rooms":["joined-x"]} (except missing)',
    () => '{"type":3,"opts":{"rooms":["a"]},"rooms":["joined-x"]}', leave(['a'], 'joined-x')),
  b('rooms ["joined-x"] (after the REMOTE_LEAVE)', (e, i) => message(e, i, { rooms: ['joined-x'], except: [], flags: {} }), allBut('a')),
  // The in-memory delSockets does `rooms.forEach(...)`: a string `rooms` throws (unlike a join).
  r('REMOTE_LEAVE {"type":3,"opts":{"rooms":["b"]},"rooms":"joined-x"} (rooms a string)',
    () => '{"type":3,"opts":{"rooms":["b"]},"rooms":"joined-x"}', () => {}, 'throws'),
  r('REMOTE_JOIN {"type":2,"opts":{"rooms":"ab","except":"a"},"rooms":["joined-y"]} (strings: Sets of characters)',
    () => '{"type":2,"opts":{"rooms":"ab","except":"a"},"rooms":["joined-y"]}', join(['b'], 'joined-y')),
  r('REMOTE_JOIN {"type":2,"opts":{"rooms":null,"except":null},"rooms":"joined-n"}',
    () => '{"type":2,"opts":{"rooms":null,"except":null},"rooms":"joined-n"}', join(ROLE_NAMES, 'joined-n')),
  r('REMOTE_JOIN {"type":2,"opts":{"rooms":[7]},"rooms":8} (numbers)',
    () => '{"type":2,"opts":{"rooms":[7]},"rooms":8}', join(['num7'], 8)),
  b('rooms [8] (numeric, after the REMOTE_JOIN of 8)', (e, i) => message(e, i, { rooms: [8], except: [], flags: {} }), only('num7')),
  b('rooms ["8"] (string, after the REMOTE_JOIN of 8)', (e, i) => message(e, i, { rooms: ['8'], except: [], flags: {} }), nobody),
  r('REMOTE_JOIN {"type":2,"opts":{"rooms":5},"rooms":"joined-z"} (rooms a number)',
    () => '{"type":2,"opts":{"rooms":5},"rooms":"joined-z"}', () => {}, 'throws'),
  // The official bulk REMOTE_JOIN/LEAVE/DISCONNECT never read uid or requestId.
  r('REMOTE_JOIN {"type":2,"uid":42,"opts":{"rooms":["ab"]},"rooms":"joined-u"} (uid a number)',
    () => '{"type":2,"uid":42,"opts":{"rooms":["ab"]},"rooms":"joined-u"}', join(['ab'], 'joined-u')),
  r('REMOTE_JOIN {"type":2,"requestId":7,"opts":{"rooms":["ab"]},"rooms":"joined-q"} (requestId a number)',
    () => '{"type":2,"requestId":7,"opts":{"rooms":["ab"]},"rooms":"joined-q"}', join(['ab'], 'joined-q')),
  // JSON.parse gives the number 2 for 2.0: `case 2` matches.
  r('REMOTE_JOIN {"type":2.0,"opts":{"rooms":["7"]},"rooms":"joined-f"} (type written 2.0)',
    () => '{"type":2.0,"opts":{"rooms":["7"]},"rooms":"joined-f"}', join(['str7'], 'joined-f')),
  // Anything not starting with "{" is decoded as msgpack, whatever the type.
  r('REMOTE_JOIN in msgpack {type:2, opts:{rooms:["b"]}, rooms:"joined-m"}',
    () => notepack.encode({ type: 2, opts: { rooms: ['b'] }, rooms: 'joined-m' }), join(['b'], 'joined-m')),
  // Degenerate but accepted: socket.join(undefined) joins the room `undefined` (see typedRooms).
  r('REMOTE_JOIN {"type":2,"opts":{"rooms":["ab"]}} (top-level rooms missing)',
    () => '{"type":2,"opts":{"rooms":["ab"]}}', join(['ab'], { undefined: 'undefined' })),
  r('REMOTE_DISCONNECT {"type":4,"opts":{"rooms":["a"]},"close":false} (except missing)',
    () => '{"type":4,"opts":{"rooms":["a"]},"close":false}', disconnect(['a'])),
  b('broadcast to everybody (after the REMOTE_DISCONNECT)', (e, i) => message(e, i), everybody),
];

// ------------------------------------------------------------------------------------------------
// Helpers

const roomKey = (room) => `${typeof room}:${JSON.stringify(room)}`;
const sameRoom = (x, y) => roomKey(x) === roomKey(y);
const sortRooms = (rooms) => [...rooms].sort((x, y) => (roomKey(x) < roomKey(y) ? -1 : roomKey(x) > roomKey(y) ? 1 : 0));
const showRooms = (rooms) => rooms.map((x) => (typeof x === 'string' ? x : typeof x === 'number' ? `(number)${x}`
  : `(${Object.keys(x)[0]})${Object.values(x)[0]}`)).join(',');

/**
 * What a request row changed on one node, per role (roles without change left out): rooms
 * joined / left (typed, sorted), or the reason its client saw for a disconnection.
 */
function changeOf(before, after, reasons) {
  const out = {};
  for (const role of ROLE_NAMES.filter((x) => x in before)) {
    if (!(role in after)) {
      out[role] = { disconnected: reasons[role] };
      continue;
    }
    const joined = after[role].filter((x) => !before[role].some((y) => sameRoom(x, y)));
    const left = before[role].filter((x) => !after[role].some((y) => sameRoom(x, y)));
    if (joined.length || left.length) out[role] = { joined, left };
  }
  return out;
}

const showChange = (change) => Object.entries(change).map(([role, c]) => (c.disconnected !== undefined
  ? `${role} disconnected (${c.disconnected})`
  : `${role}${c.joined.length ? ` +[${showRooms(c.joined)}]` : ''}${c.left.length ? ` -[${showRooms(c.left)}]` : ''}`)).join(' ') || 'no change';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One table line: what each node's clients received (or each node's sockets' rooms), and side effects. */
function describeLine(l) {
  const threw = l.officialErrors === undefined ? '?' : l.officialErrors.length ? `threw (${l.officialErrors[0].replace(/\n.*/s, '')})` : 'no throw';
  return `${l.same === undefined ? '?' : l.same ? 'same' : 'DIFF'} | official → ${l.official ?? '?'} | ours → ${l.ours ?? '?'} | ` +
    `official ${threw} | ours malformed +${l.malformed ?? '?'} skipped +${l.skipped ?? '?'}, 'error' events: ${l.oursErrors ? l.oursErrors.join('; ') || 'none' : '?'}`;
}

describe('leniency: ours delivers and drops exactly what the official adapter does', () => {
  const ctx = { table: [], seq: 0 };

  before(async () => {
    ctx.key = uniqueKey();
    ctx.t0 = Date.now();
    [ctx.O, ctx.U] = await startServers(
      [
        { adapter: 'official', label: 'O:official' },
        { adapter: 'ours', label: 'U:ours', adapterEvents: true },
      ],
      { key: ctx.key, client: 'ioredis', namespaces: ['/'], commandModules: [COMMANDS] },
    );
    ctx.nodes = { official: ctx.O, ours: ctx.U };
    ctx.clients = { official: {}, ours: {} };
    for (const [kind, node] of Object.entries(ctx.nodes)) {
      for (const [role, rooms] of Object.entries(ROLES)) {
        const client = await node.connect('/');
        if (rooms.length) await node.command('join', { socketId: client.serverSocketId, rooms });
        client.role = role;
        ctx.clients[kind][role] = client;
      }
    }
    ctx.raw = await redisClient();
    // Roles whose socket is connected (on the official node; a request row may disconnect some).
    ctx.connected = [...ROLE_NAMES];
    // The initial state, on both nodes (typed rooms: 7 vs "7").
    const initial = Object.fromEntries(Object.entries(ROLES).map(([role, rooms]) => [role, sortRooms(rooms)]));
    for (const kind of ['official', 'ours']) assert.deepStrictEqual(await state(kind), initial, `${kind}: initial rooms`);
  });

  after(stopAll);

  const allClients = () => Object.values(ctx.clients).flatMap((byRole) => Object.values(byRole));
  const broadcastChannel = () => `${ctx.key}#/#`;
  const requestChannel = () => `${ctx.key}-request#/#`;

  /** role → sorted typed rooms (barrier rooms left out), for the connected sockets of a node. */
  async function state(kind) {
    const roleOf = new Map(Object.values(ctx.clients[kind]).map((c) => [c.serverSocketId, c.role]));
    const out = {};
    for (const { id, rooms } of await ctx.nodes[kind].command('typedRooms')) {
      const role = roleOf.get(id);
      assert.ok(role, `${kind}: unknown local socket ${id}`);
      out[role] = sortRooms(rooms.filter((x) => !(typeof x === 'string' && x.startsWith('__rb-'))));
    }
    return out;
  }

  /** What the official onrequest makes of state `before` with `row` (see the request rows). */
  function expectedAfter(row, before) {
    const model = { rooms: Object.fromEntries(Object.entries(before).map(([role, rooms]) => [role, [...rooms]])), connected: Object.keys(before) };
    row.apply(model);
    return Object.fromEntries(model.connected.map((role) => [role, sortRooms(model.rooms[role])]));
  }

  /**
   * A valid broadcast to everybody on the broadcast channel, re-published every 150 ms until every
   * connected client got it (a message behind one that threw in O's ioredis listener can wait in
   * ioredis' parser buffer until more bytes arrive).
   */
  async function broadcastBarrier() {
    const marker = `__barrier_${++ctx.seq}`;
    const bytes = notepack.encode(['raw-barrier', { type: 2, data: [marker], nsp: '/' }, OPTS]);
    const targets = allClients().filter((c) => c.disconnectReason === null);
    const missing = () => targets.filter((c) => c.received(marker).length === 0);
    const deadline = Date.now() + DEFAULT_TIMEOUT;
    while (missing().length > 0) {
      if (Date.now() > deadline) {
        assert.fail(`barrier ${marker} did not reach ${missing().map((c) => `${c.server.label}/${c.role}`).join(', ')}\n` +
          `${ctx.O.describeState()}\n${ctx.U.describeState()}`);
      }
      await ctx.raw.publish(broadcastChannel(), bytes);
      await Promise.race([Promise.all(missing().map((c) => c.waitForEvent(marker, 1, 150).catch(() => {}))), sleep(150)]);
    }
  }

  /** A valid REMOTE_JOIN of every socket to a fresh room on the request channel, seen applied on both nodes. */
  async function requestBarrier() {
    const room = `__rb-${++ctx.seq}`;
    await ctx.raw.publish(requestChannel(), JSON.stringify({ uid: 'raw-barrier', type: 2, opts: { rooms: [], except: [] }, rooms: room }));
    await waitUntil(async () => {
      for (const node of [ctx.O, ctx.U]) {
        const sockets = await node.command('typedRooms');
        if (!sockets.every((s) => s.rooms.includes(room))) return false;
      }
      return true;
    }, { what: `request barrier ${room} applied on both nodes` });
  }

  async function oursStats() {
    const { stats } = await ctx.U.command('pending');
    return stats;
  }

  /** Runs a row's bytes and barrier; returns O's new uncaught errors and U's stats deltas. */
  async function publishRow(channel, bytes, barrier, eventsFrom) {
    const before = await oursStats();
    const uncaughtBefore = ctx.O.uncaught.length;
    await ctx.raw.publish(channel, bytes);
    await barrier();
    // IPC keeps order: an uncaught error O (or an adapter event U) reported before answering
    // this ping has arrived.
    for (const node of [ctx.O, ctx.U]) assert.equal(await node.command('ping'), 'pong');
    const after = await oursStats();
    const reportedDrops = adapterErrors(eventsFrom).filter((e) => e.error.code === 'ERR_SIO_MALFORMED').length;
    assert.ok(reportedDrops === 0 || after.malformed > before.malformed, 'ERR_SIO_MALFORMED reported without a message counted as malformed');
    return {
      officialErrors: ctx.O.uncaught.slice(uncaughtBefore).map((e) => `${e.source}: ${e.error.message}`),
      oursErrors: oursErrors(eventsFrom),
      malformed: after.malformed - before.malformed,
      skipped: after.skipped - before.skipped,
    };
  }

  /** Both alive, ours without uncaught errors, and without adapter 'error' events since index `from`. */
  function checkHealth(from = 0) {
    assert.ok(ctx.O.alive, `official node exited\n${ctx.O.describeState()}`);
    assert.ok(ctx.U.alive, `ours exited\n${ctx.U.describeState()}`);
    assert.deepStrictEqual(ctx.U.uncaught, [], `ours reported uncaught errors\n${ctx.U.describeState()}`);
    assert.deepStrictEqual(oursErrors(from), [], "ours emitted an adapter 'error' event");
  }

  // A dropped malformed message is reported as ERR_SIO_MALFORMED (at most once a second), which
  // is the point of a drop, not a health problem; publishRow checks it matches a counted drop.
  const adapterErrors = (from = 0) => ctx.U.adapterEvents.slice(from).filter((e) => e.event === 'error');
  const oursErrors = (from = 0) => adapterErrors(from).filter((e) => e.error.code !== 'ERR_SIO_MALFORMED').map((e) => `[${e.error.code}] ${e.error.message}`);

  function checkOfficialOutcome(row, officialErrors) {
    if (row.official === 'throws') {
      assert.ok(officialErrors.length > 0, `the official adapter was expected to throw on "${row.name}" but did not`);
    } else {
      assert.deepStrictEqual(officialErrors, [], `the official adapter threw on "${row.name}"`);
    }
  }

  ROWS.forEach((row, index) => {
    const n = String(index + 1).padStart(2, '0');
    it(`#${n} ${row.kind}: ${row.name}`, async (t) => {
      const line = { n, kind: row.kind, name: row.name };
      ctx.table.push(line);
      const eventsFrom = ctx.U.adapterEvents.length;
      try {
        if (row.kind === 'broadcast') {
          const event = `row-${n}`;
          const bytes = row.bytes(event, index + 1);
          line.bytes = bytes.toString('hex');
          const outcome = await publishRow(broadcastChannel(), bytes, broadcastBarrier, eventsFrom);
          Object.assign(line, outcome);
          // Per role: the argument lists the role's client got on each node.
          const got = {};
          for (const kind of ['official', 'ours']) {
            got[kind] = Object.fromEntries(ROLE_NAMES.map((role) => [role, ctx.clients[kind][role].received(event)]));
            line[kind] = ROLE_NAMES.filter((role) => got[kind][role].length > 0).map((role) =>
              (got[kind][role].length === 1 ? role : `${role}×${got[kind][role].length}`)).join(',') || '-';
          }
          line.same = JSON.stringify(got.official) === JSON.stringify(got.ours);
          t.diagnostic(describeLine(line));

          checkHealth(eventsFrom);
          // The reference first: O does what its code says (else the row is not testing what it claims).
          checkOfficialOutcome(row, line.officialErrors);
          const expected = row.expect(ctx.connected);
          const packetArgs = [index + 1, 'lenient'];
          assert.deepStrictEqual(got.official, Object.fromEntries(ROLE_NAMES.map((role) => [role, expected.includes(role) ? [packetArgs] : []])),
            `official node: unexpected deliveries for "${row.name}"`);
          assert.deepStrictEqual(got.ours, got.official, `ours differs from the official adapter on "${row.name}" (bytes ${line.bytes})`);
        } else {
          const bytes = row.bytes();
          line.bytes = Buffer.isBuffer(bytes) ? bytes.toString('hex') : bytes;
          const before = { official: await state('official'), ours: await state('ours') };
          const outcome = await publishRow(requestChannel(), bytes, requestBarrier, eventsFrom);
          Object.assign(line, outcome);
          const after = { official: await state('official'), ours: await state('ours') };
          // Client side: a socket gone from a node must have been disconnected by the server.
          const reasons = {};
          for (const kind of ['official', 'ours']) {
            reasons[kind] = {};
            for (const role of ROLE_NAMES.filter((x) => x in before[kind] && !(x in after[kind]))) {
              reasons[kind][role] = await ctx.clients[kind][role].waitForDisconnect();
            }
          }
          const change = { official: changeOf(before.official, after.official, reasons.official), ours: changeOf(before.ours, after.ours, reasons.ours) };
          for (const kind of ['official', 'ours']) line[kind] = showChange(change[kind]);
          line.same = JSON.stringify(change.official) === JSON.stringify(change.ours);
          t.diagnostic(describeLine(line));

          checkHealth(eventsFrom);
          checkOfficialOutcome(row, line.officialErrors);
          assert.deepStrictEqual(after.official, expectedAfter(row, before.official), `official node: unexpected rooms/sockets after "${row.name}"`);
          ctx.connected = ctx.connected.filter((role) => role in after.official);
          assert.deepStrictEqual(change.ours, change.official,
            `ours differs from the official adapter on "${row.name}" (bytes ${line.bytes}): what the row changed, per role`);
        }
      } catch (err) {
        line.error = err.message.split('\n')[0];
        throw err;
      }
    });
  });

  it('both nodes alive, ours without uncaught errors; the table of every row', (t) => {
    t.diagnostic(`${ctx.table.length} rows, ${ctx.table.filter((l) => l.same && !l.error).length} passed; ` +
      `${Date.now() - ctx.t0} ms since the nodes were started`);
    for (const l of ctx.table) t.diagnostic(`#${l.n} ${l.kind.padEnd(9)} ${l.error ? 'FAIL' : 'ok  '} ${l.name} || ${describeLine(l)}${l.error ? ` || ${l.error}` : ''}`);
    assert.ok(ctx.O.alive, `official node exited\n${ctx.O.describeState()}`);
    assert.ok(ctx.U.alive, `ours exited\n${ctx.U.describeState()}`);
    assert.deepStrictEqual(ctx.U.uncaught, [], `ours reported uncaught errors\n${ctx.U.describeState()}`);
    assert.equal(ctx.table.length, ROWS.length, 'every row ran');
  });
});
