"use strict";
// sioadapter: a drop-in for @socket.io/redis-adapter whose Redis work is done in Rust.
//
// Local rooms and sockets stay in socket.io-adapter's in-memory `Adapter`, which this class
// extends. What crosses nodes goes through the native engine: a broadcast is encoded once by
// notepack.io (as `[packet, opts]`) and handed to Rust synchronously; Rust adds the uid, picks
// the channel and publishes in pipelines. Broadcasts from other nodes arrive validated, in
// batches, and are delivered with the in-memory adapter's own `broadcast`.

const crypto = require("node:crypto");
const { Adapter } = require("socket.io-adapter");
const notepack = require("notepack.io");
const native = require("./lib/native");
const { nativeError, settled, SharedConnection, withEngineHost, engineCallbacks } = require("./lib/engine");
const { resolveRedisUrl, resolveTlsCa, isPlainObject, isRedisClient, optionError } = require("./lib/connection");
const { readLimits, LIMIT_OPTIONS } = require("./lib/limits");
const { debug, warn } = require("./lib/log");
const { isDefaultEncoder, textAwareEncoder, readClientText, preEncodedFrame } = require("./lib/client-text");
const { readParser, toBuffer } = require("./lib/parser");
const { vetoCollections } = require("./lib/heap");

/** The options of createAdapter with their defaults (the core's). */
const { key, requestsTimeout, publishOnSpecificResponseChannel, perRoomSubscriptions } = native.PROTOCOL.defaults;
// coalesceWrites (one write per client per flush, lib/coalesce.js) and releaseMemoryWhenIdle
// (lib/heap.js) are ours and JS's alone.
const DEFAULTS = { key, requestsTimeout, publishOnSpecificResponseChannel, perRoomSubscriptions, coalesceWrites: true, releaseMemoryWhenIdle: true };

/** Request types on the wire, by their official names (the core's). */
const RequestType = native.PROTOCOL.requestTypes;

/** Kinds of the records of a batch from the engine. */
const { broadcast: KIND_BROADCAST, request: KIND_REQUEST, clientText: KIND_CLIENT_TEXT } = native.PROTOCOL.recordKinds;

/** The server-side event that carries the seeds' customRequest (answered by customHook). */
const CUSTOM_REQUEST_EVENT = "sioadapter:customRequest";

/** An Error for a request that did not complete, with the official message. */
function requestError(result) {
  const err = nativeError(result);
  err.received = result.received;
  err.expected = result.expected;
  return err;
}

/** The items of a request result, or its error. */
function itemsOf(result) {
  if (result.error) throw requestError(result);
  return JSON.parse(result.items);
}

/** Settles a seeds-style trailing Node callback from a promise, and returns the promise. */
function withCallback(promise, callback) {
  if (typeof callback === "function") promise.then((value) => callback(null, value), (err) => callback(err));
  return promise;
}

function targetsJson(opts) {
  return [JSON.stringify([...(opts.rooms || [])]), JSON.stringify([...new Set(opts.except || [])])];
}

function toSets(opts) {
  return { rooms: new Set(opts.rooms), except: new Set(opts.except || []) };
}

/** True for a decoded broadcast with ack request: `{ requestId, type: 7, packet, opts }`. */
function isBroadcastWithAck(request) {
  return isPlainObject(request) && request.type === RequestType.BROADCAST && typeof request.requestId === "string" && isPlainObject(request.packet) && isPlainObject(request.opts);
}

/** Options of the seeds' APIs that no longer apply when Rust owns the connections. */
const IGNORED_OPTIONS = new Set([
  "subEvent", "return_buffers", "host", "port", "password", "username", "db", "database", "url", "socket", "tls", "path",
  "pubClient", "subClient", "sentinels", "name", "sentinelUsername", "sentinelPassword",
]);

function validateOptions(opts) {
  if (opts === undefined || opts === null) return { ...DEFAULTS, parser: readParser(undefined, true), limits: readLimits({}) };
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
  for (const name of ["publishOnSpecificResponseChannel", "perRoomSubscriptions", "coalesceWrites", "releaseMemoryWhenIdle"]) {
    if (opts[name] === undefined) continue;
    if (typeof opts[name] !== "boolean") throw optionError(name, `expected a boolean, got ${JSON.stringify(opts[name])}`);
    out[name] = opts[name];
  }
  out.parser = readParser(opts.parser, true);
  out.limits = readLimits(opts);
  const unknown = Object.keys(opts).filter((name) => !(name in DEFAULTS) && name !== "parser" && !LIMIT_OPTIONS.includes(name) && !IGNORED_OPTIONS.has(name));
  if (unknown.length > 0) {
    // The official adapter ignores unknown options; say so instead of failing a drop-in.
    warn(`sioadapter: ignoring unknown option(s) ${unknown.map((n) => `\`${n}\``).join(", ")}`, "SIO_UNKNOWN_OPTION");
  }
  return out;
}

/**
 * What `new RedisAdapter(nsp, pubClient, subClient, opts)` needs beyond the namespace: the
 * options, validated, and the Redis connection the namespaces share. createAdapter's factory
 * hands them over under this key of `opts`; a direct call (a subclass's `super(...)`) prepares
 * them from its arguments.
 */
const PREPARED = Symbol("sioadapter.prepared");

/**
 * The options and Redis URL of `(pubClient, subClient, opts)`, checked: throws an
 * `ERR_SIO_OPTION` TypeError for a wrong one.
 */
function prepare(pubClient, subClient, rawOpts) {
  const opts = validateOptions(rawOpts);
  const url = resolveRedisUrl(pubClient, "pubClient");
  if (subClient !== undefined && subClient !== null) resolveRedisUrl(subClient, "subClient");
  return { opts, url, tlsCa: resolveTlsCa(pubClient) };
}

/**
 * Connections of the adapters made directly with `new RedisAdapter(...)`, one SharedConnection
 * per Redis source (the client object, or the URL) and limits: as with one createAdapter call,
 * the namespaces of a server share one connection, while a second server with the same
 * pubClient gets its own (SharedConnection.acquire).
 */
const directConnections = { byClient: new WeakMap(), byUrl: new Map() };

function directConnection(pubClient, { opts, url, tlsCa }) {
  let table = directConnections.byUrl;
  if (pubClient !== null && (typeof pubClient === "object" || typeof pubClient === "function")) {
    table = directConnections.byClient.get(pubClient);
    if (!table) directConnections.byClient.set(pubClient, (table = new Map()));
  }
  const id = JSON.stringify([url, opts.limits]);
  let shared = table.get(id);
  if (!shared) table.set(id, (shared = new SharedConnection(url, opts.limits, tlsCa)));
  return shared;
}

class RedisAdapter extends Adapter {
  /**
   * The official adapter's constructor, so that a subclass can call `super(nsp, pubClient,
   * subClient, opts)`. `pubClient` is read for its settings (a node-redis or ioredis client, a
   * URL, settings, seeds, or nothing for redis://127.0.0.1:6379); `subClient` is only checked.
   *
   * @param nsp the socket.io namespace
   * @param pubClient, subClient what the user passed, kept for the public properties
   * @param opts the options of createAdapter (or what its factory prepared, under PREPARED)
   */
  constructor(nsp, pubClient, subClient, opts) {
    let prepared = opts && opts[PREPARED];
    if (!prepared) {
      const checked = prepare(pubClient, subClient, opts);
      prepared = { opts: checked.opts, shared: directConnection(pubClient, checked) };
    }
    super(nsp);
    ({ opts, shared: this._shared } = prepared);
    this.pubClient = pubClient;
    this.subClient = subClient;
    this.prefix = opts.key;
    this.requestsTimeout = opts.requestsTimeout;
    this.publishOnSpecificResponseChannel = opts.publishOnSpecificResponseChannel;
    /**
     * What encodes and decodes broadcasts, broadcasts with ack and their acks (the `parser`
     * option; notepack.io, the official default, is read and written by the core itself).
     */
    this.parser = opts.parser.parser;
    this._customParser = opts.parser.custom;
    this._lease = this._shared.acquire(nsp.name);
    this._closed = false;
    this._warnedNoErrorListener = false;
    // Messages a custom parser could not read: since the last report, and in all.
    this._malformed = { count: 0, total: 0, reportedAt: 0 };
    // With socket.io-parser, the core makes each broadcast's client text (see lib/client-text.js).
    const clientText = !this._customParser && isDefaultEncoder(this.encoder);
    if (clientText) this.encoder = textAwareEncoder(this.encoder);
    this.engine = native.Engine.classic(
      this._lease.native,
      nsp.name,
      {
        key: opts.key,
        requestsTimeout: opts.requestsTimeout,
        publishOnSpecificResponseChannel: opts.publishOnSpecificResponseChannel,
        perRoomSubscriptions: opts.perRoomSubscriptions,
        clientText,
        hostParser: this._customParser,
        limits: opts.limits,
      },
      ...engineCallbacks(this),
    );
    this.uid = this.engine.uid;
    // The official adapter's channel properties. The core names and uses the channels; it
    // tells the broadcast channel `K#N#` and this node's response channel `K-response#N#U#`.
    const { main, responses } = this.engine.channels;
    this.channel = main;
    this.specificResponseChannel = responses;
    this.responseChannel = responses.slice(0, -(this.uid.length + 1));
    this.requestChannel = `${opts.key}-request#${nsp.name}#`;
    /** Broadcasts with ack waiting for other nodes' client counts and acks, by request id. */
    this.ackRequests = new Map();
    this.ready = new Promise((resolve) => (this._resolveReady = resolve));
    this.on("create-room", (room) => this.engine.roomCreated(String(room)));
    this.on("delete-room", (room) => this.engine.roomDeleted(String(room)));
    this.perRoomSubscriptions = opts.perRoomSubscriptions;
    this._coalesceWrites = opts.coalesceWrites;
    this._releaseMemoryWhenIdle = opts.releaseMemoryWhenIdle;
    if (opts.releaseMemoryWhenIdle === false) vetoCollections();
    debug("namespace %s: node %s on %s (requestsTimeout %d ms, perRoomSubscriptions %s)", nsp.name, this.uid, this.channel, opts.requestsTimeout, opts.perRoomSubscriptions);
  }

  /**
   * Adds a socket to rooms. With `perRoomSubscriptions`, the returned promise (what
   * `socket.join()` returns) resolves once the new rooms' channels are subscribed, so a
   * broadcast sent after `await socket.join(room)` reaches the socket. It never rejects:
   * Redis errors go to the `error` event and the subscription is retried.
   */
  addAll(id, rooms) {
    super.addAll(id, rooms);
    if (this.perRoomSubscriptions && !this._closed) return this.engine.roomsSynced();
  }

  /** Publishes to the other nodes (unless `local`), then delivers to local sockets. */
  broadcast(packet, opts) {
    packet.nsp = this.nsp.name;
    if (!(opts.flags && opts.flags.local)) {
      const rooms = [...opts.rooms];
      const rawOpts = { rooms, except: [...new Set(opts.except)], flags: opts.flags };
      const room = rooms.length === 1 ? String(rooms[0]) : null;
      try {
        if (this._customParser) this.engine.broadcastHostEncoded(room, toBuffer(this.parser.encode([this.uid, packet, rawOpts])));
        else this.engine.broadcast(room, notepack.encode([packet, rawOpts]));
      } catch (err) {
        this._emitError(err, "ERR_SIO_PUBLISH");
      }
    }
    if (this._mayReachLocalSockets(opts)) super.broadcast(packet, opts);
  }

  /**
   * False when no local socket can match `opts.rooms`: the in-memory broadcast would then
   * encode the packet for nobody, which is most of a publishing node's cost when its clients
   * live elsewhere.
   */
  _mayReachLocalSockets(opts) {
    if (this.sids.size === 0) return false;
    if (!opts.rooms || opts.rooms.size === 0) return true;
    for (const room of opts.rooms) if (this.rooms.has(room)) return true;
    return false;
  }

  /** One message from another node (see withEngineHost's `_onBatch`). */
  _deliver(kind, bytes, text) {
    if (kind === KIND_CLIENT_TEXT) this._deliverClientText(bytes, text);
    else if (kind === KIND_BROADCAST) this._deliverBroadcast(bytes);
    else if (kind === KIND_REQUEST) this._onRequest(bytes);
    else this._onAckResponse(bytes);
  }

  _deliverClientText(bytes, text) {
    const { packet, opts } = readClientText(bytes, text, this.nsp.name);
    super.broadcast(packet, { ...toSets(opts), flags: opts.flags || {} });
  }

  /**
   * socket.io-adapter's hook that encodes a packet once per broadcast: a packet whose client text
   * the core made comes with its websocket frame, handed to engine.io (see lib/client-text.js).
   * Copied out of the batch: a slow client's queue would otherwise keep the whole batch alive.
   */
  _encode(packet, packetOpts) {
    const frame = preEncodedFrame(packet);
    if (frame === undefined) return super._encode(packet, packetOpts);
    packetOpts.wsPreEncodedFrame = [Buffer.from(frame)];
    return this.encoder.encode(packet);
  }

  _deliverBroadcast(bytes) {
    if (this._customParser) return this._deliverDecoded(bytes);
    const [, packet, opts] = notepack.decode(bytes);
    packet.nsp = this.nsp.name;
    super.broadcast(packet, { ...toSets(opts), flags: opts.flags || {} });
  }

  /**
   * A broadcast the core passed on unread (a custom `parser`): decoded here, and dropped when
   * it is this node's own or another namespace's, as the official adapter does.
   */
  _deliverDecoded(bytes) {
    const message = this._decode(bytes, "broadcast");
    if (!Array.isArray(message)) return;
    const [uid, packet, opts] = message;
    if (uid === this.uid || !isPlainObject(packet) || (packet.nsp === undefined ? "/" : packet.nsp) !== this.nsp.name) return;
    if (!isPlainObject(opts)) return this._dropMalformed("broadcast", new Error("its opts are not a map"));
    packet.nsp = this.nsp.name;
    super.broadcast(packet, { ...toSets(opts), flags: opts.flags || {} });
  }

  /**
   * A request, response or broadcast decoded: JSON when it starts with "{" (as the official
   * adapter reads requests and responses), else with the parser (notepack.io unless the option
   * named another). Undefined, counted and reported (ERR_SIO_MALFORMED), when it does not decode
   * (with notepack.io the core has validated it already).
   */
  _decode(bytes, what) {
    try {
      return what !== "broadcast" && bytes[0] === 0x7b ? JSON.parse(bytes.toString()) : this.parser.decode(bytes);
    } catch (err) {
      this._dropMalformed(what, err);
      return undefined;
    }
  }

  /** Reports messages the parser could not read, once a second at most (as the core does). */
  _dropMalformed(what, why) {
    const malformed = this._malformed;
    malformed.count += 1;
    malformed.total += 1;
    const now = Date.now();
    if (now - malformed.reportedAt < 1000) return;
    malformed.reportedAt = now;
    const err = new Error(`dropped ${malformed.count} malformed message(s) the parser could not read; the last, a ${what}: ${why.message}`);
    malformed.count = 0;
    this._emitError(err, "ERR_SIO_MALFORMED");
  }

  /** A request of another node (validated by the engine unless a custom parser encoded it). */
  _onRequest(bytes) {
    const request = this._decode(bytes, "request");
    if (request === undefined) return;
    if (this._customParser) {
      if (request.uid === this.uid) return;
      // The core read JSON requests; what the parser wrote can only be a broadcast with ack.
      if (bytes[0] !== 0x7b && !isBroadcastWithAck(request)) return this._dropMalformed("request", new Error("not a broadcast with ack"));
    }
    const id = request.requestId;
    const requester = typeof request.uid === "string" ? request.uid : null;
    switch (request.type) {
      case RequestType.SOCKETS:
        return super.sockets(new Set(request.rooms || [])).then((ids) => this._respondList(request.type, id, requester, [...ids]));
      case RequestType.ALL_ROOMS:
        return this._respondList(request.type, id, requester, [...this.rooms.keys()]);
      case RequestType.REMOTE_JOIN:
      case RequestType.REMOTE_LEAVE: {
        const join = request.type === RequestType.REMOTE_JOIN;
        if (request.opts) return join ? super.addSockets(toSets(request.opts), request.rooms) : super.delSockets(toSets(request.opts), request.rooms);
        const socket = this.nsp.sockets.get(request.sid);
        if (!socket) return;
        if (join) socket.join(request.room);
        else socket.leave(request.room);
        return this._respondList(request.type, id, requester, null);
      }
      case RequestType.REMOTE_DISCONNECT: {
        if (request.opts) return super.disconnectSockets(toSets(request.opts), request.close);
        const socket = this.nsp.sockets.get(request.sid);
        if (!socket) return;
        socket.disconnect(request.close);
        return this._respondList(request.type, id, requester, null);
      }
      case RequestType.REMOTE_FETCH:
        return super.fetchSockets(toSets(request.opts)).then((sockets) =>
          this._respondList(
            request.type,
            id,
            requester,
            sockets.map((socket) => {
              const { sessionStore, ...handshake } = socket.handshake;
              return { id: socket.id, handshake, rooms: [...socket.rooms], data: socket.data };
            }),
          ),
        );
      case RequestType.SERVER_SIDE_EMIT:
        return this._onServerSideEmit(request, id, requester);
      case RequestType.BROADCAST:
        return super.broadcastWithAck(
          request.packet,
          toSets(request.opts),
          (count) => this._respond(() => this.engine.respondClientCount(id, requester, count)),
          (arg) =>
            this._respond(() =>
              this._customParser
                ? this.engine.respondHostEncoded(requester, toBuffer(this.parser.encode({ type: RequestType.BROADCAST_ACK, requestId: id, packet: arg })))
                : this.engine.respondAck(id, requester, notepack.encode(arg)),
            ),
        );
    }
  }

  _onServerSideEmit(request, id, requester) {
    const [event, ...args] = request.data;
    const custom = event === CUSTOM_REQUEST_EVENT;
    if (id === undefined) {
      if (!custom) this.nsp._onServerSideEmit(request.data);
      return;
    }
    let called = false;
    const reply = (arg) => {
      if (called) return;
      called = true;
      this._respond(() => this.engine.respondServerSideEmit(id, requester, arg === undefined ? null : JSON.stringify(arg)));
    };
    if (custom) {
      this.customHook(args[0], (err, data) => reply(err ? null : data));
    } else {
      this.nsp._onServerSideEmit([...request.data, reply]);
    }
  }

  _respondList(type, id, requester, items) {
    this._respond(() => this.engine.respondList(type, id, requester, items === null ? null : JSON.stringify(items)));
  }

  _respond(send) {
    if (this._closed) return;
    try {
      send();
    } catch (err) {
      this._emitError(err, "ERR_SIO_PUBLISH");
    }
  }

  /** A client count or client ack for one of this node's broadcasts with ack. */
  _onAckResponse(bytes) {
    const response = this._decode(bytes, "response");
    if (!isPlainObject(response)) return;
    const entry = this.ackRequests.get(response.requestId);
    if (!entry) return;
    if (response.type === RequestType.BROADCAST_CLIENT_COUNT) entry.clientCountCallback(response.clientCount);
    else entry.ack(response.packet);
  }

  /** Broadcast whose clients acknowledge; other nodes answer with counts and acks. */
  broadcastWithAck(packet, opts, clientCountCallback, ack) {
    packet.nsp = this.nsp.name;
    if (!(opts.flags && opts.flags.local)) {
      const rawOpts = { rooms: [...opts.rooms], except: [...new Set(opts.except)], flags: opts.flags };
      const timeout = (opts.flags && opts.flags.timeout) || 0;
      try {
        let requestId;
        if (this._customParser) {
          requestId = crypto.randomBytes(9).toString("base64url");
          const request = this.parser.encode({ uid: this.uid, requestId, type: RequestType.BROADCAST, packet, opts: rawOpts });
          this.engine.broadcastWithAckHostEncoded(requestId, toBuffer(request), timeout);
        } else {
          requestId = this.engine.broadcastWithAck(notepack.encode([packet, rawOpts]), timeout);
        }
        this.ackRequests.set(requestId, { clientCountCallback, ack });
        // Nobody can tell here when every client has answered: forget the entry after the
        // broadcast's timeout, as the official adapter does.
        setTimeout(() => this.ackRequests.delete(requestId), timeout).unref();
      } catch (err) {
        this._emitError(err, "ERR_SIO_PUBLISH");
      }
    }
    super.broadcastWithAck(packet, opts, clientCountCallback, ack);
  }

  /** Number of nodes serving this namespace (this one included). */
  serverCount() {
    return settled(this.engine.serverCount()).then((result) => result.count);
  }

  /** Every room of every node. Accepts a trailing Node-style callback (seeds' API). */
  allRooms(callback) {
    const promise = this.engine.allRooms().then((result) => {
      const rooms = new Set(this.rooms.keys());
      for (const room of itemsOf(result)) rooms.add(room);
      return rooms;
    });
    return withCallback(promise, callback);
  }

  /** Local sockets plus the details of matching sockets on every other node. */
  async fetchSockets(opts) {
    const localSockets = await super.fetchSockets(opts);
    if (opts.flags && opts.flags.local) return localSockets;
    const [rooms, except] = targetsJson(opts);
    const result = await this.engine.fetchSockets(rooms, except, (opts.flags && opts.flags.timeout) || undefined);
    return localSockets.concat(itemsOf(result));
  }

  /** `socketsJoin`: applied here at once, and published to the other nodes. */
  addSockets(opts, rooms) {
    super.addSockets(opts, rooms);
    if (opts.flags && opts.flags.local) return;
    this._publish(() => this.engine.changeRooms(true, ...targetsJson(opts), JSON.stringify([...rooms])));
  }

  /** `socketsLeave`: applied here at once, and published to the other nodes. */
  delSockets(opts, rooms) {
    super.delSockets(opts, rooms);
    if (opts.flags && opts.flags.local) return;
    this._publish(() => this.engine.changeRooms(false, ...targetsJson(opts), JSON.stringify([...rooms])));
  }

  /** `disconnectSockets`: applied here at once, and published to the other nodes. */
  disconnectSockets(opts, close) {
    if (!(opts.flags && opts.flags.local)) this._publish(() => this.engine.disconnectSockets(...targetsJson(opts), Boolean(close)));
    super.disconnectSockets(opts, close);
  }

  /** `serverSideEmit`, with an ack callback as last element or without. */
  serverSideEmit(packet) {
    if (typeof packet[packet.length - 1] !== "function") {
      this._publish(() => this.engine.serverSideEmit(JSON.stringify(packet)));
      return;
    }
    const ack = packet.pop();
    this.engine.serverSideEmitWithAck(JSON.stringify(packet)).then(
      (result) => ack(result.error ? requestError(result) : null, JSON.parse(result.items)),
      (err) => ack(err, []),
    );
  }

  _publish(send) {
    try {
      send();
    } catch (err) {
      this._emitError(err, "ERR_SIO_PUBLISH");
    }
  }

  /** Seeds' API: ids of the sockets in `rooms` (all when empty) on every node, as a Set. */
  sockets(rooms, callback) {
    const wanted = new Set(rooms || []);
    const promise = Promise.all([super.sockets(wanted), this.engine.sockets(JSON.stringify([...wanted]))]).then(([local, result]) => {
      for (const id of itemsOf(result)) local.add(id);
      return local;
    });
    return withCallback(promise, callback);
  }

  /** Seeds' API: like `sockets(rooms)`, as an array. */
  clients(rooms, callback) {
    if (typeof rooms === "function") [rooms, callback] = [[], rooms];
    return withCallback(this.sockets(rooms).then((ids) => [...ids]), callback);
  }

  /** Seeds' API: the rooms of socket `id`, wherever it lives (over fetchSockets). */
  clientRooms(id, callback) {
    const local = this.sids.get(id);
    const promise = local
      ? Promise.resolve([...local])
      : this.fetchSockets({ rooms: new Set([id]), except: new Set(), flags: {} }).then((sockets) => {
          const found = sockets.find((s) => s.id === id);
          if (!found) throw Object.assign(new Error(`socket ${id} not found`), { code: "ERR_SIO_NOT_FOUND" });
          return [...found.rooms];
        });
    return withCallback(promise, callback);
  }

  /** Seeds' API: makes socket `id` join `room`, on whichever node it lives. */
  remoteJoin(id, room, callback) {
    return withCallback(this._remoteSocket(id, "join", (s) => s.join(room), room), callback);
  }

  /** Seeds' API: makes socket `id` leave `room`, on whichever node it lives. */
  remoteLeave(id, room, callback) {
    return withCallback(this._remoteSocket(id, "leave", (s) => s.leave(room), room), callback);
  }

  /** Seeds' API: disconnects socket `id`; rejects when no node has it. */
  remoteDisconnect(id, close, callback) {
    if (typeof close === "function") [close, callback] = [false, close];
    return withCallback(this._remoteSocket(id, "disconnect", (s) => s.disconnect(Boolean(close)), undefined, Boolean(close)), callback);
  }

  async _remoteSocket(id, action, applyLocally, room, close) {
    const socket = this.nsp.sockets.get(id);
    if (socket) {
      applyLocally(socket);
      return;
    }
    const result = await this.engine.remoteSocket(action, id, room === undefined ? null : JSON.stringify(room), close);
    itemsOf(result);
  }

  /**
   * Seeds' API: sends `data` to every node's `customHook(data, cb)` and resolves with every
   * node's reply, this one's first. Carried as a server-side emit with ack, so official nodes
   * (which have no customHook) do not answer and the request then times out.
   */
  customRequest(data, callback) {
    const promise = new Promise((resolve, reject) => {
      this.customHook(data, (err, localReply) => {
        this.engine.serverSideEmitWithAck(JSON.stringify([CUSTOM_REQUEST_EVENT, data])).then((result) => {
          if (result.error) reject(requestError(result));
          else resolve([err ? null : localReply, ...JSON.parse(result.items)]);
        }, reject);
      });
    });
    return withCallback(promise, callback);
  }

  /** Answers `customRequest(data)` of any node; override it. The default replies `null`. */
  customHook(data, callback) {
    callback(null, null);
  }

  /** Requests of this node still waiting for answers (always empty after completion or timeout). */
  get requests() {
    return { size: this.engine.stats().pendingRequests };
  }

  /**
   * Counters of the native engine: published, delivered, skipped, what was dropped (malformed,
   * tooLarge, tooComplex, dropped for a full receive buffer), pending requests and acks, and
   * the Redis connections' (`redis`).
   */
  stats() {
    const stats = { ...this.engine.stats(), redis: this._lease.native.stats() };
    // With a custom parser, what it could not read was dropped here, not in the core.
    stats.malformed += this._malformed.total;
    return stats;
  }

  /** Unsubscribes this namespace; the connections close with the last namespace. */
  async close() {
    if (this._closed) return;
    this._closed = true;
    this.ackRequests.clear();
    try {
      await settled(this.engine.close());
    } finally {
      await this._shared.release(this._lease);
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
  // A URL, or the seed nodes of a Redis Cluster, then the options.
  if ((typeof first === "string" || Array.isArray(first)) && (isPlainObject(second) || second === undefined) && third === undefined) {
    return { pubClient: first, subClient: undefined, opts: second };
  }
  if (first !== undefined && first !== null && typeof first !== "string" && !Array.isArray(first) && !isPlainObject(first) && !isRedisClient(first)) {
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
  const { opts, url, tlsCa } = prepare(pubClient, subClient, rawOpts);
  const prepared = { [PREPARED]: { opts, shared: new SharedConnection(url, opts.limits, tlsCa) } };
  return function (nsp) {
    return new RedisAdapter(nsp, pubClient, subClient, prepared);
  };
}

withEngineHost(RedisAdapter);

module.exports = createAdapter;
module.exports.createAdapter = createAdapter;
module.exports.RedisAdapter = RedisAdapter;
module.exports.RequestType = RequestType;
const { Emitter, ShardedEmitter, BroadcastOperator, RESERVED_EVENTS } = require("./lib/emitter");
module.exports.Emitter = Emitter;
module.exports.ShardedEmitter = ShardedEmitter;
module.exports.BroadcastOperator = BroadcastOperator;
module.exports.RESERVED_EVENTS = RESERVED_EVENTS;
module.exports.createShardedAdapter = require("./lib/sharded").createShardedAdapter;
module.exports.default = createAdapter;
