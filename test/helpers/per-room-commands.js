'use strict';
// Extra server commands for per-room.test.js (config `commandModules`).

const { createClient } = require('redis');
const { Emitter } = require('@socket.io/redis-emitter');

module.exports = {
  // Joins a local socket to `rooms` and, as soon as `await socket.join(rooms)` resolved, publishes
  // `event` to room `to` through @socket.io/redis-emitter on a Redis connection of its own (the
  // bytes an official node would publish), so that the publish reaches Redis right behind the
  // join. With `awaitJoin: false` the join's promise is not awaited (to compare).
  // payload: { nsp='/', socketId, rooms, to, event, args=[], awaitJoin=true } → the socket's rooms
  joinThenPublish: async (p, ctx) => {
    const nsp = p.nsp || '/';
    const socket = ctx.io.of(nsp).sockets.get(p.socketId);
    if (!socket) throw new Error(`no local socket ${p.socketId} in namespace ${nsp}`);
    const client = createClient({ url: ctx.config.redisUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      const emitter = new Emitter(client, { key: ctx.config.key }).of(nsp);
      const joined = socket.join(p.rooms);
      if (p.awaitJoin !== false) await joined;
      await emitter.to(p.to).emit(p.event, ...(p.args || []));
    } finally {
      await client.close();
    }
    return [...socket.rooms].map(String);
  },
};
