'use strict';
// A socket.io server meant to run as a child process (child_process.fork) and be
// driven by the test process over IPC. See cluster.js for the parent side.
//
// Config: JSON in env SIO_SERVER_CONFIG (or in argv[2]):
//   { adapter: 'ours'|'official', client: 'node-redis'|'ioredis', key: '<prefix>',
//       // client may also be 'node-redis-cluster' (createCluster) or 'ioredis-cluster' (Redis.Cluster),
//       // with redisUrl the seed nodes [{ host, port }, ...], or (to give the clients settings of
//       // their own, e.g. TLS) for 'node-redis-cluster' createCluster's options
//       // { rootNodes, defaults, ... }, for 'ioredis-cluster' { nodes: [{ host, port }], options }
//     namespaces: ['/', '/admin'], redisUrl: 'redis://127.0.0.1:6379',
//       // redisUrl may also be a settings object such as { sentinels: [{ host, port }], name }
//       // (with client 'ioredis': the clients' options; with redisClients: false: the adapter's)
//     commandModules: ['/abs/path.js', ...],   // optional, see "Extending" below
//     requestsTimeout: ms, publishOnSpecificResponseChannel: bool,   // optional adapter options
//     perRoomSubscriptions: bool, releaseMemoryWhenIdle: bool,      // (ours only)
//     parser: 'json'|'msgpackr',   // optional: createAdapter's `parser` (helpers/parsers.js)
//     recordRoomOps: bool,    // optional: log every adapter.addAll/del call (see `roomOps`)
//     maxQueuedPublishes: n,  // optional adapter option (ours), passed when set
//     maxQueuedBytes, maxMessageBytes, maxMessageValues, maxMessageDepth, maxReceiveBufferBytes: n,
//                             // optional limit options (ours; test/limits.test.js), passed when set,
//                             // to createShardedAdapter too
//     redisClients: false,    // optional: give the adapter `redisUrl` as a string and open no Redis
//                             // client in the server (ours only; the server then starts even when
//                             // Redis is unreachable, and the adapter's are its only connections)
//     connectClients: false,  // optional: make the Redis clients of `client`/`redisUrl` and hand them
//                             // to the adapter WITHOUT connecting them (ours only, which reads their
//                             // settings and never uses them; e.g. settings node-redis itself could
//                             // not connect with, test/tls-topologies.test.js)
//     adapterEvents: true,    // optional: report the adapters' 'error'/'ready' events ('adapterEvent')
//     transports: ['polling', 'websocket'],   // optional engine.io transports (default: websocket only)
//     adapterFactory: 'sharded', channelPrefix, subscriptionMode }   // optional: createShardedAdapter
//       // (ours or official) with those options instead of createAdapter (`key` is then unused)
//
// A client may pass `auth.data` in its handshake: the server then sets `socket.data` to it on
// connection (what fetchSockets reports as `data`).
//
// Messages to the parent:
//   { type: 'ready', port, pid }                 listening on 127.0.0.1:port
//   { type: 'connection', nsp, id, tag }         a client socket connected (tag = handshake.auth.tag)
//   { type: 'disconnect', nsp, id, reason }
//   { type: 'connClose', nsp, id, reason }       the socket's underlying connection closed
//   { type: 'serverEvent', nsp, event, args, withAck }   a listener of `onServerEvent` was called
//   { type: 'customHook', nsp, data }            the adapter's customHook (see `setCustomHook`) was called
//   { type: 'adapterEvent', nsp, event: 'error'|'ready'|'readyPromise', error?, at }   with config
//                                                adapterEvents: the namespace adapter emitted 'error'
//                                                (error as data, incl. `code`) or 'ready', or its
//                                                `adapter.ready` promise resolved; `at` = Date.now()
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

const { reviveArgs, encodeBuffers, serializeError } = require('./wire');

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

/** Closes a node-redis client (v5 `close()`, v4 `quit()`) or an ioredis one, unless already closed. */
function closeClient(c) {
  if (typeof c.status === 'string') {
    if (c.status === 'wait') return c.disconnect(); // ioredis, lazy and never connected (connectClients: false)
    return c.status === 'end' ? null : c.quit(); // ioredis
  }
  return c.isOpen ? (c.close ? c.close() : c.quit()) : null; // node-redis: close() waits for pending replies
}

/**
 * `pub` and its duplicate `sub`, connected (unless `connect` is false), their errors reported to
 * the parent.
 */
async function connectPair(pub, connect = true) {
  const sub = pub.duplicate();
  for (const [name, c] of [['pub', pub], ['sub', sub]]) {
    c.on('error', (err) => send({ type: 'error', source: `redis ${name}`, error: serializeError(err) }));
  }
  if (connect) await Promise.all([pub.connect(), sub.connect()]);
  return { pub, sub, close: () => Promise.all([pub, sub].map(closeClient)) };
}

/** True for createCluster's options ({ rootNodes, ... }) rather than a seed list. */
const isClusterOptions = (url) => url !== null && typeof url === 'object' && !Array.isArray(url) && Array.isArray(url.rootNodes);

async function createRedisClients(kind, url, connect = true) {
  switch (kind) {
    case 'node-redis':
      return connectPair(require('redis').createClient({ url }), connect);
    case 'ioredis': {
      const Redis = require('ioredis');
      // `url` may be an ioredis options object instead, e.g. { sentinels: [{ host, port }], name }.
      return connectPair(typeof url === 'string' ? new Redis(url, { lazyConnect: true }) : new Redis({ ...url, lazyConnect: true }), connect);
    }
    // A Redis Cluster: `url` is the seed nodes, [{ host, port }, ...] (test/cluster.test.js), or
    // createCluster's options / { nodes, options } of Redis.Cluster.
    case 'node-redis-cluster':
      return connectPair(require('redis').createCluster(isClusterOptions(url)
        ? url
        : { rootNodes: [].concat(url).map(({ host, port }) => ({ url: `redis://${host}:${port}` })) }), connect);
    case 'ioredis-cluster': {
      const { Cluster } = require('ioredis');
      if (url && Array.isArray(url.nodes)) return connectPair(new Cluster(url.nodes, { ...url.options, lazyConnect: true }), connect);
      return connectPair(new Cluster([].concat(url), { lazyConnect: true }), connect);
    }
    default:
      throw new Error(`unknown redis client kind: ${kind}`);
  }
}

/** Limit options passed to the adapter when the config sets them (test/limits.test.js). */
const LIMIT_OPTIONS = ['maxQueuedBytes', 'maxMessageBytes', 'maxMessageValues', 'maxMessageDepth', 'maxReceiveBufferBytes'];

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

// Runs `fn` and reports its outcome as data: { ok: true, value, ms } or { ok: false, error, ms }.
async function settle(fn) {
  const start = performance.now();
  try {
    const value = await fn();
    return { ok: true, value: value === undefined ? null : value, ms: performance.now() - start };
  } catch (err) {
    return { ok: false, error: describeError(err), ms: performance.now() - start };
  }
}

// An error as plain data, with the extra numeric/string fields some adapters attach.
function describeError(err) {
  if (!(err instanceof Error)) return { name: 'NonError', message: String(err) };
  const out = { name: err.name, message: err.message };
  for (const [k, v] of Object.entries(err)) {
    if (['string', 'number', 'boolean'].includes(typeof v) || v === null) out[k] = v;
  }
  return out;
}

// A Socket or RemoteSocket as plain data.
function describeSocket(s) {
  return { id: s.id, handshake: s.handshake, rooms: [...s.rooms].map(String), data: s.data, kind: s.constructor.name };
}

// Wraps adapter.addAll / adapter.del of namespace `name` to log every call (see `roomOps`).
function recordRoomOps(ctx, name) {
  const adapter = ctx.io.of(name).adapter;
  const log = [];
  ctx.roomOps.set(name, log);
  const addAll = adapter.addAll;
  const del = adapter.del;
  adapter.addAll = function (id, rooms) {
    for (const room of rooms) log.push(['add', id, String(room)]);
    return addAll.call(this, id, rooms);
  };
  adapter.del = function (id, room) {
    log.push(['del', id, String(room)]);
    return del.call(this, id, room);
  };
}

// Reports the 'error' and 'ready' events of namespace `name`'s adapter (and the resolution of its
// `ready` promise, when it has one) to the parent as 'adapterEvent' messages.
function reportAdapterEvents(ctx, name) {
  const adapter = ctx.io.of(name).adapter;
  adapter.on('error', (err) => send({ type: 'adapterEvent', nsp: name, event: 'error', error: describeError(err), at: Date.now() }));
  adapter.on('ready', () => send({ type: 'adapterEvent', nsp: name, event: 'ready', at: Date.now() }));
  if (adapter.ready && typeof adapter.ready.then === 'function') {
    adapter.ready.then(() => send({ type: 'adapterEvent', nsp: name, event: 'readyPromise', at: Date.now() }));
  }
}

const COMMANDS = {
  ping: () => 'pong',

  // io.of(nsp)[.to(rooms)][.except(rooms)][.volatile][.compress(b)][.local][.timeout(ms)].emit(event, ...args)
  // payload: { nsp='/', to?, except?, volatile?, compress?, local?, timeout?, event, args=[] }
  emit: (p, ctx) => applyModifiers(ctx.io.of(p.nsp || '/'), p).emit(p.event, ...reviveArgs(p.args || [])),

  // socket.broadcast.emit(...) or socket.to(room).emit(...), with the same optional modifiers.
  // payload: { nsp='/', socketId, to?, except?, volatile?, compress?, local?, event, args=[] }
  // Many broadcasts in one turn of the event loop: p.items = [{ event, args, to, except, ... }].
  emitMany: (p, ctx) => {
    for (const item of p.items) applyModifiers(ctx.io.of(p.nsp || '/'), item).emit(item.event, ...reviveArgs(item.args || []));
    return p.items.length;
  },
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

  // ---- Cluster requests (fetchSockets, socketsJoin, serverSideEmit, acks, ...) -------------------
  // Commands whose outcome is under test return `{ ok, value, ms }` or `{ ok: false, error, ms }`
  // (see settle()) instead of failing, so the test sees the exact error message, its extra fields
  // (`received`, `expected`) and how long the call took.

  // io.of(nsp)[.in(rooms)][.except(rooms)][.local][.timeout(ms)].fetchSockets()
  // payload: { nsp='/', in?, except?, local?, timeout? } → settled list of { id, handshake, rooms, data, kind }
  fetchSockets: (p, ctx) =>
    settle(async () => {
      const sockets = await applyModifiers(ctx.io.of(p.nsp || '/'), { to: p.in, except: p.except, local: p.local, timeout: p.timeout }).fetchSockets();
      return sockets.map(describeSocket);
    }),

  // Fetches the socket `socketId` with io.of(nsp).fetchSockets() and calls `op` on what came back
  // (a RemoteSocket when it lives on another node). payload: { nsp='/', socketId, op: 'emit'|'join'|'leave'|'disconnect', args=[] }
  remoteSocket: (p, ctx) =>
    settle(async () => {
      const sockets = await ctx.io.of(p.nsp || '/').fetchSockets();
      const socket = sockets.find((s) => s.id === p.socketId);
      if (!socket) throw new Error(`fetchSockets did not return socket ${p.socketId} (got ${sockets.map((s) => s.id).join(', ')})`);
      const result = socket[p.op](...reviveArgs(p.args || []));
      return { kind: socket.constructor.name, result: result === undefined || typeof result === 'object' ? null : result };
    }),

  // io.of(nsp)[.in()][.except()][.local].socketsJoin(rooms) / socketsLeave(rooms). payload: { nsp='/', in?, except?, local?, rooms }
  socketsJoin: (p, ctx) => {
    applyModifiers(ctx.io.of(p.nsp || '/'), { to: p.in, except: p.except, local: p.local }).socketsJoin(p.rooms);
    return null;
  },
  socketsLeave: (p, ctx) => {
    applyModifiers(ctx.io.of(p.nsp || '/'), { to: p.in, except: p.except, local: p.local }).socketsLeave(p.rooms);
    return null;
  },
  // payload: { nsp='/', in?, except?, local?, close=false }
  disconnectSockets: (p, ctx) => {
    applyModifiers(ctx.io.of(p.nsp || '/'), { to: p.in, except: p.except, local: p.local }).disconnectSockets(Boolean(p.close));
    return null;
  },

  // Registers io.of(nsp).on(event, listener): every call is reported to the parent as a
  // 'serverEvent' message; when the emitter asked for an ack, the listener acks with `reply`
  // (unless `noAck`). Registering the same nsp+event again replaces the listener.
  // payload: { nsp='/', event, reply?, noAck? }
  onServerEvent: (p, ctx) => {
    const nsp = p.nsp || '/';
    const key = `${nsp}\u0000${p.event}`;
    const previous = ctx.serverListeners.get(key);
    if (previous) ctx.io.of(nsp).off(p.event, previous);
    const listener = (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      send({ type: 'serverEvent', nsp, event: p.event, args: encodeBuffers(args), withAck: ack !== null });
      if (ack && !p.noAck) ack(p.reply === undefined ? null : p.reply);
    };
    ctx.serverListeners.set(key, listener);
    ctx.io.of(nsp).on(p.event, listener);
    return null;
  },

  // io.of(nsp).serverSideEmit(event, ...args) (mode 'none'), with an ack callback (mode
  // 'callback': → { err, responses }) or io.of(nsp).serverSideEmitWithAck (mode 'promise': settled).
  // payload: { nsp='/', event, args=[], mode='none' }
  serverSideEmit: (p, ctx) => {
    const nsp = ctx.io.of(p.nsp || '/');
    const args = reviveArgs(p.args || []);
    const mode = p.mode || 'none';
    if (mode === 'none') return nsp.serverSideEmit(p.event, ...args);
    if (mode === 'promise') return settle(() => nsp.serverSideEmitWithAck(p.event, ...args));
    const start = performance.now();
    return new Promise((resolve) => {
      nsp.serverSideEmit(p.event, ...args, (err, responses) =>
        resolve({ err: err ? describeError(err) : null, responses, ms: performance.now() - start }),
      );
    });
  },

  // io.of(nsp)[.to()][.except()].timeout(ms).emit(event, ...args, cb) (mode 'callback': → { err, responses, ms })
  // or .emitWithAck(event, ...args) (mode 'promise': settled). payload: { nsp='/', to?, except?, timeout, event, args=[], mode='callback' }
  emitWithAck: (p, ctx) => {
    const op = applyModifiers(ctx.io.of(p.nsp || '/'), { to: p.to, except: p.except, timeout: p.timeout });
    const args = reviveArgs(p.args || []);
    if (p.mode === 'promise') return settle(() => op.emitWithAck(p.event, ...args));
    const start = performance.now();
    return new Promise((resolve) => {
      op.emit(p.event, ...args, (err, responses) => resolve({ err: err ? describeError(err) : null, responses, ms: performance.now() - start }));
    });
  },

  // payload: { nsp='/' } → settled number
  serverCount: (p, ctx) => settle(() => ctx.io.of(p.nsp || '/').adapter.serverCount()),

  // adapter.allRooms() → settled sorted array. payload: { nsp='/' }
  allRooms: (p, ctx) => settle(async () => [...(await ctx.io.of(p.nsp || '/').adapter.allRooms())].map(String).sort()),

  // Calls any adapter method (e.g. the seeds' API of ours): adapter[method](...args). Arguments at
  // the indexes listed in `setArgs` are turned into Sets. With `callback: true` a trailing
  // Node-style callback is passed and its (err, value) is what settles (the returned value is
  // ignored then); `callbackCalls` counts its calls. A Set result comes back as { set: [...] }.
  // payload: { nsp='/', method, args=[], setArgs=[], callback=false } → settled
  adapterCall: (p, ctx) =>
    settle(async () => {
      const adapter = ctx.io.of(p.nsp || '/').adapter;
      if (typeof adapter[p.method] !== 'function') throw new Error(`adapter has no method ${p.method}`);
      const args = reviveArgs(p.args || []).map((a, i) => ((p.setArgs || []).includes(i) ? new Set(a) : a));
      let value;
      if (p.callback) {
        value = await new Promise((resolve, reject) => {
          adapter[p.method](...args, (err, result) => (err ? reject(err) : resolve(result)));
        });
      } else {
        value = await adapter[p.method](...args);
      }
      return value instanceof Set ? { set: [...value] } : value === undefined ? null : value;
    }),

  // Sets adapter.customHook = (data, cb) => cb(null, { reply, data }); each call is reported as a
  // 'customHook' message. payload: { nsp='/', reply }
  setCustomHook: (p, ctx) => {
    const nsp = p.nsp || '/';
    ctx.io.of(nsp).adapter.customHook = (data, cb) => {
      send({ type: 'customHook', nsp, data });
      cb(null, { reply: p.reply, data });
    };
    return null;
  },

  // What is pending in the namespace's adapter: sizes of `requests` and `ackRequests` (both
  // adapters), and `stats()` when the adapter has it (ours). payload: { nsp='/' }
  pending: (p, ctx) => {
    const adapter = ctx.io.of(p.nsp || '/').adapter;
    const size = (m) => (m && typeof m.size === 'number' ? m.size : null);
    let stats = null;
    if (typeof adapter.stats === 'function') {
      stats = Object.fromEntries(Object.entries(adapter.stats()).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]));
    }
    return { requests: size(adapter.requests), ackRequests: size(adapter.ackRequests), stats };
  },

  // The namespace's local sockets: [{ id, rooms, data, connected }]. payload: { nsp='/' }
  localSockets: (p, ctx) =>
    [...ctx.io.of(p.nsp || '/').sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms].map(String), data: s.data, connected: s.connected })),

  // With config.recordRoomOps: every adapter.addAll(id, rooms) / adapter.del(id, room) call of the
  // namespace since startup, as [op, id, room] (one entry per room). payload: { nsp='/' }
  roomOps: (p, ctx) => ctx.roomOps.get(p.nsp || '/') || [],

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
  const redis = config.redisClients === false
    ? { pub: config.redisUrl, sub: undefined, close: async () => {} }
    : await createRedisClients(config.client, config.redisUrl, config.connectClients !== false);
  const adapterModule = loadAdapterModule(config.adapter);

  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: config.transports || ['websocket'] });
  const adapterOpts = { key: config.key };
  for (const name of ['requestsTimeout', 'publishOnSpecificResponseChannel', 'maxQueuedPublishes', 'perRoomSubscriptions', 'releaseMemoryWhenIdle', ...LIMIT_OPTIONS]) {
    if (config[name] !== undefined) adapterOpts[name] = config[name];
  }
  if (config.parser !== undefined) adapterOpts.parser = require('./parsers').parserNamed(config.parser);
  if (config.adapterFactory === 'sharded') {
    // createShardedAdapter(pub, sub, { channelPrefix, subscriptionMode }) (test/sharded.test.js)
    const shardedOpts = {};
    for (const name of ['channelPrefix', 'subscriptionMode', 'maxQueuedPublishes', 'releaseMemoryWhenIdle', ...LIMIT_OPTIONS]) {
      if (config[name] !== undefined) shardedOpts[name] = config[name];
    }
    io.adapter(adapterModule.createShardedAdapter(redis.pub, redis.sub, shardedOpts));
  } else {
    io.adapter(adapterModule.createAdapter(redis.pub, redis.sub, adapterOpts));
  }

  const ctx = { config, io, redis, closing: false, serverListeners: new Map(), roomOps: new Map() };
  live.ctx = ctx;

  for (const name of config.namespaces) {
    if (config.recordRoomOps) recordRoomOps(ctx, name);
    if (config.adapterEvents) reportAdapterEvents(ctx, name);
    io.of(name).on('connection', (socket) => {
      const auth = socket.handshake.auth || {};
      if (auth.data !== undefined) socket.data = auth.data;
      send({ type: 'connection', nsp: name, id: socket.id, tag: socket.handshake.auth && socket.handshake.auth.tag });
      socket.on('disconnect', (reason) => send({ type: 'disconnect', nsp: name, id: socket.id, reason }));
      // Why the underlying connection closed: 'forced close' when the server closed it (e.g.
      // disconnectSockets(true)), 'transport close' when the client did.
      socket.conn.once('close', (reason) => send({ type: 'connClose', nsp: name, id: socket.id, reason }));
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

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', resolve);
  });
  send({ type: 'ready', port: httpServer.address().port, pid: process.pid });
}

/** The running server's ctx, once main() made it (for the 'disconnect' handler). */
const live = { ctx: null, failed: false };

const config = require.main === module && process.send ? readConfig() : null;
if (config) {
  // If the parent goes away, don't linger: also while still starting (e.g. connecting to a Redis
  // that the parent's cleanup already killed), so registered before main() runs. After the `close`
  // command the process disconnects itself and exits once idle.
  process.on('disconnect', () => {
    if (!live.failed && !(live.ctx && live.ctx.closing)) process.exit(0);
  });
  // Report instead of crashing, so the test sees what went wrong; the parent decides what it means
  // (e.g. the malformed-payload test fails if any 'uncaught' arrived).
  process.on('uncaughtException', (err) => send({ type: 'uncaught', source: 'uncaughtException', error: serializeError(err) }));
  process.on('unhandledRejection', (err) => send({ type: 'uncaught', source: 'unhandledRejection', error: serializeError(err) }));
  main(config).catch((err) => {
    send({ type: 'fatal', error: serializeError(err) });
    // Let the IPC message flush before exiting (with code 1, below).
    live.failed = true;
    if (process.connected) process.disconnect();
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 500).unref();
  });
}

module.exports = { COMMANDS };
