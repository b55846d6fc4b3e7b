"use strict";
// createShardedAdapter: a drop-in for @socket.io/redis-adapter's sharded adapter (Redis ≥ 7,
// sharded pub/sub on a Redis Cluster or a single server).
//
// The message semantics are socket.io-adapter's ClusterAdapter (the base class the official
// sharded adapter extends, shipped with socket.io): it builds the messages and handles the
// requests, responses and acknowledgements. Rust owns the Redis side: the channels
// (`P#N#`, `P#N#<uid>#`, `P#N#<room>#`, named in src/channels.rs), SSUBSCRIBE (per slot owner on a cluster) with
// resubscription after a reconnect or failover, SPUBLISH in pipelines, PUBSUB SHARDNUMSUB across the cluster, and bounded, batched
// delivery to this thread.

const crypto = require("node:crypto");
const notepack = require("notepack.io");
const native = require("./native");
const { settled, SharedConnection, withEngineHost, engineCallbacks } = require("./engine");
const { readLimits } = require("./limits");
const { vetoCollections } = require("./heap");
const { resolveRedisUrl, resolveTlsCa, isPlainObject, optionError } = require("./connection");

const socketIoAdapter = require("socket.io-adapter");

/** Kinds of the records of a batch from the sharded engine (the core's). */
const { clusterResponse: KIND_CLUSTER_RESPONSE } = native.PROTOCOL.recordKinds;

/** The values of `subscriptionMode` (the core's). */
const MODES = new Set(native.PROTOCOL.subscriptionModes);

/** ClusterAdapter message types (docs/protocol.md §4.1). */
const Type = {
  BROADCAST: 3,
  SOCKETS_JOIN: 4,
  SOCKETS_LEAVE: 5,
  DISCONNECT_SOCKETS: 6,
  FETCH_SOCKETS: 7,
  FETCH_SOCKETS_RESPONSE: 8,
  SERVER_SIDE_EMIT: 9,
  SERVER_SIDE_EMIT_RESPONSE: 10,
  BROADCAST_CLIENT_COUNT: 11,
  BROADCAST_ACK: 12,
  ADAPTER_CLOSE: 13,
};

/** ClusterAdapter's default request timeout (ms): serverSideEmit's, and fetchSockets' without one. */
const DEFAULT_REQUEST_TIMEOUT = 5000;

/** Types whose `data` may carry binary, and are then sent as msgpack instead of JSON. */
const MAYBE_BINARY = new Set([Type.BROADCAST, Type.BROADCAST_ACK, Type.FETCH_SOCKETS_RESPONSE, Type.SERVER_SIDE_EMIT, Type.SERVER_SIDE_EMIT_RESPONSE]);

/** True when `value` holds an ArrayBuffer or a view of one, at any depth (one `toJSON` honoured). */
function holdsBinary(value, viaToJSON = false) {
  if (value === null || typeof value !== "object") return false;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true;
  if (Array.isArray(value)) return value.some((item) => holdsBinary(item));
  if (!viaToJSON && typeof value.toJSON === "function") return holdsBinary(value.toJSON(), true);
  return Object.values(value).some((item) => holdsBinary(item));
}

/**
 * `value` with every ArrayBuffer view that notepack.io would cut short (any view but a
 * Uint8Array: it copies element by element, so a Uint16Array loses its high bytes and a DataView
 * all of them) as a Buffer of exactly its bytes, as socket.io sends it to local clients. Arrays
 * and plain objects on the way are copied, never changed in place.
 */
function exactBytes(value, viaToJSON = false) {
  if (value === null || typeof value !== "object") return value;
  if (ArrayBuffer.isView(value)) return value instanceof Uint8Array ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map((item) => exactBytes(item));
  if (!viaToJSON && typeof value.toJSON === "function" && !(value instanceof Date)) return exactBytes(value.toJSON(), true);
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, exactBytes(item)]));
}

/** JSON text, or notepack msgpack when the message carries binary (docs/protocol.md §4.2). */
function encodeMessage(message) {
  if (MAYBE_BINARY.has(message.type) && holdsBinary(message.data)) return notepack.encode({ ...message, data: exactBytes(message.data) });
  return Buffer.from(JSON.stringify(message));
}

/**
 * A decoded message, or null when it does not decode. The Rust engine delivers only messages
 * that have, for their type, every field ClusterAdapter reads (src/protocol/cluster.rs): this
 * only guards the decoder.
 */
function decodeMessage(bytes) {
  try {
    const message = bytes[0] === 0x7b ? JSON.parse(bytes.toString()) : notepack.decode(bytes);
    return message !== null && typeof message === "object" && !Array.isArray(message) ? message : null;
  } catch {
    return null;
  }
}

/** Options with the official defaults; `Object.assign` semantics, as officially (an explicit `undefined` prefix is "undefined"). */
function validateShardedOptions(opts) {
  if (opts !== undefined && opts !== null && !isPlainObject(opts)) throw optionError("opts", `expected an object, got ${typeof opts}`);
  const { channelPrefix, subscriptionMode } = native.PROTOCOL.defaults;
  const out = Object.assign({ channelPrefix, subscriptionMode, coalesceWrites: true, releaseMemoryWhenIdle: true }, opts || {});
  out.limits = readLimits(opts);
  for (const name of ["coalesceWrites", "releaseMemoryWhenIdle"]) {
    if (typeof out[name] !== "boolean") throw optionError(name, `expected a boolean, got ${JSON.stringify(out[name])}`);
  }
  out.channelPrefix = String(out.channelPrefix);
  if (!MODES.has(out.subscriptionMode)) {
    throw optionError("subscriptionMode", `expected ${[...MODES].map((m) => JSON.stringify(m)).join(", ")}, got ${JSON.stringify(out.subscriptionMode)}`);
  }
  return out;
}

function shardedAdapterClass() {
  const { ClusterAdapter } = socketIoAdapter;
  if (typeof ClusterAdapter !== "function") {
    throw optionError("createShardedAdapter", "needs socket.io-adapter ≥ 2.5.3 (socket.io ≥ 4.7), whose ClusterAdapter it extends");
  }

  class ShardedRedisAdapter extends ClusterAdapter {
    constructor(nsp, shared, opts) {
      super(nsp);
      this.subscriptionMode = opts.subscriptionMode;
      this._coalesceWrites = opts.coalesceWrites;
      this._releaseMemoryWhenIdle = opts.releaseMemoryWhenIdle;
      if (opts.releaseMemoryWhenIdle === false) vetoCollections();
      this._shared = shared;
      this._lease = shared.acquire(nsp.name);
      this._closed = false;
      this._warnedNoErrorListener = false;
      this.malformed = 0;
      this.engine = native.Engine.sharded(
        this._lease.native,
        nsp.name,
        { channelPrefix: opts.channelPrefix, uid: this.uid, subscriptionMode: opts.subscriptionMode, limits: opts.limits },
        ...engineCallbacks(this),
      );
      // The official adapter's public properties; the core names the channels.
      ({ main: this.channel, responses: this.responseChannel } = this.engine.channels);
      this.ready = new Promise((resolve) => (this._resolveReady = resolve));
      if (opts.subscriptionMode !== "static") {
        this.on("create-room", (room) => {
          if (this.subscriptionMode === "dynamic-private" || !this.sids.has(room)) this.engine.roomCreated(String(room));
        });
        this.on("delete-room", (room) => this.engine.roomDeleted(String(room)));
      }
    }

    /** With a dynamic mode, `socket.join()` resolves once the new rooms' channels are subscribed. */
    addAll(id, rooms) {
      super.addAll(id, rooms);
      if (this.subscriptionMode !== "static" && !this._closed) return this.engine.roomsSynced();
    }

    /** ClusterAdapter hook: publishes a message (room channel or main channel). */
    doPublish(message) {
      try {
        this.engine.publish(this._singleRoomOf(message), encodeMessage(message));
        return Promise.resolve(""); // no offsets: connection state recovery is not supported
      } catch (err) {
        this._emitError(err, "ERR_SIO_PUBLISH");
        return Promise.reject(err);
      }
    }

    /** ClusterAdapter hook: publishes a response on the requester's own channel. */
    doPublishResponse(requesterUid, response) {
      try {
        this.engine.publishResponse(String(requesterUid), encodeMessage(response));
        return Promise.resolve();
      } catch (err) {
        this._emitError(err, "ERR_SIO_PUBLISH");
        return Promise.reject(err);
      }
    }

    /**
     * The only room of a BROADCAST without ack, or null: the core puts such a message on the
     * room's channel when the subscription mode gives the room one.
     */
    _singleRoomOf(message) {
      if (message.type !== Type.BROADCAST || message.data.requestId !== undefined) return null;
      const rooms = message.data.opts.rooms;
      return rooms.length === 1 ? String(rooms[0]) : null;
    }

    /**
     * Nodes serving the namespace (`PUBSUB SHARDNUMSUB`, across the cluster). Rejects when Redis
     * does not answer within 500 ms, as the count of `fetchSockets` and `serverSideEmitWithAck`
     * does: a request then fails fast instead of running late by the time Redis takes.
     */
    serverCount() {
      return settled(this.engine.serverCount()).then((result) => result.count);
    }

    /**
     * ClusterAdapter's fetchSockets in one Redis round trip instead of two: the request goes out
     * with the nodes counted in the same pipeline (`SHARDNUMSUB`, then `SPUBLISH`; on a Redis
     * Cluster the count, a sum over the primaries, still comes first), where ClusterAdapter asks
     * for the count and publishes once it has it. The same request, answers and timeout text; a
     * count Redis does not give within 500 ms rejects, and the request is then not published.
     */
    async fetchSockets(opts) {
      const localSockets = await socketIoAdapter.Adapter.prototype.fetchSockets.call(this, opts);
      if (opts.flags && opts.flags.local) return localSockets;
      return new Promise((resolve, reject) => {
        const dataOf = (requestId) => ({ opts: { rooms: [...opts.rooms], except: [...(opts.except || [])], flags: opts.flags }, requestId });
        this._requestAll(Type.FETCH_SOCKETS, dataOf, (opts.flags && opts.flags.timeout) || DEFAULT_REQUEST_TIMEOUT, localSockets, {
          done: (responses) => resolve(responses),
          failed: (err) => reject(err),
        });
      });
    }

    /**
     * ClusterAdapter's serverSideEmit; with an acknowledgement, in one Redis round trip as
     * fetchSockets is. socket.io does not await its promise: when the nodes cannot be counted,
     * the acknowledgement gets the error (serverSideEmitWithAck rejects) instead of never being
     * called beside an unhandled rejection.
     */
    serverSideEmit(packet) {
      if (typeof packet[packet.length - 1] !== "function") {
        return Promise.resolve(super.serverSideEmit(packet)).catch(() => {});
      }
      const ack = packet.pop();
      this._requestAll(Type.SERVER_SIDE_EMIT, (requestId) => ({ requestId, packet }), DEFAULT_REQUEST_TIMEOUT, [], {
        done: (responses) => ack(null, responses),
        failed: (err, responses) => ack(err, responses),
      });
      return Promise.resolve();
    }

    /**
     * Publishes a request that every other node answers (its `data` is `dataOf(requestId)`) and
     * registers it where ClusterAdapter's `onResponse` counts the answers. Until Redis has
     * counted the nodes, `expected` is unknown (Infinity): answers that come first are kept, and
     * the count settles the request when they are all in, or starts its timeout (`timeoutMs`)
     * otherwise. `responses` starts with this node's own; `done(responses)` or
     * `failed(err, responses)` is called once.
     */
    _requestAll(type, dataOf, timeoutMs, responses, { done, failed }) {
      const requestId = crypto.randomBytes(8).toString("hex");
      const request = { type, current: 0, expected: Infinity, responses, timeout: undefined };
      const settle = (fn, ...args) => {
        if (this.requests.get(requestId) !== request) return;
        clearTimeout(request.timeout);
        this.requests.delete(requestId);
        fn(...args);
      };
      // ClusterAdapter's onResponse calls `resolve` once `current === expected`.
      request.resolve = () => settle(done, request.responses);
      const timedOut = () => settle(failed, new Error(`timeout reached: only ${request.current} responses received out of ${request.expected}`), request.responses);
      this.requests.set(requestId, request);
      let counted;
      try {
        counted = settled(this.engine.publishRequest(encodeMessage({ type, data: dataOf(requestId), uid: this.uid, nsp: this.nsp.name })));
      } catch (err) {
        return settle(failed, err, request.responses);
      }
      counted.then(
        ({ count }) => {
          if (this.requests.get(requestId) !== request) return;
          request.expected = count - 1;
          // As ClusterAdapter, the timeout runs from the count (which takes 500 ms at most).
          if (request.current >= request.expected) settle(done, request.responses);
          else request.timeout = setTimeout(timedOut, timeoutMs);
        },
        (err) => settle(failed, err, request.responses),
      );
    }

    /** One message from the cluster (see withEngineHost's `_onBatch`). */
    _deliver(kind, bytes) {
      const message = decodeMessage(bytes);
      if (!message) {
        this.malformed++;
        return;
      }
      if (kind === KIND_CLUSTER_RESPONSE) this.onResponse(message);
      else this.onMessage(message, "");
    }

    /**
     * Counters: messages published and delivered, dropped (malformed — found by Rust, or, as a
     * guard, undecodable here —, tooLarge, tooComplex, dropped for a full receive buffer), and
     * the Redis connections' (`redis`). ClusterAdapter runs the requests: none are counted here.
     */
    stats() {
      const { published, delivered, malformed, tooLarge, tooComplex, dropped } = this.engine.stats();
      return { published, delivered, malformed: malformed + this.malformed, tooLarge, tooComplex, dropped, redis: this._lease.native.stats() };
    }

    /** Unsubscribes everything; the connection closes with its last namespace. */
    async close() {
      if (this._closed) return;
      this._closed = true;
      try {
        await settled(this.engine.close());
      } finally {
        await this._shared.release(this._lease);
      }
    }
  }

  return withEngineHost(ShardedRedisAdapter);
}

/**
 * Returns the `(nsp) => adapter` factory that `io.adapter()` expects: same signature and
 * options as the official `createShardedAdapter(pubClient, subClient, { channelPrefix,
 * subscriptionMode })`. The clients (a node-redis or ioredis client or cluster, seed nodes, or a
 * URL) are only read for their settings.
 */
function createShardedAdapter(pubClient, subClient, opts) {
  const options = validateShardedOptions(opts);
  const url = resolveRedisUrl(pubClient, "pubClient");
  const ShardedRedisAdapter = shardedAdapterClass();
  const shared = new SharedConnection(url, options.limits, resolveTlsCa(pubClient), true);
  return function (nsp) {
    const adapter = new ShardedRedisAdapter(nsp, shared, options);
    adapter.pubClient = pubClient;
    adapter.subClient = subClient;
    return adapter;
  };
}

module.exports = { createShardedAdapter, validateShardedOptions, encodeMessage, decodeMessage, Type };
