'use strict';
// Extra server commands for test/sharded.test.js (loaded through the server config's
// `commandModules`, see helpers/server.js "Extending").

module.exports = {
  // What the namespace's sharded adapter (ours or official) exposes about its channels.
  // payload: { nsp='/' } → { kind, uid, channel, responseChannel, malformed }
  shardedInfo: (p, ctx) => {
    const adapter = ctx.io.of(p.nsp || '/').adapter;
    return {
      kind: ctx.config.adapter,
      constructor: adapter.constructor && adapter.constructor.name,
      uid: adapter.uid,
      channel: adapter.channel === undefined ? null : adapter.channel,
      responseChannel: adapter.responseChannel === undefined ? null : adapter.responseChannel,
      // ours counts the messages it dropped as malformed
      malformed: typeof adapter.malformed === 'number' ? adapter.malformed : null,
    };
  },

  // await io.of(nsp).adapter.close(); → { ms } (or the error, as data)
  closeAdapter: async (p, ctx) => {
    const start = performance.now();
    try {
      await ctx.io.of(p.nsp || '/').adapter.close();
      return { ok: true, ms: performance.now() - start };
    } catch (err) {
      return { ok: false, error: { message: err.message, code: err.code }, ms: performance.now() - start };
    }
  },
};
