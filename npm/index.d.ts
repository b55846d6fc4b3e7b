import { Adapter, BroadcastOptions, Room } from "socket.io-adapter";

/**
 * Bounds on what other nodes can make this node hold (README "Limits"). Every message is checked
 * in Rust before any JS object is built; what a bound drops is counted in `stats()` and reported
 * as an `'error'` with a code, at most once a second per kind. Each value: a positive integer.
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
  /** Bytes of received messages waiting for a busy event loop; beyond: dropped (`dropped`, `ERR_SIO_OVERLOADED`). @default 67108864 (64 MiB) */
  maxReceiveBufferBytes?: number;
  /** Broadcasts kept while Redis is slow or unreachable; beyond: dropped (`redis.dropped`, `ERR_SIO_OVERLOADED`). @default 100000 */
  maxQueuedPublishes?: number;
  /** Bytes kept while Redis is slow or unreachable; beyond: dropped (`redis.dropped`, `ERR_SIO_OVERLOADED`). @default 67108864 (64 MiB) */
  maxQueuedBytes?: number;
}

/** Options, with the names and defaults of `@socket.io/redis-adapter`, plus the limits. */
export interface RedisAdapterOptions extends LimitOptions {
  /** Prefix of every Redis channel. @default "socket.io" */
  key?: string;
  /** Milliseconds a cluster request (allRooms, fetchSockets, ...) waits for answers. @default 5000 */
  requestsTimeout?: number;
  /** Answer requests on `key-response#nsp#uid#` instead of the shared response channel. @default false */
  publishOnSpecificResponseChannel?: boolean;
  /**
   * SUBSCRIBE to `key#nsp#` and to `key#nsp#room#` for each room with local sockets instead of
   * PSUBSCRIBE `key#nsp#*`: Redis stops sending this node single-room broadcasts it would drop.
   * Wire-compatible with official nodes. `socket.join()` then resolves once the room's channel
   * is subscribed. @default false
   */
  perRoomSubscriptions?: boolean;
  /** Only notepack.io itself is accepted: sioadapter always speaks notepack msgpack. */
  parser?: { encode(msg: any): any; decode(msg: any): any };
  /** Accepted for compatibility with older versions; ignored (Rust owns the connections). */
  subEvent?: string;
  /** Accepted for compatibility with older versions; ignored (Rust owns the connections). */
  return_buffers?: boolean;
}

/** Connection settings accepted where a Redis client is expected. */
export interface RedisConnectionSettings {
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  database?: number;
  tls?: boolean | object;
  path?: string;
}

/**
 * What may be passed as `pubClient` / `subClient`: a node-redis (v4–v6) or ioredis client (only
 * its connection settings are read), a `redis://` URL or `host:port` string, or settings.
 * Omitted: `redis://127.0.0.1:6379`.
 */
export type RedisSource = string | RedisConnectionSettings | { options?: any; publish?: Function } | null | undefined;

/** Counters of the Redis connections shared by the namespaces of one server. */
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

/** Codes of the errors the adapters emit or throw (`err.code`). */
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

/** Counters of one namespace engine. */
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

export declare class RedisAdapter extends Adapter {
  /** This node's id for the namespace (6 characters). */
  readonly uid: string;
  /** The channel key prefix (`key` option). */
  readonly prefix: string;
  readonly requestsTimeout: number;
  readonly publishOnSpecificResponseChannel: boolean;
  readonly perRoomSubscriptions: boolean;
  readonly pubClient: any;
  readonly subClient: any;
  /** Resolves once the namespace's channels are subscribed. */
  readonly ready: Promise<void>;
  broadcast(packet: any, opts: BroadcastOptions): void;
  /** Counters of the native engine. */
  stats(): EngineStats;
  /** Unsubscribes; the Redis connections close with the last namespace. */
  close(): Promise<void>;
  on(event: "error", listener: (err: Error & { code: SioErrorCode }) => void): this;
  on(event: "ready", listener: () => void): this;
  on(event: "create-room" | "delete-room", listener: (room: Room) => void): this;
  on(event: "join-room" | "leave-room", listener: (room: Room, id: string) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

/**
 * Returns the `(nsp) => adapter` factory for `io.adapter(...)`.
 *
 * @example
 * const { createClient } = require("redis");
 * const pubClient = createClient({ url: "redis://localhost:6379" });
 * const subClient = pubClient.duplicate();
 * io.adapter(createAdapter(pubClient, subClient));
 */
export declare function createAdapter(pubClient?: RedisSource, subClient?: RedisSource, opts?: RedisAdapterOptions): (nsp: any) => RedisAdapter;
export declare function createAdapter(opts: RedisAdapterOptions & RedisConnectionSettings & { pubClient?: RedisSource; subClient?: RedisSource }): (nsp: any) => RedisAdapter;
export declare function createAdapter(url: string, opts?: RedisAdapterOptions): (nsp: any) => RedisAdapter;
/** Seed nodes of a Redis Cluster: `"host:port"`, `redis://` URLs, ports or `{ host, port }`. */
export type ClusterSeeds = Array<string | number | { host?: string; port?: number } | { url: string }>;
export declare function createAdapter(seeds: ClusterSeeds, opts?: RedisAdapterOptions): (nsp: any) => RedisAdapter;

/** Options of the sharded adapter, with the official names and defaults, plus the limits. */
export interface ShardedRedisAdapterOptions extends LimitOptions {
  /** Prefix of every channel. @default "socket.io" */
  channelPrefix?: string;
  /** Which rooms get a channel of their own: none, public rooms, or every room. @default "dynamic" */
  subscriptionMode?: "static" | "dynamic" | "dynamic-private";
}
/**
 * The sharded adapter (SPUBLISH/SSUBSCRIBE, Redis ≥ 7), wire-compatible with the official
 * `createShardedAdapter`. `pubClient`: a node-redis or ioredis client or cluster, seed nodes, or a
 * `redis://` / `redis+cluster://` URL (only read for its settings).
 */
export declare function createShardedAdapter(pubClient: RedisSource | ClusterSeeds, subClient?: RedisSource, opts?: ShardedRedisAdapterOptions): (nsp: any) => Adapter;

/** A selection of sockets to emit to or act on (immutable; each call returns a new one). */
export declare class BroadcastOperator {
  to(room: Room | Room[]): BroadcastOperator;
  in(room: Room | Room[]): BroadcastOperator;
  except(room: Room | Room[]): BroadcastOperator;
  compress(compress: boolean): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  emit(ev: string, ...args: any[]): true;
  socketsJoin(rooms: Room | Room[]): void;
  socketsLeave(rooms: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
}

/** The API of `@socket.io/redis-emitter`, on the Rust core. */
export declare class Emitter {
  constructor(redisClient?: RedisSource, opts?: { key?: string } & Pick<LimitOptions, "maxMessageBytes" | "maxQueuedPublishes" | "maxQueuedBytes">, nsp?: string);
  of(nsp: string): Emitter;
  emit(ev: string, ...args: any[]): true;
  to(room: Room | Room[]): BroadcastOperator;
  in(room: Room | Room[]): BroadcastOperator;
  except(room: Room | Room[]): BroadcastOperator;
  compress(compress: boolean): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  socketsJoin(rooms: Room | Room[]): void;
  socketsLeave(rooms: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
  serverSideEmit(ev: string, ...args: any[]): void;
  /** Sends what is queued and closes the connection. */
  close(): Promise<void>;
}

export default createAdapter;
