"use strict";
// One write per client per flush.
//
// While a client's websocket has a frame in flight, engine.io queues what follows and sends the
// queue in one go when the write completes ("flush", then "drain", both synchronous around
// `transport.send`). ws writes each frame on its own, so a client that was sent 100 broadcasts
// during one batch costs 100 `writev` calls, which is most of a receiving node's CPU. Corking
// the client's TCP socket between the engine's "flush" and "drain" events makes that one
// `writev` of the same bytes, in the same order, with the same callbacks.

/** engine.io servers whose flushes are already coalesced. */
const installed = new WeakSet();

/** The TCP socket under an engine.io socket's websocket transport, if that is its transport. */
function tcpSocket(engineSocket) {
  const transport = engineSocket.transport;
  const ws = transport && transport.name === "websocket" ? transport.socket : undefined;
  const tcp = ws && ws._socket;
  return tcp && typeof tcp.cork === "function" ? tcp : undefined;
}

/**
 * Coalesces the websocket frames of each multi-packet flush of `engine` (an engine.io server)
 * into one write. Idempotent; a no-op without an engine.
 */
function coalesceFlushes(engine) {
  if (!engine || typeof engine.on !== "function" || installed.has(engine)) return;
  installed.add(engine);
  /** engine.io socket → its TCP socket, corked by this flush. */
  const corked = new WeakMap();
  /**
   * Writes out what the flush of `engineSocket` queued. At "drain" the frames are all written
   * (ws corks and uncorks in pairs within each frame), so any cork left is this module's.
   */
  const release = (engineSocket) => {
    const tcp = corked.get(engineSocket);
    if (!tcp) return;
    corked.delete(engineSocket);
    while (tcp.writableCorked > 0) tcp.uncork();
  };
  engine.on("flush", (engineSocket, packets) => {
    // A flush whose sending threw never reached "drain": its bytes go out now.
    release(engineSocket);
    if (packets.length < 2) return;
    const tcp = tcpSocket(engineSocket);
    if (!tcp) return;
    tcp.cork();
    corked.set(engineSocket, tcp);
  });
  engine.on("drain", release);
}

module.exports = { coalesceFlushes };
