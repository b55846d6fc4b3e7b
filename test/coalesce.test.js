'use strict';
// Flush coalescing (npm/lib/coalesce.js): when ours delivers broadcasts from other nodes, it corks
// a websocket client's TCP socket between engine.io's 'flush' and 'drain' server events, so a
// multi-packet flush is one write. What could go wrong: a socket left corked (messages stuck),
// reordering, the polling transport or binary attachments broken, local emits stuck behind it.
//
// Two nodes share a key: A emits (kind 'ours' or 'official'), B ('ours') has three websocket
// clients and one polling-only client. A emits a numbered burst of 3000 broadcasts in ONE
// synchronous loop (helpers/burst.js: small objects, every 50th with two binary attachments,
// every 100th a ~20 KB string), which B receives in large batches, so its clients' engine.io
// write buffers fill while a frame is in flight and flush many packets at once (corked).
//
// 1. every client on B gets all 3000 exactly once, in order, with the right payloads;
// 2. afterwards no websocket client's TCP socket on B is corked, none was left corked after a
//    'drain', and one more broadcast from A reaches every client on B;
// 3. local emits on B during the burst are not stuck: a direct server→client socket.emit with ack
//    issued in the middle of the adapter's delivery (from onAnyOutgoing, just before message n)
//    arrives right before message n and is acked; client→server emits with ack sent while the
//    burst is arriving get their acks; a socketEmit command issued mid-burst arrives.
//
// Waiting is on conditions (client events, polled server state), never fixed sleeps.
// Run: node --test test/coalesce.test.js (from the repository root).

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { uniqueKey, startServers, waitUntil, stopAll } = require('./helpers/cluster');
const { burstArgs, isDirectPoint } = require('./helpers/burst');

const COMMANDS_MODULE = path.join(__dirname, 'helpers', 'coalesce-commands.js');
const COUNT = 3000;
/** Bound for the whole burst to reach a client (polling included); generous, not a timing assert. */
const BURST_TIMEOUT = 15000;
/** Adapter kinds of the emitting node A; the receiving node B is always ours. */
const EMITTING_KINDS = ['ours', 'official'];

after(stopAll);

/**
 * Starts A (`emitting`) and B (ours, polling allowed) on a fresh key, connects three websocket
 * clients and one polling-only client to B, and starts watching B's flushes (watchCorks).
 */
async function burstCluster(emitting) {
  const [A, B] = await startServers(
    [
      { adapter: emitting, label: `A(${emitting})` },
      { adapter: 'ours', label: 'B(ours)', transports: ['polling', 'websocket'] },
    ],
    { key: uniqueKey(), namespaces: ['/'], commandModules: [COMMANDS_MODULE] },
  );
  const clients = {
    ws1: await B.connect('/'),
    ws2: await B.connect('/'),
    ws3: await B.connect('/'),
    poll: await B.connect('/', { transports: ['polling'] }),
  };
  const state = await B.command('corkState');
  assert.equal(state.websocket.length, 3, `B has 3 websocket clients: ${JSON.stringify(state)}`);
  assert.deepEqual(state.other.map((o) => o.transport), ['polling'], `B has 1 polling client: ${JSON.stringify(state)}`);
  // The mesh check made B receive a batch from Redis, so coalesce.js is installed by now and the
  // watchers run after its listeners.
  const flushListeners = await B.command('watchCorks');
  assert.ok(flushListeners >= 1, 'coalesce.js listens to B\'s engine "flush" events (installed at the first batch)');
  return { A, B, clients, all: Object.values(clients) };
}

/** Waits until `client` got `count` 'burst' messages; the error names the server's state. */
async function waitForBurst(client, server, count = COUNT) {
  try {
    await client.waitFor((evs) => countEvent(evs, 'burst') >= count, BURST_TIMEOUT, `${count} x "burst"`);
  } catch (err) {
    const corks = await server.command('corkState').catch((e) => e.message);
    throw new Error(`client ${client.tag} got ${client.received('burst').length}/${count} burst messages within ${BURST_TIMEOUT} ms; ` +
      `B corkState ${JSON.stringify(corks)}\n${server.describeState()}`);
  }
}

function countEvent(events, name) {
  let n = 0;
  for (const e of events) if (e.event === name) n++;
  return n;
}

/** Asserts that `client` got exactly burst messages 0..COUNT-1, in order, with the exact payloads. */
function assertBurst(client, label = client.tag) {
  const got = client.received('burst');
  assert.equal(got.length, COUNT, `${label}: number of burst messages`);
  for (let i = 0; i < COUNT; i++) {
    if (got[i][0] !== i) {
      assert.fail(`${label}: message #${i} is burst ${got[i][0]} (order or duplicates broken); ` +
        `first numbers: ${got.slice(Math.max(0, i - 3), i + 3).map((a) => a[0]).join(', ')}`);
    }
    // Buffers must come back as Buffers with the same bytes (deepStrictEqual compares prototypes).
    assert.deepStrictEqual(got[i], burstArgs(i), `${label}: payload of burst message ${i}`);
  }
}

/** Asserts that no websocket client's TCP socket on `server` is corked (and the polling one exists). */
async function assertNothingCorked(server) {
  const state = await server.command('corkState');
  assert.equal(state.websocket.length, 3, `websocket clients on B: ${JSON.stringify(state)}`);
  for (const ws of state.websocket) {
    assert.equal(ws.corked, 0, `websocket client ${ws.sid} on B left corked: ${JSON.stringify(state)}`);
  }
  const stats = await server.command('corkStats');
  assert.equal(stats.corkedAfterDrain, 0, `no TCP socket may stay corked after an engine "drain": ${JSON.stringify(stats)}`);
  return stats;
}

describe('flush coalescing on the receiving node (npm/lib/coalesce.js)', { timeout: 120000 }, () => {
  for (const emitting of EMITTING_KINDS) {
    describe(`A(${emitting}) bursts ${COUNT} broadcasts, B(ours) has 3 websocket + 1 polling client`, () => {
      it('every client on B gets all messages exactly once, in order, with the right payloads', async (t) => {
        const { A, B, clients, all } = await burstCluster(emitting);
        assert.equal(await A.command('burst', { count: COUNT }), COUNT);
        for (const client of all) await waitForBurst(client, B);
        // Ordering barrier: anything A sent before is delivered now, so exact counts are final.
        await A.flush(all);
        for (const [name, client] of Object.entries(clients)) assertBurst(client, name);
        assert.equal(clients.poll.socket.io.engine.transport.name, 'polling', 'the polling client never upgraded');

        // The burst exercised what is under test: multi-packet websocket flushes, corked.
        const stats = await B.command('corkStats');
        t.diagnostic(`B websocket flushes: ${JSON.stringify(stats)}`);
        assert.ok(stats.multiPacketFlushes > 0, `the burst caused multi-packet flushes on B: ${JSON.stringify(stats)}`);
        assert.ok(stats.corkedInFlush > 0, `coalesce.js corked multi-packet flushes on B: ${JSON.stringify(stats)}`);
        assert.deepEqual(B.uncaught, [], 'B threw nothing');
        assert.deepEqual(B.errors, [], 'B reported no errors');
      });

      it('after the burst no websocket TCP socket on B is corked and one more broadcast reaches every client', async () => {
        const { A, B, clients, all } = await burstCluster(emitting);
        await A.command('burst', { count: COUNT });
        for (const client of all) await waitForBurst(client, B);
        await assertNothingCorked(B);

        // One more single broadcast (with a binary attachment) reaches everybody, within the
        // helpers' default timeout.
        const args = ['after', Buffer.from([0, 1, 2, 254, 255])];
        await A.command('emit', { event: 'afterBurst', args });
        await Promise.all(all.map((c) => c.waitForEvent('afterBurst')));
        for (const [name, client] of Object.entries(clients)) {
          assert.deepStrictEqual(client.received('afterBurst'), [args], `${name}: the broadcast after the burst`);
          const events = client.events.filter((e) => e.event === 'burst' || e.event === 'afterBurst');
          assert.equal(events.length, COUNT + 1, `${name}: burst + 1`);
          assert.equal(events[COUNT].event, 'afterBurst', `${name}: the later broadcast comes after the whole burst`);
        }
        await assertNothingCorked(B);
        assert.deepEqual(B.uncaught, [], 'B threw nothing');
      });
    });
  }

  it('local emits on B during the burst (direct socket.emit with ack, client emits with ack) are not stuck', async (t) => {
    const { A, B, clients, all } = await burstCluster('ours');
    const { ws1, ws2, ws3, poll } = clients;

    // Direct server→client emits with ack from inside the adapter's delivery of a batch (ws1 and
    // the polling client: just before burst message n), or from a later turn of the event loop
    // (ws3: setImmediate, while the rest of the burst is still being delivered).
    for (const client of [ws1, poll, ws3]) {
      await B.command('directOnOutgoing', { socketId: client.serverSocketId, defer: client === ws3 });
      client.setAckHandler('direct', (n) => `ack-${n}`);
    }
    // Client→server emits with ack, sent by ws2 and the polling client while the burst arrives.
    await B.command('ackSocketEvent', { event: 'clientPing', reply: 'pong' });
    const pingPoint = (n) => n % 500 === 250;
    const pings = new Map([[ws2, []], [poll, []]]);
    for (const [client, acks] of pings) {
      client.socket.on('burst', (n) => {
        if (pingPoint(n)) client.socket.emit('clientPing', n, (reply) => acks.push({ n, reply }));
      });
    }

    const burst = A.command('burst', { count: COUNT });
    // A socketEmit command on B once ws2 has started receiving the burst (the burst may or may
    // not still be arriving then; the message must arrive either way).
    await ws2.waitFor((evs) => countEvent(evs, 'burst') >= 1, BURST_TIMEOUT, 'the first burst message');
    const midArgs = ['mid', Buffer.from('mid-burst')];
    await B.command('socketEmit', { socketId: ws2.serverSocketId, event: 'mid', args: midArgs });
    const burstSeenAtMid = ws2.received('burst').length;
    assert.equal(await burst, COUNT);

    for (const client of all) await waitForBurst(client, B);
    await ws2.waitForEvent('mid');
    t.diagnostic(`ws2 had ${burstSeenAtMid}/${COUNT} burst messages when socketEmit('mid') was sent`);

    const points = [];
    const pingNs = [];
    for (let i = 0; i < COUNT; i++) {
      if (isDirectPoint(i)) points.push(i);
      if (pingPoint(i)) pingNs.push(i);
    }
    const sequence = (client) => client.events.filter((e) => e.event === 'burst' || e.event === 'direct').map((e) => `${e.event} ${e.args[0]}`);

    for (const [name, client] of [['ws1', ws1], ['poll', poll]]) {
      // Each direct message arrives right before burst message n (it was emitted just before it).
      const expected = [];
      for (let i = 0; i < COUNT; i++) {
        if (isDirectPoint(i)) expected.push(`direct ${i}`);
        expected.push(`burst ${i}`);
      }
      const got = sequence(client);
      const firstDiff = got.findIndex((g, k) => g !== expected[k]);
      assert.equal(firstDiff, -1, `${name}: order of burst and direct messages differs at #${firstDiff}: ` +
        `got ${got.slice(Math.max(0, firstDiff - 2), firstDiff + 3)}, expected ${expected.slice(Math.max(0, firstDiff - 2), firstDiff + 3)}`);
      assert.equal(got.length, expected.length, `${name}: burst + direct messages`);
    }
    {
      // ws3: every deferred direct message arrives once, in order, after burst message n.
      await ws3.waitForEvent('direct', points.length);
      const got = sequence(ws3);
      assert.deepEqual(ws3.received('direct').map((a) => a[0]), points, 'ws3: deferred direct messages, in order');
      for (const n of points) {
        assert.ok(got.indexOf(`direct ${n}`) > got.indexOf(`burst ${n}`), `ws3: deferred direct ${n} after burst ${n}`);
      }
      const interleaved = points.filter((n) => got.indexOf(`direct ${n}`) < got.indexOf(`burst ${COUNT - 1}`)).length;
      t.diagnostic(`ws3: ${interleaved}/${points.length} deferred direct emits arrived before the last burst message`);
    }
    for (const [name, client] of [['ws1', ws1], ['poll', poll], ['ws3', ws3]]) {
      // B got every ack of the direct emits.
      const acks = await waitUntil(async () => {
        const list = await B.command('directAcks', { socketId: client.serverSocketId });
        return list.length >= points.length && list;
      }, { what: `${name}: acks of the ${points.length} direct emits on B` });
      assert.deepEqual(acks, points.map((n) => ({ n, reply: `ack-${n}` })), `${name}: acks of the direct emits`);
    }

    for (const [client, acks] of pings) {
      await waitUntil(() => acks.length >= pingNs.length, { what: `${client.tag}: acks of its clientPing emits (got ${acks.length})` });
      assert.deepEqual(acks, pingNs.map((n) => ({ n, reply: 'pong' })), `${client.tag}: acks of the client emits`);
    }
    const calls = await B.command('socketEventCalls', { event: 'clientPing' });
    assert.equal(calls.length, 2 * pingNs.length, 'B got every clientPing');

    assert.deepStrictEqual(ws2.received('mid'), [midArgs], 'ws2 got the socketEmit issued mid-burst once');
    await A.flush(all);
    for (const [name, client] of Object.entries(clients)) assertBurst(client, name);
    await assertNothingCorked(B);
    assert.deepEqual(B.uncaught, [], 'B threw nothing');
  });
});
