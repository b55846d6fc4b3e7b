"use strict";
// sioadapter: a drop-in for @socket.io/redis-adapter whose Redis work is done in Rust.
//
// Local rooms and sockets stay in socket.io-adapter's in-memory `Adapter`, which this class
// extends. What crosses nodes goes through the native engine: a broadcast is encoded once by
// notepack.io (as `[packet, opts]`) and handed to Rust synchronously; Rust adds the uid, picks
// the channel and publishes in pipelines. Broadcasts from other nodes arrive validated, in
// batches, and are delivered with the in-memory adapter's own `broadcast`.

const { Adapter } = require("socket.io-adapter");
const notepack = require("notepack.io");
const native = require("./lib/native");
const { resolveRedisUrl, isPlainObject, isRedisClient, optionError } = require("./lib/connection");

const DEFAULTS = { key: "socket.io", requestsTimeout: 5000, publishOnSpecificResponseChannel: false };

/** Options of the seeds' APIs that no longer apply when Rust owns the connections. */
const IGNORED_OPTIONS = new Set(["subEvent", "return_buffers", "host", "port", "password", "username", "db", "database", "url", "socket", "tls", "path", "pubClient", "subClient"]);

function validateOptions(opts) {
  if (opts === undefined || opts === null) return { ...DEFAULTS };
  if (typeof opts !== "object") throw optionError("opts", `expected an object, got ${typeof opts}`);
  const out = { ...DEFAULTS };
  if (opts.key !== undefined) {
    if (typeof opts.key !== "string") throw optionError("key", `expected a string, got ${typeof opts.key}`);
    out.key = opts.key || DEFAULTS.key;
  }
  if (opts.requestsTimeout !== undefined) {
    const t = opts.requestsTimeout;
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) throw optionError("requestsTimeout", `expected a non-negative number of milliseconds, got ${JSON.stringify(t)}`);
    out.requestsTimeout = t || DEFAULTS.requestsTimeout;
  }
  if (opts.publishOnSpecificResponseChannel !== undefined) {
    if (typeof opts.publishOnSpecificResponseChannel !== "boolean") throw optionError("publishOnSpecificResponseChannel", "expected a boolean");
    out.publishOnSpecificResponseChannel = opts.publishOnSpecificResponseChannel;
  }
  if (opts.parser !== undefined && !(opts.parser && opts.parser.encode === notepack.encode)) {
    throw optionError("parser", "custom parsers are not supported: sioadapter always speaks notepack msgpack, the official default");
  }
  if (opts.maxQueuedPublishes !== undefined) {
    const m = opts.maxQueuedPublishes;
    if (!Number.isInteger(m) || m < 1) throw optionError("maxQueuedPublishes", `expected a positive integer, got ${JSON.stringify(m)}`);
    out.maxQueuedPublishes = m;
  }
  const unknown = Object.keys(opts).filter((name) => !(name in DEFAULTS) && name !== "parser" && name !== "maxQueuedPublishes" && !IGNORED_OPTIONS.has(name));
  if (unknown.length > 0) {
    // The official adapter ignores unknown options; say so instead of failing a drop-in.
    console.warn(`sioadapter: ignoring unknown option(s) ${unknown.map((n) => `\`${n}\``).join(", ")}`);
  }
  return out;
}

/**
 * The connection pair shared by every namespace of one `createAdapter(...)` call, opened when
 * the first namespace needs it and closed when the last one closes.
 */
class SharedConnection {
  constructor(url, maxQueuedPublishes) {
    this.url = url;
    this.maxQueuedPublishes = maxQueuedPublishes;
    this.native = null;
    this.users = 0;
  }

  acquire() {
    if (!this.native) this.native = new native.Connection(this.url, this.maxQueuedPublishes);
    this.users++;
    return this.native;
  }

  async release() {
    if (--this.users > 0 || !this.native) return;
    const conn = this.native;
    this.native = null;
    await conn.close();
  }
}

class RedisAdapter extends Adapter {
  /**
   * @param nsp the socket.io namespace
   * @param shared the connection shared by the namespaces
   * @param opts validated options
   * @param pubClient, subClient what the user passed, kept for the public properties
   */
  constructor(nsp, shared, opts, pubClient, subClient) {
    super(nsp);
    this.pubClient = pubClient;
    this.subClient = subClient;
    this.prefix = opts.key;
    this.requestsTimeout = opts.requestsTimeout;
    this.publishOnSpecificResponseChannel = opts.publishOnSpecificResponseChannel;
    this._shared = shared;
    this._closed = false;
    this._warnedNoErrorListener = false;
    this.engine = new native.Engine(
      shared.acquire(),
      nsp.name,
      { key: opts.key, requestsTimeout: opts.requestsTimeout, publishOnSpecificResponseChannel: opts.publishOnSpecificResponseChannel },
      (data, ends) => this._onBatch(data, ends),
      (kind, message) => this._onEngineEvent(kind, message),
    );
    this.uid = this.engine.uid;
    this.ready = new Promise((resolve) => (this._resolveReady = resolve));
    this.on("create-room", (room) => this.engine.roomCreated(String(room)));
    this.on("delete-room", (room) => this.engine.roomDeleted(String(room)));
  }

  /** Publishes to the other nodes (unless `local`), then delivers to local sockets. */
  broadcast(packet, opts) {
    packet.nsp = this.nsp.name;
    if (!(opts.flags && opts.flags.local)) {
      const rooms = [...opts.rooms];
      const rawOpts = { rooms, except: [...new Set(opts.except)], flags: opts.flags };
      try {
        this.engine.broadcast(rooms.length === 1 ? String(rooms[0]) : null, notepack.encode([packet, rawOpts]));
      } catch (err) {
        this._emitError(err, "ERR_SIO_PUBLISH");
      }
    }
    super.broadcast(packet, opts);
  }

  /** Broadcasts from other nodes: one Buffer with every message, and their end offsets. */
  _onBatch(data, ends) {
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      const end = ends[i];
      let message;
      try {
        message = notepack.decode(data.subarray(start, end));
      } catch (err) {
        // The core validated the envelope, so this is not expected; never let it escape.
        this._emitError(err, "ERR_SIO_DECODE");
        start = end;
        continue;
      }
      start = end;
      const [, packet, opts] = message;
      packet.nsp = this.nsp.name;
      super.broadcast(packet, {
        rooms: new Set(opts.rooms),
        except: new Set(opts.except || []),
        flags: opts.flags || {},
      });
    }
  }

  _onEngineEvent(kind, message) {
    if (this._closed) return;
    if (kind === "ready") {
      this._resolveReady();
      this.emit("ready");
    } else if (kind === "error") {
      this._emitError(new Error(message), "ERR_SIO_REDIS");
    }
  }

  /** Emits `'error'` when someone listens; otherwise warns once instead of crashing the process. */
  _emitError(err, code) {
    if (!err.code) err.code = code;
    if (this.listenerCount("error") > 0) {
      this.emit("error", err);
    } else if (!this._warnedNoErrorListener) {
      this._warnedNoErrorListener = true;
      console.warn(`sioadapter (${this.nsp.name}): ${err.message} (add an 'error' listener on the adapter to handle these)`);
    }
  }

  /** Counters of the native engine (published, delivered, malformed, skipped). */
  stats() {
    return this.engine.stats();
  }

  /** Unsubscribes this namespace; the connections close with the last namespace. */
  async close() {
    if (this._closed) return;
    this._closed = true;
    try {
      await this.engine.close();
    } finally {
      await this._shared.release();
    }
  }
}

/**
 * Normalises every call form the official adapter and its predecessors accepted:
 * `(pubClient, subClient, opts)`, `({ pubClient, subClient, ...opts })`,
 * `({ host, port, key, ... })`, `('host:port' | 'redis://…', opts)` and `()`.
 */
function normaliseArguments(args) {
  const [first, second, third] = args;
  if (isPlainObject(first) && ("pubClient" in first || "subClient" in first)) {
    return { pubClient: first.pubClient, subClient: first.subClient, opts: first };
  }
  if (isPlainObject(first) && second === undefined && third === undefined) {
    return { pubClient: first, subClient: undefined, opts: first };
  }
  if (typeof first === "string" && (isPlainObject(second) || second === undefined) && third === undefined) {
    return { pubClient: first, subClient: undefined, opts: second };
  }
  if (first !== undefined && first !== null && typeof first !== "string" && !isPlainObject(first) && !isRedisClient(first)) {
    throw optionError("pubClient", `expected a node-redis or ioredis client, a redis:// URL or {host, port}, got ${typeof first}`);
  }
  return { pubClient: first, subClient: second, opts: third };
}

/**
 * Returns the `(nsp) => adapter` factory that `io.adapter()` expects.
 * Same signature and options as `@socket.io/redis-adapter`'s `createAdapter`.
 */
function createAdapter(...args) {
  const { pubClient, subClient, opts: rawOpts } = normaliseArguments(args);
  const opts = validateOptions(rawOpts);
  const url = resolveRedisUrl(pubClient, "pubClient");
  if (subClient !== undefined && subClient !== null) resolveRedisUrl(subClient, "subClient");
  const shared = new SharedConnection(url, opts.maxQueuedPublishes);
  return function (nsp) {
    return new RedisAdapter(nsp, shared, opts, pubClient, subClient);
  };
}

module.exports = createAdapter;
module.exports.createAdapter = createAdapter;
module.exports.RedisAdapter = RedisAdapter;
module.exports.default = createAdapter;
