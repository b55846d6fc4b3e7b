'use strict';
// Redis Sentinel support of ours (`redis+sentinel://host:port[,host:port]/<name>` and ioredis
// clients / settings with `{ sentinels, name }`), against a PRIVATE deployment started by this
// file (helpers/sentinel.js: a primary, a replica, three sentinels on free loopback ports).
//
// 1. Failover: ours node A gets the Sentinel as a `redis+sentinel://` URL, ours node B an ioredis
//    client created with `{ sentinels, name }`, official node O (@socket.io/redis-adapter) ioredis
//    Sentinel clients; one cluster (one key).
//    (a) broadcasts cross both ways, fetchSockets sees every socket, the nodes subscribe on the primary;
//    (b) kill -9 the primary: A and B emit 'error' (ERR_SIO_REDIS) then 'ready' by themselves
//        once Sentinel names the former replica (ROLE master); broadcasts cross, requests work;
//    (c) O exchanges broadcasts with A and B before and after the failover (ioredis follows it);
//    (b) in flight: from just before the kill until after recovery, A issues a request every
//        100 ms (fetchSockets, serverCount, serverSideEmitWithAck in turn; helpers/inflight.js) and
//        A and B broadcast a numbered event every 20 ms: every request settles (resolves or
//        rejects) within requestsTimeout + 500 ms, they succeed again after recovery, no
//        broadcast reaches a or b twice (losses during the failover are reported);
//    (d) the killed primary is restarted right after recovery (so the steps after (b) run while
//        it is back) and Sentinel makes it a replica of the new primary (it then replicates every
//        PUBLISH): numbered broadcasts from A, B and O reach a, b and o exactly once, and nothing
//        reached a or b twice since the kill.
// 2. Misconfigured Sentinel (wrong primary name, unreachable sentinels, a data node given as a
//    sentinel): the node starts, serves local sockets, its adapter emits 'error' ERR_SIO_REDIS
//    naming the problem, no 'ready', no crash.
// 3. Bad Sentinel settings: synchronous TypeError with code ERR_SIO_OPTION (in-process).
//
// Waiting is on conditions (IPC reports, client events, polled Sentinel/Redis state), never fixed sleeps.
// Run: node --test test/sentinel.test.js (from the repository root).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { uniqueKey, startServers, waitUntil, stopAll } = require('./helpers/cluster');
const { oursNodeWith } = require('./helpers/private-redis');
const { startSentinelDeployment, unusedPort, parseInfo } = require('./helpers/sentinel');
const { adapterEventHelpers, isError, isRedisError, isReady } = require('./helpers/adapter-events');
const { attachTally, streamStats, dupsOf } = require('./helpers/tally');
const { startRequests, stopWhenSucceeding, summarize } = require('./helpers/inflight');

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
/** requestsTimeout of the nodes. */
const REQ_TIMEOUT = 2000;
/** Bound for the whole failover as the nodes see it (Sentinel itself needs ~2-4 s here). */
const FAILOVER_TIMEOUT = 30000;
/** A request settled later than requestsTimeout + this (or never) overran. */
const REQ_SLACK = 500;
/** Server commands of the in-flight traffic (trafficStart, requestsStart, emitNumbered, ...). */
const FAULT_COMMANDS = path.join(__dirname, 'helpers', 'fault-commands.js');
/** Numbered broadcasts: event names start with this (helpers/tally.js). */
const NUMBERED = 'n:';
const AFTER_COUNT = 20;

const oursNode = oursNodeWith({ requestsTimeout: REQ_TIMEOUT, commandModules: FAULT_COMMANDS });

let dep; // the Sentinel deployment shared by the suites

before(async () => {
  const startAt = Date.now();
  dep = await startSentinelDeployment();
  console.log(`# Sentinel deployment ready in ${Date.now() - startAt} ms: primary :${dep.primary.port}, replica :${dep.replica.port}, ${dep.url}`);
});

after(async () => {
  try {
    await stopAll();
  } finally {
    if (dep) await dep.stop();
  }
});

// -------------------------------------------------------------------------------------------------
// Helpers

const { eventLog, findEvent, waitForAdapterEvent } = adapterEventHelpers({
  report: async (server) => `${eventLog(server)}\n${server.describeState()}\nSentinel deployment:\n${await dep.describe()}`,
});

/**
 * `from` broadcasts `event` once; the client `to` (on another node) must get it within
 * `timeoutMs`. Returns ms. When it does not, waits up to 15 s more to tell "late" from "lost".
 */
async function expectCrossing(from, to, event, timeoutMs = 5000) {
  const sentAt = Date.now();
  await from.command('emit', { event, args: [{ sentAt }] });
  try {
    await to.waitForEvent(event, 1, timeoutMs);
  } catch {
    const late = await to.waitForEvent(event, 1, 15000).then(() => `it arrived ${Date.now() - sentAt} ms after the send`, () => 'still not there 15 s later');
    let stats = 'n/a';
    try {
      stats = JSON.stringify((await from.command('pending', {})).stats);
    } catch (err) {
      stats = `(pending failed: ${err.message})`;
    }
    assert.fail(`${from.label} → client on ${to.server.label}: "${event}" did not arrive within ${timeoutMs} ms; ${late}\n` +
      `${from.label} stats: ${stats}\n${eventLog(from)}\n${eventLog(to.server)}\nSentinel deployment:\n${await dep.describe()}`);
  }
  return Date.now() - sentAt;
}

/**
 * For nodes that recover at their own pace (the official adapter's ioredis clients): `from`
 * broadcasts `event` every 250 ms until the client `to` got it; returns ms since the first send.
 */
async function eventuallyCrosses(from, to, event, timeoutMs) {
  const start = Date.now();
  while (to.received(event).length === 0) {
    if (Date.now() - start > timeoutMs) {
      assert.fail(`${from.label} → client on ${to.server.label}: "${event}" re-sent every 250 ms never arrived within ${timeoutMs} ms\n` +
        `${from.describeState()}\n${to.server.describeState()}\nSentinel deployment:\n${await dep.describe()}`);
    }
    await from.command('emit', { event }).catch(() => {});
    await to.waitForEvent(event, 1, 250).catch(() => {});
  }
  return Date.now() - start;
}

/** Subscribers of channel `channel` on the data node on `port` (PUBSUB NUMSUB). */
async function numsub(port, channel) {
  return Number((await dep.command(port, ['PUBSUB', 'NUMSUB', channel]))[1]);
}

/** fetchSockets from `node` must return exactly the socket ids `ids` (order ignored). */
async function expectFetchSockets(node, ids, what) {
  const res = await node.command('fetchSockets', {}, REQ_TIMEOUT + 5000);
  assert.equal(res.ok, true, `${what}: fetchSockets from ${node.label} rejected: ${JSON.stringify(res.error)}\n${eventLog(node)}`);
  assert.deepEqual(res.value.map((s) => s.id).sort(), [...ids].sort(), `${what}: fetchSockets from ${node.label}`);
  return res.ms;
}

// -------------------------------------------------------------------------------------------------
// 1. Failover

describe('Sentinel failover: ours by URL and by ioredis client, official with ioredis Sentinel clients', { timeout: 150000 }, () => {
  const key = uniqueKey();
  let A; // ours, redis+sentinel:// URL
  let B; // ours, ioredis client { sentinels, name }
  let O; // official, ioredis Sentinel clients
  let a;
  let b;
  let o;
  let oldPrimary;
  let killAt;
  let killMark; // adapterEvents.length of [A, B] at the kill
  let switchAt; // when a sentinel first named the new primary (polled every 50 ms)
  let readyIdx; // [A, B]: index of the 'ready' after the failover
  let inflight = false; // A's requests and A's and B's numbered broadcasts run (from the kill step)
  let restartAt = null; // when the killed primary was started again
  const restartOldPrimary = async () => {
    if (restartAt !== null) return;
    restartAt = Date.now();
    await dep.primary.start();
  };

  before(async () => {
    oldPrimary = dep.primary.port;
    [A, B, O] = await startServers([
      oursNode(dep.url, 'A'),
      oursNode(dep.ioredisOptions, 'B', { client: 'ioredis', redisClients: true }),
      { label: 'O', adapter: 'official', client: 'ioredis', redisUrl: dep.ioredisOptions, namespaces: ['/'], requestsTimeout: REQ_TIMEOUT, commandModules: [FAULT_COMMANDS] },
    ], { key });
    a = attachTally(await A.connect('/'), NUMBERED);
    b = attachTally(await B.connect('/'), NUMBERED);
    o = attachTally(await O.connect('/'), NUMBERED);
  });

  after(async () => {
    // A step that failed half-way must not leave the traffic running.
    if (inflight) {
      await A.command('requestsStop', { tag: 'inflight' }).catch(() => {});
      for (const n of [A, B]) await n.command('trafficStop', { event: `${NUMBERED}${n.label}` }).catch(() => {});
    }
  });

  it('(a) before the failover: ready, broadcasts cross both ways, fetchSockets sees every socket, subscriptions are on the primary', async (t) => {
    for (const node of [A, B]) {
      await waitForAdapterEvent(node, 0, (e) => e.event === 'readyPromise', `${node.label}: adapter.ready resolves`, 5000);
      assert.equal(findEvent(node, 0, isError), -1, `${node.label}: 'error' before any failover\n${eventLog(node)}`);
    }
    const ab = await expectCrossing(A, b, 'before-A');
    const ba = await expectCrossing(B, a, 'before-B');
    const ids = [a, b, o].map((c) => c.serverSocketId);
    // The mesh probes of startServers may still be leaving: wait until exactly our 3 sockets show.
    for (const node of [A, B]) {
      await waitUntil(async () => {
        const res = await node.command('fetchSockets', {}, REQ_TIMEOUT + 5000);
        return res.ok && res.value.length === 3;
      }, { timeoutMs: 5000, intervalMs: 50, what: `${node.label}: fetchSockets sees the 3 sockets` });
      await expectFetchSockets(node, ids, 'before the failover');
    }
    const count = await A.command('serverCount', {});
    assert.deepEqual([count.ok, count.value], [true, 3], `serverCount from A: ${JSON.stringify(count)}`);
    // Subscribed where Sentinel says the primary is (a replica would receive but not reach others).
    const requestChannel = `${key}-request#/#`;
    assert.equal(await numsub(dep.primary.port, requestChannel), 3, `subscribers of ${requestChannel} on the primary`);
    assert.equal(await numsub(dep.replica.port, requestChannel), 0, `subscribers of ${requestChannel} on the replica`);
    t.diagnostic(`A→b ${ab} ms, B→a ${ba} ms; A, B and O subscribe on the primary :${dep.primary.port}`);
  });

  it('(c) before the failover: the official node exchanges broadcasts with both ours nodes', async (t) => {
    const times = [
      await expectCrossing(O, a, 'before-O-a'),
      await expectCrossing(O, b, 'before-O-b'),
      await expectCrossing(A, o, 'before-A-o'),
      await expectCrossing(B, o, 'before-B-o'),
    ];
    const res = await O.command('fetchSockets', {}, REQ_TIMEOUT + 5000);
    assert.equal(res.ok, true, `fetchSockets from O: ${JSON.stringify(res.error)}`);
    assert.deepEqual(res.value.map((s) => s.id).sort(), [a, b, o].map((c) => c.serverSocketId).sort());
    t.diagnostic(`O→a ${times[0]} ms, O→b ${times[1]} ms, A→o ${times[2]} ms, B→o ${times[3]} ms`);
  });

  it('(b) kill -9 the primary: both ours adapters emit error (ERR_SIO_REDIS) then ready by themselves once Sentinel names the former replica', async (t) => {
    // In flight across the failover (checked by the next step): A's requests, A's and B's broadcasts.
    for (const node of [B, O]) await node.command('onServerEvent', { event: 'faults-ack', reply: node.label });
    inflight = true;
    await startRequests(A, 'inflight', { intervalMs: 100 });
    for (const node of [A, B]) await node.command('trafficStart', { event: `${NUMBERED}${node.label}`, intervalMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    killMark = [A.adapterEvents.length, B.adapterEvents.length];
    // Date the switch as Sentinel answers it (what the nodes ask every second).
    let watching = true;
    const watcher = (async () => {
      while (watching && switchAt === undefined) {
        if ((await dep.primaryPort()) === dep.replica.port) switchAt = Date.now();
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    killAt = Date.now();
    const killed = await dep.primary.kill('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    try {
      for (const [i, node] of [A, B].entries()) {
        const errIdx = await waitForAdapterEvent(node, killMark[i], isError, `${node.label}: adapter 'error' after the kill`, FAILOVER_TIMEOUT);
        const ev = node.adapterEvents[errIdx];
        t.diagnostic(`${node.label}: first 'error' ${ev.at - killAt} ms after the kill: [${ev.error.code}] ${ev.error.message}`);
        assert.ok(findEvent(node, killMark[i], isRedisError) >= 0, `${node.label}: no error with code ERR_SIO_REDIS\n${eventLog(node, killMark[i], killAt)}`);
      }
      readyIdx = [];
      for (const [i, node] of [A, B].entries()) {
        const firstErr = findEvent(node, killMark[i], isError);
        readyIdx[i] = await waitForAdapterEvent(node, firstErr + 1, isReady,
          `${node.label}: adapter 'ready' after the failover (kill at ${new Date(killAt).toISOString().slice(11, 23)})`, FAILOVER_TIMEOUT - (Date.now() - killAt));
      }
      await waitUntil(() => switchAt !== undefined, { timeoutMs: 5000, what: 'Sentinel naming the former replica' });
    } finally {
      watching = false;
      await watcher;
    }
    t.diagnostic(`Sentinel named the former replica :${dep.replica.port} ${switchAt - killAt} ms after the kill`);
    for (const [i, node] of [A, B].entries()) {
      const ready = node.adapterEvents[readyIdx[i]];
      t.diagnostic(`${node.label}: 'ready' ${ready.at - killAt} ms after the kill (${ready.at - switchAt} ms after the switch); ` +
        `${eventLog(node, killMark[i], killAt)}`);
      // A 'ready' while Sentinel still named the dead primary would be a false recovery (50 ms poll + slack).
      assert.ok(ready.at >= switchAt - 300, `${node.label}: 'ready' before Sentinel named a new primary\n${eventLog(node, killMark[i], killAt)}`);
      assert.ok(node.alive, node.describeState());
      assert.deepEqual(node.uncaught, [], node.describeState());
    }
  });

  it('(b) in flight: A\'s requests (every 100 ms) from before the kill until after recovery each settle within requestsTimeout + 500 ms and succeed again; no broadcast reaches a or b twice', async (t) => {
    assert.ok(readyIdx, 'needs the failover step');
    const recoveredAt = Math.max(A.adapterEvents[readyIdx[0]].at, B.adapterEvents[readyIdx[1]].at);
    // After recovery A and B answer for sure; O (ioredis) comes back at its own pace.
    const accept = (r) => (r.kind === 'serverSideEmitWithAck' ? r.value.includes('B') : r.value >= 2);
    const run = await stopWhenSucceeding(A, 'inflight', { from: recoveredAt, accept, timeoutMs: 20000, settleMs: REQ_TIMEOUT + REQ_SLACK + 300 });
    const sent = {};
    for (const node of [A, B]) sent[node.label] = (await node.command('trafficStop', { event: `${NUMBERED}${node.label}` })).sentAt.length;
    inflight = false;
    const s = summarize(run.records, { bound: REQ_TIMEOUT + REQ_SLACK, killAt, recoveredAt });
    const lost = [[A, b], [A, o], [B, a], [B, o]].map(([from, to]) =>
      `${from.label}→${to.server.label.toLowerCase()} ${streamStats(to, `${NUMBERED}${from.label}`, sent[from.label]).lost}/${sent[from.label]}`);
    const dups = Object.fromEntries([a, b, o].map((c) => [c.server.label.toLowerCase(), dupsOf(c, NUMBERED)]));
    t.diagnostic(`requests of A (kill at +0, A and B ready at +${recoveredAt - killAt} ms, stopped at +${run.stoppedAt - killAt} ms): ${s.line}`);
    t.diagnostic(`request errors: ${s.errors.slice(0, 6).join(' | ') || 'none'}`);
    t.diagnostic(`broadcasts during the failover (every 20 ms): lost ${lost.join(', ')}; duplicates a ${dups.a.dups}, b ${dups.b.dups}, o ${dups.o.dups}`);
    // The killed primary comes back now (as a crashed process is restarted): Sentinel makes it a
    // replica of the new primary some seconds later, while the next steps run; (d) checks after that.
    await restartOldPrimary();
    assert.deepEqual(s.lateDetail, [], `${s.overran.length} of A's ${run.records.length} requests settled later than requestsTimeout ${REQ_TIMEOUT} + ${REQ_SLACK} ms or never\n${s.line}\n${eventLog(A, killMark[0], killAt)}`);
    assert.ok(run.succeeding, `A's requests did not succeed again (3 in a row of each kind) within 20 s of A and B being ready\n${s.line}\nerrors: ${s.errors.join(' | ')}\n` +
      `last: ${JSON.stringify(run.records.slice(-6))}\n${eventLog(A, killMark[0], killAt)}`);
    for (const x of ['a', 'b']) assert.equal(dups[x].dups, 0, `duplicate deliveries at ${x} during the failover: ${dups[x].detail.join(', ')}`);
  });

  it('(b) after the failover: the former replica is the primary (ROLE), broadcasts cross both ways, requests work', async (t) => {
    assert.ok(readyIdx, 'needs the failover step');
    assert.equal(await dep.role(dep.replica.port), 'master', `ROLE of the former replica :${dep.replica.port}`);
    await dep.waitForPrimary(dep.replica.port, 10000);
    const ab = await expectCrossing(A, b, 'after-A');
    const ba = await expectCrossing(B, a, 'after-B');
    const requestChannel = `${key}-request#/#`;
    const subs = await numsub(dep.replica.port, requestChannel);
    assert.ok(subs >= 2, `subscribers of ${requestChannel} on the new primary :${dep.replica.port}: ${subs} (A and B at least)`);
    // O (ioredis) may still be reconnecting: until it is back, requests from ours expect 2 answers.
    await waitUntil(async () => (await numsub(dep.replica.port, requestChannel)) === 3,
      { timeoutMs: 20000, intervalMs: 50, what: `A, B and O subscribed to ${requestChannel} on the new primary` });
    const ids = [a, b, o].map((c) => c.serverSocketId);
    const msA = await expectFetchSockets(A, ids, 'after the failover');
    const msB = await expectFetchSockets(B, ids, 'after the failover');
    const count = await B.command('serverCount', {});
    assert.deepEqual([count.ok, count.value], [true, 3], `serverCount from B: ${JSON.stringify(count)}`);
    // A request with acks across the nodes: serverSideEmit from A answered by B and O.
    for (const node of [B, O]) await node.command('onServerEvent', { event: 'sse-after', reply: node.label });
    const sse = await A.command('serverSideEmit', { event: 'sse-after', args: [1], mode: 'callback' }, REQ_TIMEOUT + 5000);
    assert.equal(sse.err, null, `serverSideEmit from A: ${JSON.stringify(sse.err)}`);
    assert.deepEqual([...sse.responses].sort(), ['B', 'O']);
    t.diagnostic(`A→b ${ab} ms, B→a ${ba} ms; fetchSockets A ${Math.round(msA)} ms, B ${Math.round(msB)} ms; ` +
      `request channel subscribers on the new primary :${dep.replica.port}: ${await numsub(dep.replica.port, requestChannel)}`);
  });

  it('(b) after the failover the ours adapters stay up: no error after their post-failover ready', () => {
    assert.ok(readyIdx, 'needs the failover step');
    for (const [i, node] of [A, B].entries()) {
      const later = findEvent(node, readyIdx[i] + 1, isError);
      assert.equal(later, -1, `${node.label}: 'error' after the post-failover 'ready', with no 'ready' since: ` +
        `${findEvent(node, later + 1, isReady) >= 0 ? 'a ready followed' : 'none followed'}\n${eventLog(node, killMark[i], killAt)}`);
    }
  });

  it('(c) after the failover: the official node (ioredis follows Sentinel itself) exchanges broadcasts with both ours nodes', async (t) => {
    assert.ok(readyIdx, 'needs the failover step');
    const oa = await eventuallyCrosses(O, a, 'after-O-a', 20000);
    const ob = await expectCrossing(O, b, 'after-O-b');
    const ao = await eventuallyCrosses(A, o, 'after-A-o', 20000);
    const bo = await expectCrossing(B, o, 'after-B-o');
    const res = await O.command('fetchSockets', {}, REQ_TIMEOUT + 5000);
    assert.equal(res.ok, true, `fetchSockets from O: ${JSON.stringify(res.error)}`);
    assert.deepEqual(res.value.map((s) => s.id).sort(), [a, b, o].map((c) => c.serverSocketId).sort());
    t.diagnostic(`${Date.now() - killAt} ms after the kill: O→a ${oa} ms, O→b ${ob} ms, A→o ${ao} ms, B→o ${bo} ms`);
  });

  it('(d) the killed primary restarts and becomes a replica of the new one: numbered broadcasts from A, B and O reach a, b and o exactly once; nothing reached a or b twice since the kill', async (t) => {
    assert.ok(readyIdx, 'needs the failover step');
    await restartOldPrimary(); // unless the in-flight step did
    // Sentinel reconfigures the returning primary as a replica of the new one (which it then
    // replicates, PUBLISH included).
    let info = {};
    await waitUntil(async () => {
      info = parseInfo(await dep.command(oldPrimary, ['INFO', 'replication']).catch(() => ''));
      return info.role === 'slave' && Number(info.master_port) === dep.replica.port && info.master_link_status === 'up';
    }, { timeoutMs: 30000, intervalMs: 100, what: `the restarted :${oldPrimary} to replicate from :${dep.replica.port}` }).catch(async (err) => {
      assert.fail(`${err.message}: ${JSON.stringify(info)}\n${await dep.describe()}`);
    });
    const replicatingAfter = Date.now() - restartAt;
    const clients = [a, b, o];
    const nodes = [A, B, O];
    for (const node of nodes) await node.command('emitNumbered', { event: `${NUMBERED}after-${node.label}`, count: AFTER_COUNT, intervalMs: 5 });
    const complete = (c, node) => () => streamStats(c, `${NUMBERED}after-${node.label}`, AFTER_COUNT).received >= AFTER_COUNT;
    await Promise.all(nodes.flatMap((node) => clients.map((c) => c.waitFor(complete(c, node), 5000, `${NUMBERED}after-${node.label}`).catch(() => {}))));
    for (const node of nodes) await node.flush(clients, 5000).catch(() => {});
    const got = {};
    for (const node of nodes) for (const c of clients) got[`${node.label}→${c.server.label.toLowerCase()}`] = streamStats(c, `${NUMBERED}after-${node.label}`, AFTER_COUNT);
    const dups = Object.fromEntries(clients.map((c) => [c.server.label.toLowerCase(), dupsOf(c, NUMBERED)]));
    const requestChannel = `${key}-request#/#`;
    t.diagnostic(`:${oldPrimary} replicating from :${dep.replica.port} ${replicatingAfter} ms after its restart (${restartAt - killAt} ms after the kill); ` +
      `${Object.entries(got).map(([k, v]) => `${k} ${v.received}/${AFTER_COUNT}${v.dups ? ` (+${v.dups} dups)` : ''}`).join(', ')}; ` +
      `duplicates since the kill: a ${dups.a.dups}, b ${dups.b.dups}, o ${dups.o.dups}; subscribers of ${requestChannel} on the old primary: ${await numsub(oldPrimary, requestChannel)}`);
    const wrong = Object.entries(got).filter(([k, v]) => !k.endsWith('→o') || !k.startsWith('O')).filter(([, v]) => v.received !== AFTER_COUNT || v.dups)
      .map(([k, v]) => `${k}: ${v.received}/${AFTER_COUNT} received, ${v.dups} duplicates`);
    assert.deepEqual(wrong, [], `after the old primary came back as a replica\n${eventLog(A, killMark[0], killAt)}\n${eventLog(B, killMark[1], killAt)}`);
    for (const x of ['a', 'b']) assert.equal(dups[x].dups, 0, `duplicate deliveries at ${x} since the kill: ${dups[x].detail.join(', ')}`);
  });

  it('no node exited or threw', () => {
    for (const node of [A, B, O]) {
      assert.ok(node.alive, `${node.label} exited: ${node.describeState()}`);
      assert.deepEqual(node.uncaught, [], `${node.label}: ${node.describeState()}`);
    }
  });
});

// -------------------------------------------------------------------------------------------------
// 2. Misconfigured Sentinel

describe('misconfigured Sentinel: the node starts, error ERR_SIO_REDIS names the problem, no crash', { timeout: 30000 }, () => {
  const key = uniqueKey();
  let W; // wrong primary name
  let U; // unreachable sentinels (plain settings object)
  let D; // a data node given as the sentinel
  let unreachable;

  before(async () => {
    unreachable = [await unusedPort(), await unusedPort()];
    const sentinels = dep.url.slice('redis+sentinel://'.length, dep.url.lastIndexOf('/'));
    // Whichever data node is alive (the primary, after the failover suite the former replica).
    const dataPort = (await dep.primaryPort()) || dep.replica.port;
    [W, U, D] = await startServers([
      oursNode(`redis+sentinel://${sentinels}/nosuchprimary`, 'W'),
      oursNode({ sentinels: unreachable.map((port) => ({ host: '127.0.0.1', port })), name: dep.name }, 'U'),
      oursNode(`redis+sentinel://127.0.0.1:${dataPort}/${dep.name}`, 'D'),
    ], { key, mesh: false });
  });

  const cases = [
    ['wrong primary name', () => W, () => [/nosuchprimary/]],
    ['unreachable sentinels', () => U, () => unreachable.map((port) => new RegExp(`127\\.0\\.0\\.1:${port}`))],
    ['a data node given as the sentinel', () => D, () => [/unknown command/i]],
  ];
  for (const [name, node, patterns] of cases) {
    it(`${name}: the adapter emits error ERR_SIO_REDIS naming it, never ready, local sockets served`, async (t) => {
      const server = node();
      const idx = await waitForAdapterEvent(server, 0, isError, `${server.label}: adapter 'error'`, 8000);
      const ev = server.adapterEvents[idx];
      t.diagnostic(`${server.label}: [${ev.error.code}] ${ev.error.message}`);
      assert.equal(ev.error.code, 'ERR_SIO_REDIS', eventLog(server));
      for (const pattern of patterns()) assert.match(ev.error.message, pattern, `the error does not name the problem`);
      const client = await server.connect('/');
      await server.command('emit', { event: 'local-only' });
      await client.waitForEvent('local-only', 1, 5000);
      assert.equal(findEvent(server, 0, (e) => e.event === 'ready' || e.event === 'readyPromise'), -1, `'ready' with a broken Sentinel\n${eventLog(server)}`);
      assert.ok(server.alive, server.describeState());
      assert.deepEqual(server.uncaught, [], server.describeState());
    });
  }
});

// -------------------------------------------------------------------------------------------------
// 3. Bad Sentinel settings (in-process: no connection is made)

describe('bad Sentinel settings: synchronous TypeError with code ERR_SIO_OPTION', () => {
  const { createAdapter } = require(OURS_MODULE);
  const { Server } = require('socket.io');
  const S = [{ host: '127.0.0.1', port: 1 }];
  /**
   * createAdapter(...args), then (URLs are parsed by the core when the adapter is created) an
   * io.adapter() with the factory: the error thrown by either, or null.
   */
  function setUp(args) {
    let factory;
    try {
      factory = createAdapter(...args);
    } catch (err) {
      return err;
    }
    if (typeof args[0] !== 'string') return null; // settings are checked by createAdapter itself
    try {
      new Server().adapter(factory);
    } catch (err) {
      return err;
    }
    return null;
  }
  const cases = [
    ['{ sentinels: [], name }', [{ sentinels: [], name: 'x' }], /sentinels/],
    ['{ sentinels } without name', [{ sentinels: S }], /name/],
    ["{ sentinels, name: '' }", [{ sentinels: S, name: '' }], /name/],
    ['{ sentinels: [], name } as pubClient with options', [{ sentinels: [], name: 'x' }, undefined, { key: 'k' }], /sentinels/],
    ['{ pubClient: { sentinels } } without name', [{ pubClient: { sentinels: S }, key: 'k' }], /name/],
    ['a sentinel port out of range', [{ sentinels: [{ host: '127.0.0.1', port: 70000 }], name: 'x' }], /port/],
    ['redis+sentinel:// URL without the primary name', ['redis+sentinel://127.0.0.1:1/'], /name/],
    ['redis+sentinel:// URL with a non-numeric db', ['redis+sentinel://127.0.0.1:1/x/abc'], /database/],
    ['redis+sentinel:// URL with an unknown parameter', ['redis+sentinel://127.0.0.1:1/x?foo=1'], /foo/],
  ];
  for (const [name, args, pattern] of cases) {
    it(name, () => {
      const err = setUp(args);
      assert.ok(err, 'did not throw');
      assert.ok(err instanceof TypeError || err.code === 'ERR_SIO_OPTION', `threw ${err.name}: ${err.message}`);
      assert.equal(err.code, 'ERR_SIO_OPTION', `code of: ${err.message}`);
      assert.match(err.message, pattern);
    });
  }

  it('valid Sentinel settings, URL and ioredis client do not throw (control)', () => {
    assert.equal(typeof createAdapter({ sentinels: S, name: 'x' }, undefined, {}), 'function');
    assert.equal(typeof createAdapter('redis+sentinel://127.0.0.1:1,127.0.0.1:2/x/3?sentinelPassword=p'), 'function');
    const Redis = require('ioredis');
    const client = new Redis({ sentinels: S, name: 'x', lazyConnect: true });
    const sub = client.duplicate();
    try {
      assert.equal(typeof createAdapter(client, sub), 'function');
    } finally {
      client.disconnect();
      sub.disconnect();
    }
  });

  it('createAdapter({ sentinels, name, key }) does not warn about `sentinels`/`name` as unknown options', () => {
    const warnings = [];
    const warn = console.warn;
    console.warn = (...args) => warnings.push(args.join(' '));
    try {
      createAdapter({ sentinels: S, name: 'x', key: 'k' });
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(warnings, []);
  });
});
