'use strict';
// Extra server commands for hostile.test.js, loaded through the server config `commandModules`
// (see server.js "Extending"). Opt-in: nothing here runs unless a test lists this module.

const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');

// The servers are forked without --expose-gc (helpers/cluster.js passes no execArgv); the flag can
// still be set at run time, and a new context then exposes `gc`.
let gcFn = typeof global.gc === 'function' ? global.gc : null;
function gc() {
  if (!gcFn) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc');
    } catch {
      gcFn = () => {};
    }
  }
  gcFn();
}

/** kB → bytes of a `VmXXX:   123 kB` line of /proc/self/status, or null. */
function statusBytes(field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

module.exports = {
  // process.memoryUsage() after a full GC (twice, and `settleMs` of waiting, so that what the
  // collector freed is handed back before RSS is read), plus the peak RSS (VmHWM) since the last
  // `resetPeak`. With `resetPeak: true` the peak is reset (Linux: "5" into /proc/self/clear_refs)
  // after the reading. payload: { gc = true, settleMs = 0, resetPeak = false }
  memory: async (p) => {
    if (p.gc !== false) {
      gc();
      if (p.settleMs) await new Promise((resolve) => setTimeout(resolve, p.settleMs));
      gc();
    }
    const mu = process.memoryUsage();
    const out = { rss: mu.rss, heapUsed: mu.heapUsed, external: mu.external, arrayBuffers: mu.arrayBuffers, peakRss: statusBytes('VmHWM') };
    if (p.resetPeak) {
      try {
        fs.writeFileSync('/proc/self/clear_refs', '5');
        out.peakReset = true;
      } catch {
        out.peakReset = false;
      }
    }
    return out;
  },

  // True when something polluted Object.prototype (a forged response carrying `__proto__`).
  protoPolluted: () => Object.keys(Object.prototype).length > 0 || ({}).polluted !== undefined,
};
