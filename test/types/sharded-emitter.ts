// sioadapter's ShardedEmitter<Events>: the Emitter API, typed by the same events map, with the
// sharded nodes' options.
import { createCluster } from "redis";
import { ShardedEmitter, type BroadcastOperator, type EmitterApi, type ShardedEmitterOptions } from "sioadapter";

interface ServerToClientEvents {
  noArg: () => void;
  basicEmit: (a: number, b: string, c: Buffer) => void;
}

const cluster = createCluster({ rootNodes: [{ url: "redis://127.0.0.1:7000" }] });
const opts: ShardedEmitterOptions = { channelPrefix: "socket.io", subscriptionMode: "dynamic-private", maxQueuedPublishes: 1000 };
const emitter = new ShardedEmitter<ServerToClientEvents>(cluster, opts);
emitter.emit("noArg");
emitter.to("room1").except("room2").volatile.emit("basicEmit", 1, "2", Buffer.from([3]));
const operator: BroadcastOperator<ServerToClientEvents> = emitter.of("/admin").in(["a", "b"]);
operator.socketsJoin("c");
emitter.disconnectSockets(true);
emitter.serverSideEmit("ping", 1);
const admin: ShardedEmitter<ServerToClientEvents> = emitter.of("admin");
const api: EmitterApi<ServerToClientEvents> = admin;
const pending: number = api.stats().redis.pending;
await new ShardedEmitter("redis://127.0.0.1:6379").close();

// @ts-expect-error not a subscription mode
new ShardedEmitter(cluster, { subscriptionMode: "private" });
// @ts-expect-error `a` is a number
emitter.emit("basicEmit", "1", "2", Buffer.from([3]));

export { pending };
