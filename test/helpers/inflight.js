'use strict';
// Cluster requests kept in flight across a failover (sentinel.test.js, cluster.test.js): a node
// loaded with helpers/fault-commands.js issues one request every `intervalMs`, fetchSockets,
// serverCount and serverSideEmitWithAck in turn, from before the kill until after recovery.
//
//   await startRequests(A, 'inflight');                    // before the kill
//   ... kill, wait for 'ready' ...
//   const run = await stopWhenSucceeding(A, 'inflight', { from: readyAt, accept, timeoutMs });
//   const s = summarize(run.records, { bound, killAt, recoveredAt: readyAt });
//   assert.equal(s.overran.length, 0, ...); assert.ok(run.succeeding, ...);
//
// The other nodes must answer the serverSideEmitWithAck event (`onServerEvent` with a reply).

const KINDS = ['fetchSockets', 'serverCount', 'serverSideEmitWithAck'];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the requests of `tag` on `node` (one every `intervalMs`, the kinds in turn). */
function startRequests(node, tag, { intervalMs = 100, event = 'faults-ack', kinds = KINDS } = {}) {
  return node.command('requestsStart', { tag, kinds, intervalMs, event });
}

/**
 * Keeps the requests going until, for every kind, the last `consecutive` requests issued at or
 * after `from` succeeded and passed `accept(record)` (say, fetchSockets saw enough sockets), or
 * `timeoutMs` passed; then stops issuing and waits (up to `settleMs` after the last one was
 * issued) for those in flight. Resolves with { records, succeeding, stoppedAt }.
 */
async function stopWhenSucceeding(node, tag, { from, accept = (r) => r.ok, consecutive = 3, timeoutMs = 20000, settleMs = 5000, kinds = KINDS }) {
  const deadline = Date.now() + timeoutMs;
  const succeeding = (records) => kinds.every((kind) => {
    const mine = records.filter((r) => r.kind === kind && r.issuedAt >= from && r.ms !== null);
    return mine.length >= consecutive && mine.slice(-consecutive).every((r) => r.ok && accept(r));
  });
  let records = await node.command('requestsReport', { tag });
  while (!succeeding(records) && Date.now() < deadline) {
    await sleep(200);
    records = await node.command('requestsReport', { tag });
  }
  const ok = succeeding(records);
  records = await node.command('requestsStop', { tag });
  const stoppedAt = Date.now();
  const lastIssued = Math.max(0, ...records.map((r) => r.issuedAt));
  while (records.some((r) => r.ms === null) && Date.now() < lastIssued + settleMs) {
    await sleep(100);
    records = await node.command('requestsReport', { tag });
  }
  return { records, succeeding: ok, stoppedAt };
}

/**
 * Figures of `records`: per phase (before `killAt`, during: until `recoveredAt`, after) and kind,
 * issued / ok / rejected / max ms; `overran`: the requests that settled later than `bound` ms or
 * never; `errors`: distinct error texts; `line`: all that in one line.
 */
function summarize(records, { bound, killAt, recoveredAt }) {
  const phase = (r) => (r.issuedAt < killAt ? 'before' : recoveredAt === null || r.issuedAt < recoveredAt ? 'during' : 'after');
  const table = {};
  for (const r of records) {
    const p = phase(r);
    const cell = ((table[p] ||= {})[r.kind] ||= { issued: 0, ok: 0, rejected: 0, maxMs: 0 });
    cell.issued++;
    if (r.ok === true) cell.ok++;
    if (r.ok === false) cell.rejected++;
    if (r.ms !== null) cell.maxMs = Math.max(cell.maxMs, Math.round(r.ms));
  }
  const overran = records.filter((r) => r.ms === null || r.ms > bound);
  const errors = [...new Set(records.filter((r) => r.ok === false).map((r) => `${r.kind}: ${r.error.code ? `[${r.error.code}] ` : ''}${r.error.message}`))];
  const line = ['before', 'during', 'after'].filter((p) => table[p]).map((p) =>
    `${p}: ${Object.entries(table[p]).map(([k, c]) => `${k} ${c.ok} ok/${c.rejected} rejected of ${c.issued} (max ${c.maxMs} ms)`).join(', ')}`).join('; ');
  const clock = (ms) => new Date(ms).toISOString().slice(11, 23);
  return {
    table,
    overran,
    errors,
    line,
    lateDetail: overran.slice(0, 5).map((r) => `${r.kind} issued ${clock(r.issuedAt)} (${r.issuedAt - killAt} ms after the kill): ` +
      `${r.ms === null ? 'never settled' : `settled after ${Math.round(r.ms)} ms (${r.ok ? 'ok' : r.error.message})`}`),
  };
}

module.exports = { KINDS, startRequests, stopWhenSucceeding, summarize };
