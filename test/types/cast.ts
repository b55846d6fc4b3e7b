// Code written for the official package that casts a namespace's adapter to RedisAdapter
// (as the official test suite does) and uses what the official type declares, without
// `as unknown as`.
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter, type RedisAdapter } from "sioadapter";

const pubClient = createClient({ url: "redis://localhost:6379" });
const subClient = pubClient.duplicate();
await Promise.all([pubClient.connect(), subClient.connect()]);

const io = new Server();
io.adapter(createAdapter(pubClient, subClient));

const adapter = io.of("/").adapter as RedisAdapter;
const rooms: Set<string> = await adapter.allRooms();
const servers: number = await adapter.serverCount();
const sockets: any[] = await adapter.fetchSockets({ rooms: new Set(["room1"]), except: new Set(), flags: {} });
await (io.of("/").adapter as RedisAdapter).pubClient.sendCommand(["info"]);
(io.of("/").adapter as RedisAdapter).subClient.on("error", () => {});
const uid: string = adapter.uid;
const timeout: number = adapter.requestsTimeout;
const specific: boolean = adapter.publishOnSpecificResponseChannel;
const encoded = adapter.parser.encode([1, 2]);
const decoded = adapter.parser.decode(encoded);
adapter.addSockets({ rooms: new Set() }, ["room2"]);
adapter.delSockets({ rooms: new Set() }, ["room2"]);
adapter.disconnectSockets({ rooms: new Set(["room3"]) }, true);
adapter.serverSideEmit(["hello", 1]);
adapter.broadcast({ type: 2, data: ["event"] }, { rooms: new Set() });
await adapter.close();

// The adapter's own type, from the factory.
const made: RedisAdapter = createAdapter(pubClient, subClient)(io.of("/made"));

// The sharded adapter's type, which the official package only exposes through its factory.
type ShardedAdapter = ReturnType<ReturnType<typeof createShardedAdapter>>;
const io2 = new Server({ adapter: createShardedAdapter(pubClient, subClient) });
const sharded = io2.of("/").adapter as ShardedAdapter;
const shardedServers: number = await sharded.serverCount();
await sharded.close();

// The adapters from socket.io's side, unchanged.
io.of("/").adapter.on("create-room", (room) => console.log(room));

export { rooms, servers, sockets, uid, timeout, specific, decoded, made, shardedServers };
