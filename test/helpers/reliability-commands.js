'use strict';
// Extra server commands for reliability.test.js, loaded through the server config
// `commandModules` (see server.js "Extending").

module.exports = {
  // io.close() only: unlike `close`, the Redis clients and the IPC channel stay, so the process
  // lives on and the test can look at what io.close() alone released. Returns how long io.close()
  // took and the resources still keeping the event loop alive.
  closeIo: async (p, ctx) => {
    const start = performance.now();
    await ctx.io.close();
    return { ms: performance.now() - start, activeResources: process.getActiveResourcesInfo() };
  },
};
