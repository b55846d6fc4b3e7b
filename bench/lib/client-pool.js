'use strict';
// The benchmark's socket.io clients spread over several processes (BENCH_CLIENT_PROCS), driven
// as one: `call(cmd, payload)` has the interface of a single clients.js process, and splits or
// merges where it matters (connect: the clients are divided; wait and usage: results summed or
// the worst taken). One process of socket.io clients saturates (its event loop decodes every
// message of every client) before a fast receiving node does.

class ClientPool {
  /** `procs`: spawned clients.js processes. */
  constructor(procs) {
    this.procs = procs;
  }

  async call(cmd, payload, timeoutMs) {
    const all = (each) => Promise.all(this.procs.map((proc, i) => each(proc, i)));
    switch (cmd) {
      case 'connect': {
        const k = this.procs.length;
        const counts = await all((proc, i) => {
          const n = Math.floor(payload.n / k) + (i < payload.n % k ? 1 : 0);
          return n > 0 ? proc.call('connect', { ...payload, n }, timeoutMs) : 0;
        });
        return counts.reduce((a, b) => a + b, 0);
      }
      case 'wait': {
        const results = (await all((proc) => proc.call('wait', payload, timeoutMs))).filter((r) => r.clients > 0);
        const sum = (field) => results.reduce((a, r) => a + r[field], 0);
        return {
          complete: results.every((r) => r.complete),
          delivered: sum('delivered'),
          expected: sum('expected'),
          clients: sum('clients'),
          doneAt: Math.max(...results.map((r) => r.doneAt)),
          lastAt: Math.max(...results.map((r) => r.lastAt)),
        };
      }
      case 'usage': {
        const results = await all((proc) => proc.call('usage', payload, timeoutMs));
        return {
          cpuUs: results.reduce((a, r) => a + r.cpuUs, 0),
          elu: Math.max(...results.map((r) => r.elu)),
          rss: results.reduce((a, r) => a + r.rss, 0),
        };
      }
      default:
        return (await all((proc) => proc.call(cmd, payload, timeoutMs)))[0];
    }
  }
}

module.exports = { ClientPool };
