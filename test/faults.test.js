'use strict';
// Fault injection (issue 11): what a user of ours feels when Redis misbehaves under traffic, next
// to the official adapter (@socket.io/redis-adapter 8.3) under the SAME fault in the SAME Redis.
//
// Setup, per describe: a PRIVATE redis-server (helpers/private-redis.js; for the network faults
// behind an in-process TCP proxy, helpers/tcp-proxy.js, which every node then uses), and
//   - a mixed cluster on key K: A (ours), B (ours), C (official), one socket.io client on each
//     (a, b, c), namespace '/';
//   - the reference, on key K2: D (official) and E (official), clients d, e.
// The nodes are reused from fault to fault; before each fault every node's broadcasts must reach
// a fresh client on every other node of its cluster (cluster.js awaitMesh), else that cluster is
// started again (a fresh key) and the row says so.
//
// Per fault (one `it` each), under traffic: A, C and D each emit a numbered broadcast every
// BROADCAST_INTERVAL_MS (in the node process, helpers/fault-commands.js), B and E issue a
// fetchSockets every REQUEST_INTERVAL_MS (requestsTimeout REQ_TIMEOUT). Traffic starts LEAD_MS
// before the fault and stops TAIL_MS after "Redis answers again": the first moment a fresh
// connection, on the path the nodes use, gets PONG to PING and an answer to PUBLISH (for a restart:
// PONG after the -LOADING replies). Then:
//   - ready-after (ours A, B): time from "Redis answers again" to the adapter's 'ready' following
//     its last ERR_SIO_REDIS 'error' since the fault began ("-": no error, it stayed ready;
//     negative: 'ready' came before, e.g. subscribed again while Redis still answers -LOADING,
//     which allows SUBSCRIBE). Asserted: an 'error' is followed by a 'ready' no later than
//     READY_TARGET_MS after Redis answers again (issue 11 target: 1 s).
//   - lost: numbered broadcasts of the traffic (whole window) that the client on the other node
//     never got: A→b, A→c (ours publishing), C→a, C→b (official publishing, ours receiving), and
//     D→e for the reference (compare C→a with D→e: same publisher kind). Reported, not asserted.
//   - dups: copies beyond the first of any numbered broadcast, at any time, in any client of the
//     cluster (a, b, c for ours; d, e for the reference). Asserted 0 for ours.
//   - overran: requests of B settled later than requestsTimeout + REQ_SLACK, or never. Asserted 0
//     (a rejection in time is fine).
//   - after recovery (once the nodes' request channels are subscribed again on Redis, at most
//     SETTLE_WAIT_MS): A, B, C and D each emit AFTER_COUNT numbered broadcasts; every one must
//     reach every client on the other nodes exactly once in every direction involving ours
//     (A→b, A→c, B→a, B→c, C→a, C→b), and a fetchSockets from B must return a, b and c.
// Nothing is asserted about the official nodes; their figures are printed next to ours.
//
// One line per fault is printed (t.diagnostic) and the whole table at the end; with env
// FAULTS_REPORT=path the rows are written there as JSON (after every fault). FAULTS=long adds
// CLIENT PAUSE 5000 ALL / WRITE and SIGSTOP 10 s. FAULTS_OFFICIAL_CLIENT=ioredis gives the
// official nodes ioredis clients (default node-redis). FAULTS_LOADING_KEYS: size of the dataset
// of the restart fault (default 4,000,000 keys, ~2 s of -LOADING here). Run (from the repository root):
//   node --test test/faults.test.js
//   node --test --test-name-pattern='PAUSE 1500 ALL' test/faults.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { uniqueKey, startServers, awaitMesh, stopAll, redisClient } = require('./helpers/cluster');
const { privateRedis, stopAllRedis, oursNodeWith } = require('./helpers/private-redis');
const { command, redisCommand, sleep, pollUntil } = require('./helpers/redis-process');
const { tcpProxy, closeAllProxies } = require('./helpers/tcp-proxy');
const { isRedisError, isReady } = require('./helpers/adapter-events');
const { attachTally, streamStats, missing, dupsOf } = require('./helpers/tally');

const LONG = process.env.FAULTS === 'long';
const REPORT = process.env.FAULTS_REPORT || null;
const OFFICIAL_CLIENT = process.env.FAULTS_OFFICIAL_CLIENT || 'node-redis';
const FAULT_COMMANDS = path.join(__dirname, 'helpers', 'fault-commands.js');

/** requestsTimeout of every node. */
const REQ_TIMEOUT = 1000;
/** A request settled later than REQ_TIMEOUT + REQ_SLACK (or never) "overran". */
const REQ_SLACK = 500;
/** Issue 11: 'ready' less than 1 s after Redis answers again. */
const READY_TARGET_MS = 1000;
const BROADCAST_INTERVAL_MS = 10;
const REQUEST_INTERVAL_MS = 250;
/** Traffic starts this long before the fault... */
const LEAD_MS = 300;
/** ...and stops this long after Redis answers again. */
const TAIL_MS = 1000;
/** Bound of the waits after the traffic (a 'ready', the resubscription on Redis). */
const SETTLE_WAIT_MS = 4000;
const AFTER_COUNT = 20;
const AFTER_WAIT_MS = 3000;
/** Keys of the dataset that makes a restarted Redis answer -LOADING for a while (~0.5 µs each). */
const LOADING_KEYS = Number(process.env.FAULTS_LOADING_KEYS || 4000000);
/** The restart fault is only meaningful when -LOADING lasted at least this long. */
const MIN_LOADING_MS = 300;

const rows = [];
let faultSeq = 0;

const oursNode = oursNodeWith({ commandModules: FAULT_COMMANDS, requestsTimeout: REQ_TIMEOUT });
const officialNode = (redisUrl, label) => ({
  label,
  adapter: 'official',
  client: OFFICIAL_CLIENT,
  redisUrl,
  namespaces: ['/'],
  requestsTimeout: REQ_TIMEOUT,
  commandModules: [FAULT_COMMANDS],
});

const firstLine = (s) => String(s).split('\n')[0];

/** Which build of ours a node loads (the addon may be rebuilt between runs): file, mtime, sha256 prefix. */
function addonInfo() {
  const dir = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
  try {
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.node'));
    if (!file) return null;
    const full = path.join(dir, file);
    const hash = require('node:crypto').createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 12);
    return { file, mtime: fs.statSync(full).mtime.toISOString(), sha256: hash };
  } catch {
    return null;
  }
}

// -------------------------------------------------------------------------------------------------
// A bench: the mixed cluster (A, B ours; C official) and the reference pair (D, E official)

class Bench {
  constructor(name) {
    this.name = name;
    this.redisUrl = null; // what the nodes use
    this.adminPort = null; // the redis-server itself, for the test's own commands
    this.probePort = null; // the path the nodes use (the proxy, or the redis-server)
    this.main = null; // { key, nodes: { A, B, C }, clients: { a, b, c } }
    this.ref = null; // { key, nodes: { D, E }, clients: { d, e } }
  }

  async startGroup(specs) {
    const key = uniqueKey();
    const list = await startServers(specs, { key });
    const nodes = Object.fromEntries(list.map((n) => [n.label, n]));
    const clients = {};
    for (const n of list) clients[n.label.toLowerCase()] = attachTally(await n.connect('/'));
    return { key, nodes, clients, addon: addonInfo() };
  }

  async stopGroup(group) {
    for (const c of Object.values(group.clients)) c.close();
    await Promise.all(Object.values(group.nodes).map((n) => n.stop(2000)));
  }

  /**
   * Checks that Redis answers, reuses healthy groups, (re)starts the others; returns what was
   * (re)started and why.
   */
  async ensure() {
    // Redis first: if an earlier fault left it down (its cleanup could not bring it back), every
    // mesh check below would fail and every group be restarted on a dead Redis, and the failure
    // would read as a node problem. Say what is wrong instead. Polled a little: a Redis that was just
    // (re)started may still answer -LOADING.
    let last = null;
    await pollUntil(async () => {
      last = await command(this.adminPort, ['PING'], 2000).catch((err) => err);
      return last === 'PONG';
    }, 10000, () => `Redis on ${this.adminPort} (${this.name}) to answer PING before the nodes are checked ` +
      `(last reply: ${last && last.message ? last.message : last}); an earlier fault left it down or unusable`, 100);
    const restarted = [];
    for (const name of ['main', 'ref']) {
      const group = this[name];
      if (!group) continue;
      try {
        const nodes = Object.values(group.nodes);
        for (const n of nodes) if (!n.alive) throw new Error(`${n.label} exited: ${n.describeState()}`);
        await awaitMesh(nodes, ['/'], 3000);
      } catch (err) {
        restarted.push(`${Object.keys(group.nodes).join(',')} restarted (${firstLine(err.message).slice(0, 200)})`);
        await this.stopGroup(group);
        this[name] = null;
      }
    }
    if (!this.main) {
      this.main = await this.startGroup([oursNode(this.redisUrl, 'A'), oursNode(this.redisUrl, 'B'), officialNode(this.redisUrl, 'C')]);
    }
    if (!this.ref) this.ref = await this.startGroup([officialNode(this.redisUrl, 'D'), officialNode(this.redisUrl, 'E')]);
    return restarted;
  }
}

// -------------------------------------------------------------------------------------------------
// Redis probes

/**
 * Resolves with Date.now() of the first moment a fresh connection to `port` gets PONG to PING and
 * then an answer to PUBLISH (each attempt waits for its reply: a paused or stopped Redis answers
 * when it resumes). Rejects after `deadlineMs`.
 */
async function redisAnswersAgain(port, deadlineMs = 30000) {
  const deadline = Date.now() + deadlineMs;
  let last = null;
  for (;;) {
    const left = Math.max(100, deadline - Date.now());
    try {
      const pong = await command(port, ['PING'], left);
      if (pong === 'PONG') {
        const n = await command(port, ['PUBLISH', '__faults_probe', 'x'], left);
        if (typeof n === 'number') return Date.now();
        last = n;
      } else {
        last = pong;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Redis on ${port} did not answer PING + PUBLISH within ${deadlineMs} ms (last: ${last && last.message ? last.message : last})`);
    await sleep(10);
  }
}

/** [count, count2] of subscribers of the request channels of `keys` (PUBSUB NUMSUB). */
async function numsub(port, keys) {
  const reply = await redisCommand(port, ['PUBSUB', 'NUMSUB', ...keys.map((k) => `${k}-request#/#`)], 2000);
  return keys.map((_, i) => Number(reply[2 * i + 1]));
}

/**
 * From now on, polls PUBSUB NUMSUB (on the redis-server itself) until the request channels of the
 * mixed cluster and of the reference have all their subscribers (3 and 2) again; resolves with
 * { at, counts } (at: Date.now() then, or null after TAIL_MS + SETTLE_WAIT_MS).
 */
async function watchResubscription(bench) {
  const deadline = Date.now() + TAIL_MS + SETTLE_WAIT_MS;
  let counts = [];
  while (Date.now() < deadline) {
    try {
      counts = await numsub(bench.adminPort, [bench.main.key, bench.ref.key]);
      if (counts[0] >= 3 && counts[1] >= 2) return { at: Date.now(), counts };
    } catch (err) {
      counts = [err.message];
    }
    await sleep(20);
  }
  return { at: null, counts };
}

// -------------------------------------------------------------------------------------------------
// Measuring one fault

/** Where the adapter of `node` stands since adapterEvents index `mark`. */
function readyState(node, mark) {
  const evs = node.adapterEvents.slice(mark).filter((e) => e.nsp === '/');
  const errors = evs.filter(isRedisError);
  let last = -1;
  evs.forEach((e, i) => {
    if (isRedisError(e)) last = i;
  });
  if (last < 0) return { errored: false, errors: 0, readyAt: null, firstError: null };
  const ready = evs.slice(last + 1).find(isReady);
  return {
    errored: true,
    errors: errors.length,
    firstError: `${errors[0].error.code}: ${errors[0].error.message}`,
    firstErrorAt: errors[0].at,
    lastErrorAt: evs[last].at,
    readyAt: ready ? ready.at : null,
  };
}

async function waitReady(node, mark) {
  const done = () => {
    const s = readyState(node, mark);
    return !s.errored || s.readyAt !== null;
  };
  try {
    await node.waitForMessages('adapterEvent', done, SETTLE_WAIT_MS, "'ready' after the last 'error'");
  } catch {
    // reported from the state
  }
  return readyState(node, mark);
}

/** Stops the requests of `tag` on `node`, waits until they settled (bounded), summarises them. */
async function settledRequests(node, tag) {
  let records;
  try {
    records = await node.command('requestsStop', { tag });
    const lastIssued = Math.max(0, ...records.map((r) => r.issuedAt));
    const deadline = lastIssued + REQ_TIMEOUT + REQ_SLACK + 300;
    while (records.some((r) => r.ms === null) && Date.now() < deadline) {
      await sleep(100);
      records = await node.command('requestsReport', { tag });
    }
  } catch (err) {
    return { issued: 0, ok: 0, rejected: 0, overran: 0, maxMs: null, errors: [`${node.label}: ${err.message}`], late: [] };
  }
  const bound = REQ_TIMEOUT + REQ_SLACK;
  const late = records.filter((r) => r.ms === null || r.ms > bound);
  const errors = [...new Set(records.filter((r) => r.ok === false).map((r) => `${r.error.code || ''} ${r.error.message}`.trim()))];
  return {
    issued: records.length,
    ok: records.filter((r) => r.ok === true).length,
    rejected: records.filter((r) => r.ok === false).length,
    overran: late.length,
    maxMs: records.some((r) => r.ms !== null) ? Math.round(Math.max(...records.filter((r) => r.ms !== null).map((r) => r.ms))) : null,
    errors: errors.slice(0, 4),
    late: late.slice(0, 5).map((r) => `issued ${new Date(r.issuedAt).toISOString().slice(11, 23)}: ${r.ms === null ? 'never settled' : `settled after ${Math.round(r.ms)} ms`}`),
  };
}

/** ms from Redis answering again to 'ready' (negative: ready before), '-' (no error) or 'never'. */
function readyCell(s, answersAt) {
  if (!s.errored) return '-';
  if (s.readyAt === null) return 'never';
  return String(s.readyAt - answersAt);
}

function tableHeader() {
  return 'fault                              | ready-after ms A/B | lost A→b A→c C→a C→b (sent A,C) | lost official D→e (sent) | dups ours/official | overran ours (official) | after ours';
}

function tableLine(r) {
  const pad = (s, n) => String(s).padEnd(n);
  const l = r.lost;
  return [
    pad(r.fault, 34),
    pad(`${r.readyAfterMs.A}/${r.readyAfterMs.B}`, 18),
    pad(`${l['A→b']} ${l['A→c']} ${l['C→a']} ${l['C→b']} (${r.sent.A},${r.sent.C})`, 32),
    pad(`${l['D→e']} (${r.sent.D})`, 24),
    pad(`${r.dupsOurs}/${r.dupsOfficial}`, 18),
    pad(`${r.requests.ours.overran} (${r.requests.official.overran})`, 23),
    r.afterOk ? 'ok' : 'FAILED',
  ].join(' | ');
}

function writeReport() {
  if (!REPORT) return;
  const settings = { requestsTimeout: REQ_TIMEOUT, requestSlack: REQ_SLACK, readyTargetMs: READY_TARGET_MS, broadcastIntervalMs: BROADCAST_INTERVAL_MS,
    requestIntervalMs: REQUEST_INTERVAL_MS, leadMs: LEAD_MS, tailMs: TAIL_MS, afterCount: AFTER_COUNT, officialClient: OFFICIAL_CLIENT };
  fs.writeFileSync(REPORT, `${JSON.stringify({ generatedAt: new Date().toISOString(), long: LONG, settings, rows }, null, 2)}\n`);
}

/**
 * Runs `fault` ({ name, setup?, inject, cleanup? }) on `bench` under traffic and asserts what
 * users of ours must get. `inject()` performs the fault, ends it and resolves with { endedAt,
 * answersAt?, notes? } (answersAt defaults to redisAnswersAgain(bench.probePort) from then on).
 */
async function runFault(t, bench, fault) {
  const row = { fault: fault.name, via: bench.name, notes: [] };
  try {
    if (fault.setup) row.notes.push(await fault.setup());
    row.restarted = await bench.ensure();
    row.addon = bench.main.addon;
    for (const r of row.restarted) t.diagnostic(`before this fault: ${r}`);
    const { A, B, C } = bench.main.nodes;
    const { D, E } = bench.ref.nodes;
    const { a, b, c } = bench.main.clients;
    const { d, e } = bench.ref.clients;
    const tag = `f${++faultSeq}`;
    const ev = (x) => `${tag}:${x}`;
    const marks = { A: A.adapterEvents.length, B: B.adapterEvents.length };

    // ---- traffic, fault, traffic until TAIL_MS after Redis answers again
    const emitters = [A, C, D];
    const requesters = [B, E];
    await Promise.all(emitters.map((n) => n.command('trafficStart', { event: ev(n.label), intervalMs: BROADCAST_INTERVAL_MS })));
    await Promise.all(requesters.map((n) => n.command('requestsStart', { tag, intervalMs: REQUEST_INTERVAL_MS })));
    let trafficRunning = true;
    const sent = {};
    const stopTraffic = async () => {
      if (!trafficRunning) return;
      trafficRunning = false;
      await Promise.all(emitters.map(async (n) => {
        try {
          const res = await n.command('trafficStop', { event: ev(n.label) });
          sent[n.label] = res.sentAt.length;
          if (res.emitErrors.length) row.notes.push(`${n.label}: ${res.emitErrors.length} emits threw (${res.emitErrors[0].message})`);
        } catch (err) {
          sent[n.label] = 0;
          row.notes.push(`${n.label}: trafficStop failed: ${err.message}`);
        }
      }));
    };

    let injected;
    let answersAt;
    let faultAt;
    let resubscription = null;
    try {
      await sleep(LEAD_MS);
      faultAt = Date.now();
      injected = await fault.inject();
      answersAt = injected.answersAt || (await redisAnswersAgain(bench.probePort));
      resubscription = watchResubscription(bench);
      if (injected.notes) row.notes.push(injected.notes);
      await sleep(Math.max(0, answersAt + TAIL_MS - Date.now()));
    } catch (err) {
      // The fault could not be run as planned: leave no request timer behind in the nodes.
      await Promise.all(requesters.map((n) => n.command('requestsStop', { tag }).catch(() => {})));
      throw err;
    } finally {
      await stopTraffic();
    }
    Object.assign(row, { faultAt, endedAt: injected.endedAt, answersAt });
    row.faultMs = injected.endedAt - faultAt;
    row.answersAfterEndMs = answersAt - injected.endedAt;

    // ---- ready, requests, resubscription (bounded, in parallel)
    const [readyA, readyB, reqOurs, reqOfficial, resub] = await Promise.all([
      waitReady(A, marks.A),
      waitReady(B, marks.B),
      settledRequests(B, tag),
      settledRequests(E, tag),
      resubscription,
    ]);
    row.ready = { A: readyA, B: readyB };
    row.readyAfterMs = { A: readyCell(readyA, answersAt), B: readyCell(readyB, answersAt) };
    row.requests = { ours: reqOurs, official: reqOfficial };
    row.resubscribedAfterMs = resub.at === null
      ? `not within ${TAIL_MS + SETTLE_WAIT_MS} ms (request-channel subscribers ${JSON.stringify(resub.counts)} of 3, 2)`
      : resub.at - answersAt;

    // ---- after recovery: AFTER_COUNT numbered broadcasts from A, B, C and D
    const afterRoutes = { A: [b, c], B: [a, c], C: [a, b], D: [e] };
    const afterNodes = { A, B, C, D };
    await Promise.all(Object.keys(afterRoutes).map((x) =>
      afterNodes[x].command('emitNumbered', { event: ev(`after-${x}`), count: AFTER_COUNT, intervalMs: 5 }).catch((err) => row.notes.push(`${x}: emitNumbered failed: ${err.message}`))));
    const complete = (client, event) => () => streamStats(client, event, AFTER_COUNT).received >= AFTER_COUNT;
    await Promise.all(Object.entries(afterRoutes).flatMap(([x, rs]) =>
      rs.map((r) => r.waitFor(complete(r, ev(`after-${x}`)), AFTER_WAIT_MS, `after-${x}`).catch(() => {}))));
    // Ordering barrier, best effort: late copies of anything sent before would be in by now.
    await Promise.all(Object.entries(afterRoutes).map(([x, rs]) => afterNodes[x].flush(rs, 2000).catch(() => {})));
    const clientName = (cl) => cl.server.label.toLowerCase();
    row.after = {};
    for (const [x, rs] of Object.entries(afterRoutes)) {
      for (const r of rs) row.after[`${x}→${clientName(r)}`] = streamStats(r, ev(`after-${x}`), AFTER_COUNT);
    }
    const oursAfter = ['A→b', 'A→c', 'B→a', 'B→c', 'C→a', 'C→b'];
    row.afterOk = oursAfter.every((k) => row.after[k].received === AFTER_COUNT && row.after[k].dups === 0);
    const [afterReq, afterReqOfficial] = await Promise.all([
      B.command('fetchSockets', {}, REQ_TIMEOUT + REQ_SLACK + 2000).catch((err) => ({ ok: false, error: { message: err.message } })),
      E.command('fetchSockets', {}, REQ_TIMEOUT + REQ_SLACK + 2000).catch((err) => ({ ok: false, error: { message: err.message } })),
    ]);
    const wantIds = [a, b, c].map((x) => x.serverSocketId).sort();
    const gotIds = afterReq.ok ? afterReq.value.map((s) => s.id).sort() : null;
    row.afterRequest = {
      ours: afterReq.ok ? (JSON.stringify(gotIds) === JSON.stringify(wantIds) ? 'ok' : `wrong sockets ${JSON.stringify(gotIds)}`) : `rejected: ${afterReq.error.message}`,
      official: afterReqOfficial.ok ? `ok (${afterReqOfficial.value.length} sockets)` : `rejected: ${afterReqOfficial.error.message}`,
    };

    // ---- the window's figures
    row.sent = sent;
    const window = { 'A→b': [b, 'A'], 'A→c': [c, 'A'], 'C→a': [a, 'C'], 'C→b': [b, 'C'], 'D→e': [e, 'D'] };
    row.window = {};
    row.lost = {};
    for (const [k, [client, x]] of Object.entries(window)) {
      row.window[k] = streamStats(client, ev(x), sent[x]);
      row.lost[k] = row.window[k].lost;
    }
    const dupsOurs = [a, b, c].map((cl) => ({ cl, ...dupsOf(cl, `${tag}:`) }));
    const dupsOfficial = [d, e].map((cl) => ({ cl, ...dupsOf(cl, `${tag}:`) }));
    row.dupsOurs = dupsOurs.reduce((s, x) => s + x.dups, 0);
    row.dupsOfficial = dupsOfficial.reduce((s, x) => s + x.dups, 0);
    row.dupsDetail = [...dupsOurs, ...dupsOfficial].filter((x) => x.dups).map((x) => `${clientName(x.cl)}: ${x.detail.join(', ')}`);

    rows.push(row);
    writeReport();
    t.diagnostic(tableLine(row));
    t.diagnostic(`Redis answered ${row.answersAfterEndMs} ms after the fault ended (fault ${row.faultMs} ms); resubscribed: ${row.resubscribedAfterMs}; ` +
      `requests ours ${JSON.stringify(reqOurs)}; official ${JSON.stringify(reqOfficial)}; after-request ${JSON.stringify(row.afterRequest)}` +
      `${row.notes.length ? `; notes: ${row.notes.join('; ')}` : ''}`);

    // ---- what users of ours must get
    const failures = [];
    for (const [x, s] of [['A', readyA], ['B', readyB]]) {
      if (!s.errored) continue;
      if (s.readyAt === null) {
        failures.push(`${x}: adapter 'error' (${s.errors}x, first: ${s.firstError}) and no 'ready' after the last one ` +
          `within ${TAIL_MS + SETTLE_WAIT_MS} ms of Redis answering again`);
      } else if (s.readyAt - answersAt > READY_TARGET_MS) {
        failures.push(`${x}: 'ready' ${s.readyAt - answersAt} ms after Redis answered again (target < ${READY_TARGET_MS} ms)`);
      }
    }
    if (row.dupsOurs > 0) failures.push(`${row.dupsOurs} duplicate deliveries in the mixed cluster: ${row.dupsDetail.join('; ')}`);
    if (reqOurs.overran > 0) {
      failures.push(`${reqOurs.overran} of B's ${reqOurs.issued} requests settled later than requestsTimeout ${REQ_TIMEOUT} + ${REQ_SLACK} ms: ${reqOurs.late.join('; ')}`);
    }
    for (const k of oursAfter) {
      const s = row.after[k];
      if (s.received !== AFTER_COUNT || s.dups !== 0) failures.push(`after recovery ${k}: ${s.received}/${AFTER_COUNT} received, ${s.dups} duplicates`);
    }
    if (row.afterRequest.ours !== 'ok') failures.push(`after recovery, B's fetchSockets: ${row.afterRequest.ours}`);
    for (const n of [A, B]) {
      if (!n.alive) failures.push(`${n.label} exited: ${n.describeState()}`);
      else if (n.uncaught.length) failures.push(`${n.label}: ${n.describeState()}`);
    }
    if (failures.length) {
      const log = (n, mark) => n.adapterEvents.slice(mark).map((x) => `${x.at - answersAt} ms ${x.event}${x.error ? ` [${x.error.code}] ${x.error.message}` : ''}`).join('; ') || 'none';
      assert.fail(`${fault.name}: ${failures.length} problem(s) for users of ours:\n  - ${failures.join('\n  - ')}\n` +
        `${tableHeader()}\n${tableLine(row)}\n` +
        `adapter events (ms relative to Redis answering again): A: ${log(A, marks.A)}\n  B: ${log(B, marks.B)}\n` +
        `resubscribed: ${row.resubscribedAfterMs}; official reference: lost D→e ${row.lost['D→e']}/${sent.D}, dups ${row.dupsOfficial}, ` +
        `requests ${JSON.stringify(reqOfficial)}`);
    }
  } finally {
    if (fault.cleanup) {
      try {
        await fault.cleanup();
      } catch (err) {
        t.diagnostic(`cleanup of ${fault.name} failed: ${err.message}`);
      }
    }
  }
}

// -------------------------------------------------------------------------------------------------
// Faults on the redis-server itself

function clientPause(redis, ms, mode) {
  return {
    name: `CLIENT PAUSE ${ms} ${mode}`,
    async inject() {
      const at = Date.now();
      await redisCommand(redis.port, ['CLIENT', 'PAUSE', String(ms), mode]);
      // Ends by itself; redisAnswersAgain (PING and PUBLISH block until then) dates it.
      return { endedAt: at + ms };
    },
  };
}

function sigstop(redis, ms) {
  return {
    name: `SIGSTOP ${ms / 1000} s, SIGCONT`,
    async inject() {
      redis.child.kill('SIGSTOP');
      try {
        await sleep(ms);
      } finally {
        redis.child.kill('SIGCONT');
      }
      return { endedAt: Date.now() };
    },
  };
}

function clientKill(redis, type) {
  return {
    name: `CLIENT KILL TYPE ${type}`,
    async inject() {
      const killed = await redisCommand(redis.port, ['CLIENT', 'KILL', 'TYPE', type]);
      if (!(killed > 0)) throw new Error(`CLIENT KILL TYPE ${type} killed ${killed} connections`);
      return { endedAt: Date.now(), notes: `${killed} ${type} connections killed` };
    },
  };
}

function busyScript(redis, holdMs) {
  let scriptRunning = false;
  let threshold = null; // busy-reply-threshold before setup(), restored by cleanup()
  return {
    name: `EVAL busy ${holdMs / 1000} s, SCRIPT KILL`,
    async setup() {
      // Whatever this Redis had (its default, or what someone configured), not an assumed 5000.
      threshold = (await redisCommand(redis.port, ['CONFIG', 'GET', 'busy-reply-threshold']))[1];
      if (threshold === undefined) throw new Error('CONFIG GET busy-reply-threshold returned nothing (Redis older than 7?)');
      await redisCommand(redis.port, ['CONFIG', 'SET', 'busy-reply-threshold', '200']);
      return `busy-reply-threshold 200 (was ${threshold})`;
    },
    async inject() {
      const startedAt = Date.now();
      scriptRunning = true;
      const evalReply = command(redis.port, ['EVAL', 'while true do end', '0'], 60000).catch((err) => err);
      let busyAt = null;
      try {
        for (let i = 0; i < 200 && busyAt === null; i++) {
          const r = await command(redis.port, ['PING'], 2000).catch((err) => err);
          if (r instanceof Error && /BUSY/.test(r.message)) busyAt = Date.now();
          else await sleep(20);
        }
        if (busyAt === null) throw new Error('Redis never answered -BUSY during the EVAL loop');
        await sleep(Math.max(0, startedAt + holdMs - Date.now()));
      } finally {
        await redisCommand(redis.port, ['SCRIPT', 'KILL'], 5000).catch(() => {});
        scriptRunning = false;
      }
      const endedAt = Date.now();
      const ended = await evalReply;
      return { endedAt, notes: `-BUSY from ${busyAt - startedAt} ms after the EVAL; the EVAL ended with: ${ended && ended.message}` };
    },
    async cleanup() {
      if (scriptRunning) await redisCommand(redis.port, ['SCRIPT', 'KILL'], 5000).catch(() => {});
      if (threshold !== null) await redisCommand(redis.port, ['CONFIG', 'SET', 'busy-reply-threshold', String(threshold)]);
    },
  };
}

function maxclients(redis, holdMs) {
  let admin = null;
  let original = null;
  return {
    name: `maxclients reached ${holdMs / 1000} s, raised`,
    async inject() {
      // A connection opened before the limit: the only way to talk to Redis while it refuses.
      admin = await redisClient(redis.url);
      original = (await admin.sendCommand(['CONFIG', 'GET', 'maxclients']))[1];
      const connected = Number(/connected_clients:(\d+)/.exec(await admin.sendCommand(['INFO', 'clients']))[1]);
      const pubsub = String(await admin.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub'])).trim().split('\n').filter(Boolean).length;
      // Once the pubsub connections are killed, Redis is exactly full: every reconnect is refused.
      const limit = Math.max(1, connected - pubsub);
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(limit)]);
      let killed;
      let refused;
      try {
        killed = await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
        refused = await command(redis.port, ['PING'], 2000).catch((err) => err);
        await sleep(holdMs);
      } finally {
        await admin.sendCommand(['CONFIG', 'SET', 'maxclients', original]);
      }
      const endedAt = Date.now();
      if (!(refused instanceof Error) || !/max/i.test(refused.message)) {
        throw new Error(`a new connection was not refused under maxclients ${limit}: ${refused && refused.message ? refused.message : refused}`);
      }
      return { endedAt, notes: `maxclients ${limit} (${connected} connected, ${pubsub} pubsub), ${killed} pubsub connections killed, new connections refused (${refused.message})` };
    },
    async cleanup() {
      if (admin && admin.isOpen) {
        if (original !== null) await admin.sendCommand(['CONFIG', 'SET', 'maxclients', original]).catch(() => {});
        await admin.close();
      }
    },
  };
}

function restartLoading(redis) {
  return {
    name: 'restart with -LOADING',
    async setup() {
      const start = Date.now();
      await redisCommand(redis.port, ['DEBUG', 'POPULATE', String(LOADING_KEYS), 'faults:key'], 120000);
      await redisCommand(redis.port, ['SAVE'], 120000);
      return `DEBUG POPULATE ${LOADING_KEYS} + SAVE took ${Date.now() - start} ms`;
    },
    async inject() {
      await redis.kill('SIGKILL');
      const restartAt = Date.now();
      const started = redis.start(60000);
      // Watch PING on fresh connections: refused, then -LOADING, then PONG.
      let loadingAt = null;
      let loadingReplies = 0;
      let pongAt = null;
      while (pongAt === null && Date.now() - restartAt < 60000) {
        const r = await command(redis.port, ['PING'], 2000).catch((err) => err);
        if (r === 'PONG') pongAt = Date.now();
        else {
          if (r instanceof Error && /LOADING/.test(r.message)) {
            loadingReplies++;
            if (loadingAt === null) loadingAt = Date.now();
          }
          await sleep(10);
        }
      }
      await started;
      if (pongAt === null) throw new Error('the restarted Redis did not answer PONG within 60 s');
      const loadingMs = loadingAt === null ? 0 : pongAt - loadingAt;
      if (loadingMs < MIN_LOADING_MS) {
        throw new Error(`-LOADING lasted ${loadingMs} ms (${loadingReplies} replies; need ${MIN_LOADING_MS} ms): raise FAULTS_LOADING_KEYS (now ${LOADING_KEYS})`);
      }
      return { endedAt: restartAt, answersAt: pongAt, notes: `-LOADING for ${loadingMs} ms (${loadingReplies} PINGs), PONG ${pongAt - restartAt} ms after the restart` };
    },
    async cleanup() {
      // inject() may have failed after the kill (the restart did not come up in time, or the
      // process exited at start): Redis would then stay down for every later fault. Start it again
      // (it loads the dump, hence the long bound) and wait until it answers past -LOADING, then drop
      // the dataset.
      if (!redis.running) await redis.start(60000);
      await redisAnswersAgain(redis.port, 60000);
      await redisCommand(redis.port, ['FLUSHALL', 'ASYNC'], 10000).catch(() => {});
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Faults of the network (helpers/tcp-proxy.js in front of Redis, every node connects through it)

function blackhole(proxy, ms) {
  return {
    name: `proxy blackhole ${ms / 1000} s`,
    async inject() {
      proxy.blackhole();
      try {
        await sleep(ms);
      } finally {
        proxy.restore();
      }
      return { endedAt: Date.now() };
    },
  };
}

function delay(proxy, latencyMs, ms) {
  return {
    name: `proxy delay ${latencyMs} ms for ${ms / 1000} s`,
    async inject() {
      proxy.delay(latencyMs);
      try {
        await sleep(ms);
      } finally {
        proxy.delay(0);
      }
      return { endedAt: Date.now() };
    },
  };
}

function cut(proxy) {
  return {
    name: 'proxy cut',
    async inject() {
      const n = proxy.cut();
      if (n === 0) throw new Error('the proxy had no connection to cut');
      return { endedAt: Date.now(), notes: `${n} connections cut` };
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Emitters under faults: the npm Emitter of ours (the @socket.io/redis-emitter API on the Rust
// core) and @socket.io/redis-emitter 5.1 (on a node-redis client) beside it, both in the test
// process, on the mixed cluster's key. Each emits a numbered event every EMIT_INTERVAL_MS to the
// whole namespace (clients a and b on ours nodes, c on the official node) from LEAD_MS before the
// fault until TAIL_MS after Redis answers again. Asserted for ours' Emitter: no event received
// twice by a, b or c at any time; every event emitted from EMITTER_GRACE_MS after Redis answers
// again and A and B are ready and resubscribed ("recovered") reaches a, b and c exactly once;
// afterwards AFTER_COUNT more reach a, b and c exactly once. (The grace: after CLIENT KILL, an
// event published in the few ms before the emitter sees its connection closed is unconfirmed and,
// by design, never sent again, although a fresh connection already gets answers; such losses are
// listed with their times.) Also asserted: no event of the official emitter received twice
// by a or b (ours nodes). Reported: events lost during the fault (both emitters), everything else
// of the official emitter.

const { Emitter: OursEmitter } = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm'));
const { Emitter: OfficialEmitter } = require('@socket.io/redis-emitter');

const EMIT_INTERVAL_MS = 10;
/** See above: from this long after recovery on, no event of ours' Emitter may be lost. */
const EMITTER_GRACE_MS = 100;
/** The stream goes on at least this long after recovery (+ grace). */
const EMITTER_AFTER_MS = 500;
const emitterRows = [];

/** `emit(marker)` every 100 ms until every client of `clients` got `marker` (bounded). */
async function reachAll(emit, clients, marker, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (clients.some((c) => c.received(marker).length === 0)) {
    if (Date.now() > deadline) {
      throw new Error(`"${marker}" re-sent every 100 ms did not reach ${clients.filter((c) => c.received(marker).length === 0).map((c) => c.server.label).join(', ')} within ${timeoutMs} ms`);
    }
    emit(marker);
    await Promise.race([Promise.all(clients.map((c) => c.waitForEvent(marker, 1, 100))).catch(() => {}), sleep(100)]);
  }
}

const fmtMs = (ms) => `${ms >= 0 ? '+' : ''}${ms} ms`;

function emitterTableLine(r) {
  const l = (k) => `${r.lost[k].a} ${r.lost[k].b} ${r.lost[k].c}`;
  const af = (k) => ['a', 'b', 'c'].map((x) => r.after[k][x].received).join(' ');
  return [
    r.fault.padEnd(34),
    `ready ${r.readyAfterMs.A}/${r.readyAfterMs.B}`.padEnd(18),
    `lost ours a b c ${l('ours')} (sent ${r.sent.ours})`.padEnd(34),
    `lost official a b c ${l('official')} (sent ${r.sent.official})`.padEnd(38),
    `dups ${r.dups.ours}/${r.dups.official}`.padEnd(10),
    `after-recovery stream ours lost ${r.recoveredStream.lost} of ${r.recoveredStream.count}`.padEnd(42),
    `after ours ${af('ours')} official ${af('official')} (of ${AFTER_COUNT})`,
  ].join(' | ');
}

/**
 * Runs `fault` (see runFault) with both emitters emitting (see above) and asserts what users of
 * ours' Emitter must get. `redisUrl`: where the emitters connect (the redis-server).
 */
async function runEmitterFault(t, bench, redisUrl, fault) {
  const row = { fault: `Emitter: ${fault.name}`, notes: [] };
  row.restarted = await bench.ensure();
  for (const r of row.restarted) t.diagnostic(`before this fault: ${r}`);
  const { A, B } = bench.main.nodes;
  const { a, b, c } = bench.main.clients;
  const receivers = { a, b, c };
  const key = bench.main.key;
  const tag = `f${++faultSeq}`;
  const ev = (x) => `${tag}:${x}`;
  const marks = { A: A.adapterEvents.length, B: B.adapterEvents.length };

  const ours = new OursEmitter(redisUrl, { key });
  const officialClient = await redisClient(redisUrl);
  const officialErrors = [];
  // redis-emitter calls redisClient.publish() and drops the promise: catch what it would leave unhandled.
  const official = new OfficialEmitter({ publish: (ch, msg) => officialClient.publish(ch, msg).catch((err) => officialErrors.push(err.message)) }, { key });
  const emitters = { ours, official };
  const sentAt = { ours: [], official: [] };
  const thrown = { ours: [], official: [] };
  try {
    for (const [name, em] of Object.entries(emitters)) await reachAll((m) => em.emit(m), Object.values(receivers), ev(`warm-${name}`));

    // ---- the stream, the fault, the stream until TAIL_MS after Redis answers again and at least
    // EMITTER_AFTER_MS after recovery
    const timer = setInterval(() => {
      for (const [name, em] of Object.entries(emitters)) {
        const n = sentAt[name].length + 1;
        sentAt[name].push(Date.now());
        try {
          em.emit(ev(`em-${name}`), n);
        } catch (err) {
          thrown[name].push(`#${n}: ${err.message}`);
        }
      }
    }, EMIT_INTERVAL_MS);
    let injected;
    let answersAt;
    let faultAt;
    let readyA;
    let readyB;
    let resub;
    let recoveredAt;
    try {
      await sleep(LEAD_MS);
      faultAt = Date.now();
      injected = await fault.inject();
      answersAt = injected.answersAt || (await redisAnswersAgain(bench.probePort));
      if (injected.notes) row.notes.push(injected.notes);
      [readyA, readyB, resub] = await Promise.all([waitReady(A, marks.A), waitReady(B, marks.B), watchResubscription(bench)]);
      recoveredAt = Math.max(answersAt, readyA.readyAt || 0, readyB.readyAt || 0, resub.at || 0) + EMITTER_GRACE_MS;
      // Go on at least TAIL_MS after Redis answers again and EMITTER_AFTER_MS after recovery.
      await sleep(Math.max(0, Math.max(answersAt + TAIL_MS, recoveredAt + EMITTER_AFTER_MS) - Date.now()));
    } finally {
      clearInterval(timer);
    }
    row.readyAfterMs = { A: readyCell(readyA, answersAt), B: readyCell(readyB, answersAt) };
    row.resubscribedAfterMs = resub.at === null ? 'not in time' : resub.at - answersAt;
    row.faultMs = injected.endedAt - faultAt;
    row.answersAfterEndMs = answersAt - injected.endedAt;

    // ---- after recovery: AFTER_COUNT more from each emitter, then an ordering barrier per emitter
    for (let n = 1; n <= AFTER_COUNT; n++) {
      for (const [name, em] of Object.entries(emitters)) em.emit(ev(`after-${name}`), n);
      await sleep(5);
    }
    await Promise.all(Object.keys(emitters).flatMap((name) => Object.values(receivers).map((r) =>
      r.waitFor(() => streamStats(r, ev(`after-${name}`), AFTER_COUNT).received >= AFTER_COUNT, AFTER_WAIT_MS, `after-${name}`).catch(() => {}))));
    // Same connection, so in order: once the barrier is in, a late copy of anything before is too.
    await Promise.all(Object.entries(emitters).map(([name, em]) => reachAll((m) => em.emit(m), Object.values(receivers), ev(`barrier-${name}`), 3000).catch(() => {})));

    // ---- figures
    row.sent = { ours: sentAt.ours.length, official: sentAt.official.length };
    row.lost = {};
    row.after = {};
    for (const name of Object.keys(emitters)) {
      row.lost[name] = {};
      row.after[name] = {};
      for (const [x, r] of Object.entries(receivers)) {
        row.lost[name][x] = streamStats(r, ev(`em-${name}`), row.sent[name]).lost;
        row.after[name][x] = streamStats(r, ev(`after-${name}`), AFTER_COUNT);
      }
    }
    // Emitted from EMITTER_GRACE_MS after Redis answered again and A and B were ready and subscribed again.
    const recoveredNumbers = sentAt.ours.map((at, i) => (at > recoveredAt ? i + 1 : null)).filter((n) => n !== null);
    const recoveredMissing = Object.fromEntries(Object.entries(receivers).map(([x, r]) => [x, missing(r, ev('em-ours'), recoveredNumbers)]));
    row.recoveredStream = { count: recoveredNumbers.length, lost: Object.values(recoveredMissing).reduce((s, m) => s + m.length, 0), fromMs: recoveredAt - answersAt };
    // When each lost event of ours' Emitter was emitted, relative to the fault and to Redis answering again.
    const lostOurs = [...new Set(Object.values(receivers).flatMap((r) => missing(r, ev('em-ours'), sentAt.ours.map((_, i) => i + 1))))].sort((x, y) => x - y);
    row.lostOursTimes = lostOurs.slice(0, 10).map((n) => `#${n} at fault${fmtMs(sentAt.ours[n - 1] - faultAt)} / answers${fmtMs(sentAt.ours[n - 1] - answersAt)}`);
    const dupsAt = (name, xs) => xs.map((x) => ({ x, dups: [ev(`em-${name}`), ev(`after-${name}`)].reduce((s, e) => s + streamStats(receivers[x], e, Infinity).dups, 0) }));
    const dupsOurs = dupsAt('ours', ['a', 'b', 'c']);
    const dupsOfficialAtOurs = dupsAt('official', ['a', 'b']);
    const dupsOfficialAtC = dupsAt('official', ['c']);
    row.dups = { ours: dupsOurs.reduce((s, d) => s + d.dups, 0), official: [...dupsOfficialAtOurs, ...dupsOfficialAtC].reduce((s, d) => s + d.dups, 0) };
    row.officialPublishErrors = officialErrors.length;
    emitterRows.push(row);
    t.diagnostic(emitterTableLine(row));
    t.diagnostic(`Redis answered ${row.answersAfterEndMs} ms after the fault ended (fault ${row.faultMs} ms); A/B ready and resubscribed, + ${EMITTER_GRACE_MS} ms, ` +
      `${row.recoveredStream.fromMs} ms after that (from then on ${row.recoveredStream.count} events checked); ` +
      `official publish rejections ${officialErrors.length}${officialErrors.length ? ` (${[...new Set(officialErrors)].slice(0, 2).join('; ')})` : ''}; ` +
      `emit threw: ours ${thrown.ours.length}, official ${thrown.official.length}${row.notes.length ? `; notes: ${row.notes.join('; ')}` : ''}`);
    if (row.lostOursTimes.length) t.diagnostic(`ours' Emitter, lost events emitted (ms): ${row.lostOursTimes.join(', ')}`);

    // ---- what users of ours' Emitter must get
    const failures = [];
    for (const [x, st] of [['A', readyA], ['B', readyB]]) {
      if (st.errored && st.readyAt === null) failures.push(`${x}: adapter 'error' (${st.firstError}) and no 'ready' after it`);
    }
    if (resub.at === null) failures.push(`the request channels were not subscribed again in time (${JSON.stringify(resub.counts)})`);
    for (const d of dupsOurs) if (d.dups) failures.push(`ours' Emitter: ${d.dups} duplicate deliveries at ${d.x}`);
    for (const d of dupsOfficialAtOurs) if (d.dups) failures.push(`@socket.io/redis-emitter: ${d.dups} duplicate deliveries at ${d.x} (an ours node)`);
    for (const [x, m] of Object.entries(recoveredMissing)) {
      if (m.length) failures.push(`ours' Emitter: ${m.length} of the ${recoveredNumbers.length} events emitted after recovery never reached ${x} (e.g. #${m.slice(0, 5).join(', #')})`);
    }
    for (const [x, s] of Object.entries(row.after.ours)) {
      if (s.received !== AFTER_COUNT || s.dups) failures.push(`after recovery, ours' Emitter → ${x}: ${s.received}/${AFTER_COUNT} received, ${s.dups} duplicates`);
    }
    if (thrown.ours.length) failures.push(`ours' Emitter: emit() threw ${thrown.ours.length} times (${thrown.ours[0]})`);
    if (failures.length) {
      assert.fail(`${row.fault}: ${failures.length} problem(s) for users of ours' Emitter:\n  - ${failures.join('\n  - ')}\n${emitterTableLine(row)}\n` +
        `lost events of ours' Emitter, emitted (relative to the fault / to Redis answering again): ${row.lostOursTimes.join(', ')}; ` +
        `Redis answered again ${row.answersAfterEndMs} ms after the fault ended, A/B ready and resubscribed (+ ${EMITTER_GRACE_MS} ms) ${row.recoveredStream.fromMs} ms after that`);
    }
  } finally {
    await ours.close().catch((err) => t.diagnostic(`ours' Emitter close: ${err.message}`));
    if (officialClient.isOpen) await officialClient.close().catch(() => {});
  }
}

// -------------------------------------------------------------------------------------------------

const IT = { timeout: 120000 };
const LONG_ONLY = LONG ? {} : { skip: 'FAULTS=long only' };

after(() => {
  if (emitterRows.length) {
    console.log(`\nemitters in the test process, one event every ${EMIT_INTERVAL_MS} ms each, to a, b (ours nodes) and c (official node):`);
    for (const r of emitterRows) console.log(emitterTableLine(r));
  }
  if (rows.length === 0) return;
  console.log(`\nfaults (requestsTimeout ${REQ_TIMEOUT} ms, broadcasts every ${BROADCAST_INTERVAL_MS} ms, ready target ${READY_TARGET_MS} ms):`);
  console.log(tableHeader());
  for (const r of rows) console.log(tableLine(r));
  if (REPORT) console.log(`rows written to ${REPORT}`);
});

describe('faults of redis-server: mixed cluster (A, B ours; C official) and official reference (D, E)', { timeout: 900000 }, () => {
  const bench = new Bench('redis-server');
  let redis;

  before(async () => {
    redis = await privateRedis({ args: ['--enable-debug-command', 'local'] });
    bench.redisUrl = redis.url;
    bench.adminPort = redis.port;
    bench.probePort = redis.port;
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await stopAllRedis();
    }
  });

  const fault = (make) => (t) => runFault(t, bench, make());
  it('CLIENT PAUSE 500 ALL', IT, fault(() => clientPause(redis, 500, 'ALL')));
  it('CLIENT PAUSE 1500 ALL', IT, fault(() => clientPause(redis, 1500, 'ALL')));
  it('CLIENT PAUSE 1500 WRITE', IT, fault(() => clientPause(redis, 1500, 'WRITE')));
  it('CLIENT PAUSE 5000 ALL', { ...IT, ...LONG_ONLY }, fault(() => clientPause(redis, 5000, 'ALL')));
  it('CLIENT PAUSE 5000 WRITE', { ...IT, ...LONG_ONLY }, fault(() => clientPause(redis, 5000, 'WRITE')));
  it('SIGSTOP 2 s then SIGCONT', IT, fault(() => sigstop(redis, 2000)));
  it('SIGSTOP 10 s then SIGCONT', { ...IT, ...LONG_ONLY }, fault(() => sigstop(redis, 10000)));
  it('CLIENT KILL TYPE pubsub', IT, fault(() => clientKill(redis, 'pubsub')));
  it('CLIENT KILL TYPE normal', IT, fault(() => clientKill(redis, 'normal')));
  it('EVAL busy loop 1.5 s ended by SCRIPT KILL', IT, fault(() => busyScript(redis, 1500)));
  it('maxclients reached while reconnecting, then raised', IT, fault(() => maxclients(redis, 1500)));
  it('restart with a dataset that answers -LOADING for a while', IT, fault(() => restartLoading(redis)));

  const emitterFault = (make) => (t) => runEmitterFault(t, bench, redis.url, make());
  it('Emitter (ours and @socket.io/redis-emitter) under CLIENT PAUSE 1500 ALL', IT, emitterFault(() => clientPause(redis, 1500, 'ALL')));
  it('Emitter (ours and @socket.io/redis-emitter) under CLIENT KILL TYPE normal', IT, emitterFault(() => clientKill(redis, 'normal')));
  it('Emitter (ours and @socket.io/redis-emitter) under SIGSTOP 2 s then SIGCONT', IT, emitterFault(() => sigstop(redis, 2000)));
});

describe('network faults through a TCP proxy: mixed cluster and official reference, every node via the proxy', { timeout: 600000 }, () => {
  const bench = new Bench('tcp proxy');
  let proxy;

  before(async () => {
    const redis = await privateRedis();
    proxy = await tcpProxy(redis.port);
    bench.redisUrl = proxy.url;
    bench.adminPort = redis.port;
    bench.probePort = proxy.port;
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await closeAllProxies();
      await stopAllRedis();
    }
  });

  const fault = (make) => (t) => runFault(t, bench, make());
  it('proxy blackhole 2 s then restore', IT, fault(() => blackhole(proxy, 2000)));
  it('proxy delay 300 ms for 2 s', IT, fault(() => delay(proxy, 300, 2000)));
  it('proxy cut', IT, fault(() => cut(proxy)));
});

// -------------------------------------------------------------------------------------------------
// A connection that dies silently for good (tcp-proxy freezeExisting): no reply, no FIN, no RST,
// ever, on every connection open at that moment; new connections work. Ours must notice (its
// PINGs go unanswered: 'error'), replace the stalled connections after STALL_REPLACE (12 s,
// src/transport/link.rs) and be 'ready' again within 18 s of the freeze, by itself (the stall is timed from the first PING left unanswered, sent up to 1 s after the freeze; then a new connection must be opened and subscribed).
//
// Setup (its own private Redis and proxy): an ours-only cluster on key K, A and B (clients a, b),
// and the official reference on key K2, D and E (clients d, e), every node via the proxy. Under
// traffic (A, B, D, E broadcast every BROADCAST_INTERVAL_MS; B and E issue a request every
// REQUEST_INTERVAL_MS, fetchSockets / serverCount / serverSideEmitWithAck in turn), the proxy
// freezes every open connection. Asserted for ours: A and B emit 'error' (ERR_SIO_REDIS), then
// 'ready' at most FREEZE_READY_BOUND_MS after the freeze, and no 'error' after it; no broadcast
// received twice at any time; every request of B settled within requestsTimeout + REQ_SLACK;
// afterwards AFTER_COUNT broadcasts A→b and B→a arrive exactly once, fetchSockets from A and B
// return a and b, serverCount from B is 2, serverSideEmitWithAck from A gets B's answer.
// Reported only: broadcasts lost during the outage (ours and official), everything official.
// The frozen connections stay open at Redis (as a vanished client does until tcp-keepalive, 300 s
// by default): the diagnostics show PUBSUB NUMSUB of the request channels and Redis' client count.

/** src/transport/link.rs STALL_REPLACE. */
const STALL_REPLACE_MS = 12000;
/** 'ready' again within 18 s of the freeze (STALL_REPLACE, plus up to 1 s before the first PING, plus reconnecting). */
const FREEZE_READY_BOUND_MS = STALL_REPLACE_MS + 6000;
/**
 * How long the test waits for that 'ready' (longer than the bound, so that a late recovery is
 * still measured and the checks after it still say something).
 */
const FREEZE_OBSERVE_MS = 2 * STALL_REPLACE_MS + 10000;
const REQUEST_KINDS = ['fetchSockets', 'serverCount', 'serverSideEmitWithAck'];

/** The first ERR_SIO_REDIS 'error' of `node` at or after index `mark`, the first 'ready' after it, and any 'error' after that 'ready'. */
function errorThenReady(node, mark) {
  const evs = node.adapterEvents;
  const at = (pred, from) => {
    for (let i = from; i < evs.length; i++) if (evs[i].nsp === '/' && pred(evs[i])) return i;
    return -1;
  };
  const e = at(isRedisError, mark);
  const r = e < 0 ? -1 : at(isReady, e + 1);
  const later = r < 0 ? -1 : at(isRedisError, r + 1);
  return {
    error: e < 0 ? null : evs[e],
    ready: r < 0 ? null : evs[r],
    laterError: later < 0 ? null : evs[later],
  };
}

async function clientCount(port) {
  const list = await redisCommand(port, ['CLIENT', 'LIST'], 2000);
  return String(list).trim().split('\n').filter(Boolean).length;
}

describe('a connection that dies silently for good: the proxy freezes every open connection, new ones are forwarded', { timeout: 180000 }, () => {
  const bench = new Bench('tcp proxy (freeze)');
  let redis;
  let proxy;

  before(async () => {
    redis = await privateRedis();
    proxy = await tcpProxy(redis.port);
  });

  after(async () => {
    try {
      // The official nodes' clients wait for replies that never come: do not wait for them long.
      for (const group of [bench.main, bench.ref]) if (group) await Promise.all(Object.values(group.nodes).map((n) => n.stop(1500)));
      await stopAll();
    } finally {
      await closeAllProxies();
      await stopAllRedis();
    }
  });

  it('under traffic: ours errors, replaces its connections by itself, is ready within 18 s, then delivers exactly once and answers requests', { timeout: 120000 }, async (t) => {
    bench.main = await bench.startGroup([oursNode(proxy.url, 'A'), oursNode(proxy.url, 'B')]);
    bench.ref = await bench.startGroup([officialNode(proxy.url, 'D'), officialNode(proxy.url, 'E')]);
    const { A, B } = bench.main.nodes;
    const { D, E } = bench.ref.nodes;
    const { a, b } = bench.main.clients;
    const { d, e } = bench.ref.clients;
    const all = [A, B, D, E];
    for (const n of all) await n.command('onServerEvent', { event: 'faults-ack', reply: n.label });
    const tag = `f${++faultSeq}`;
    const ev = (x) => `${tag}:${x}`;
    const marks = { A: A.adapterEvents.length, B: B.adapterEvents.length };
    const clientsBefore = await clientCount(redis.port);

    // ---- traffic, freeze, wait for ours to come back by itself
    await Promise.all(all.map((n) => n.command('trafficStart', { event: ev(n.label), intervalMs: BROADCAST_INTERVAL_MS })));
    await Promise.all([B, E].map((n) => n.command('requestsStart', { tag, kinds: REQUEST_KINDS, intervalMs: REQUEST_INTERVAL_MS })));
    const sent = {};
    let frozeAt;
    let frozen;
    try {
      await sleep(LEAD_MS);
      frozeAt = Date.now();
      frozen = proxy.freezeExisting();
      assert.ok(frozen >= 4, `the proxy froze ${frozen} connections (expected at least the 4 of D and E)`);
      await Promise.all([A, B].map((n) => n.waitForMessages('adapterEvent', () => errorThenReady(n, marks[n.label]).ready !== null,
        Math.max(0, frozeAt + FREEZE_OBSERVE_MS - Date.now()), "'error' then 'ready'").catch(() => {})));
      const readyAts = [A, B].map((n) => errorThenReady(n, marks[n.label]).ready).filter(Boolean).map((x) => x.at);
      const endAt = readyAts.length === 2 ? Math.max(...readyAts) + TAIL_MS : Date.now();
      await sleep(Math.max(0, endAt - Date.now()));
    } finally {
      await Promise.all(all.map(async (n) => {
        const res = await n.command('trafficStop', { event: ev(n.label) }).catch(() => ({ sentAt: [] }));
        sent[n.label] = res.sentAt.length;
      }));
    }
    const [reqOurs, reqOfficial] = await Promise.all([settledRequests(B, tag), settledRequests(E, tag)]);
    const states = { A: errorThenReady(A, marks.A), B: errorThenReady(B, marks.B) };

    // ---- after recovery: numbered broadcasts both ways, requests
    const afterRoutes = { A: [b], B: [a], D: [e], E: [d] };
    const nodes = { A, B, D, E };
    await Promise.all(Object.keys(afterRoutes).map((x) =>
      nodes[x].command('emitNumbered', { event: ev(`after-${x}`), count: AFTER_COUNT, intervalMs: 5 }).catch(() => {})));
    await Promise.all(Object.entries(afterRoutes).flatMap(([x, rs]) => rs.map((r) =>
      r.waitFor(() => streamStats(r, ev(`after-${x}`), AFTER_COUNT).received >= AFTER_COUNT, AFTER_WAIT_MS, `after-${x}`).catch(() => {}))));
    await Promise.all([A.flush([b], 2000).catch(() => {}), B.flush([a], 2000).catch(() => {})]);
    const after = {};
    for (const [x, rs] of Object.entries(afterRoutes)) for (const r of rs) after[`${x}→${r.server.label.toLowerCase()}`] = streamStats(r, ev(`after-${x}`), AFTER_COUNT);
    const slow = REQ_TIMEOUT + REQ_SLACK + 2000;
    const failedCommand = (err) => ({ ok: false, error: { message: err.message } });
    const [fetchA, fetchB, countB, sseA, fetchE] = await Promise.all([
      A.command('fetchSockets', {}, slow).catch(failedCommand),
      B.command('fetchSockets', {}, slow).catch(failedCommand),
      B.command('serverCount', {}, slow).catch(failedCommand),
      A.command('serverSideEmit', { event: 'faults-ack', mode: 'promise' }, slow).catch(failedCommand),
      E.command('fetchSockets', {}, slow).catch(failedCommand),
    ]);
    const [numsubOurs, numsubOfficial] = await numsub(redis.port, [bench.main.key, bench.ref.key]);
    const clientsAfter = await clientCount(redis.port);

    // ---- figures
    const window = { 'A→b': [b, 'A'], 'B→a': [a, 'B'], 'D→e': [e, 'D'], 'E→d': [d, 'E'] };
    const lost = Object.fromEntries(Object.entries(window).map(([k, [cl, x]]) => [k, `${streamStats(cl, ev(x), sent[x]).lost}/${sent[x]}`]));
    const dups = Object.fromEntries([a, b, d, e].map((cl) => [cl.server.label.toLowerCase(), dupsOf(cl, `${tag}:`)]));
    const rel = (x) => (x ? `${x.at - frozeAt} ms` : 'never');
    const wantIds = [a, b].map((x) => x.serverSocketId).sort();
    const ids = (r) => (r.ok ? JSON.stringify(r.value.map((s) => s.id).sort()) : `rejected: ${r.error.message}`);
    t.diagnostic(`froze ${frozen} connections at +0; ours: A error ${rel(states.A.error)}, ready ${rel(states.A.ready)}; ` +
      `B error ${rel(states.B.error)}, ready ${rel(states.B.ready)} (bound ${FREEZE_READY_BOUND_MS} ms); ` +
      `first errors: A "${states.A.error ? states.A.error.error.message : '-'}", B "${states.B.error ? states.B.error.error.message : '-'}"`);
    t.diagnostic(`lost during the outage: ours A→b ${lost['A→b']}, B→a ${lost['B→a']}; official D→e ${lost['D→e']}, E→d ${lost['E→d']}; ` +
      `dups a ${dups.a.dups} b ${dups.b.dups} (official d ${dups.d.dups} e ${dups.e.dups})`);
    t.diagnostic(`requests during: ours B ${JSON.stringify(reqOurs)}; official E ${JSON.stringify(reqOfficial)}`);
    t.diagnostic(`after: ${Object.entries(after).map(([k, s]) => `${k} ${s.received}/${AFTER_COUNT} (dups ${s.dups})`).join(', ')}; ` +
      `fetchSockets A ${ids(fetchA)}, B ${ids(fetchB)} (want ${JSON.stringify(wantIds)}); serverCount B ${countB.ok ? countB.value : countB.error.message}; ` +
      `serverSideEmitWithAck A ${sseA.ok ? JSON.stringify(sseA.value) : sseA.error.message}; official fetchSockets E ${fetchE.ok ? `${fetchE.value.length} sockets` : fetchE.error.message}`);
    t.diagnostic(`Redis: ${clientsBefore} clients before the freeze, ${clientsAfter} after; PUBSUB NUMSUB of the request channel: ours ${numsubOurs} (2 nodes), ` +
      `official ${numsubOfficial} (2 nodes); proxy dropped ${proxy.frozen.chunks} chunks / ${proxy.frozen.bytes} bytes on frozen connections`);

    // ---- what users of ours must get
    const failures = [];
    for (const x of ['A', 'B']) {
      const s = states[x];
      if (!s.error) failures.push(`${x}: no ERR_SIO_REDIS 'error' after the freeze`);
      else if (!s.ready) failures.push(`${x}: no 'ready' after its 'error' within ${FREEZE_OBSERVE_MS} ms of the freeze (bound ${FREEZE_READY_BOUND_MS} ms)`);
      else if (s.ready.at - frozeAt > FREEZE_READY_BOUND_MS) failures.push(`${x}: 'ready' ${s.ready.at - frozeAt} ms after the freeze (bound ${FREEZE_READY_BOUND_MS} ms)`);
      if (s.laterError) failures.push(`${x}: 'error' again ${s.laterError.at - frozeAt} ms after the freeze, after its 'ready': ${s.laterError.error.message}`);
    }
    for (const x of ['a', 'b']) if (dups[x].dups) failures.push(`${dups[x].dups} duplicate deliveries at ${x}: ${dups[x].detail.join(', ')}`);
    if (reqOurs.overran > 0) failures.push(`${reqOurs.overran} of B's ${reqOurs.issued} requests settled later than requestsTimeout ${REQ_TIMEOUT} + ${REQ_SLACK} ms: ${reqOurs.late.join('; ')}`);
    for (const k of ['A→b', 'B→a']) if (after[k].received !== AFTER_COUNT || after[k].dups) failures.push(`after recovery ${k}: ${after[k].received}/${AFTER_COUNT} received, ${after[k].dups} duplicates`);
    for (const [x, r] of [['A', fetchA], ['B', fetchB]]) if (ids(r) !== JSON.stringify(wantIds)) failures.push(`after recovery, fetchSockets from ${x}: ${ids(r)} (want ${JSON.stringify(wantIds)})`);
    if (!countB.ok || countB.value !== 2) failures.push(`after recovery, serverCount from B: ${countB.ok ? countB.value : `rejected: ${countB.error.message}`} (want 2)`);
    if (numsubOurs !== 2) {
      failures.push(`after recovery, Redis counts ${numsubOurs} subscribers of ${bench.main.key}-request#/# for 2 nodes (PUBSUB NUMSUB, which serverCount and ` +
        `the number of answers a request waits for come from): the replaced connections are still open at Redis (a vanished peer stays until tcp-keepalive)`);
    }
    if (!sseA.ok || JSON.stringify(sseA.value) !== '["B"]') failures.push(`after recovery, serverSideEmitWithAck from A: ${sseA.ok ? JSON.stringify(sseA.value) : `rejected: ${sseA.error.message}`} (want ["B"])`);
    for (const n of [A, B]) if (!n.alive || n.uncaught.length) failures.push(n.describeState());
    if (failures.length) {
      const log = (n) => n.adapterEvents.slice(marks[n.label]).map((x) => `${x.at - frozeAt} ms ${x.event}${x.error ? ` [${x.error.code}] ${x.error.message}` : ''}`).join('; ') || 'none';
      assert.fail(`silent death of every open connection: ${failures.length} problem(s) for users of ours:\n  - ${failures.join('\n  - ')}\n` +
        `adapter events (ms after the freeze): A: ${log(A)}\n  B: ${log(B)}\n` +
        `PUBSUB NUMSUB ${bench.main.key}-request#/#: ${numsubOurs}; Redis clients ${clientsBefore} before, ${clientsAfter} after`);
    }
  });
});
