'use strict';
// Extra server commands for faults.test.js, loaded through the server config `commandModules`
// (see server.js "Extending"): steady traffic generated inside the server process (no IPC per
// message), so its pace does not depend on the test process.

/** ctx.faultTraffic: event → { n, sentAt, emitErrors, timer }; ctx.faultRequests: tag → { records, timer }. */
function state(ctx) {
  if (!ctx.faultTraffic) ctx.faultTraffic = new Map();
  if (!ctx.faultRequests) ctx.faultRequests = new Map();
  return ctx;
}

function describeError(err) {
  return { message: err && err.message ? err.message : String(err), code: err && err.code };
}

module.exports = {
  // Every `intervalMs`, io.of(nsp).emit(event, n) with n = 1, 2, 3, ...; Date.now() of each emit is
  // kept (sentAt[n - 1]); a synchronous throw of emit is recorded, not raised.
  // payload: { nsp='/', event, intervalMs=10 }
  trafficStart: (p, ctx) => {
    const { faultTraffic } = state(ctx);
    if (faultTraffic.has(p.event)) throw new Error(`traffic ${p.event} already runs`);
    const nsp = ctx.io.of(p.nsp || '/');
    const t = { n: 0, sentAt: [], emitErrors: [], timer: null };
    t.timer = setInterval(() => {
      const n = ++t.n;
      t.sentAt.push(Date.now());
      try {
        nsp.emit(p.event, n);
      } catch (err) {
        t.emitErrors.push({ n, ...describeError(err) });
      }
    }, p.intervalMs || 10);
    faultTraffic.set(p.event, t);
    return null;
  },

  // Stops `trafficStart` of `event`. payload: { event } → { sentAt: [ms, ...], emitErrors }
  trafficStop: (p, ctx) => {
    const { faultTraffic } = state(ctx);
    const t = faultTraffic.get(p.event);
    if (!t) throw new Error(`no traffic ${p.event}`);
    clearInterval(t.timer);
    faultTraffic.delete(p.event);
    return { sentAt: t.sentAt, emitErrors: t.emitErrors };
  },

  // io.of(nsp).emit(event, n) for n = 1..count, one every `intervalMs` (0: in one loop).
  // payload: { nsp='/', event, count, intervalMs=0 } → { sentAt }
  emitNumbered: async (p, ctx) => {
    const nsp = ctx.io.of(p.nsp || '/');
    const sentAt = [];
    for (let n = 1; n <= p.count; n++) {
      sentAt.push(Date.now());
      nsp.emit(p.event, n);
      if (p.intervalMs) await new Promise((resolve) => setTimeout(resolve, p.intervalMs));
    }
    return { sentAt };
  },

  // Every `intervalMs`, a cluster request (kind 'fetchSockets': io.of(nsp).fetchSockets() → how
  // many sockets; 'serverCount': adapter.serverCount(); 'serverSideEmitWithAck':
  // io.of(nsp).serverSideEmitWithAck(event) → the answers, sorted), several may be in flight; with
  // `kinds` (a list) the kinds take turns. Each is recorded as { kind, issuedAt (Date.now()), ms
  // (null while pending), settledAt, ok, value, error }.
  // payload: { nsp='/', tag, kind='fetchSockets', kinds?, event='faults-ack', intervalMs=250 }
  requestsStart: (p, ctx) => {
    const { faultRequests } = state(ctx);
    if (faultRequests.has(p.tag) && faultRequests.get(p.tag).timer) throw new Error(`requests ${p.tag} already run`);
    const nsp = ctx.io.of(p.nsp || '/');
    const kinds = p.kinds || [p.kind || 'fetchSockets'];
    const calls = {
      fetchSockets: () => nsp.fetchSockets().then((s) => s.length),
      serverCount: () => nsp.adapter.serverCount(),
      serverSideEmitWithAck: () => nsp.serverSideEmitWithAck(p.event || 'faults-ack').then((answers) => [...answers].map(String).sort()),
    };
    for (const kind of kinds) if (!calls[kind]) throw new Error(`unknown request kind ${kind}`);
    const run = { records: [], timer: null };
    let turn = 0;
    const issue = () => {
      const kind = kinds[turn++ % kinds.length];
      const rec = { kind, issuedAt: Date.now(), ms: null, settledAt: null, ok: null, value: null, error: null };
      run.records.push(rec);
      const start = performance.now();
      Promise.resolve().then(calls[kind]).then(
        (value) => Object.assign(rec, { ms: performance.now() - start, settledAt: Date.now(), ok: true, value }),
        (err) => Object.assign(rec, { ms: performance.now() - start, settledAt: Date.now(), ok: false, error: describeError(err) }),
      );
    };
    issue();
    run.timer = setInterval(issue, p.intervalMs || 250);
    faultRequests.set(p.tag, run);
    return null;
  },

  // Stops issuing the requests of `tag` (those in flight go on). payload: { tag } → records
  requestsStop: (p, ctx) => {
    const run = state(ctx).faultRequests.get(p.tag);
    if (!run) throw new Error(`no requests ${p.tag}`);
    clearInterval(run.timer);
    run.timer = null;
    return run.records;
  },

  // The records of `tag` as they are now. payload: { tag } → records
  requestsReport: (p, ctx) => {
    const run = state(ctx).faultRequests.get(p.tag);
    if (!run) throw new Error(`no requests ${p.tag}`);
    return run.records;
  },
};
