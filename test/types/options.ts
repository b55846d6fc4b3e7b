// The official option types, complete and partial.
import { createClient } from "redis";
import {
  createAdapter,
  createShardedAdapter,
  Emitter,
  RedisAdapter,
  type EmitterOptions,
  type RedisAdapterOptions,
  type ShardedRedisAdapterOptions,
} from "sioadapter";

const pubClient = createClient();
const subClient = pubClient.duplicate();

const parser = { encode: (msg: any): any => msg, decode: (msg: any): any => msg };
const full: RedisAdapterOptions = { key: "app", requestsTimeout: 3000, publishOnSpecificResponseChannel: true, parser };
const partial: Partial<RedisAdapterOptions> = { key: "app" };

/** Reads a complete options object, as code written for the official types may. */
function describe(opts: RedisAdapterOptions): string {
  return `${opts.key.toUpperCase()} ${opts.requestsTimeout.toFixed(0)} ${opts.publishOnSpecificResponseChannel ? "specific" : "shared"}`;
}
describe(full);

createAdapter(pubClient, subClient, full);
createAdapter(pubClient, subClient, partial);
createAdapter(pubClient, subClient, { requestsTimeout: 1000 });
createAdapter(pubClient, subClient);
new RedisAdapter({ name: "/" }, pubClient, subClient, partial);

const sharded: ShardedRedisAdapterOptions = { channelPrefix: "app", subscriptionMode: "static" };
createShardedAdapter(pubClient, subClient, sharded);
createShardedAdapter(pubClient, subClient, { subscriptionMode: "dynamic" });

const emitterOptions: EmitterOptions = { key: "app" };
new Emitter(pubClient, emitterOptions);
new Emitter(pubClient, { key: "app", parser: { encode: (msg: any) => msg } }, "/admin");

// Wrong options are refused.
// @ts-expect-error requestsTimeout is a number
createAdapter(pubClient, subClient, { requestsTimeout: "5000" });
// @ts-expect-error an unknown subscription mode
createShardedAdapter(pubClient, subClient, { subscriptionMode: "sometimes" });
// @ts-expect-error a complete RedisAdapterOptions has every official option
const incomplete: RedisAdapterOptions = { key: "app" };

export { incomplete };
