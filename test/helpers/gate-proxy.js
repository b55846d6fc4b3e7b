'use strict';
// A TCP gate in front of a Redis: while open it forwards every connection to the target; `close()`
// destroys every connection through it and stops listening, so that connecting to its port is
// refused (Redis "unreachable" for whoever uses the gate's URL, while everybody else keeps the
// same Redis); `open()` listens on the same port again. test/limits.test.js uses it to take one
// node's Redis away without disturbing the node that must receive its queued messages.
//
//   const g = await gate(REDIS_URL);   // open, on a free loopback port
//   g.url                              // REDIS_URL with host:port replaced by the gate's
//   await g.close(); await g.open();
//   await closeAllGates();             // in an `after` hook

const net = require('node:net');
const { freePort } = require('./redis-process');

const live = new Set();

class Gate {
  constructor(port, target) {
    this.port = port;
    this.target = target; // { host, port }
    const url = new URL(target.url);
    url.host = `127.0.0.1:${port}`;
    this.url = url.toString();
    this.server = null;
    this.sockets = new Set();
    this.connections = 0; // accepted since creation
    live.add(this);
  }

  get isOpen() {
    return this.server !== null;
  }

  /** Listens on this.port (again) and forwards every new connection to the target. */
  async open() {
    if (this.server) return;
    const server = net.createServer((client) => {
      this.connections++;
      const upstream = net.connect(this.target.port, this.target.host);
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Stops listening and destroys every connection through the gate (both sides). */
  async close() {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }
}

/** An open gate in front of the Redis at `targetUrl` (redis://host:port...), on a free loopback port. */
async function gate(targetUrl) {
  const url = new URL(targetUrl);
  const g = new Gate(await freePort(), { url: targetUrl, host: url.hostname || '127.0.0.1', port: Number(url.port) || 6379 });
  await g.open();
  return g;
}

/** Closes every gate made by this process. */
async function closeAllGates() {
  await Promise.all([...live].map((g) => g.close()));
  live.clear();
}

module.exports = { gate, closeAllGates };
