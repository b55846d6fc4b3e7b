// ESM, as `module: nodenext` reads a .mts file: the default export is createAdapter, and the
// named exports are the package's.
import { Server } from "socket.io";
import { createClient } from "redis";
import createAdapter, { Emitter, RedisAdapter, createShardedAdapter } from "sioadapter";

const pubClient = createClient({ url: "redis://localhost:6379" });
const subClient = pubClient.duplicate();
const io = new Server();
io.adapter(createAdapter(pubClient, subClient, { key: "esm" }));
const adapter = io.of("/").adapter as RedisAdapter;
adapter.allRooms().then((rooms: Set<string>) => rooms.size);
io.of("/sharded").adapter;
void createShardedAdapter;
new Emitter(pubClient).to("room").emit("hello", 1);
