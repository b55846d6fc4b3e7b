import { Adapter, BroadcastOptions, Room } from "socket.io-adapter";

/** Options, with the names and defaults of `@socket.io/redis-adapter`. */
export interface RedisAdapterOptions {
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
  /** Most broadcasts kept while Redis is unreachable; beyond it they are dropped and counted. @default 100000 */
  maxQueuedPublishes?: number;
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

/** Counters of one namespace engine. */
export interface EngineStats {
  published: number;
  delivered: number;
  malformed: number;
  skipped: number;
  /** Counters of the Redis connections shared by the namespaces (absent once closed). */
  redis?: {
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
    /** `connecting`, `up`, `down` (an outage was reported; publishing waits) or `closed`. */
    link: "connecting" | "up" | "down" | "closed";
  };
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
  on(event: "error", listener: (err: Error & { code?: string }) => void): this;
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

/** Options of the sharded adapter, with the official names and defaults. */
export interface ShardedRedisAdapterOptions {
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
  constructor(redisClient?: RedisSource, opts?: { key?: string }, nsp?: string);
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
