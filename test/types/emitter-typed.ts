// Emitter<Events> and BroadcastOperator<Events> as code written for @socket.io/redis-emitter
// uses them, sharing the events map with a typed socket.io Server.
import { createClient } from "redis";
import { Server } from "socket.io";
import { BroadcastOperator, Emitter, RESERVED_EVENTS, type EmitterOptions } from "sioadapter";

interface ServerToClientEvents {
  noArg: () => void;
  basicEmit: (a: number, b: string, c: Buffer) => void;
  withList: (items: { id: number; name: string }[]) => void;
}

interface ClientToServerEvents {
  hello: () => void;
}

const redisClient = createClient();
await redisClient.connect();

const opts: EmitterOptions = { key: "socket.io" };
const emitter = new Emitter<ServerToClientEvents>(redisClient, opts);
emitter.emit("noArg");
emitter.emit("basicEmit", 1, "2", Buffer.from([3]));
emitter.to("room1").to(["room2", "room3"]).except("room4").emit("withList", [{ id: 1, name: "a" }]);
emitter.in("room1").volatile.compress(true).emit("noArg");

/** Emits to a selection made elsewhere: a typed BroadcastOperator as a parameter. */
function notify(target: BroadcastOperator<ServerToClientEvents>): true {
  return target.emit("basicEmit", 1, "two", Buffer.alloc(0));
}
notify(emitter.to("room1"));
notify(emitter.of("/admin").except(["a", "b"]));

const admin: Emitter<ServerToClientEvents> = emitter.of("/admin");
const nsp: string = admin.nsp;
const client: any = admin.redisClient;
admin.socketsJoin(["room1"]);
admin.socketsLeave("room1");
admin.disconnectSockets(true);
admin.serverSideEmit("ping", 1, { a: 2 });

// An untyped emitter accepts any event.
const untyped = new Emitter(redisClient);
untyped.emit("anything", 1, "two", [3]);
const operator = untyped.to("room");
operator.emit("whatever", {});

// The reserved events, as officially exported.
const reserved: boolean = RESERVED_EVENTS.has("connect");
const names: ReadonlySet<string | Symbol> = RESERVED_EVENTS;

// The same events map types a socket.io Server.
const io = new Server<ClientToServerEvents, ServerToClientEvents>();
io.to("room1").emit("basicEmit", 1, "2", Buffer.from([3]));

// Typed events are checked.
// @ts-expect-error `a` is a number
emitter.emit("basicEmit", "1", "2", Buffer.from([3]));
// @ts-expect-error not an event of the map
emitter.to("room1").emit("unknown");
// @ts-expect-error a missing argument
notify(emitter.to("room1")) && emitter.emit("basicEmit", 1);

export { nsp, client, reserved, names };
