'use strict';
// A socket.io server meant to run as a child process (child_process.fork) and be
// driven by the test process over IPC. See cluster.js for the parent side.
//
// Config: JSON in env SIO_SERVER_CONFIG (or in argv[2]):
//   { adapter: 'ours'|'official', client: 'node-redis'|'ioredis', key: '<prefix>',
//     namespaces: ['/', '/admin'], redisUrl: 'redis://127.0.0.1:6379',
//     commandModules: ['/abs/path.js', ...] }   // optional, see "Extending" below
//
// Messages to the parent:
//   { type: 'ready', port, pid }                 listening on 127.0.0.1:port
//   { type: 'connection', nsp, id, tag }         a client socket connected (tag = handshake.auth.tag)
//   { type: 'disconnect', nsp, id, reason }
//   { type: 'reply', id, result } | { type: 'reply', id, error }   answer to a command
//   { type: 'error', source, error }             an error that was caught (redis client 'error', …)
//   { type: 'uncaught', source, error }          uncaughtException / unhandledRejection
//   { type: 'fatal', error }                     startup failed; the process then exits with code 1
// Messages from the parent: { type: 'command', id, name, payload }.
//
// Extending: every command is an entry of COMMANDS below, `(payload, ctx) => result` (may be
// async). A config `commandModules` list of module paths is merged into the table at startup, each
// module exporting `{ name: (payload, ctx) => result }`; no eval anywhere.
//
// When the file is not started by fork() with a config (e.g. `node --test test/` on Node 20 picks
// up every .js under test/), it does nothing and exits 0.

const path = require('node:path');
const http = require('node:http');

const { reviveArgs, serializeError } = require('./wire');

const DEFAULTS = {
  adapter: 'official',
  client: 'node-redis',
  key: 'socket.io',
  namespaces: ['/'],
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  commandModules: [],
};

function readConfig() {
  const raw = process.env.SIO_SERVER_CONFIG || process.argv[2];
  if (!raw) return null;
  return { ...DEFAULTS, ...JSON.parse(raw) };
}

function send(msg) {
  // The channel may already be gone when the parent died or disconnected.
  if (process.connected) process.send(msg);
}

// ---------------------------------------------------------------------------------------------
// Redis clients and adapters

async function createRedisClients(kind, url) {
  if (kind === 'node-redis') {
    const { createClient } = require('redis');
    const pub = createClient({ url });
    const sub = pub.duplicate();
    for (const [name, c] of [['pub', pub], ['sub', sub]]) {
      c.on('error', (err) => send({ type: 'error', source: `redis ${name}`, error: serializeError(err) }));
    }
    await Promise.all([pub.connect(), sub.connect()]);
    return {
      pub,
      sub,
      // node-redis v5: close() waits for pending replies; quit() is the deprecated v4 name.
      close: () => Promise.all([pub, sub].map((c) => (c.isOpen ? (c.close ? c.close() : c.quit()) : null))),
    };
  }
  if (kind === 'ioredis') {
    const Redis = require('ioredis');
    const pub = new Redis(url, { lazyConnect: true });
    const sub = pub.duplicate();
    for (const [name, c] of [['pub', pub], ['sub', sub]]) {
      c.on('error', (err) => send({ type: 'error', source: `redis ${name}`, error: serializeError(err) }));
    }
    await Promise.all([pub.connect(), sub.connect()]);
    return {
      pub,
      sub,
      close: () => Promise.all([pub, sub].map((c) => (c.status === 'end' ? null : c.quit()))),
    };
  }
  throw new Error(`unknown redis client kind: ${kind}`);
}

function loadAdapterModule(kind) {
  if (kind === 'official') return require('@socket.io/redis-adapter');
  if (kind === 'ours') return require(process.env.SIOADAPTER_MODULE || path.join(__dirname, '../../npm'));
  throw new Error(`unknown adapter kind: ${kind}`);
}

// ---------------------------------------------------------------------------------------------
// Commands

function getSocket(ctx, { nsp = '/', socketId }) {
  const socket = ctx.io.of(nsp).sockets.get(socketId);
  if (!socket) throw new Error(`no local socket ${socketId} in namespace ${nsp}`);
  return socket;
}

// Applies the optional broadcast modifiers of a payload to a BroadcastOperator (or Namespace).
function applyModifiers(target, { to, except, volatile, compress, local, timeout }) {
  let op = target;
  if (to !== undefined) op = op.to(to);
  if (except !== undefined) op = op.except(except);
  if (volatile) op = op.volatile;
  if (compress !== undefined) op = op.compress(compress);
  if (local) op = op.local;
  if (timeout !== undefined) op = op.timeout(timeout);
  return op;
}

const COMMANDS = {
  ping: () => 'pong',

  // io.of(nsp)[.to(rooms)][.except(rooms)][.volatile][.compress(b)][.local][.timeout(ms)].emit(event, ...args)
  // payload: { nsp='/', to?, except?, volatile?, compress?, local?, timeout?, event, args=[] }
  emit: (p, ctx) => applyModifiers(ctx.io.of(p.nsp || '/'), p).emit(p.event, ...reviveArgs(p.args || [])),

  // socket.broadcast.emit(...) or socket.to(room).emit(...), with the same optional modifiers.
  // payload: { nsp='/', socketId, to?, except?, volatile?, compress?, local?, event, args=[] }
  socketBroadcast: (p, ctx) => {
    const socket = getSocket(ctx, p);
    const op = applyModifiers(p.to === undefined ? socket.broadcast : socket, p);
    return op.emit(p.event, ...reviveArgs(p.args || []));
  },

  // socket.emit(...) straight to one local socket (no adapter involved). payload: { nsp, socketId, event, args }
  socketEmit: (p, ctx) => getSocket(ctx, p).emit(p.event, ...reviveArgs(p.args || [])),

  // payload: { nsp='/', socketId, rooms: room | [room] }  (numbers allowed). Returns the socket's rooms.
  join: async (p, ctx) => {
    const socket = getSocket(ctx, p);
    await socket.join(p.rooms);
    return [...socket.rooms];
  },

  // payload: { nsp='/', socketId, room }. Returns the socket's rooms.
  leave: async (p, ctx) => {
    const socket = getSocket(ctx, p);
    await socket.leave(p.room);
    return [...socket.rooms];
  },

  // payload: { nsp='/' }. Local socket ids of the namespace.
  socketIds: (p, ctx) => [...ctx.io.of((p && p.nsp) || '/').sockets.keys()],

  // payload: { nsp='/' }. What the namespace's adapter exposes (best effort for 'ours').
  adapterInfo: (p, ctx) => {
    const nsp = (p && p.nsp) || '/';
    const adapter = ctx.io.of(nsp).adapter;
    return {
      kind: ctx.config.adapter,
      client: ctx.config.client,
      key: ctx.config.key,
      nsp,
      uid: adapter.uid,
      constructor: adapter.constructor && adapter.constructor.name,
      // room → socket ids, as the local in-memory adapter sees it
      rooms: Object.fromEntries([...adapter.rooms].map(([room, sids]) => [room, [...sids]])),
    };
  },

  // io.close(), then the Redis clients, then the IPC channel: the process should exit by itself.
  // The reply lists the resources still keeping the event loop alive at that point.
  close: async (p, ctx) => {
    await ctx.io.close();
    await ctx.redis.close();
    ctx.closing = true;
    return { activeResources: process.getActiveResourcesInfo() };
  },
};

// ---------------------------------------------------------------------------------------------
// Main

async function main(config) {
  for (const file of config.commandModules) Object.assign(COMMANDS, require(file));

  const { Server } = require('socket.io');
  const redis = await createRedisClients(config.client, config.redisUrl);
  const { createAdapter } = loadAdapterModule(config.adapter);

  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ['websocket'] });
  io.adapter(createAdapter(redis.pub, redis.sub, { key: config.key }));

  const ctx = { config, io, redis, closing: false };

  for (const name of config.namespaces) {
    io.of(name).on('connection', (socket) => {
      send({ type: 'connection', nsp: name, id: socket.id, tag: socket.handshake.auth && socket.handshake.auth.tag });
      socket.on('disconnect', (reason) => send({ type: 'disconnect', nsp: name, id: socket.id, reason }));
    });
  }

  process.on('message', async (msg) => {
    if (!msg || msg.type !== 'command') return;
    const { id, name, payload } = msg;
    try {
      const command = COMMANDS[name];
      if (!command) throw new Error(`unknown command: ${name}`);
      const result = await command(payload || {}, ctx);
      // Broadcast operators return booleans; anything else must survive JSON serialisation.
      send({ type: 'reply', id, result: result === undefined ? null : result });
    } catch (err) {
      send({ type: 'reply', id, error: serializeError(err) });
    }
    // After a successful close, drop the IPC channel so nothing keeps the process alive.
    if (ctx.closing && process.connected) process.disconnect();
  });

  // If the parent goes away, don't linger.
  process.on('disconnect', () => {
    if (!ctx.closing) process.exit(0);
  });

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', resolve);
  });
  send({ type: 'ready', port: httpServer.address().port, pid: process.pid });
}

const config = require.main === module && process.send ? readConfig() : null;
if (config) {
  // Report instead of crashing, so the test sees what went wrong; the parent decides what it means
  // (e.g. the malformed-payload test fails if any 'uncaught' arrived).
  process.on('uncaughtException', (err) => send({ type: 'uncaught', source: 'uncaughtException', error: serializeError(err) }));
  process.on('unhandledRejection', (err) => send({ type: 'uncaught', source: 'unhandledRejection', error: serializeError(err) }));
  main(config).catch((err) => {
    send({ type: 'fatal', error: serializeError(err) });
    // Let the IPC message flush before exiting.
    if (process.connected) process.disconnect();
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 500).unref();
  });
}

module.exports = { COMMANDS };
