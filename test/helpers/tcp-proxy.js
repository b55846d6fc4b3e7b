'use strict';
// A small in-process TCP proxy in front of a server on 127.0.0.1 (a redis-server), to simulate
// network faults without root (test/faults.test.js):
//
//   const p = await tcpProxy(targetPort);   // listens on a free loopback port
//   p.url          // 'redis://127.0.0.1:<port>', p.port
//   p.delay(ms)    // from now on, every chunk (both ways) is forwarded `ms` later; 0 stops adding
//                  // latency (chunks already delayed still leave at their time, in order)
//   p.blackhole()  // a partition where TCP retransmits: nothing is forwarded any more, in either
//                  // direction, on existing AND new connections (accepted, but not connected to
//                  // the target yet), closes included; the bytes are held, nothing is lost
//   p.restore()    // connects the held new connections, forwards everything held, in order, resumes
//   p.cut()        // destroys every current connection, both sides (the proxy keeps listening)
//   p.freezeExisting()  // every connection open now dies silently for good, like a peer behind a NAT
//                  // that lost its state: from now on nothing is forwarded on it, in either
//                  // direction, closes included, and what arrives (or was queued) is DROPPED; both
//                  // sockets stay open (the target keeps the connection and its subscriptions, as
//                  // Redis keeps a vanished client until tcp-keepalive notices; the proxy keeps
//                  // reading, so the target's output buffer does not grow). NEW connections are
//                  // forwarded normally. Returns how many connections were frozen.
//   p.frozen       // { connections, chunks, bytes }: frozen so far, and what was dropped on them
//   await p.close()
//
// Per connection and direction, chunks are forwarded strictly in arrival order (a FIFO with
// release times); no backpressure (a held direction buffers in memory). A side that ends or closes
// is forwarded as an end (FIN) to the other side, after the bytes before it. Every proxy is closed
// by closeAllProxies(), and its sockets destroyed when the process exits.

const net = require('node:net');

const HOST = '127.0.0.1';
const END = Symbol('end');
const live = new Set(); // TcpProxy instances not closed

/** One direction of one connection: a FIFO of chunks (and END) with release times. */
class Pipe {
  constructor(proxy) {
    this.proxy = proxy;
    this.dest = null; // the socket written to; null until connected
    this.queue = []; // { item: Buffer | END, at }
    this.lastAt = 0;
    this.timer = null;
    this.ended = false; // END pushed
    this.frozen = false; // set by TcpProxy#freezeExisting: everything pushed is dropped
  }

  push(item) {
    if (this.frozen) {
      if (item !== END) {
        this.proxy.frozen.chunks++;
        this.proxy.frozen.bytes += item.length;
      }
      return;
    }
    if (item === END) {
      if (this.ended) return;
      this.ended = true;
    }
    // Release times never decrease, so a change of delay cannot reorder chunks.
    const at = Math.max(this.lastAt, Date.now() + this.proxy.delayMs);
    this.lastAt = at;
    this.queue.push({ item, at });
    this.pump();
  }

  pump() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.proxy.holding || !this.dest || this.frozen) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0].at <= now) {
      const { item } = this.queue.shift();
      if (this.dest.destroyed) continue;
      if (item === END) this.dest.end();
      else this.dest.write(item);
    }
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, this.queue[0].at - now);
    }
  }

  clear() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
  }
}

class TcpProxy {
  constructor(targetPort, targetHost = HOST) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.delayMs = 0;
    this.holding = false;
    this.conns = new Set();
    this.accepted = 0; // connections accepted so far
    this.frozen = { connections: 0, chunks: 0, bytes: 0 }; // see freezeExisting()
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.onConnection(client));
    this.port = null;
    this.url = null;
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, HOST, resolve);
    });
    this.port = this.server.address().port;
    this.url = `redis://${HOST}:${this.port}`;
    live.add(this);
    return this;
  }

  onConnection(client) {
    this.accepted++;
    const conn = { client, upstream: null, up: new Pipe(this), down: new Pipe(this), connectPending: false };
    conn.down.dest = client;
    this.conns.add(conn);
    client.setNoDelay(true);
    client.on('error', () => {});
    client.on('data', (chunk) => conn.up.push(chunk));
    client.on('end', () => conn.up.push(END));
    client.on('close', () => {
      conn.up.push(END);
      this.maybeDone(conn);
    });
    if (this.holding) conn.connectPending = true;
    else this.connectUpstream(conn);
  }

  connectUpstream(conn) {
    conn.connectPending = false;
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    conn.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => {});
    upstream.once('connect', () => {
      conn.up.dest = upstream;
      conn.up.pump();
    });
    upstream.on('data', (chunk) => conn.down.push(chunk));
    upstream.on('end', () => conn.down.push(END));
    upstream.on('close', (hadError) => {
      // Target refused or reset: the client sees its connection end (after what was sent before).
      if (hadError && !upstream.connecting && conn.up.dest === null && !conn.up.frozen) conn.client.destroy();
      conn.down.push(END);
      this.maybeDone(conn);
    });
  }

  maybeDone(conn) {
    const clientGone = conn.client.destroyed;
    const upstreamGone = conn.upstream === null ? !conn.connectPending : conn.upstream.destroyed;
    if (clientGone && upstreamGone) {
      conn.up.clear();
      conn.down.clear();
      this.conns.delete(conn);
    }
  }

  /** Adds `ms` of latency to every chunk from now on, both ways (0: none). */
  delay(ms) {
    this.delayMs = Math.max(0, Number(ms) || 0);
  }

  /** Stops forwarding anything, on existing and new connections; the bytes are held. */
  blackhole() {
    this.holding = true;
  }

  /** Forwards everything held, in order, and resumes. */
  restore() {
    this.holding = false;
    for (const conn of [...this.conns]) {
      if (conn.connectPending) {
        if (conn.client.destroyed) {
          // The client gave up during the partition: the target never hears of it.
          conn.connectPending = false;
          this.maybeDone(conn);
          continue;
        }
        this.connectUpstream(conn);
      }
      conn.up.pump();
      conn.down.pump();
    }
  }

  /**
   * Every connection open now stops forwarding for good, both ways, and drops what it would have
   * forwarded (bytes queued by a delay or a blackhole included); ends and closes are not forwarded
   * either. Both of its sockets stay open (cut() or close() destroys them). New connections are
   * not affected. Returns how many connections were frozen now.
   */
  freezeExisting() {
    let n = 0;
    for (const conn of this.conns) {
      if (conn.up.frozen) continue;
      for (const pipe of [conn.up, conn.down]) {
        for (const { item } of pipe.queue) {
          if (item === END) continue;
          this.frozen.chunks++;
          this.frozen.bytes += item.length;
        }
        pipe.clear();
        pipe.frozen = true;
      }
      // Accepted during a blackhole and not connected yet: it never will be.
      conn.connectPending = false;
      n++;
    }
    this.frozen.connections += n;
    return n;
  }

  /** Destroys every current connection, both sides. Returns how many there were. */
  cut() {
    const n = this.conns.size;
    for (const conn of [...this.conns]) {
      conn.up.clear();
      conn.down.clear();
      conn.connectPending = false;
      conn.client.destroy();
      if (conn.upstream) conn.upstream.destroy();
      this.conns.delete(conn);
    }
    return n;
  }

  /** Stops listening and destroys every connection. */
  async close() {
    live.delete(this);
    this.cut();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A listening TcpProxy on a free loopback port in front of 127.0.0.1:`targetPort`. */
function tcpProxy(targetPort, targetHost = HOST) {
  return new TcpProxy(targetPort, targetHost).listen();
}

/** Closes every proxy not closed yet. */
async function closeAllProxies() {
  await Promise.all([...live].map((p) => p.close()));
}

process.on('exit', () => {
  for (const p of live) p.cut();
});

module.exports = { tcpProxy, closeAllProxies, TcpProxy };
