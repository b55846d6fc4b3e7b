// Types of the npm package `sioadapter`. Code written for `@socket.io/redis-adapter` (8.x) and
// `@socket.io/redis-emitter` (5.x) compiles against them unchanged (test/typescript.test.js
// type-checks it under `tsc --strict`); what sioadapter adds is marked "sioadapter:".
import {
  Adapter,
  BroadcastOptions,
  ClusterAdapter,
  ClusterMessage,
  ClusterResponse,
  Offset,
  Room,
  SocketId,
} from "socket.io-adapter";

// ---------------------------------------------------------------------------------------------
// Options

/**
 * The encoder/decoder of broadcasts, broadcasts with ack and their acknowledgements sent through
 * Redis (the official `parser` option; every other request and response is JSON). notepack.io,
 * the official default, is read and written by the Rust core; any other (msgpackr, or
 * `{ encode: JSON.stringify, decode: JSON.parse }` so other languages can read the channels) is
 * called in JS, and nodes of a cluster must all use the same one. `encode` may return a string
 * or bytes; `decode` is given a Buffer.
 */
export interface Parser {
  decode: (msg: any) => any;
  encode: (msg: any) => any;
}

/**
 * sioadapter: bounds on what other nodes can make this node hold (README "Limits"). Every message
 * is checked in Rust before any JS object is built; what a bound drops is counted in `stats()`
 * and reported as an `'error'` with a code, at most once a second per kind. Each value: a
 * positive integer.
 */
export interface LimitOptions {
  /**
   * Largest message accepted from Redis, in bytes: larger ones are dropped (`tooLarge`,
   * `ERR_SIO_TOO_LARGE`); this node's own larger broadcasts are not published. @default 16777216 (16 MiB)
   */
  maxMessageBytes?: number;
  /** Most values (scalars, arrays, maps, map keys) in one message; more: dropped (`tooComplex`, `ERR_SIO_TOO_COMPLEX`). @default 1000000 */
  maxMessageValues?: number;
  /** Deepest nesting of arrays and maps in one message (at most 1024); deeper: dropped (`tooComplex`, `ERR_SIO_TOO_COMPLEX`). @default 256 */
  maxMessageDepth?: number;
  /** Bytes of received messages waiting for a busy event loop; beyond: dropped (`dropped`, `ERR_SIO_OVERLOADED`). @default 268435456 (256 MiB) */
  maxReceiveBufferBytes?: number;
  /** Broadcasts kept while Redis is slow or unreachable; beyond: dropped (`redis.dropped`, `ERR_SIO_OVERLOADED`). @default 100000 */
  maxQueuedPublishes?: number;
  /** Bytes kept while Redis is slow or unreachable; beyond: dropped (`redis.dropped`, `ERR_SIO_OVERLOADED`). @default 67108864 (64 MiB) */
  maxQueuedBytes?: number;
}

/**
 * The options of `createAdapter` and of the `RedisAdapter` constructor, which take them as
 * `Partial<RedisAdapterOptions>`: the four official ones (required here, as officially, so that
 * a complete `RedisAdapterOptions` reads as such) and sioadapter's own, optional.
 */
export interface RedisAdapterOptions extends LimitOptions {
  /** Prefix of every Redis channel (`""` means the default). @default "socket.io" */
  key: string;
  /** Milliseconds a cluster request (allRooms, fetchSockets, ...) waits for answers (`0` means the default). @default 5000 */
  requestsTimeout: number;
  /** Answer requests on the requester's own channel `key-response#nsp#uid#` instead of the shared one. @default false */
  publishOnSpecificResponseChannel: boolean;
  /** Encodes and decodes broadcasts, broadcasts with ack and their acks; every node of the cluster must use the same. @default notepack.io */
  parser: Parser;
  /**
   * sioadapter: SUBSCRIBE to `key#nsp#` and to `key#nsp#room#` for each room with local sockets
   * instead of PSUBSCRIBE `key#nsp#*`: Redis stops sending this node single-room broadcasts it
   * would drop. Wire-compatible with official nodes. `socket.join()` then resolves once the
   * room's channel is subscribed. @default false
   */
  perRoomSubscriptions?: boolean;
  /**
   * sioadapter: cork each client's TCP socket while engine.io flushes several packets to it, so
   * they leave in one write (same bytes, same order). Turn it off to leave engine.io's writes
   * as they are; it applies to the whole engine.io server once any of its adapters has it on.
   * @default true
   */
  coalesceWrites?: boolean;
  /**
   * sioadapter: after a heavy stretch of traffic (4 MiB or more received at 256 KiB/s or more),
   * the first second with less than 256 KiB runs one full V8 collection and gives the
   * allocator's free pages back to the system (at most every 5 s), so that a node's memory falls
   * back instead of staying at its peak. The collection pauses the event loop for a few ms; two
   * in a row over 50 ms (a large live heap) are the last for the process (the trims go on).
   * Process-wide: `false` on any adapter turns the collections off for the whole process.
   * @default true
   */
  releaseMemoryWhenIdle?: boolean;
  /** Accepted for compatibility with older versions; ignored (Rust owns the connections). */
  subEvent?: string;
  /** Accepted for compatibility with older versions; ignored (Rust owns the connections). */
  return_buffers?: boolean;
}

/** sioadapter: connection settings accepted where a Redis client is expected. */
export interface RedisConnectionSettings {
  /** `redis://`, `rediss://`, `redis+sentinel://`, `redis+cluster://`, ... URL. */
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  database?: number;
  /** `true`, or TLS settings (`ca`, `rejectUnauthorized`, ...). */
  tls?: boolean | object;
  /** Unix socket path. */
  path?: string;
}

/** sioadapter: seed nodes of a Redis Cluster: `"host:port"`, `redis://` URLs, ports or `{ host, port }`. */
export type ClusterSeeds = Array<string | number | { host?: string; port?: number } | { url: string }>;

/**
 * sioadapter: what may be passed as `pubClient` / `subClient` (typed `any` in the signatures, as
 * officially): a node-redis (v4–v6) or ioredis client or cluster (only its connection settings
 * are read), a `redis://` URL or `host:port` string, settings, or seeds. Omitted:
 * `redis://127.0.0.1:6379`.
 */
export type RedisSource = string | RedisConnectionSettings | ClusterSeeds | { options?: any; publish?: Function } | null | undefined;

/**
 * sioadapter: the settings object of the older call form `createAdapter({ pubClient, subClient,
 * key, ... })` or `createAdapter({ host, port, key, ... })`.
 */
export type LegacyAdapterOptions = Partial<RedisAdapterOptions> & RedisConnectionSettings & { pubClient?: any; subClient?: any };

/** Options of the sharded adapter, with the official names and defaults, plus sioadapter's limits. */
export interface ShardedRedisAdapterOptions extends LimitOptions {
  /** Prefix of every channel. @default "socket.io" */
  channelPrefix?: string;
  /**
   * Which rooms get a channel of their own: none (`"static"`), public rooms (`"dynamic"`), or
   * every room, socket ids included (`"dynamic-private"`). All nodes must use the same mode.
   * @default "dynamic"
   */
  subscriptionMode?: "static" | "dynamic" | "dynamic-private";
  /**
   * sioadapter: cork each client's TCP socket while engine.io flushes several packets to it, so
   * they leave in one write (same bytes, same order). Turn it off to leave engine.io's writes
   * as they are; it applies to the whole engine.io server once any of its adapters has it on.
   * @default true
   */
  coalesceWrites?: boolean;
  /**
   * sioadapter: after a heavy stretch of traffic (4 MiB or more received at 256 KiB/s or more),
   * the first second with less than 256 KiB runs one full V8 collection and gives the
   * allocator's free pages back to the system (at most every 5 s), so that a node's memory falls
   * back instead of staying at its peak. The collection pauses the event loop for a few ms; two
   * in a row over 50 ms (a large live heap) are the last for the process (the trims go on).
   * Process-wide: `false` on any adapter turns the collections off for the whole process.
   * @default true
   */
  releaseMemoryWhenIdle?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Counters and errors (sioadapter)

/** sioadapter: counters of the Redis connections shared by the namespaces of one server. */
export interface RedisStats {
  /** Messages Redis confirmed. */
  published: number;
  /** Messages refused (queue full, closed) or refused by Redis for good: not delivered. */
  dropped: number;
  /** Messages sent without a confirmation from Redis: may or may not have been delivered, never sent twice. */
  unconfirmed: number;
  /** Messages received. */
  received: number;
  /** Messages queued, not yet settled. */
  pending: number;
  /** Bytes of the queued messages (bounded by `maxQueuedBytes`). */
  pendingBytes: number;
  /** `connecting`, `up`, `down` (an outage was reported; publishing waits) or `closed`. */
  link: "connecting" | "up" | "down" | "closed";
}

/** sioadapter: codes of the errors the adapters emit or throw (`err.code`). */
export type SioErrorCode =
  | "ERR_SIO_OPTION"
  | "ERR_SIO_REDIS"
  | "ERR_SIO_TIMEOUT"
  | "ERR_SIO_CLOSED"
  | "ERR_SIO_OVERLOADED"
  | "ERR_SIO_TOO_LARGE"
  | "ERR_SIO_TOO_COMPLEX"
  | "ERR_SIO_MALFORMED"
  | "ERR_SIO_PROTOCOL"
  | "ERR_SIO_PUBLISH"
  | "ERR_SIO_HANDLER";

/** sioadapter: an error of the adapters, with its code. */
export interface SioError extends Error {
  code: SioErrorCode;
}

/** sioadapter: counters of one namespace's engine (`RedisAdapter.stats()`). */
export interface EngineStats {
  /** Broadcasts handed to Redis. */
  published: number;
  /** Messages from other nodes handed to socket.io. */
  delivered: number;
  /** Messages dropped as undecodable. */
  malformed: number;
  /** Messages dropped for being over `maxMessageBytes` (received, or this node's own). */
  tooLarge: number;
  /** Messages dropped for being over `maxMessageValues` or `maxMessageDepth`. */
  tooComplex: number;
  /** Messages dropped because the event loop did not take them in time (`maxReceiveBufferBytes`). */
  dropped: number;
  /** Broadcasts skipped because no local socket could receive them. */
  skipped: number;
  /** Requests of this node waiting for answers. */
  pendingRequests: number;
  /** Broadcasts with ack whose acknowledgements are awaited. */
  pendingAcks: number;
  /** Counters of the Redis connections shared by the namespaces. */
  redis: RedisStats;
}

/**
 * sioadapter: counters of a sharded adapter (`stats()`): socket.io-adapter's ClusterAdapter runs
 * its requests, so no request or ack counters.
 */
export type ShardedEngineStats = Pick<EngineStats, "published" | "delivered" | "malformed" | "tooLarge" | "tooComplex" | "dropped" | "redis">;

/** sioadapter: a Node-style callback, which the seeds' methods accept besides returning a Promise. */
export type NodeCallback<T> = (err: Error | null, result?: T) => void;

/**
 * sioadapter: the listeners of the events both adapters emit, besides socket.io-adapter's room
 * events: `'error'` (Redis and limit problems, never thrown; without a listener one warning is
 * printed instead) and `'ready'` (channels subscribed, again after each outage). Typed by the
 * adapters' `on`.
 */
export interface AdapterEventMap {
  error: (err: SioError) => void;
  ready: () => void;
  "create-room": (room: Room) => void;
  "delete-room": (room: Room) => void;
  "join-room": (room: Room, id: SocketId) => void;
  "leave-room": (room: Room, id: SocketId) => void;
}

// ---------------------------------------------------------------------------------------------
// The adapter

/**
 * The classic Redis adapter (PUBLISH/PSUBSCRIBE), wire-compatible with the official one. Made by
 * `createAdapter(...)`, or directly (and so by a subclass) with the official constructor
 * `new RedisAdapter(nsp, pubClient, subClient, opts)`; a server's namespaces made that way with
 * the same `pubClient` share one pair of Redis connections.
 *
 * @example
 * class MyAdapter extends RedisAdapter {
 *   constructor(nsp: any, pubClient: any, subClient: any, opts?: Partial<RedisAdapterOptions>) {
 *     super(nsp, pubClient, subClient, opts);
 *   }
 * }
 * // socket.io calls the factory with `new`: a function, not an arrow function.
 * io.adapter(function (nsp) { return new MyAdapter(nsp, pubClient, subClient); });
 */
export declare class RedisAdapter extends Adapter {
  /** What was passed as `pubClient` (only read for its connection settings: the Rust core opens its own connections). */
  readonly pubClient: any;
  /** What was passed as `subClient` (checked, never used). */
  readonly subClient: any;
  /** This node's id for the namespace (6 characters). */
  readonly uid: string;
  /** Milliseconds a cluster request waits for answers. */
  readonly requestsTimeout: number;
  /** Whether this node answers requests on the requester's own response channel. */
  readonly publishOnSpecificResponseChannel: boolean;
  /** The encoder/decoder of broadcasts, broadcasts with ack and their acks (the `parser` option, or notepack.io). */
  readonly parser: Parser;
  /** The broadcast channel `key#nsp#` (single-room broadcasts go to `key#nsp#room#`). */
  readonly channel: string;
  /** The request channel `key-request#nsp#`. */
  readonly requestChannel: string;
  /** The shared response channel `key-response#nsp#`. */
  readonly responseChannel: string;
  /** This node's own response channel `key-response#nsp#uid#`. */
  readonly specificResponseChannel: string;
  /** Requests of this node still waiting for answers. */
  readonly requests: { readonly size: number };
  /** sioadapter: the channel key prefix (`key` option). */
  readonly prefix: string;
  /** sioadapter: the `perRoomSubscriptions` option. */
  readonly perRoomSubscriptions: boolean;
  /** sioadapter: resolves once the namespace's channels are subscribed. */
  readonly ready: Promise<void>;

  /**
   * The official constructor. `pubClient`: a node-redis or ioredis client (read for its
   * settings), or anything `RedisSource` lists; `subClient` is only checked; `opts`: the
   * options of `createAdapter`. Throws a `TypeError` with `code: "ERR_SIO_OPTION"` for a wrong
   * option.
   */
  constructor(nsp: any, pubClient?: any, subClient?: any, opts?: Partial<RedisAdapterOptions>);

  /** Publishes to the other nodes (unless `flags.local`), then delivers to local sockets. */
  broadcast(packet: any, opts: BroadcastOptions): void;
  /** A broadcast whose clients acknowledge; other nodes answer with their client counts and acks. */
  broadcastWithAck(packet: any, opts: BroadcastOptions, clientCountCallback: (clientCount: number) => void, ack: (...args: any[]) => void): void;
  /** Every room of every node. sioadapter: also takes a Node-style callback (seeds' API). */
  allRooms(callback?: NodeCallback<Set<Room>>): Promise<Set<Room>>;
  /** The matching sockets of every node (local ones as sockets, remote ones as their details). */
  fetchSockets(opts: BroadcastOptions): Promise<any[]>;
  /** `socketsJoin`: applied here at once, and published to the other nodes. */
  addSockets(opts: BroadcastOptions, rooms: Room[]): void;
  /** `socketsLeave`: applied here at once, and published to the other nodes. */
  delSockets(opts: BroadcastOptions, rooms: Room[]): void;
  /** `disconnectSockets`: applied here at once, and published to the other nodes. */
  disconnectSockets(opts: BroadcastOptions, close: boolean): void;
  /** `serverSideEmit`: `packet` is `[event, ...args]`, with an ack callback as last element or without. */
  serverSideEmit(packet: any[]): void;
  /** Number of nodes serving this namespace (this one included). */
  serverCount(): Promise<number>;
  /** Unsubscribes this namespace; the Redis connections close with the last namespace (always a Promise). */
  close(): Promise<void> | void;

  /**
   * sioadapter: counters of the native engine (published, delivered, skipped, what was dropped,
   * pending requests and acks) and of the Redis connections (`redis`).
   */
  stats(): EngineStats;
  /** sioadapter: a listener of `'error'`, `'ready'` or a room event, typed (`AdapterEventMap`). */
  on<Ev extends keyof AdapterEventMap>(event: Ev, listener: AdapterEventMap[Ev]): this;
  /** A listener of any other event. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;

  /** Seeds' API: ids of the sockets in `rooms` (all when empty) on every node. */
  sockets(rooms?: Set<Room> | Room[], callback?: NodeCallback<Set<SocketId>>): Promise<Set<SocketId>>;
  /** Seeds' API: like `sockets(rooms)`, as an array. */
  clients(rooms?: Set<Room> | Room[], callback?: NodeCallback<SocketId[]>): Promise<SocketId[]>;
  clients(callback: NodeCallback<SocketId[]>): Promise<SocketId[]>;
  /** Seeds' API: the rooms of socket `id`, wherever it lives; rejects when no node has it. */
  clientRooms(id: SocketId, callback?: NodeCallback<Room[]>): Promise<Room[]>;
  /** Seeds' API: makes socket `id` join `room`, on whichever node it lives; rejects when no node has it. */
  remoteJoin(id: SocketId, room: Room, callback?: NodeCallback<void>): Promise<void>;
  /** Seeds' API: makes socket `id` leave `room`, on whichever node it lives; rejects when no node has it. */
  remoteLeave(id: SocketId, room: Room, callback?: NodeCallback<void>): Promise<void>;
  /** Seeds' API: disconnects socket `id` (`close`: also its connection); rejects when no node has it. */
  remoteDisconnect(id: SocketId, close?: boolean, callback?: NodeCallback<void>): Promise<void>;
  remoteDisconnect(id: SocketId, callback: NodeCallback<void>): Promise<void>;
  /**
   * Seeds' API: sends `data` to every node's `customHook(data, cb)`; resolves with every node's
   * reply, this node's first (official nodes do not answer: the request then times out).
   */
  customRequest(data: any, callback?: NodeCallback<any[]>): Promise<any[]>;
  /** Seeds' API: answers `customRequest(data)` of any node; override it. The default replies `null`. */
  customHook(data: any, callback: (err: Error | null, reply?: any) => void): void;
}

/**
 * Returns the `(nsp) => adapter` factory for `io.adapter(...)` or `new Server({ adapter })`:
 * the official signature and options. The namespaces of the server share one pair of Redis
 * connections.
 *
 * sioadapter: `pubClient` and `subClient` are only read for their settings (see
 * `RedisSource`), may be omitted (redis://127.0.0.1:6379), and the older call forms of the
 * seeds work too: `createAdapter({ pubClient, subClient, key })`, `createAdapter({ host, port,
 * key })`, `createAdapter("localhost:6379", opts)`, `createAdapter(seeds, opts)`.
 *
 * @example
 * const pubClient = createClient({ url: "redis://localhost:6379" });
 * const subClient = pubClient.duplicate();
 * await Promise.all([pubClient.connect(), subClient.connect()]);
 * io.adapter(createAdapter(pubClient, subClient));
 */
export declare function createAdapter(opts: LegacyAdapterOptions): (nsp: any) => RedisAdapter;
export declare function createAdapter(url: string | ClusterSeeds, opts?: Partial<RedisAdapterOptions>): (nsp: any) => RedisAdapter;
export declare function createAdapter(pubClient?: any, subClient?: any, opts?: Partial<RedisAdapterOptions>): (nsp: any) => RedisAdapter;

/**
 * sioadapter: request types on the wire, by their official names (the official package keeps
 * them internal).
 */
export declare const RequestType: {
  readonly SOCKETS: number;
  readonly ALL_ROOMS: number;
  readonly REMOTE_JOIN: number;
  readonly REMOTE_LEAVE: number;
  readonly REMOTE_DISCONNECT: number;
  readonly REMOTE_FETCH: number;
  readonly SERVER_SIDE_EMIT: number;
  readonly BROADCAST: number;
  readonly BROADCAST_CLIENT_COUNT: number;
  readonly BROADCAST_ACK: number;
};

// ---------------------------------------------------------------------------------------------
// The sharded adapter

/**
 * The adapter `createShardedAdapter` makes: socket.io-adapter's `ClusterAdapter` over sharded
 * pub/sub (SPUBLISH/SSUBSCRIBE). A type only, as officially: make one with
 * `createShardedAdapter`.
 */
declare class ShardedRedisAdapter extends ClusterAdapter {
  /** What was passed as `pubClient` (only read for its settings). */
  readonly pubClient: any;
  /** What was passed as `subClient` (never used). */
  readonly subClient: any;
  /** The namespace's main channel `prefix#nsp#`. */
  readonly channel: string;
  /** This node's response channel `prefix#nsp#uid#`. */
  readonly responseChannel: string;
  /** sioadapter: the `subscriptionMode` option. */
  readonly subscriptionMode: "static" | "dynamic" | "dynamic-private";
  /** sioadapter: resolves once the namespace's channels are subscribed. */
  readonly ready: Promise<void>;
  /** Unsubscribes everything; the connection closes with its last namespace (always a Promise). */
  close(): Promise<void> | void;
  /** ClusterAdapter hook: publishes a message (on a room's channel or the main channel). */
  doPublish(message: ClusterMessage): Promise<Offset>;
  /** ClusterAdapter hook: publishes a response on the requester's own channel. */
  doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void>;
  /** Nodes serving the namespace (`PUBSUB SHARDNUMSUB`, across the cluster). */
  serverCount(): Promise<number>;
  /** sioadapter: counters of the native engine and of the Redis connections (`redis`). */
  stats(): ShardedEngineStats;
  /** sioadapter: a listener of `'error'`, `'ready'` or a room event, typed (`AdapterEventMap`). */
  on<Ev extends keyof AdapterEventMap>(event: Ev, listener: AdapterEventMap[Ev]): this;
  /** A listener of any other event. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
export type { ShardedRedisAdapter };

/**
 * The sharded adapter (SPUBLISH/SSUBSCRIBE, Redis ≥ 7), wire-compatible with the official
 * `createShardedAdapter`: same signature and options. sioadapter: `pubClient` may be a
 * node-redis or ioredis client or cluster, seed nodes, or a `redis://` / `redis+cluster://`
 * URL (only read for its settings); `subClient` may be omitted.
 *
 * @example
 * io.adapter(createShardedAdapter(pubClient, subClient, { subscriptionMode: "dynamic" }));
 */
export declare function createShardedAdapter(pubClient: any, subClient?: any, opts?: ShardedRedisAdapterOptions): (nsp: any) => ShardedRedisAdapter;

// ---------------------------------------------------------------------------------------------
// The emitter

/** Event names mapped to listener signatures: what types an `Emitter`'s events (as socket.io's `EventsMap`). */
export interface EventsMap {
  [event: string]: any;
}

/** The events map of an untyped `Emitter`: any event name, any arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

/** The event names of an events map. */
export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);

/** The arguments of event `Ev` of an events map: its listener's parameters. */
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

/** Options of `new Emitter(redisClient, opts)`: the official ones plus sioadapter's limits that apply to emitting. */
export interface EmitterOptions extends Pick<LimitOptions, "maxMessageBytes" | "maxQueuedPublishes" | "maxQueuedBytes"> {
  /** Prefix of every channel. @default "socket.io" */
  key?: string;
  /** Encodes broadcasts, as the nodes' `parser` decodes them. @default notepack.io */
  parser?: Pick<Parser, "encode">;
}

/**
 * A selection of sockets (rooms, excepted rooms, flags) to emit to or act on, made by an
 * `Emitter`'s `to`, `in`, `except`, `compress` and `volatile`. Immutable: each call returns a
 * new one. Typed by the emitter's events map.
 */
export declare class BroadcastOperator<EmitEvents extends EventsMap = DefaultEventsMap> {
  /** Made by an `Emitter` only. */
  private constructor();
  /** Adds room(s) to target. */
  to(room: Room | Room[]): BroadcastOperator<EmitEvents>;
  /** Same as `to`. */
  in(room: Room | Room[]): BroadcastOperator<EmitEvents>;
  /** Excludes the sockets in room(s). */
  except(room: Room | Room[]): BroadcastOperator<EmitEvents>;
  /** Sets the compress flag. */
  compress(compress: boolean): BroadcastOperator<EmitEvents>;
  /** The message may be dropped for clients that are not ready to receive it. */
  get volatile(): BroadcastOperator<EmitEvents>;
  /** Emits `ev` with `args` to the selected sockets of every node. Throws for a reserved event name. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): true;
  /** Makes the selected sockets join `rooms`. */
  socketsJoin(rooms: Room | Room[]): void;
  /** Makes the selected sockets leave `rooms`. */
  socketsLeave(rooms: Room | Room[]): void;
  /** Disconnects the selected sockets (`close`: also their underlying connection). */
  disconnectSockets(close?: boolean): void;
}

/**
 * What `Emitter` and `ShardedEmitter` both offer: the API of `@socket.io/redis-emitter`, typed by
 * the emitter's events map.
 */
export interface EmitterApi<EmitEvents extends EventsMap = DefaultEventsMap> {
  /** What was passed as `redisClient`. */
  readonly redisClient: any;
  /** The namespace this emitter emits into, with its leading "/". */
  readonly nsp: string;
  /** Emits to every client of the namespace. Throws for a reserved event name. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): true;
  /** Targets room(s). */
  to(room: Room | Room[]): BroadcastOperator<EmitEvents>;
  /** Same as `to`. */
  in(room: Room | Room[]): BroadcastOperator<EmitEvents>;
  /** Excludes the sockets in room(s). */
  except(room: Room | Room[]): BroadcastOperator<EmitEvents>;
  /** The message may be dropped for clients that are not ready to receive it. */
  readonly volatile: BroadcastOperator<EmitEvents>;
  /** Sets the compress flag. */
  compress(compress: boolean): BroadcastOperator<EmitEvents>;
  /** Makes every socket of the namespace join `rooms`. */
  socketsJoin(rooms: Room | Room[]): void;
  /** Makes every socket of the namespace leave `rooms`. */
  socketsLeave(rooms: Room | Room[]): void;
  /** Disconnects every socket of the namespace (`close`: also their underlying connection). */
  disconnectSockets(close?: boolean): void;
  /** Emits `[event, ...args]` to the server-side listeners of every node (no acknowledgement; the arguments travel as JSON). */
  serverSideEmit(...args: any[]): void;
  /** sioadapter: the Redis connection's counters and link state (shared with `of()`'s emitters). */
  stats(): { redis: RedisStats };
  /** sioadapter: sends what is queued (for a short while at most) and closes the connection. */
  close(): Promise<void>;
}

/**
 * The API of `@socket.io/redis-emitter` on the Rust core: emits into a socket.io cluster from a
 * process that is not a socket.io server. `redisClient` is read for its settings (a node-redis
 * or ioredis client, a URL, settings, or nothing for redis://127.0.0.1:6379); the core opens its
 * own connection. Acknowledgements are not supported.
 *
 * @example
 * interface Events { basicEmit: (a: number, b: string, c: number[]) => void }
 * const io = new Emitter<Events>(redisClient);
 * io.to("room1").emit("basicEmit", 1, "2", [3]);
 */
export declare class Emitter<EmitEvents extends EventsMap = DefaultEventsMap> {
  constructor(redisClient?: any, opts?: EmitterOptions, nsp?: string);
  /** The emitter of another namespace (a leading "/" is added when missing); shares the connection. */
  of(nsp: string): Emitter<EmitEvents>;
}
export interface Emitter<EmitEvents extends EventsMap = DefaultEventsMap> extends EmitterApi<EmitEvents> {}

/** Options of `new ShardedEmitter(redisClient, opts)`: those of the sharded nodes it emits to, and sioadapter's limits that apply to emitting. */
export interface ShardedEmitterOptions extends Pick<LimitOptions, "maxMessageBytes" | "maxQueuedPublishes" | "maxQueuedBytes"> {
  /** The nodes' `channelPrefix`. @default "socket.io" */
  channelPrefix?: string;
  /** The nodes' `subscriptionMode`: a broadcast to one room goes to the room's channel in the dynamic modes. @default "dynamic" */
  subscriptionMode?: "static" | "dynamic" | "dynamic-private";
}

/**
 * sioadapter: emits into a cluster of sharded adapters (`createShardedAdapter`, official or
 * sioadapter's, on a Redis Cluster or a single Redis ≥ 7), which no official package does. The
 * same API as `Emitter`; it publishes socket.io's ClusterAdapter messages from uid "emitter" with
 * SPUBLISH.
 *
 * @example
 * const emitter = new ShardedEmitter(redisClusterOrUrl, { channelPrefix: "socket.io", subscriptionMode: "dynamic" });
 * emitter.to("room1").emit("hello", "world");
 */
export declare class ShardedEmitter<EmitEvents extends EventsMap = DefaultEventsMap> {
  constructor(redisClient?: any, opts?: ShardedEmitterOptions, nsp?: string);
  /** The emitter of another namespace (a leading "/" is added when missing); shares the connection. */
  of(nsp: string): ShardedEmitter<EmitEvents>;
}
export interface ShardedEmitter<EmitEvents extends EventsMap = DefaultEventsMap> extends EmitterApi<EmitEvents> {}

export declare const RESERVED_EVENTS: ReadonlySet<string | Symbol>;

/**
 * sioadapter: `createAdapter` (the official package has no default export). ES modules get
 * their types from index.d.mts, whose default export is `createAdapter` too.
 */
export default createAdapter;
