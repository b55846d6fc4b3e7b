"use strict";
// `Emitter`: the API of @socket.io/redis-emitter (emit into a socket.io cluster from a process
// that is not a socket.io server), on the Rust core. notepack.io encodes each emit's
// `[event, ...args]`; what follows it in the message (the packet's nsp and the opts) is encoded
// once per target selection. Rust frames `[uid "emitter", packet, opts]` around the two, picks the
// channel and publishes: the bytes are those of the official emitter.

const notepack = require("notepack.io");
const native = require("./native");
const { resolveRedisUrl, resolveTlsCa, optionError } = require("./connection");
const { readLimits } = require("./limits");

/** Event names `emit` and `serverSideEmit` refuse (socket.io's own events), as officially exported. */
const RESERVED_EVENTS = new Set(native.PROTOCOL.reservedEvents);

function checkEvent(ev) {
  if (RESERVED_EVENTS.has(ev)) throw new Error(`"${String(ev)}" is a reserved event name`);
}

/**
 * What follows `data` in a packet to `nsp` for `opts`: the packet's `nsp` entry, then the opts
 * map, as notepack encodes `{ type, data, nsp }` and `{ rooms, flags, except }` (a 1-entry map's
 * header is one byte, left out).
 */
function encodeTail(nsp, opts) {
  return Buffer.concat([notepack.encode({ nsp }).subarray(1), notepack.encode(opts)]);
}

function targets(rooms, exceptRooms) {
  return [JSON.stringify([...rooms]), JSON.stringify([...exceptRooms])];
}

/** An immutable selection of sockets (rooms, excepts, flags) to emit to or act on. */
class BroadcastOperator {
  constructor(emitter, rooms = new Set(), exceptRooms = new Set(), flags = {}) {
    this._emitter = emitter;
    this._rooms = rooms;
    this._except = exceptRooms;
    this._flags = flags;
    // Encoded on the first emit (the selection never changes: `to()` and the others make new ones).
    this._tail = null;
    this._room = null;
  }

  /** Targets the sockets in `room` (a room or an array of rooms). */
  to(room) {
    const rooms = new Set(this._rooms);
    for (const r of Array.isArray(room) ? room : [room]) rooms.add(r);
    return new BroadcastOperator(this._emitter, rooms, this._except, this._flags);
  }

  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }

  /** Excludes the sockets in `room` (a room or an array of rooms). */
  except(room) {
    const exceptRooms = new Set(this._except);
    for (const r of Array.isArray(room) ? room : [room]) exceptRooms.add(r);
    return new BroadcastOperator(this._emitter, this._rooms, exceptRooms, this._flags);
  }

  /** Sets the compress flag. */
  compress(compress) {
    return new BroadcastOperator(this._emitter, this._rooms, this._except, { ...this._flags, compress });
  }

  /** The message may be dropped for clients that are not ready. */
  get volatile() {
    return new BroadcastOperator(this._emitter, this._rooms, this._except, { ...this._flags, volatile: true });
  }

  /** Emits `ev` with `args` to the selected sockets of every node. */
  emit(ev, ...args) {
    checkEvent(ev);
    if (!this._tail) {
      const opts = { rooms: [...this._rooms], flags: this._flags, except: [...this._except] };
      this._room = opts.rooms.length === 1 ? String(opts.rooms[0]) : null;
      this._tail = encodeTail(this._emitter._nsp, opts);
    }
    this._emitter._native.broadcast(this._room, notepack.encode([ev, ...args]), this._tail);
    return true;
  }

  /** Makes the selected sockets join `rooms`. */
  socketsJoin(rooms) {
    this._emitter._native.changeRooms(true, ...targets(this._rooms, this._except), JSON.stringify(Array.isArray(rooms) ? rooms : [rooms]));
  }

  /** Makes the selected sockets leave `rooms`. */
  socketsLeave(rooms) {
    this._emitter._native.changeRooms(false, ...targets(this._rooms, this._except), JSON.stringify(Array.isArray(rooms) ? rooms : [rooms]));
  }

  /** Disconnects the selected sockets (`close`: also close the underlying connection). */
  disconnectSockets(close = false) {
    this._emitter._native.disconnectSockets(...targets(this._rooms, this._except), Boolean(close));
  }
}

/**
 * Emits into a socket.io cluster, like `new Emitter(redisClient, { key }, nsp)` of
 * `@socket.io/redis-emitter`. `redisClient` is read for its settings (or is a URL / settings /
 * nothing for `redis://127.0.0.1:6379`); the Rust core opens its own connection.
 */
class Emitter {
  constructor(redisClient, opts = {}, nsp = "/", shared = null) {
    if (opts === null || typeof opts !== "object") throw optionError("opts", "expected an object");
    if (opts.key !== undefined && typeof opts.key !== "string") throw optionError("key", `expected a string, got ${typeof opts.key}`);
    this.redisClient = redisClient;
    // maxQueuedPublishes, maxQueuedBytes and maxMessageBytes apply (README "Limits").
    const limits = readLimits(opts);
    this.opts = { ...opts, key: opts.key || native.PROTOCOL.defaults.key };
    this._nsp = nsp.startsWith("/") ? nsp : `/${nsp}`;
    if (!shared) {
      const url = resolveRedisUrl(redisClient, "redisClient");
      const connection = new native.Connection(url, limits, resolveTlsCa(redisClient));
      shared = { connection };
    }
    this._shared = shared;
    this._native = new native.NativeEmitter(this._shared.connection, this.opts.key, this._nsp, limits);
    // `emit` on the emitter itself, to every socket: one selection, kept.
    this._everyone = new BroadcastOperator(this);
  }

  /** The namespace this emitter emits into, with its leading "/". */
  get nsp() {
    return this._nsp;
  }

  /** The emitter of another namespace (a leading "/" is added when missing). */
  of(nsp) {
    return new Emitter(this.redisClient, this.opts, nsp, this._shared);
  }

  emit(ev, ...args) {
    return this._everyone.emit(ev, ...args);
  }

  to(room) {
    return new BroadcastOperator(this).to(room);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return new BroadcastOperator(this).except(room);
  }

  get volatile() {
    return new BroadcastOperator(this).volatile;
  }

  compress(compress) {
    return new BroadcastOperator(this).compress(compress);
  }

  socketsJoin(rooms) {
    new BroadcastOperator(this).socketsJoin(rooms);
  }

  socketsLeave(rooms) {
    new BroadcastOperator(this).socketsLeave(rooms);
  }

  disconnectSockets(close = false) {
    new BroadcastOperator(this).disconnectSockets(close);
  }

  /** Emits to the server-side listeners of every node. Acknowledgements are not supported. */
  serverSideEmit(...args) {
    if (typeof args[args.length - 1] === "function") throw new Error("Acknowledgements are not supported");
    checkEvent(args[0]);
    this._native.serverSideEmit(JSON.stringify(args));
  }

  /**
   * The Redis connection's counters and link state (`published`, `dropped`, `pending`,
   * `link`, ...), shared by the emitters made with `of()` from this one.
   */
  stats() {
    return { redis: this._shared.connection.stats() };
  }

  /** Sends what is queued (for a short while at most) and closes the connection. */
  close() {
    return this._shared.connection.close();
  }
}

module.exports = { Emitter, BroadcastOperator, RESERVED_EVENTS };
