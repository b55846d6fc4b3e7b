'use strict';
// Extra server commands for coalesce.test.js, loaded through the server config `commandModules`
// (see server.js "Extending").

const { burstArgs, isDirectPoint } = require('./burst');

/** The TCP socket under an engine.io socket's websocket transport, if that is its transport. */
function tcpOf(engineSocket) {
  const transport = engineSocket.transport;
  if (!transport || transport.name !== 'websocket') return undefined;
  return transport.socket && transport.socket._socket;
}

module.exports = {
  // Emits messages from..from+count-1 of the burst (helpers/burst.js) to io.of(nsp) in ONE
  // synchronous loop. payload: { nsp='/', event='burst', from=0, count } → count
  burst: (p, ctx) => {
    const nsp = ctx.io.of(p.nsp || '/');
    const event = p.event || 'burst';
    const from = p.from || 0;
    for (let i = from; i < from + p.count; i++) nsp.emit(event, ...burstArgs(i));
    return p.count;
  },

  // Every engine.io client of the server: for a websocket one, `writableCorked` of its TCP socket
  // (plus the engine's write buffer length and transport writability, for failure messages).
  // → { websocket: [{ sid, corked, writeBuffer, writable }], other: [{ sid, transport }] }
  corkState: (p, ctx) => {
    const out = { websocket: [], other: [] };
    for (const [sid, s] of Object.entries(ctx.io.engine.clients)) {
      const tcp = tcpOf(s);
      if (tcp) out.websocket.push({ sid, corked: tcp.writableCorked, writeBuffer: s.writeBuffer.length, writable: s.transport.writable });
      else out.other.push({ sid, transport: s.transport && s.transport.name });
    }
    return out;
  },

  // Watches the engine's 'flush'/'drain' server events with listeners registered AFTER those of
  // npm/lib/coalesce.js (which ours installs at its first batch from Redis, so call this once the
  // mesh is up): counts websocket flushes, multi-packet ones, flushes whose TCP socket is corked
  // once the earlier 'flush' listeners ran (coalescing engaged) and drains after which it is still
  // corked (must never happen). Read with `corkStats`. → number of 'flush' listeners before ours
  watchCorks: (p, ctx) => {
    const engine = ctx.io.engine;
    const before = engine.listenerCount('flush');
    if (!ctx.corkStats) {
      const stats = { flushes: 0, multiPacketFlushes: 0, corkedInFlush: 0, corkedAfterDrain: 0, maxPackets: 0 };
      ctx.corkStats = stats;
      engine.on('flush', (s, packets) => {
        const tcp = tcpOf(s);
        if (!tcp) return;
        stats.flushes++;
        if (packets.length > 1) stats.multiPacketFlushes++;
        stats.maxPackets = Math.max(stats.maxPackets, packets.length);
        if (tcp.writableCorked > 0) stats.corkedInFlush++;
      });
      engine.on('drain', (s) => {
        const tcp = tcpOf(s);
        if (tcp && tcp.writableCorked > 0) stats.corkedAfterDrain++;
      });
    }
    return before;
  },
  corkStats: (p, ctx) => ctx.corkStats || null,

  // Makes the server emit directly to socket `socketId`, with an ack, whenever a `event` message
  // whose first argument n is a direct point (helpers/burst.js isDirectPoint) is about to go out
  // to that socket (its onAnyOutgoing listener, i.e. in the middle of the adapter's delivery of a
  // batch): socket.emit(directEvent, n, ack) right there, just before message n, or with
  // `defer` from a setImmediate, i.e. from a later turn of the event loop while the rest of the
  // burst is still being delivered. The acks are recorded (read with `directAcks`).
  // payload: { nsp='/', socketId, event='burst', directEvent='direct', defer=false }
  directOnOutgoing: (p, ctx) => {
    const socket = ctx.io.of(p.nsp || '/').sockets.get(p.socketId);
    if (!socket) throw new Error(`no local socket ${p.socketId}`);
    const event = p.event || 'burst';
    const directEvent = p.directEvent || 'direct';
    ctx.directAcks = ctx.directAcks || {};
    const acks = (ctx.directAcks[p.socketId] = []);
    const emit = (n) => socket.emit(directEvent, n, (reply) => acks.push({ n, reply }));
    socket.onAnyOutgoing((ev, n) => {
      if (ev !== event || !isDirectPoint(n)) return;
      if (p.defer) setImmediate(() => emit(n));
      else emit(n);
    });
    return null;
  },
  // payload: { socketId } → [{ n, reply }] in arrival order
  directAcks: (p, ctx) => (ctx.directAcks && ctx.directAcks[p.socketId]) || [],

  // Registers socket.on(event) on every current and future socket of nsp: each call is recorded
  // (read with `socketEventCalls`) and acked with `reply` when the client asked for an ack.
  // payload: { nsp='/', event, reply=null }
  ackSocketEvent: (p, ctx) => {
    const nsp = ctx.io.of(p.nsp || '/');
    ctx.socketEventCalls = ctx.socketEventCalls || [];
    const register = (socket) => socket.on(p.event, (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      ctx.socketEventCalls.push({ socketId: socket.id, event: p.event, first: args[0], withAck: ack !== null });
      if (ack) ack(p.reply === undefined ? null : p.reply);
    });
    for (const socket of nsp.sockets.values()) register(socket);
    nsp.on('connection', register);
    return null;
  },
  // payload: { event } → [{ socketId, event, first, withAck }] in arrival order
  socketEventCalls: (p, ctx) => (ctx.socketEventCalls || []).filter((c) => c.event === p.event),
};
