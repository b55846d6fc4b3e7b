'use strict';
// Extra server commands for lenient.test.js (config `commandModules`).

module.exports = {
  // The namespace's local sockets with their rooms as the in-memory adapter holds them, typed: a
  // room joined as the number 7 comes back as 7 (IPC is JSON), one joined as "7" as "7" (the
  // `localSockets` command turns every room into a string); a room of another type (e.g. the
  // `undefined` of socket.join(undefined)) comes back as { [typeof room]: String(room) }. The
  // socket's own id room is left out. payload: { nsp='/' } → [{ id, rooms }]
  typedRooms: (p, ctx) =>
    [...ctx.io.of(p.nsp || '/').sockets.values()].map((s) => ({
      id: s.id,
      rooms: [...s.rooms].filter((r) => r !== s.id).map((r) => (typeof r === 'string' || typeof r === 'number' ? r : { [typeof r]: String(r) })),
    })),
};
