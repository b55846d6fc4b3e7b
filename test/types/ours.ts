// What sioadapter adds to the official API: stats(), ready, typed 'error' and 'ready' events,
// the seeds' methods and call forms, limits, per-room subscriptions, RequestType, close().
import { createClient } from "redis";
import { Server } from "socket.io";
import sioadapter, {
  BroadcastOperator,
  createAdapter,
  createShardedAdapter,
  Emitter,
  RedisAdapter,
  RequestType,
  type ClusterSeeds,
  type EngineStats,
  type NodeCallback,
  type RedisStats,
  type SioErrorCode,
} from "sioadapter";

const io = new Server();
io.adapter(createAdapter("redis://localhost:6379", { key: "app", perRoomSubscriptions: true, maxMessageBytes: 1 << 20, maxQueuedPublishes: 1000 }));
const adapter = io.of("/").adapter as RedisAdapter;

await adapter.ready;
adapter.on("ready", () => console.log("subscribed"));
adapter.on("error", (err) => {
  const code: SioErrorCode = err.code;
  console.error(code, err.message);
});
adapter.on("join-room", (room, id) => console.log(room.length, id.length));
adapter.on("custom-event", (...args: any[]) => console.log(args));

const stats: EngineStats = adapter.stats();
const redis: RedisStats = stats.redis;
const link: "connecting" | "up" | "down" | "closed" = redis.link;
const pending: number = stats.pendingRequests + adapter.requests.size;
const channels: string[] = [adapter.channel, adapter.requestChannel, adapter.responseChannel, adapter.specificResponseChannel, adapter.prefix];

// The seeds' methods: Promises, or a Node-style callback.
const ids: Set<string> = await adapter.sockets(new Set(["room1"]));
const list: string[] = await adapter.clients(["room1"]);
adapter.clients((err, all) => console.log(err, all?.length));
const rooms: string[] = await adapter.clientRooms("socket-id");
await adapter.remoteJoin("socket-id", "room1");
await adapter.remoteLeave("socket-id", "room1");
await adapter.remoteDisconnect("socket-id", true);
adapter.remoteDisconnect("socket-id", (err) => console.log(err));
const replies: any[] = await adapter.customRequest({ question: 1 });
const onRooms: NodeCallback<Set<string>> = (err, all) => console.log(err, all?.size);
adapter.allRooms(onRooms);

/** customHook answers customRequest of any node. */
class HookAdapter extends RedisAdapter {
  override customHook(data: any, callback: (err: Error | null, reply?: any) => void): void {
    callback(null, { echo: data, uid: this.uid });
  }
}
io.of("/hooked").adapter instanceof HookAdapter;

// The seeds' call forms.
const seeds: ClusterSeeds = ["127.0.0.1:7000", { host: "127.0.0.1", port: 7001 }];
createAdapter(seeds, { key: "app" });
createAdapter({ host: "localhost", port: 6379, key: "app", requestsTimeout: 2000 });
createAdapter({ pubClient: createClient(), subClient: createClient(), key: "app" });
createAdapter("localhost:6379");
createAdapter();
sioadapter.createAdapter("redis://localhost:6379");

// The sharded adapter's additions.
const sharded = createShardedAdapter("redis+cluster://127.0.0.1:7000", undefined, { subscriptionMode: "static", maxMessageDepth: 64 })(io.of("/s"));
await sharded.ready;
const shardedPublished: number = sharded.stats().published;
sharded.on("error", (err) => console.error(err.code));

// The emitter's additions: a URL for the client, limits, BroadcastOperator's default events map.
const emitter = new Emitter("redis://localhost:6379", { key: "app", maxQueuedBytes: 1 << 20 });
emitter.emit("hello");
const operator: BroadcastOperator = emitter.to("room");
operator.emit("anything", 1, [2]);
await emitter.close();

const requestTypes: number[] = [RequestType.SOCKETS, RequestType.ALL_ROOMS, RequestType.BROADCAST_ACK];
await adapter.close();

export { link, pending, channels, ids, list, rooms, replies, shardedPublished, requestTypes };
