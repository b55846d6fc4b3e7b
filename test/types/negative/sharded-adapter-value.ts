// MUST NOT compile: ShardedRedisAdapter is a type only, as officially (made by createShardedAdapter). expect: TS1362
import { ShardedRedisAdapter } from "sioadapter";

export const adapter = new ShardedRedisAdapter();
