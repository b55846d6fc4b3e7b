'use strict';
// Extra server commands for soak.test.js, loaded through the server config `commandModules` (see
// server.js "Extending"). Opt-in: nothing here runs unless a test lists this module.

const crypto = require('node:crypto');
const fs = require('node:fs');

/** Inodes of the sockets this process holds open (from /proc/self/fd links `socket:[inode]`). */
function socketInodes() {
  const inodes = new Set();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile (e.g. the fd of readdirSync itself)
    }
  }
  return inodes;
}

/**
 * Local ports of this process's TCP connections to remote port `port` (any address), read from
 * /proc/self/net/tcp{,6} and matched by socket inode: to attribute Redis CLIENT LIST entries
 * (`addr=127.0.0.1:<local port>`) to a node.
 */
function localPortsTo(port) {
  const inodes = socketInodes();
  const ports = [];
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const [, local, remote, state] = cols;
      const inode = cols[9];
      // state 01 = ESTABLISHED
      if (state !== '01' || !inodes.has(inode)) continue;
      if (parseInt(remote.split(':')[1], 16) !== port) continue;
      ports.push(parseInt(local.split(':')[1], 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

/** A string of at least `bytes` UTF-8 bytes with multi-byte characters, from random bytes. */
function bigString(bytes) {
  const head = 'héllo wörld ✓ 😀 — ';
  const body = crypto.randomBytes(Math.ceil((bytes * 3) / 4) + 16).toString('base64');
  return head + body.slice(0, Math.max(0, bytes - Buffer.byteLength(head)));
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

module.exports = {
  // The process's RSS / heap and its count of open fds (and, with `redisPort`, the local ports of
  // its TCP connections to that port). payload: { redisPort? }
  procStats: (p) => {
    const mu = process.memoryUsage();
    const out = {
      rss: mu.rss,
      heapUsed: mu.heapUsed,
      external: mu.external,
      arrayBuffers: mu.arrayBuffers,
      fds: fs.readdirSync('/proc/self/fd').length,
    };
    if (p.redisPort) out.redisLocalPorts = localPortsTo(p.redisPort);
    return out;
  },

  // socket.join([`${prefix}0`, …, `${prefix}${count - 1}`]) for the local socket `socketId`, in one
  // call. payload: { nsp='/', socketId, prefix, count } → { ms, rooms: number of the socket's rooms }
  joinRange: async (p, ctx) => {
    const socket = ctx.io.of(p.nsp || '/').sockets.get(p.socketId);
    if (!socket) throw new Error(`no local socket ${p.socketId}`);
    const rooms = Array.from({ length: p.count }, (_, i) => `${p.prefix}${i}`);
    const start = performance.now();
    await socket.join(rooms);
    return { ms: performance.now() - start, rooms: socket.rooms.size };
  },

  // Generates random arguments (kinds: 'string' = ≥ `bytes` UTF-8 bytes with multi-byte
  // characters, 'buffer' = `bytes` random bytes) in the server, then io.of(nsp).emit(event, ...args)
  // (nothing big crosses IPC). payload: { nsp='/', event, kinds: ['string'|'buffer', ...], bytes }
  // → { args: [{ kind, length, bytes, sha256 }], emittedAt (Date.now() just before emit), genMs, emitMs }
  emitLarge: (p, ctx) => {
    const start = performance.now();
    const args = p.kinds.map((kind) => (kind === 'string' ? bigString(p.bytes) : crypto.randomBytes(p.bytes)));
    const described = args.map((a, i) => ({
      kind: p.kinds[i],
      length: a.length,
      bytes: typeof a === 'string' ? Buffer.byteLength(a) : a.length,
      sha256: sha256(a),
    }));
    const genMs = performance.now() - start;
    const emittedAt = Date.now();
    const t = performance.now();
    ctx.io.of(p.nsp || '/').emit(p.event, ...args);
    return { args: described, emittedAt, genMs, emitMs: performance.now() - t };
  },

  // Registers an acking server-side listener io.of(nsp).on(event) that only counts its calls (no
  // IPC message per call, unlike `onServerEvent`) and acks with `reply`. payload: { nsp='/', event, reply }
  onQuietAck: (p, ctx) => {
    const nsp = p.nsp || '/';
    if (!ctx.quietCounts) ctx.quietCounts = {};
    ctx.quietCounts[p.event] = 0;
    ctx.io.of(nsp).on(p.event, (...args) => {
      ctx.quietCounts[p.event]++;
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (ack) ack(p.reply === undefined ? null : p.reply);
    });
    return null;
  },

  // Calls counted by `onQuietAck` listeners: { event: count }.
  quietCounts: (p, ctx) => ctx.quietCounts || {},
};
