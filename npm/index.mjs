// ESM entry: the same module as index.js.
import cjs from "./index.js";

export const createAdapter = cjs.createAdapter;
export const RedisAdapter = cjs.RedisAdapter;
export const Emitter = cjs.Emitter;
export const ShardedEmitter = cjs.ShardedEmitter;
export const BroadcastOperator = cjs.BroadcastOperator;
export const RESERVED_EVENTS = cjs.RESERVED_EVENTS;
export const RequestType = cjs.RequestType;
export const createShardedAdapter = cjs.createShardedAdapter;
export default cjs;
