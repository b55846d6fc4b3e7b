'use strict';
// Extra server commands for limits.test.js, loaded through the server config `commandModules`
// (see server.js "Extending"). Opt-in: nothing here runs unless a test lists this module.

/** `value` with every bigint made a number, recursively (stats() of ours holds numbers today). */
function plain(value) {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

module.exports = {
  // adapter.stats() of the namespace (ours: { published, delivered, malformed, tooLarge, ...,
  // redis: { published, dropped, pending, pendingBytes, link, ... } }), or null when the adapter
  // has none (official). payload: { nsp='/' }
  stats: (p, ctx) => {
    const adapter = ctx.io.of(p.nsp || '/').adapter;
    return typeof adapter.stats === 'function' ? plain(adapter.stats()) : null;
  },

  // Blocks the event loop: a synchronous loop for `ms` milliseconds, from time `at` (Date.now()
  // value; default: at once). Nothing else of the process runs meanwhile (IPC, sockets, the
  // adapter's deliveries wait). payload: { ms, at? } → { startedAt, endedAt, spins }
  busyWait: async (p) => {
    if (p.at && p.at > Date.now()) await new Promise((resolve) => setTimeout(resolve, p.at - Date.now()));
    const startedAt = Date.now();
    let spins = 0;
    while (Date.now() - startedAt < p.ms) spins++;
    return { startedAt, endedAt: Date.now(), spins };
  },

  // io.of(nsp).emit(event, i, 'z'.repeat(size)) for i = 0..count-1 in one synchronous loop, from
  // time `at` (default: at once); the adapter 'error' events emitted during each emit are recorded
  // with its index (the listener is only there for the loop). payload: { nsp='/', event, count,
  // size, at? } → { startedAt, endedAt, errors: [{ i, code, message }] }
  emitMany: async (p, ctx) => {
    if (p.at && p.at > Date.now()) await new Promise((resolve) => setTimeout(resolve, p.at - Date.now()));
    const nsp = ctx.io.of(p.nsp || '/');
    const filler = 'z'.repeat(p.size || 0);
    const errors = [];
    let current = -1;
    const listener = (err) => errors.push({ i: current, code: err && err.code, message: err && err.message });
    nsp.adapter.on('error', listener);
    const startedAt = Date.now();
    try {
      for (let i = 0; i < p.count; i++) {
        current = i;
        nsp.emit(p.event, i, filler);
      }
    } finally {
      nsp.adapter.off('error', listener);
    }
    return { startedAt, endedAt: Date.now(), errors };
  },
};
