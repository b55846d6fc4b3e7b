'use strict';
// Broadcast interoperability: for each pairing [emitting adapter, receiving adapter] (env
// SIO_PAIRINGS, default all four) and each Redis client library (env SIO_CLIENTS, default both),
// three servers share one key: A (emitting kind) and B, C (receiving kind). Every case connects
// clients to all three, broadcasts from A (or from @socket.io/redis-emitter), and asserts the exact
// number of copies and the exact arguments each client got: A delivers locally, B and C through
// Redis, and a third node makes duplicate or missing deliveries visible. Absence is checked after
// an ordering barrier (flush), never after a sleep.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Emitter } = require('@socket.io/redis-emitter');

const { uniqueKey, pairings, clientKinds, startServers, redisClient, flush, stopAll } = require('./helpers/cluster');

// --------------------------------------------------------------------------------------------------
// Case table
//
// clients: name → { node: 'A'|'B'|'C', nsp = '/', rooms = [] }
// act(ctx): performs the broadcast of `ctx.event` with `ctx.args`; ctx = { A, B, C, emitter, clients, event, args }
// expect:   name → number of times that client must receive the event (clients not listed: 0)
// args:     the event arguments (default DEFAULT_ARGS); Buffers arrive as Buffers
// source:   'A' (default) or 'emitter': who sends the ordering barrier, i.e. who broadcast

const DEFAULT_ARGS = ['hello', 42];
const on = (node, rooms = [], nsp = '/') => ({ node, rooms, nsp });

// Emits from node A through io.of(nsp) with the given modifiers.
const emitFromA = (modifiers = {}) => ({ A, event, args }) => A.command('emit', { ...modifiers, event, args });

// Clients a1, b1, c1 (one per node) in namespace '/', optionally in `rooms`.
const everyNode = (rooms = []) => ({ a1: on('A', rooms), b1: on('B', rooms), c1: on('C', rooms) });
const allOnce = { a1: 1, b1: 1, c1: 1 };

// A room name with the channel separator and spaces: it is put verbatim into the channel name.
const ODD_ROOM = 'room #1 with spaces #';

const CASES = [
  { name: 'io.emit reaches every client on every node', clients: everyNode(), act: emitFromA(), expect: allOnce },

  {
    name: 'io.to(room) reaches only members of the room',
    clients: { a_in: on('A', ['r1']), a_out: on('A'), b_in: on('B', ['r1']), b_out: on('B', ['r2']), c_in: on('C', ['r1']) },
    act: emitFromA({ to: 'r1' }),
    expect: { a_in: 1, b_in: 1, c_in: 1 },
  },

  {
    name: 'io.to([r1, r2]) delivers once to a socket in both rooms',
    clients: {
      a_both: on('A', ['r1', 'r2']), a_r1: on('A', ['r1']), a_none: on('A', ['r3']),
      b_both: on('B', ['r1', 'r2']), b_r2: on('B', ['r2']), b_none: on('B'),
      c_both: on('C', ['r1', 'r2']),
    },
    act: emitFromA({ to: ['r1', 'r2'] }),
    expect: { a_both: 1, a_r1: 1, b_both: 1, b_r2: 1, c_both: 1 },
  },

  {
    name: 'io.to(r1).except(r2) skips members of r2',
    clients: {
      a_r1: on('A', ['r1']), a_r1r2: on('A', ['r1', 'r2']),
      b_r1: on('B', ['r1']), b_r1r2: on('B', ['r1', 'r2']), b_r2: on('B', ['r2']), c_r1: on('C', ['r1']),
    },
    act: emitFromA({ to: 'r1', except: 'r2' }),
    expect: { a_r1: 1, b_r1: 1, c_r1: 1 },
  },

  {
    name: 'io.except([r2, r3]) reaches everybody else',
    clients: { a1: on('A'), a_r2: on('A', ['r2']), b1: on('B', ['r1']), b_r3: on('B', ['r3']), c_r2: on('C', ['r2', 'r1']) },
    act: emitFromA({ except: ['r2', 'r3'] }),
    expect: { a1: 1, b1: 1 },
  },

  {
    name: 'socket.broadcast.emit excludes only the sender',
    clients: { sender: on('A'), a2: on('A'), b1: on('B'), b2: on('B', ['r1']), c1: on('C') },
    act: ({ A, clients, event, args }) => A.command('socketBroadcast', { socketId: clients.sender.serverSocketId, event, args }),
    expect: { a2: 1, b1: 1, b2: 1, c1: 1 },
  },

  {
    name: 'socket.to(room).emit reaches the room except the sender',
    clients: { sender: on('A', ['r1']), a_in: on('A', ['r1']), a_out: on('A'), b_in: on('B', ['r1']), b_out: on('B'), c_in: on('C', ['r1']) },
    act: ({ A, clients, event, args }) =>
      A.command('socketBroadcast', { socketId: clients.sender.serverSocketId, to: 'r1', event, args }),
    expect: { a_in: 1, b_in: 1, c_in: 1 },
  },

  {
    name: 'io.to(socketId) reaches a single socket on another node',
    clients: { a1: on('A'), target: on('B'), b2: on('B'), c1: on('C') },
    act: ({ A, clients, event, args }) => A.command('emit', { to: clients.target.serverSocketId, event, args }),
    expect: { target: 1 },
  },

  // Namespace isolation, both directions.
  ...[['/admin', '/'], ['/', '/admin']].map(([nsp, other]) => ({
    name: `emit on ${nsp} is not seen in ${other}`,
    clients: {
      a_in: on('A', [], nsp), b_in: on('B', [], nsp), c_in: on('C', [], nsp),
      a_other: on('A', [], other), b_other: on('B', [], other),
    },
    act: emitFromA({ nsp }),
    expect: { a_in: 1, b_in: 1, c_in: 1 },
  })),

  // Payloads: the arguments must arrive intact (deepStrictEqual), Buffers as Buffers.
  ...[
    {
      what: 'binary (top level and nested in objects/arrays)',
      args: [
        Buffer.from([1, 2, 3]),
        'text',
        { bin: Buffer.from([0, 255]), list: [Buffer.alloc(0), { deep: Buffer.from('héllo') }] },
        [Buffer.from([7]), 8],
      ],
    },
    {
      what: 'numbers (ints, negatives, floats, 2^40)',
      args: [0, 1, 127, 128, 255, 65535, 65536, -1, -32, -33, -129, -2147483649, 2.5, -0.125, 1e-7, 2 ** 40, -(2 ** 40), 2 ** 53 - 1],
    },
    { what: 'unicode strings', args: ['héllo wörld', '日本語テキスト', '😀 emoji 🎉', '', 'x'.repeat(300)] },
    {
      what: 'nested objects, booleans and null',
      args: [{ a: { b: { c: [1, { d: 'e' }, [true, false, null]] } }, empty: {}, list: [] }, null, true, false],
    },
  ].map(({ what, args }) => ({ name: `payload: ${what}`, clients: everyNode(), act: emitFromA(), args, expect: allOnce })),

  // Flags that must not prevent delivery.
  ...[{ volatile: true }, { compress: false }, { compress: true }, { volatile: true, compress: false }].map((flags) => ({
    name: `flags ${JSON.stringify(flags)}: still delivered`,
    clients: everyNode(),
    act: emitFromA(flags),
    expect: allOnce,
  })),

  {
    name: 'local flag: only the emitting node delivers',
    clients: { a1: on('A'), a2: on('A', ['r1']), b1: on('B'), c1: on('C') },
    act: emitFromA({ local: true }),
    expect: { a1: 1, a2: 1 },
  },

  {
    name: 'numeric room: join(123) and io.to(123)',
    clients: { a_in: on('A', [123]), b_in: on('B', [123]), b_out: on('B', [124]), c_in: on('C', [123]) },
    act: emitFromA({ to: 123 }),
    expect: { a_in: 1, b_in: 1, c_in: 1 },
  },

  {
    name: 'room name containing "#" and spaces',
    clients: { a_in: on('A', [ODD_ROOM]), b_in: on('B', [ODD_ROOM]), b_prefix: on('B', ['room ']), b_out: on('B'), c_in: on('C', [ODD_ROOM]) },
    act: emitFromA({ to: ODD_ROOM }),
    expect: { a_in: 1, b_in: 1, c_in: 1 },
  },

  // @socket.io/redis-emitter (node-redis client, same key): no local node, every server receives.
  {
    name: 'redis-emitter: emit',
    clients: everyNode(),
    source: 'emitter',
    act: ({ emitter, event, args }) => emitter.emit(event, ...args),
    expect: allOnce,
  },
  {
    name: 'redis-emitter: to(room)',
    clients: { a_in: on('A', ['r1']), a_out: on('A'), b_in: on('B', ['r1']), b_out: on('B'), c_in: on('C', ['r1']) },
    source: 'emitter',
    act: ({ emitter, event, args }) => emitter.to('r1').emit(event, ...args),
    expect: { a_in: 1, b_in: 1, c_in: 1 },
  },
  {
    name: "redis-emitter: of('/admin')",
    clients: { a_admin: on('A', [], '/admin'), b_admin: on('B', [], '/admin'), b_root: on('B'), c_admin: on('C', [], '/admin') },
    source: 'emitter',
    act: ({ emitter, event, args }) => emitter.of('/admin').emit(event, ...args),
    expect: { a_admin: 1, b_admin: 1, c_admin: 1 },
  },
];

// --------------------------------------------------------------------------------------------------
// Runner

let eventSeq = 0;

async function runCase(suite, testCase) {
  const { nodes, emitter } = suite;
  const clients = {};
  // Connect (and join rooms) sequentially, so failures name the client.
  for (const [name, spec] of Object.entries(testCase.clients)) {
    const node = nodes[spec.node];
    const client = await node.connect(spec.nsp);
    client.name = `${name} (node ${spec.node}, ${spec.nsp})`;
    if (spec.rooms.length > 0) {
      await node.command('join', { nsp: spec.nsp, socketId: client.serverSocketId, rooms: spec.rooms });
    }
    clients[name] = client;
    suite.clients.push(client);
  }

  const event = `ev${++eventSeq}`;
  const args = testCase.args || DEFAULT_ARGS;
  await testCase.act({ ...nodes, emitter, clients, event, args });

  const expected = (name) => (testCase.expect[name] || 0);
  const all = Object.values(clients);
  // Wait for every expected delivery, then for an ordering barrier from the same source, so any
  // extra copy or misdirected delivery would have arrived by now.
  await Promise.all(Object.entries(clients).filter(([n]) => expected(n) > 0).map(([n, c]) => c.waitForEvent(event, expected(n))));
  if (testCase.source === 'emitter') await flush(all, (marker, nsp) => emitter.of(nsp).emit(marker));
  else await nodes.A.flush(all);

  for (const [name, client] of Object.entries(clients)) {
    const got = client.received(event);
    assert.equal(got.length, expected(name), `${client.name} received "${testCase.name}" ${got.length} time(s)`);
    for (const received of got) assert.deepStrictEqual(received, args, `${client.name}: arguments differ`);
  }
}

for (const [emitKind, recvKind] of pairings()) {
  for (const client of clientKinds()) {
    describe(`broadcast ${emitKind} → ${recvKind} (${client})`, () => {
      const suite = { nodes: null, emitter: null, clients: [] };

      before(async () => {
        const key = uniqueKey();
        const [A, B, C] = await startServers(
          [{ adapter: emitKind, label: `A:${emitKind}` }, { adapter: recvKind, label: `B:${recvKind}` }, { adapter: recvKind, label: `C:${recvKind}` }],
          { key, client, namespaces: ['/', '/admin'] },
        );
        suite.nodes = { A, B, C };
        suite.emitter = new Emitter(await redisClient(), { key });
      });

      afterEach(() => {
        for (const c of suite.clients) c.close();
        suite.clients = [];
        // A server that hit an uncaught error or died makes the case fail even if deliveries looked right.
        for (const node of Object.values(suite.nodes || {})) {
          if (node.stopping) continue; // stopped on purpose by the last case
          assert.ok(node.alive, `${node.label} exited: ${JSON.stringify(node.exit)}${node.outputTail()}`);
          assert.deepStrictEqual(node.uncaught, [], `${node.label} reported uncaught errors`);
        }
      });

      after(stopAll);

      for (const testCase of CASES) it(testCase.name, () => runCase(suite, testCase));

      it('servers close and exit by themselves', async () => {
        const results = await Promise.all(Object.values(suite.nodes).map((n) => n.stop()));
        for (const r of results) {
          assert.equal(r.closeError, null, `${r.label}: close failed: ${r.closeError && r.closeError.message}`);
          assert.ok(r.exitedByItself, `${r.label} did not exit after close; still active: ${JSON.stringify(r.closeResult)}`);
          assert.equal(r.code, 0, `${r.label} exit code`);
        }
      });
    });
  }
}
