"use strict";
// What both adapters (classic and sharded) share around their native engine: the Redis
// connection shared by the namespaces of one createAdapter call, the errors of asynchronous
// native calls, and the handling of the engine's batches and events on the adapter.
//
// Error codes are the Rust core's: errors thrown by the addon carry them as `err.code`, and
// asynchronous calls resolve to `{error, code}` (napi would reject with its own codes).

const native = require("./native");
const { coalesceFlushes } = require("./coalesce");
const { debug, warn } = require("./log");
const { noteReceived } = require("./heap");

const { clientText: KIND_CLIENT_TEXT } = native.PROTOCOL.recordKinds;

/** An Error with the message and code of a native result (`{error, code}`). */
function nativeError(result) {
  return Object.assign(new Error(result.error), { code: result.code });
}

/** Resolves with the native result, or rejects with its error when it has one. */
function settled(promise) {
  return promise.then((result) => {
    if (result.error) throw nativeError(result);
    return result;
  });
}

/** The native Redis connection of one createAdapter call, shared by its namespaces. */
class SharedConnection {
  /**
   * `limits`: every limit option (readLimits; the connection reads maxQueuedPublishes and
   * maxQueuedBytes); `sharded`: sharded pub/sub on a Redis Cluster (createShardedAdapter).
   */
  constructor(url, limits, tlsCa, sharded = false) {
    this.url = url;
    this.limits = limits;
    this.tlsCa = tlsCa;
    this.sharded = sharded;
    /** Open connections, each with the namespaces using it: { native, nsps: Set }. */
    this.pool = [];
  }

  /**
   * A connection for namespace `nsp`: one the namespace does not use yet. The namespaces of a
   * server share one; a second server given the same `createAdapter()` result gets its own, so
   * that PUBSUB NUMSUB counts it as the node it is and requests expect its answers.
   */
  acquire(nsp) {
    let entry = this.pool.find((e) => !e.nsps.has(nsp));
    if (!entry) {
      entry = { native: new native.Connection(this.url, this.limits, this.tlsCa, this.sharded), nsps: new Set() };
      this.pool.push(entry);
    }
    entry.nsps.add(nsp);
    return { entry, nsp, native: entry.native };
  }

  /** Gives back what `acquire` returned; a connection closes with its last namespace. */
  async release(lease) {
    const { entry, nsp } = lease;
    if (!entry.nsps.delete(nsp) || entry.nsps.size > 0) return;
    this.pool.splice(this.pool.indexOf(entry), 1);
    await entry.native.close();
  }
}

/**
 * Methods an adapter class gets from `withEngineHost`. The class provides `engine`,
 * `_closed`, `_resolveReady`, `_coalesceWrites`, `_releaseMemoryWhenIdle` and
 * `_deliver(kind, bytes, text)` for one received record (`text`: a `clientText` record's client
 * text).
 */
const engineHostMethods = {
  /**
   * Messages from other nodes: one Buffer holding a header of `count` records `[kind, end]`
   * (u32 LE; ends counted from the end of the header), then the messages back to back; `texts`
   * holds the client texts of the `clientText` records, in order.
   */
  _onBatch(data, count, more, texts) {
    // The engine.io server exists once the socket.io server is attached, which may be after
    // the adapter was made.
    if (this._coalesceWrites !== false) coalesceFlushes(this.nsp.server.engine);
    try {
      const header = count * 8;
      let start = header;
      let text = 0;
      for (let i = 0; i < count; i++) {
        const kind = data.readUInt32LE(i * 8);
        const end = header + data.readUInt32LE(i * 8 + 4);
        const bytes = data.subarray(start, end);
        start = end;
        try {
          this._deliver(kind, bytes, kind === KIND_CLIENT_TEXT ? texts[text++] : undefined);
        } catch (err) {
          // A throwing listener or an unexpected message must not stop the rest of the batch.
          this._emitError(err, "ERR_SIO_HANDLER");
        }
      }
      if (this._releaseMemoryWhenIdle !== false) {
        // Client texts are JS strings beside the Buffer (one byte per character or more).
        let received = data.length;
        for (let i = 0; i < texts.length; i++) received += texts[i].length;
        noteReceived(received);
      }
    } finally {
      // The rest comes in the next turn of the event loop, after its I/O.
      if (more && !this._closed) this.engine.more();
    }
  },

  _onEngineEvent(kind, message) {
    if (this._closed) return;
    debug("namespace %s: %s %s", this.nsp.name, kind, message);
    if (kind === "ready") {
      this._resolveReady();
      this.emit("ready");
    } else {
      // Any other kind is the error's code (ERR_SIO_REDIS, ERR_SIO_TOO_LARGE, ...).
      this._emitError(new Error(message), kind);
    }
  },

  /** Emits `'error'` when someone listens; otherwise warns once instead of crashing the process. */
  _emitError(err, code) {
    if (!err.code) err.code = code;
    if (this.listenerCount("error") > 0) {
      this.emit("error", err);
    } else if (!this._warnedNoErrorListener) {
      this._warnedNoErrorListener = true;
      warn(`sioadapter (${this.nsp.name}): ${err.message} (add an 'error' listener on the adapter to handle these)`, "SIO_NO_ERROR_LISTENER");
    }
  },
};

/**
 * The `onBatch` and `onEvent` callbacks of an adapter's native engine. They reach the adapter
 * through a WeakRef: the engine holds them for as long as it lives, so a strong reference would
 * keep the adapter, its engine and its Redis connections alive forever once the server is
 * dropped without `close()`; this way the garbage collector frees them all.
 */
function engineCallbacks(adapter) {
  const ref = new WeakRef(adapter);
  return [
    (data, count, more, texts) => ref.deref()?._onBatch(data, count, more, texts),
    (kind, message) => ref.deref()?._onEngineEvent(kind, message),
  ];
}

/** Adds the engine-host methods to an adapter class; returns the class. */
function withEngineHost(AdapterClass) {
  for (const [name, fn] of Object.entries(engineHostMethods)) {
    Object.defineProperty(AdapterClass.prototype, name, { value: fn, writable: true, configurable: true });
  }
  return AdapterClass;
}

module.exports = { nativeError, settled, SharedConnection, withEngineHost, engineCallbacks };
