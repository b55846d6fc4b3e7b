'use strict';
// Robustness of OUR adapter against malformed payloads. Generated only for pairings whose
// receiving node is 'ours' (env SIO_PAIRINGS, see helpers/cluster.js): the official adapter does
// not survive these (docs/protocol.md §2.2: ioredis crashes, node-redis v5 breaks its subscriber).
//
// Node A (emitting kind) and node B ('ours') share a key. For every (channel, bad payload) a raw
// node-redis client publishes the payload, then proves B processed it by two ordering barriers on
// the same raw connection (a valid broadcast on K#/# reaching B's client, and a valid ALL_ROOMS
// request answered by B), then checks that a normal broadcast from A still reaches B's clients,
// that B never delivered the (invalid) injected event, and that B is alive with no uncaught error.
// A official node A may itself be poisoned by the payloads on K#/#; that is expected and not checked.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const notepack = require('notepack.io');

const { uniqueKey, pairings, clientKinds, startServers, redisClient, withTimeout, stopAll, DEFAULT_TIMEOUT } = require('./helpers/cluster');

const ROOM = 'room';

// A well-formed classic broadcast message (docs/protocol.md §2.1) whose event must never be delivered
// in the damaged forms below.
const validMessage = (rooms = []) =>
  notepack.encode(['raw-sender', { type: 2, data: ['injected', 'x'], nsp: '/' }, { rooms, except: [], flags: {} }]);
const VALID = validMessage();

const CORPUS = {
  'truncated msgpack of a valid message': VALID.subarray(0, VALID.length - 5),
  'only a fixarray(3) header': Buffer.from([0x93]),
  'the never-used byte 0xc1': Buffer.from([0xc1]),
  'garbage bytes': Buffer.from('8f3a00ffc7deadbeef13d9e0c1c1ff', 'hex'),
  'a 3-array with wrong types': notepack.encode([42, 'not-a-packet', ['not', 'opts']]),
  'a 3-array with null packet and opts': notepack.encode(['raw-sender', null, null]),
  'a str32 header claiming 4 GB': Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62]),
  'an array32 header claiming 4G elements': Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
  'a bin32 header claiming 4 GB inside a 3-array': Buffer.from([0x93, 0xa1, 0x78, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]),
  'a map instead of an array': notepack.encode({ uid: 'raw-sender', packet: { type: 2, data: ['injected'], nsp: '/' }, opts: {} }),
  'an empty payload': Buffer.alloc(0),
  'valid msgpack with trailing bytes': Buffer.concat([VALID, Buffer.from([0xc0])]),
  'JSON garbage starting with "{"': Buffer.from('{"uid":"raw-sender","type":'),
  '100000 nested arrays (recursion depth)': Buffer.alloc(100000, 0x91),
};

// K#/# and K#/#room# are broadcast channels (B has a client in ROOM, so the room one is decoded
// too); the other two are the request / shared response channels.
const CHANNELS = {
  broadcast: (key) => `${key}#/#`,
  'room broadcast': (key) => `${key}#/#${ROOM}#`,
  request: (key) => `${key}-request#/#`,
  response: (key) => `${key}-response#/#`,
};

let seq = 0;

for (const [emitKind, recvKind] of pairings().filter(([, recv]) => recv === 'ours')) {
  for (const client of clientKinds()) {
    describe(`malformed payloads → ${recvKind} (other node ${emitKind}, ${client})`, () => {
      const ctx = {};

      before(async () => {
        ctx.key = uniqueKey();
        [ctx.A, ctx.B] = await startServers(
          [{ adapter: emitKind, label: `A:${emitKind}` }, { adapter: recvKind, label: `B:${recvKind}` }],
          { key: ctx.key, client, namespaces: ['/'] },
        );
        ctx.inRoom = await ctx.B.connect('/');
        await ctx.B.command('join', { socketId: ctx.inRoom.serverSocketId, rooms: [ROOM] });
        ctx.other = await ctx.B.connect('/');
        ctx.clients = [ctx.inRoom, ctx.other];

        ctx.raw = await redisClient();
        // Responses to the raw client's ALL_ROOMS requests; each one is announced on ctx.responses.
        ctx.responses = new EventEmitter();
        ctx.rawSub = await redisClient();
        await ctx.rawSub.subscribe(`${ctx.key}-response#/#`, (message) => {
          let response;
          try {
            response = JSON.parse(message);
          } catch {
            return; // someone else's garbage (this very test publishes some on this channel)
          }
          ctx.responses.emit('response', response);
        });
      });

      after(stopAll);

      // Barrier 1: a valid broadcast from the raw connection must reach B's clients.
      async function broadcastBarrier() {
        const marker = `raw-marker-${++seq}`;
        await ctx.raw.publish(`${ctx.key}#/#`, notepack.encode([
          'raw-probe', { type: 2, data: [marker], nsp: '/' }, { rooms: [], except: [], flags: {} },
        ]));
        await Promise.all(ctx.clients.map((c) => c.waitForEvent(marker)));
      }

      // Barrier 2: a valid ALL_ROOMS request from the raw connection must be answered by B
      // (recognised by B's socket id among the rooms).
      async function requestBarrier() {
        const requestId = `raw-req-${++seq}`;
        let listener;
        const answered = new Promise((resolve) => {
          listener = (r) => r.requestId === requestId && Array.isArray(r.rooms) && r.rooms.includes(ctx.inRoom.serverSocketId) && resolve();
          ctx.responses.on('response', listener);
        });
        try {
          await ctx.raw.publish(`${ctx.key}-request#/#`, JSON.stringify({ uid: 'raw-probe', requestId, type: 1 }));
          await withTimeout(answered, DEFAULT_TIMEOUT, `ALL_ROOMS request ${requestId} answered by ${ctx.B.label}`);
        } finally {
          ctx.responses.off('response', listener);
        }
      }

      for (const [channelName, channelOf] of Object.entries(CHANNELS)) {
        for (const [payloadName, payload] of Object.entries(CORPUS)) {
          it(`${channelName} channel: ${payloadName}`, async () => {
            // Once B is broken every later case would only time out: fail fast, naming the culprit.
            assert.equal(ctx.brokenBy, undefined, `${ctx.B.label} was already broken by "${ctx.brokenBy}"`);
            ctx.brokenBy = `${channelName} channel: ${payloadName}`;
            try {
              await ctx.raw.publish(channelOf(ctx.key), payload);
              await broadcastBarrier();
              await requestBarrier();

              const event = `normal-${++seq}`;
              await ctx.A.command('emit', { event, args: [1, 'two'] });
              await ctx.A.command('emit', { to: ROOM, event: `${event}-room`, args: [Buffer.from([3])] });
              await Promise.all(ctx.clients.map((c) => c.waitForEvent(event)));
              await ctx.inRoom.waitForEvent(`${event}-room`);
              assert.deepStrictEqual(ctx.inRoom.received(`${event}-room`), [[Buffer.from([3])]]);

              for (const c of ctx.clients) assert.deepStrictEqual(c.received('injected'), [], 'a malformed message was delivered');
              assert.ok(ctx.B.alive, 'B exited');
              assert.equal(await ctx.B.command('ping'), 'pong');
              assert.deepStrictEqual(ctx.B.uncaught, [], 'B reported uncaught errors');
            } catch (err) {
              err.message += `\n${ctx.B.describeState()}`;
              throw err;
            }
            delete ctx.brokenBy;
          });
        }
      }
    });
  }
}
