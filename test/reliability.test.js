'use strict';
// Reliability of ours (README "Errors", "Options", `maxQueuedPublishes`): each suite runs against
// a PRIVATE redis-server it starts itself on a free loopback port (helpers/private-redis.js), so it
// can kill -9 and restart it without disturbing anything else.
//
// 1. Redis restart mid-traffic: two ours nodes; kill -9 Redis → both adapters emit 'error'
//    (ERR_SIO_REDIS), requests in flight / issued during the outage reject instead of hanging,
//    broadcasts issued during the outage are accepted; Redis restarted on the same port → both
//    adapters emit 'ready' by themselves, broadcasts cross both ways, requests work, and the
//    broadcasts of the outage arrive (bounded publish queue flushed on reconnect). No node exits.
// 2. Redis unreachable at start: the nodes start, serve local sockets, emit 'error'
//    (ERR_SIO_REDIS) and stay up; once Redis starts: 'ready' (and `adapter.ready` resolves) and
//    broadcasts cross nodes.
// 3. Bad options: synchronous TypeError with code ERR_SIO_OPTION naming the option (in-process).
// 4. Shutdown: after io.close() the node exits by itself and its connections leave Redis; and
//    io.close() alone (process still alive) releases the node's Redis connections.
//
// Waiting is on conditions (IPC reports, client events, polled CLIENT LIST), never fixed sleeps.
// Run: node --test test/reliability.test.js (from the repository root).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');

const { uniqueKey, startServers, redisClient, waitUntil, stopAll } = require('./helpers/cluster');
const { privateRedis, stopAllRedis, oursNodeWith } = require('./helpers/private-redis');
const { adapterEventHelpers, isError, isRedisError, isReady } = require('./helpers/adapter-events');

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
const COMMANDS_MODULE = path.join(__dirname, 'helpers', 'reliability-commands.js');
/** requestsTimeout of the nodes. */
const REQ_TIMEOUT = 2000;
/** How late a request may settle beyond its requestsTimeout before we call it "hanging". */
const REQ_SLACK = 3000;
/** Generous bound for reconnect-related waits (backoff is at most ~2 s). */
const RECOVERY_TIMEOUT = 15000;

const t0 = Date.now();
const rel = (at) => `+${((at - t0) / 1000).toFixed(3)}s`;

/** Settings of an ours node on `redisUrl`: the adapter gets the URL, the node opens no other client. */
const oursNode = oursNodeWith({ commandModules: COMMANDS_MODULE, requestsTimeout: REQ_TIMEOUT });

const { eventLog, findEvent, waitForAdapterEvent } = adapterEventHelpers({ at: rel, timeoutMs: RECOVERY_TIMEOUT, report: nodeReport });

/** Everything useful about a node for a failure message. */
async function nodeReport(server) {
  let stats = 'n/a';
  if (server.alive) {
    try {
      stats = JSON.stringify((await server.command('pending', {})).stats);
    } catch (err) {
      stats = `(pending failed: ${err.message})`;
    }
  }
  return `${eventLog(server)}\n  stats: ${stats}\n  ${server.describeState()}`;
}

/**
 * `from` broadcasts `event` once (io.emit) and `to` (a client on another node) must get it within
 * `timeoutMs`. When it does not, re-sends a marker every 200 ms for 10 s to tell "the subscription
 * came back late" from "it never came back", and fails saying which.
 */
async function expectCrossing(from, to, event, timeoutMs = 5000) {
  const sentAt = Date.now();
  await from.command('emit', { event, args: [{ event, sentAt }] });
  try {
    await to.waitForEvent(event, 1, timeoutMs);
    return Date.now() - sentAt;
  } catch (err) {
    const probe = `${event}-resent`;
    let lateMs = null;
    const start = Date.now();
    while (lateMs === null && Date.now() - start < 10000) {
      await from.command('emit', { event: probe });
      try {
        await to.waitForEvent(probe, 1, 200);
        lateMs = Date.now() - sentAt;
      } catch {
        // not yet
      }
    }
    assert.fail(`${from.label} → client on ${to.server.label}: "${event}" (sent ${rel(sentAt)}) did not arrive within ${timeoutMs} ms; ` +
      `re-sending it every 200 ms: ${lateMs === null ? 'never arrived within 10 s more' : `a re-sent copy arrived ${lateMs} ms after the first send`}\n` +
      `${await nodeReport(from)}\n${await nodeReport(to.server)}`);
  }
}

/** A settled command result (server.js `settle`) that must be a rejection; returns the error. */
function mustReject(res, what) {
  if (res.ok !== false) assert.fail(`${what} should have rejected, but resolved after ${Math.round(res.ms)} ms with ${JSON.stringify(res.value)}`);
  return res.error;
}

/** CLIENT LIST of `client` as [{ id, addr, name, cmd, ... }]. */
async function clientList(client) {
  const text = await client.sendCommand(['CLIENT', 'LIST']);
  return String(text).trim().split('\n').filter(Boolean).map((line) =>
    Object.fromEntries(line.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
}

/**
 * Polls the restarted Redis every 10 ms (own connection) until both nodes subscribe the request
 * channel again (PUBSUB NUMSUB reaches 2; the transport restores every subscription of a
 * connection together, so this dates the nodes' resubscription). Resolves with a sentence saying when.
 */
async function watchResubscription(url, key, since) {
  const client = await redisClient(url);
  const firstAt = [];
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const reply = await client.sendCommand(['PUBSUB', 'NUMSUB', `${key}-request#/#`]);
    const numsub = Number(reply[1]);
    for (let n = 1; n <= numsub; n++) if (firstAt[n] === undefined) firstAt[n] = Date.now() - since;
    if (numsub >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await client.close();
  const at = (n) => (firstAt[n] === undefined ? 'never (10 s)' : `${firstAt[n]} ms`);
  return `the nodes' request-channel subscriptions were back on Redis: 1st at ${at(1)}, 2nd at ${at(2)} after the restart`;
}

const describeClients = (list) => list.map((c) => `id=${c.id} addr=${c.addr} name=${c.name} cmd=${c.cmd} sub=${c.sub} psub=${c.psub}`).join('; ') || 'none';

// -------------------------------------------------------------------------------------------------
// 1. Redis restart mid-traffic
//
// One scenario (kill with a request in flight, the outage, the restart), so the steps that change
// Redis are `before` hooks of nested describes, in order: the suite's starts Redis and the nodes,
// "Redis killed..." kills Redis and does what must happen during the outage, "...restarted..."
// starts it again. Each hook records what it saw (settled promises included: a rejection surfaces
// in the `it` that awaits it, with the message and bound it always had) and each `it` only asserts
// on that, so any `it` can run alone (--test-name-pattern still runs the hooks of its describes).

describe('Redis restart mid-traffic (kill -9, restart on the same port)', { timeout: 60000 }, () => {
  const key = uniqueKey();
  let redis;
  let A;
  let B;
  let a; // client on A
  let b; // client on B

  before(async () => {
    redis = await privateRedis();
    [A, B] = await startServers([oursNode(redis.url, 'A'), oursNode(redis.url, 'B')], { key });
    a = await A.connect('/');
    b = await B.connect('/');
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  it('broadcasts cross both ways and adapter.ready resolved before the outage', async () => {
    for (const node of [A, B]) {
      await waitForAdapterEvent(node, 0, (e) => e.event === 'readyPromise', `${node.label}: adapter.ready resolves`, 5000);
      assert.ok(findEvent(node, 0, isReady) >= 0, `${node.label} emitted no 'ready' at startup\n${eventLog(node)}`);
    }
    await expectCrossing(A, b, 'before-A');
    await expectCrossing(B, a, 'before-B');
  });

  describe('Redis killed with a request in flight', () => {
    // What the kill hook saw. Promises are stored settled (a no-op catch waited for) and awaited
    // again by the `it`s.
    const outage = {};

    before(async () => {
      // Precondition: Redis up (the suite's hook started it), so that a request can be in flight.
      if (!redis.running) await redis.start();
      // A silent subscriber of the request channel makes A expect one answer more than B gives, so
      // A's fetchSockets is certainly still pending when Redis dies.
      const silent = await redisClient(redis.url);
      try {
        await silent.subscribe(`${key}-request#/#`, () => {});
        await waitUntil(async () => (await A.command('serverCount', {})).value === 3, { what: 'A counts 3 subscribers (A, B, silent)' });
        outage.issuedAt = Date.now();
        outage.inFlight = A.command('fetchSockets', {}, REQ_TIMEOUT + REQ_SLACK + 15000);
        outage.inFlight.catch(() => {}); // awaited below; a failure before that must not go unhandled
        await waitUntil(async () => (await A.command('pending', {})).requests >= 1, { what: 'A has the fetchSockets pending' });

        outage.killMark = [A.adapterEvents.length, B.adapterEvents.length];
        outage.killAt = Date.now();
        outage.killed = await redis.kill('SIGKILL');
      } finally {
        silent.destroy();
      }

      await outage.inFlight.catch(() => {});
      outage.inFlightSettledAt = Date.now();
      // Both adapters' 'error' (waited for one after the other, each within RECOVERY_TIMEOUT), before
      // the outage goes on: the steps below happen once the nodes know Redis is gone.
      outage.errors = [];
      for (const [i, node] of [A, B].entries()) {
        outage.errors[i] = waitForAdapterEvent(node, outage.killMark[i], isError, `${node.label}: adapter 'error' after the kill`);
        await outage.errors[i].catch(() => {});
      }

      // During the outage: a request, then a broadcast from each node (the restart below checks that
      // these arrive on the other node once Redis is back).
      outage.during = A.command('fetchSockets', {}, REQ_TIMEOUT + REQ_SLACK + 15000);
      await outage.during.catch(() => {});
      outage.downAtEmits = !redis.running;
      outage.emits = [];
      outage.local = [];
      for (const [node, client, event] of [[A, a, 'during-A'], [B, b, 'during-B']]) {
        const emitted = node.command('emit', { event, args: [{ sentAt: Date.now() }] });
        outage.emits.push(emitted);
        await emitted.catch(() => {});
        // Local delivery does not depend on Redis: its 5 s count from the emit.
        const delivered = client.waitForEvent(event, 1, 5000);
        delivered.catch(() => {});
        outage.local.push(delivered);
      }
    });

    it('a request in flight when Redis is killed rejects (no hang), and both adapters emit error ERR_SIO_REDIS', async (t) => {
      const { killAt, killMark, issuedAt, inFlightSettledAt } = outage;
      assert.equal(outage.killed.signal, 'SIGKILL');
      const res = await outage.inFlight;
      const err = mustReject(res, 'fetchSockets in flight at the kill');
      t.diagnostic(`in-flight fetchSockets rejected ${inFlightSettledAt - issuedAt} ms after it was issued (${inFlightSettledAt - killAt} ms after the kill): ` +
        `[${err.code}] ${err.message}`);
      assert.match(err.message, /timeout|redis|connect|closed|lost/i, `unclear error: ${JSON.stringify(err)}`);
      assert.ok(res.ms <= REQ_TIMEOUT + REQ_SLACK, `took ${Math.round(res.ms)} ms (requestsTimeout ${REQ_TIMEOUT})`);

      for (const [i, node] of [A, B].entries()) {
        const idx = await outage.errors[i];
        const ev = node.adapterEvents[idx];
        t.diagnostic(`${node.label}: first 'error' ${ev.at - killAt} ms after the kill: [${ev.error.code}] ${ev.error.message}`);
        assert.ok(findEvent(node, killMark[i], isRedisError) >= 0, `${node.label}: no error with code ERR_SIO_REDIS\n${eventLog(node, killMark[i])}`);
      }
      for (const node of [A, B]) {
        assert.ok(node.alive, `${node.label} exited: ${node.describeState()}`);
        assert.deepEqual(node.uncaught, [], `${node.label}: ${node.describeState()}`);
      }
    });

    it('a request issued while Redis is down rejects with a clear error instead of hanging', async (t) => {
      const res = await outage.during;
      const err = mustReject(res, 'fetchSockets while Redis is down');
      t.diagnostic(`fetchSockets during the outage rejected after ${Math.round(res.ms)} ms: [${err.code}] ${err.message}`);
      assert.match(err.message, /timeout|redis|connect|closed|lost|refused/i, `unclear error: ${JSON.stringify(err)}`);
      assert.ok(res.ms <= REQ_TIMEOUT + REQ_SLACK, `took ${Math.round(res.ms)} ms (requestsTimeout ${REQ_TIMEOUT})`);
      // README "Errors": connection problems carry code ERR_SIO_REDIS (request results map Redis
      // failures to it too); a timeout would be ERR_SIO_TIMEOUT.
      assert.ok(['ERR_SIO_REDIS', 'ERR_SIO_TIMEOUT'].includes(err.code),
        `the rejection has code ${JSON.stringify(err.code)} (expected ERR_SIO_REDIS, or ERR_SIO_TIMEOUT): ${JSON.stringify(err)}`);
    });

    it('broadcasts issued while Redis is down are accepted and still reach local clients', async () => {
      assert.ok(outage.downAtEmits, 'Redis must be down here');
      for (const emitted of outage.emits) await emitted;
      for (const delivered of outage.local) await delivered;
      for (const node of [A, B]) assert.ok(node.alive, `${node.label} exited: ${node.describeState()}`);
    });

    describe('Redis restarted on the same port', () => {
      // What the restart hook saw; `ready[i]`: the settled wait for node i's 'ready' after the
      // outage (null when it had no 'error' after the kill to wait after).
      const back = { rawSeen: [] };

      before(async () => {
        // Precondition: Redis down, as the kill hook left it (no hook or `it` in between starts it).
        back.restartAt = Date.now();
        if (!redis.running) await redis.start();
        back.resubscribed = watchResubscription(redis.url, key, back.restartAt);
        back.resubscribed.catch(() => {}); // awaited by an `it`, which may be filtered out
        // Watch what gets published from now on (connects before the nodes' reconnect backoff ends).
        back.rawSub = await redisClient(redis.url);
        await back.rawSub.pSubscribe(`${key}#*`, (message, channel) => {
          let event = '?';
          try {
            event = require('notepack.io').decode(message)[1].data[0];
          } catch {
            // not a broadcast
          }
          back.rawSeen.push({ at: Date.now(), channel: String(channel), event });
        }, true);
        back.rawSubReadyAt = Date.now();
        // Each node's 'ready' after its first 'error' since the kill (one after the other, each
        // within RECOVERY_TIMEOUT), before the checks after recovery start.
        back.firstErr = [];
        back.ready = [];
        for (const [i, node] of [A, B].entries()) {
          back.firstErr[i] = findEvent(node, outage.killMark[i], isError);
          if (back.firstErr[i] < 0) {
            back.ready[i] = null;
            continue;
          }
          back.ready[i] = waitForAdapterEvent(node, back.firstErr[i] + 1, isReady, `${node.label}: adapter 'ready' after the outage`);
          await back.ready[i].catch(() => {});
        }
      });

      it('after Redis restarts on the same port both adapters emit ready by themselves', async (t) => {
        const { restartAt } = back;
        t.diagnostic(`Redis was down ${restartAt - outage.killAt} ms; raw subscriber ready ${back.rawSubReadyAt - restartAt} ms after the restart`);
        for (const [i, node] of [A, B].entries()) {
          assert.ok(back.firstErr[i] >= 0, `${node.label}: no error after the kill\n${eventLog(node, outage.killMark[i])}`);
          const idx = await back.ready[i];
          t.diagnostic(`${node.label}: 'ready' ${node.adapterEvents[idx].at - restartAt} ms after the restart`);
        }
      });

      it('after recovery broadcasts cross in both directions and requests work', async (t) => {
        const ab = await expectCrossing(A, b, 'after-A');
        const ba = await expectCrossing(B, a, 'after-B');
        t.diagnostic(`after recovery: A→b ${ab} ms, B→a ${ba} ms`);
        const res = await A.command('fetchSockets', {}, REQ_TIMEOUT + REQ_SLACK);
        assert.equal(res.ok, true, `fetchSockets after recovery: ${JSON.stringify(res.error)}`);
        const ids = res.value.map((s) => s.id);
        assert.ok(ids.includes(a.serverSocketId) && ids.includes(b.serverSocketId), `fetchSockets after recovery returned ${JSON.stringify(ids)}`);
      });

      it('broadcasts issued while Redis was down arrive on the other node after it is back (publish queue flushed)', async (t) => {
        const { restartAt } = back;
        const results = await Promise.all([[b, 'during-A'], [a, 'during-B']].map(([client, event]) =>
          client.waitForEvent(event, 1, 10000).then(() => null, (err) => err.message)));
        const published = back.rawSeen.filter((m) => m.event === 'during-A' || m.event === 'during-B')
          .map((m) => `${m.event} PUBLISHed on ${m.channel} ${m.at - restartAt} ms after the restart`);
        // For the message only (the 'ready' itself is the business of the `it` above).
        const readyIdx = await Promise.all(back.ready.map((p) => (p ? p.catch(() => -1) : -1)));
        const readyTimes = [A, B].map((n, i) => `${n.label} ${readyIdx[i] >= 0 ? `'ready' ${n.adapterEvents[readyIdx[i]].at - restartAt} ms after the restart` : "no 'ready' after the outage"}`);
        const resub = await back.resubscribed;
        const summary = `${published.join('; ') || 'no outage broadcast seen on Redis'}; ${resub}; ${readyTimes.join(', ')}`;
        t.diagnostic(summary);
        const failures = results.filter(Boolean);
        if (failures.length > 0) {
          assert.fail(`${failures.join('\n')}\n${summary}\n${await nodeReport(A)}\n${await nodeReport(B)}`);
        }
      });
    });
  });

  it('no node exited or threw', () => {
    for (const node of [A, B]) {
      assert.ok(node.alive, `${node.label} exited: ${node.describeState()}`);
      assert.deepEqual(node.uncaught, [], `${node.label}: ${node.describeState()}`);
    }
  });
});

// -------------------------------------------------------------------------------------------------
// 2. Redis unreachable at start
//
// The suite's hook starts the nodes (and a client on A) with nothing listening on the port; Redis
// is started only by the hook of the nested describe, which runs after the `it`s above it: those
// see a node that never had Redis, the ones inside see it come up. No `it` depends on another.

describe('Redis unreachable at start', { timeout: 60000 }, () => {
  const key = uniqueKey();
  let redis;
  let A;
  let B;
  let a; // client on A, connected while Redis is unreachable

  before(async () => {
    redis = await privateRedis({ start: false }); // a free port, nothing listens yet
    [A, B] = await startServers([oursNode(redis.url, 'A'), oursNode(redis.url, 'B')], { key, mesh: false });
    a = await A.connect('/');
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  it('the nodes start and their adapters emit error with code ERR_SIO_REDIS, no crash', async (t) => {
    assert.ok(!redis.running, 'Redis must not have been started yet');
    for (const node of [A, B]) {
      const idx = await waitForAdapterEvent(node, 0, isError, `${node.label}: adapter 'error' with Redis unreachable`);
      const ev = node.adapterEvents[idx];
      t.diagnostic(`${node.label}: [${ev.error.code}] ${ev.error.message}`);
      assert.ok(findEvent(node, 0, isRedisError) >= 0, `${node.label}: no ERR_SIO_REDIS error\n${eventLog(node)}`);
      assert.equal(findEvent(node, 0, (e) => e.event === 'ready' || e.event === 'readyPromise'), -1,
        `${node.label}: 'ready' without Redis\n${eventLog(node)}`);
      assert.ok(node.alive, node.describeState());
      assert.deepEqual(node.uncaught, [], node.describeState());
    }
  });

  it('local sockets are served: a broadcast reaches a local client', async () => {
    assert.ok(!redis.running, 'Redis must not have been started yet');
    await A.command('emit', { event: 'local-all', args: [1] });
    await a.waitForEvent('local-all', 1, 5000);
    await A.command('emit', { event: 'local-flag', local: true, args: [2] });
    await a.waitForEvent('local-flag', 1, 5000);
    assert.ok(A.alive && B.alive);
  });

  describe('Redis started on that port', () => {
    let marks; // adapterEvents.length of [A, B] when Redis was started
    let startAt;

    before(async () => {
      marks = [A.adapterEvents.length, B.adapterEvents.length];
      startAt = Date.now();
      // Precondition of what follows: Redis up (only this hook starts it).
      if (!redis.running) await redis.start();
    });

    it('once Redis starts on that port: ready (and adapter.ready resolves) and cross-node broadcasts work', async (t) => {
      for (const [i, node] of [A, B].entries()) {
        const idx = await waitForAdapterEvent(node, marks[i], isReady, `${node.label}: adapter 'ready' once Redis is up`);
        await waitForAdapterEvent(node, 0, (e) => e.event === 'readyPromise', `${node.label}: adapter.ready resolves once Redis is up`);
        t.diagnostic(`${node.label}: 'ready' ${node.adapterEvents[idx].at - startAt} ms after Redis started`);
      }
      const b = await B.connect('/');
      const ab = await expectCrossing(A, b, 'cross-A');
      const ba = await expectCrossing(B, a, 'cross-B');
      t.diagnostic(`A→b ${ab} ms, B→a ${ba} ms`);
      for (const node of [A, B]) {
        assert.ok(node.alive, node.describeState());
        assert.deepEqual(node.uncaught, [], node.describeState());
      }
    });
  });
});

// -------------------------------------------------------------------------------------------------
// 2b. A node on Redis's Unix socket (its subscriber reads the socket in large chunks, as over TCP)

describe('a node on a Unix socket beside nodes on TCP, through a Redis restart', { timeout: 60000 }, () => {
  const key = uniqueKey();
  const socketPath = path.join(os.tmpdir(), `sio-redis-${process.pid}-${Date.now()}.sock`);
  let redis;
  let A; // ours, unix://
  let B; // ours, TCP
  let C; // official, TCP
  let a;
  let b;
  let c;

  before(async () => {
    redis = await privateRedis({ args: ['--unixsocket', socketPath, '--unixsocketperm', '700'] });
    [A, B, C] = await startServers([
      oursNode(`unix://${socketPath}`, 'A'),
      oursNode(redis.url, 'B'),
      { label: 'C', adapter: 'official', redisUrl: redis.url, namespaces: ['/'], requestsTimeout: REQ_TIMEOUT, commandModules: [COMMANDS_MODULE] },
    ], { key });
    [a, b, c] = await Promise.all([A, B, C].map((node) => node.connect('/')));
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  /** Each node's broadcast reaches the clients of the two others, and A counts all three nodes. */
  async function expectOneCluster(tag) {
    for (const [from, to] of [[A, b], [A, c], [B, a], [C, a]]) await expectCrossing(from, to, `${tag}-${from.label}-${to.server.label}`);
    await waitUntil(async () => (await A.command('serverCount', {})).value === 3, { what: `${tag}: A counts 3 nodes` });
    const sockets = (await A.command('fetchSockets', {})).value;
    assert.equal(sockets.length, 3, `${tag}: A's fetchSockets: ${JSON.stringify(sockets)}`);
  }

  it('broadcasts and requests cross between the Unix-socket node and the TCP nodes', async () => {
    await waitForAdapterEvent(A, 0, isReady, "A: 'ready' over the Unix socket");
    await expectOneCluster('before');
  });

  it("after kill -9 and a restart, A reports 'error' then 'ready' and the cluster is whole again", async () => {
    const [markA, markB] = [A.adapterEvents.length, B.adapterEvents.length];
    await redis.kill('SIGKILL');
    const error = await waitForAdapterEvent(A, markA, isError, "A: 'error' after the kill");
    await redis.start();
    await waitForAdapterEvent(A, error + 1, isReady, "A: 'ready' after the restart");
    // A broadcast published before the other nodes resubscribed is lost to them, as pub/sub is:
    // wait until they are back too (B's 'ready'; every node counted on the request channel).
    await waitForAdapterEvent(B, (await waitForAdapterEvent(B, markB, isError, "B: 'error' after the kill")) + 1, isReady, "B: 'ready' after the restart");
    await waitUntil(async () => (await A.command('serverCount', {})).value === 3, { what: 'after: A counts 3 nodes before the broadcasts' });
    await expectOneCluster('after');
    for (const node of [A, B, C]) assert.deepEqual(node.uncaught, [], node.describeState());
  });
});

// -------------------------------------------------------------------------------------------------
// 3. Bad options (in-process, no Redis needed: createAdapter validates before connecting)

describe('bad options: synchronous TypeError with code ERR_SIO_OPTION naming the option', () => {
  const { createAdapter } = require(OURS_MODULE);
  const URL = 'redis://127.0.0.1:1'; // never connected to: the factory is not called
  const cases = [
    ['requestsTimeout: -1', () => createAdapter(URL, undefined, { requestsTimeout: -1 }), 'requestsTimeout'],
    ["requestsTimeout: 'x'", () => createAdapter(URL, undefined, { requestsTimeout: 'x' }), 'requestsTimeout'],
    ['key: 5', () => createAdapter(URL, undefined, { key: 5 }), 'key'],
    ["publishOnSpecificResponseChannel: 'yes'", () => createAdapter(URL, undefined, { publishOnSpecificResponseChannel: 'yes' }), 'publishOnSpecificResponseChannel'],
    ['maxQueuedPublishes: 0', () => createAdapter(URL, undefined, { maxQueuedPublishes: 0 }), 'maxQueuedPublishes'],
    ["URL 'http://x' as pubClient", () => createAdapter('http://x'), 'pubClient'],
    ["URL 'http://x' as pubClient, with options", () => createAdapter('http://x', undefined, { key: 'k' }), 'pubClient'],
    ["URL 'http://x' as subClient", () => createAdapter(URL, 'http://x'), 'subClient'],
    ['new Date() as pubClient', () => createAdapter(new Date()), 'pubClient'],
    ['new Date() as pubClient and subClient', () => createAdapter(new Date(), new Date(), {}), 'pubClient'],
    ['parser: { encode } without decode', () => createAdapter(URL, undefined, { parser: { encode: JSON.stringify } }), 'parser'],
    ["parser: 'json'", () => createAdapter(URL, undefined, { parser: 'json' }), 'parser'],
  ];
  for (const [name, call, option] of cases) {
    it(name, () => {
      let thrown = null;
      let returned;
      try {
        returned = call();
      } catch (err) {
        thrown = err;
      }
      assert.ok(thrown, `did not throw (returned ${typeof returned})`);
      assert.ok(thrown instanceof TypeError, `threw ${thrown && thrown.name}: ${thrown && thrown.message}`);
      assert.equal(thrown.code, 'ERR_SIO_OPTION', `code of: ${thrown.message}`);
      assert.ok(thrown.message.includes(option), `message does not name \`${option}\`: ${thrown.message}`);
    });
  }
  it('valid options do not throw (control)', () => {
    // Any { encode, decode } is a parser (test/parser.test.js); notepack.io keeps the core's path.
    const notepack = require(require.resolve('notepack.io', { paths: [OURS_MODULE] }));
    const factory = createAdapter(URL, undefined, { key: 'k', requestsTimeout: 1000, publishOnSpecificResponseChannel: true, maxQueuedPublishes: 10, parser: notepack });
    assert.equal(typeof factory, 'function');
    assert.equal(typeof createAdapter(URL, undefined, { parser: { encode: JSON.stringify, decode: JSON.parse } }), 'function');
  });
});

// -------------------------------------------------------------------------------------------------
// 4. Shutdown

describe('shutdown: io.close() releases the Redis connections', { timeout: 60000 }, () => {
  let redis;
  let probe;

  before(async () => {
    redis = await privateRedis();
    probe = await redisClient(redis.url);
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  const started = []; // every node nodeWithConnections started

  /**
   * Starts one ours node, makes it use both connections, returns it with its CLIENT LIST entries.
   * They are told apart by difference (ours names no connection): whatever appears in CLIENT LIST
   * after the snapshot is the new node's. That holds only if nothing else can connect meanwhile, so
   * the snapshot waits for a quiet Redis: the nodes started before are stopped (a no-op when their
   * `it` did) and CLIENT LIST must hold the probe alone (this Redis is private, nobody else
   * connects). A straggling connection of an earlier node can then not be counted for this one,
   * whatever the earlier `it` did or whether it ran at all.
   */
  async function nodeWithConnections(label) {
    await Promise.all(started.map((n) => n.stop(10000)));
    const probeId = String(await probe.sendCommand(['CLIENT', 'ID']));
    let others = [];
    try {
      await waitUntil(async () => {
        others = (await clientList(probe)).filter((c) => c.id !== probeId);
        return others.length === 0;
      }, { timeoutMs: 5000, intervalMs: 50, what: `${label}: CLIENT LIST to hold only the probe before the node starts` });
    } catch (err) {
      assert.fail(`${err.message}\nstill connected: ${describeClients(others)}`);
    }
    const before = new Set([probeId]);
    const [node] = await startServers([oursNode(redis.url, label)], { key: uniqueKey(), mesh: false });
    started.push(node);
    await waitForAdapterEvent(node, 0, (e) => e.event === 'readyPromise', `${label}: adapter.ready`, 10000);
    // The publishing connection opens on first use.
    await node.command('emit', { event: 'warm-up' });
    assert.equal((await node.command('serverCount', {})).value, 1);
    const mine = await waitUntil(async () => {
      const added = (await clientList(probe)).filter((c) => !before.has(c.id));
      return added.length >= 2 ? added : null;
    }, { timeoutMs: 5000, what: `${label}: its publishing and subscribing connections in CLIENT LIST` });
    return { node, mine };
  }

  /** Polls CLIENT LIST until none of `mine` is left; returns how long it took. */
  async function connectionsGone(mine, since, what) {
    const ids = new Set(mine.map((c) => c.id));
    let left = [];
    try {
      await waitUntil(async () => {
        left = (await clientList(probe)).filter((c) => ids.has(c.id));
        return left.length === 0;
      }, { timeoutMs: 5000, intervalMs: 50, what });
    } catch (err) {
      assert.fail(`${err.message}\nstill connected: ${describeClients(left)}`);
    }
    return Date.now() - since;
  }

  it('after io.close() the node exits by itself and its connections are gone from CLIENT LIST', async (t) => {
    const { node, mine } = await nodeWithConnections('S1');
    t.diagnostic(`S1 connections: ${describeClients(mine)}`);
    const stopAt = Date.now();
    const result = await node.stop(10000);
    assert.equal(result.closeError, null, `close command failed: ${result.closeError && result.closeError.message}`);
    assert.ok(result.exitedByItself, `S1 did not exit by itself within 10 s (killed); after io.close() still active: ${JSON.stringify(result.closeResult && result.closeResult.activeResources)}`);
    assert.equal(result.code, 0, `exit code ${result.code}, signal ${result.signal}`);
    t.diagnostic(`S1 exited ${Date.now() - stopAt} ms after the close command`);
    const ms = await connectionsGone(mine, stopAt, 'S1 connections to leave Redis');
    t.diagnostic(`S1 connections gone ${ms} ms after the close command`);
  });

  it('io.close() alone (the process still running) closes the node\'s Redis connections', async (t) => {
    const { node, mine } = await nodeWithConnections('S2');
    const closeAt = Date.now();
    const res = await node.command('closeIo', {}, 10000);
    t.diagnostic(`io.close() took ${Math.round(res.ms)} ms; active resources after it: ${JSON.stringify(res.activeResources)}`);
    assert.ok(node.alive, 'S2 must still run for this check');
    const ms = await connectionsGone(mine, closeAt, 'S2 connections to leave Redis after io.close() (process alive)');
    t.diagnostic(`S2 connections gone ${ms} ms after io.close()`);
    assert.ok(node.alive, 'S2 still running');
    const result = await node.stop(10000);
    assert.ok(result.exitedByItself, `S2 did not exit by itself after close: ${JSON.stringify(result)}`);
  });
});
