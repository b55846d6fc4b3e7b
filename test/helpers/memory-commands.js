'use strict';
// Extra server commands for memory.test.js, loaded through the server config `commandModules`
// (see server.js "Extending").

module.exports = {
  // Emits `count` broadcasts of a `size`-character string to io.of('/'), `chunk` per turn of the
  // event loop. payload: { event, count, size, chunk } → count
  emitStrings: (p, ctx) => {
    const text = 'm'.repeat(p.size);
    let sent = 0;
    return new Promise((resolve) => {
      const step = () => {
        for (const end = Math.min(p.count, sent + p.chunk); sent < end; sent++) ctx.io.emit(p.event, sent, text);
        if (sent < p.count) setImmediate(step);
        else resolve(sent);
      };
      step();
    });
  },

  // process.memoryUsage() of the server.
  memory: () => process.memoryUsage(),
};
