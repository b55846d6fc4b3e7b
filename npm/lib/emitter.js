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
const { warn } = require("./log");
const { readParser, toBuffer } = require("./parser");
const { validateShardedOptions, encodeMessage, Type } = require("./sharded");

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

/** Most emits handed to the core in one call. */
const BATCH_MESSAGES = 256;
/**
 * An upper bound of what the core adds around an emit's data and tail: the frame `[uid
 * "emitter", { type, data ...` (21 bytes).
 */
const FRAME_BYTES = 32;

/**
 * The emits of one run of JavaScript, handed to the core in one call at its end (a microtask),
 * or every BATCH_MESSAGES emits: a call into the addon costs more than packing a message.
 * One per connection, shared by the emitters made with `of()`, so emits keep their order across
 * namespaces; every other command flushes it first (`direct`).
 *
 * `emit` still throws at once, as a message emitted alone would, when the publish queue is full
 * or the message too large: a message joins the batch only when it certainly fits, that is
 * when the room left in the core's queue as last read (less what the batch holds) fits it; the
 * room only grows meanwhile, as the queue drains. Otherwise the batch is flushed, and the
 * message goes to the core alone, which takes or refuses it exactly as before.
 */
class EmitBatch {
  constructor(connection, limits) {
    this._connection = connection;
    this._limits = limits;
    this._native = null;
    // Target selections (operators); messages' selection and data.
    this._ops = [];
    this._selections = [];
    this._datas = [];
    this._packedBytes = 0;
    // Messages and bytes the core's queue has room for, less the batch (0: read it again).
    this._slots = 0;
    this._room = 0;
    this._scheduled = false;
    this._closed = false;
    this._flushLater = () => {
      this._scheduled = false;
      try {
        this.flush();
      } catch (err) {
        // Not expected (the batch only holds messages that fit); counted in stats().redis.dropped.
        warn(`sioadapter Emitter: ${err.message}`, err.code || "ERR_SIO_EMIT");
      }
    };
  }

  /** Queues the emit of `data` (notepack's `[event, ...args]`) to `op`'s selection through `native`. */
  add(native, op, data) {
    const weight = data.length + op._weight;
    if (native !== this._native || this._datas.length >= BATCH_MESSAGES || !this._fits(weight, data.length + op._frameBytes)) {
      this.flush();
      this._native = native;
      if (!this._fits(weight, data.length + op._frameBytes)) {
        this.direct(() => native.broadcast(op._room, data, op._tail));
        return;
      }
    }
    if (this._ops[this._ops.length - 1] !== op) {
      this._ops.push(op);
      this._packedBytes += 4 + op._tail.length;
    }
    this._selections.push(this._ops.length - 1);
    this._datas.push(data);
    this._packedBytes += 8 + data.length;
    this._slots -= 1;
    this._room -= weight;
    if (!this._scheduled) {
      this._scheduled = true;
      queueMicrotask(this._flushLater);
    }
  }

  /** True when a message certainly fits: `weight` in the queue, `payloadBytes` at most. */
  _fits(weight, payloadBytes) {
    return !this._closed && this._slots >= 1 && weight <= this._room && payloadBytes <= this._limits.maxMessageBytes;
  }

  /** Hands what waits to the core, then reads the room left in its queue. */
  flush() {
    const count = this._datas.length;
    if (count > 0) {
      const { _ops: ops, _selections: selections, _datas: datas } = this;
      const packed = Buffer.allocUnsafe(this._packedBytes);
      let at = 0;
      for (const op of ops) {
        at = packed.writeUInt32LE(op._tail.length, at);
        at += op._tail.copy(packed, at);
      }
      for (let i = 0; i < count; i++) {
        at = packed.writeUInt32LE(selections[i], at);
        at = packed.writeUInt32LE(datas[i].length, at);
        at += datas[i].copy(packed, at);
      }
      this._ops = [];
      this._selections = [];
      this._datas = [];
      this._packedBytes = 0;
      try {
        this._native.broadcastPacked(ops.map((op) => op._room), packed);
      } finally {
        this._readRoom();
      }
    } else if (!this._closed) {
      this._readRoom();
    }
  }

  /** Runs `command` (a call into the core that queues a message) after what waits. */
  direct(command) {
    this.flush();
    try {
      return command();
    } finally {
      this._slots = 0;
    }
  }

  /** No more batching: what is emitted from now on goes to the core alone (which refuses it). */
  close() {
    this.flush();
    this._closed = true;
  }

  _readRoom() {
    const queued = this._connection.stats();
    this._slots = this._limits.maxQueuedPublishes - queued.pending;
    this._room = this._limits.maxQueuedBytes - queued.pendingBytes;
  }
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
    this._opts = null;
    // What a message to this selection weighs in the core's queue beyond its data: the tail and
    // frame (`_frameBytes`, against maxMessageBytes), and its channel.
    this._frameBytes = 0;
    this._weight = 0;
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
    if (!this._opts) {
      this._opts = { rooms: [...this._rooms], flags: this._flags, except: [...this._except] };
      this._room = this._opts.rooms.length === 1 ? String(this._opts.rooms[0]) : null;
    }
    this._emitter._emitTo(this, ev, args);
    return true;
  }

  /**
   * The classic emitter's encoding of this selection, made on its first emit: what follows
   * `data` in the message, and what a message weighs in the core's queue beyond its data (the
   * tail and frame, `_frameBytes`, against maxMessageBytes, and its channel).
   */
  _encodeTail(key, nsp) {
    if (this._tail) return;
    this._tail = encodeTail(nsp, this._opts);
    this._frameBytes = this._tail.length + FRAME_BYTES;
    this._weight = this._frameBytes + Buffer.byteLength(`${key}#${nsp}#${this._room === null ? "" : `${this._room}#`}`);
  }

  /** Makes the selected sockets join `rooms`. */
  socketsJoin(rooms) {
    this._emitter._direct((native) => native.changeRooms(true, ...targets(this._rooms, this._except), JSON.stringify(Array.isArray(rooms) ? rooms : [rooms])));
  }

  /** Makes the selected sockets leave `rooms`. */
  socketsLeave(rooms) {
    this._emitter._direct((native) => native.changeRooms(false, ...targets(this._rooms, this._except), JSON.stringify(Array.isArray(rooms) ? rooms : [rooms])));
  }

  /** Disconnects the selected sockets (`close`: also close the underlying connection). */
  disconnectSockets(close = false) {
    this._emitter._direct((native) => native.disconnectSockets(...targets(this._rooms, this._except), Boolean(close)));
  }
}

/**
 * What both emitters have: the @socket.io/redis-emitter API over a native emitter (`_native`)
 * and a connection shared with the emitters `of()` makes (`_shared`). Subclasses make the native
 * half and say how a broadcast is sent (`_emitTo`).
 */
class EmitterBase {
  constructor(redisClient, nsp, shared) {
    this.redisClient = redisClient;
    this._nsp = nsp.startsWith("/") ? nsp : `/${nsp}`;
    this._shared = shared;
    // `emit` on the emitter itself, to every socket: one selection, kept.
    this._everyone = new BroadcastOperator(this);
  }

  /** The namespace this emitter emits into, with its leading "/". */
  get nsp() {
    return this._nsp;
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
    this._direct((native) => native.serverSideEmit(JSON.stringify(args)));
  }

  /** Runs `command` on this emitter's native half after the emits waiting to be handed over. */
  _direct(command) {
    const { batch } = this._shared;
    return batch ? batch.direct(() => command(this._native)) : command(this._native);
  }

  /**
   * The Redis connection's counters and link state (`published`, `dropped`, `pending`,
   * `link`, ...), shared by the emitters made with `of()` from this one.
   */
  stats() {
    if (this._shared.batch) this._shared.batch.flush();
    return { redis: this._shared.connection.stats() };
  }

  /** Sends what is queued (for a short while at most) and closes the connection. */
  close() {
    if (this._shared.batch) this._shared.batch.close();
    return this._shared.connection.close();
  }
}

/**
 * Emits into a socket.io cluster, like `new Emitter(redisClient, { key }, nsp)` of
 * `@socket.io/redis-emitter`. `redisClient` is read for its settings (or is a URL / settings /
 * nothing for `redis://127.0.0.1:6379`); the Rust core opens its own connection.
 */
class Emitter extends EmitterBase {
  constructor(redisClient, opts = {}, nsp = "/", shared = null) {
    if (opts === null || typeof opts !== "object") throw optionError("opts", "expected an object");
    if (opts.key !== undefined && typeof opts.key !== "string") throw optionError("key", `expected a string, got ${typeof opts.key}`);
    // maxQueuedPublishes, maxQueuedBytes and maxMessageBytes apply (README "Limits").
    const limits = readLimits(opts);
    // What encodes broadcasts (notepack.io, the official default, is the core's own).
    const parser = readParser(opts.parser, false);
    if (!shared) {
      const connection = new native.Connection(resolveRedisUrl(redisClient, "redisClient"), limits, resolveTlsCa(redisClient));
      shared = { connection, batch: new EmitBatch(connection, limits) };
    }
    super(redisClient, nsp, shared);
    this._parser = parser;
    this.opts = { ...opts, key: opts.key || native.PROTOCOL.defaults.key };
    this._native = new native.NativeEmitter(shared.connection, this.opts.key, this._nsp, limits);
  }

  /** The emitter of another namespace (a leading "/" is added when missing). */
  of(nsp) {
    return new Emitter(this.redisClient, this.opts, nsp, this._shared);
  }

  _emitTo(op, ev, args) {
    if (this._parser.custom) {
      // The whole message, as the official emitter encodes it with the same parser.
      const message = this._parser.parser.encode(["emitter", { type: 2, data: [ev, ...args], nsp: this._nsp }, op._opts]);
      this._direct((native) => native.broadcastHostEncoded(op._room, toBuffer(message)));
    } else {
      op._encodeTail(this.opts.key, this._nsp);
      this._shared.batch.add(this._native, op, notepack.encode([ev, ...args]));
    }
  }
}

/**
 * Emits into a cluster of sharded adapters (`createShardedAdapter`, official or ours, on a Redis
 * Cluster or a single Redis ≥ 7), which no official package does: the same API as `Emitter`;
 * `opts` are the nodes' `channelPrefix` and `subscriptionMode`. It publishes socket.io's
 * ClusterAdapter messages from uid "emitter" with SPUBLISH, a broadcast to one room on the room's
 * channel where the subscription mode gives rooms one.
 */
class ShardedEmitter extends EmitterBase {
  constructor(redisClient, opts = {}, nsp = "/", shared = null) {
    const options = validateShardedOptions(opts);
    if (!shared) {
      shared = { connection: new native.Connection(resolveRedisUrl(redisClient, "redisClient"), options.limits, resolveTlsCa(redisClient), true), batch: null };
    }
    super(redisClient, nsp, shared);
    this.opts = { ...opts, channelPrefix: options.channelPrefix, subscriptionMode: options.subscriptionMode };
    this._native = native.NativeEmitter.sharded(shared.connection, options.channelPrefix, this._nsp, options.subscriptionMode, options.limits);
  }

  /** The emitter of another namespace (a leading "/" is added when missing). */
  of(nsp) {
    return new ShardedEmitter(this.redisClient, this.opts, nsp, this._shared);
  }

  _emitTo(op, ev, args) {
    const opts = { rooms: op._opts.rooms, except: op._opts.except, flags: op._opts.flags };
    const message = { type: Type.BROADCAST, data: { packet: { type: 2, data: [ev, ...args], nsp: this._nsp }, opts }, uid: "emitter", nsp: this._nsp };
    this._native.broadcastHostEncoded(op._room, encodeMessage(message));
  }
}

module.exports = { Emitter, ShardedEmitter, BroadcastOperator, RESERVED_EVENTS };
