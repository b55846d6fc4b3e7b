// Every example of the official @socket.io/redis-emitter README, importing "sioadapter".
// The cheatsheet's `io.emit(/* ... */)` placeholders are given an event and arguments (an
// emit without an event name does not compile with the official package either).
import { Emitter } from "sioadapter";
import { createClient } from "redis";

// "TypeScript"
{
  const redisClient = createClient();

  redisClient.connect().then(() => {
    const io = new Emitter(redisClient);

    setInterval(() => {
      io.emit("time", new Date);
    }, 5000);
  });
}

// "With typed events"
{
  interface Events {
    basicEmit: (a: number, b: string, c: number[]) => void;
  }

  const redisClient = createClient();

  redisClient.connect().then(() => {
    const io = new Emitter<Events>(redisClient);

    io.emit("basicEmit", 1, "2", [3]);
  });
}

// "With `redis@3`, calling `connect()` is not needed"
{
  const redisClient = createClient();

  const io = new Emitter(redisClient);

  setInterval(() => {
    io.emit("time", new Date);
  }, 5000);
}

// "Emit cheatsheet"
{
  const redisClient = createClient();
  const io = new Emitter(redisClient);
  const socketId = "some-socket-id";

  // sending to all clients
  io.emit("event", 1, "two", { three: 3 });

  // sending to all clients in 'room1' room
  io.to("room1").emit("event", 1);

  // sending to all clients in 'room1' except those in 'room2'
  io.to("room1").except("room2").emit("event", 1);

  // sending to individual socketid (private message)
  io.to(socketId).emit("event", 1);

  const nsp = io.of("/admin");

  // sending to all clients in 'admin' namespace
  nsp.emit("event", 1);

  // sending to all clients in 'admin' namespace and in 'notifications' room
  nsp.to("notifications").emit("event", 1);

  // "API": socketsJoin, socketsLeave, disconnectSockets
  const theSocketId = socketId;

  // make all Socket instances join the "room1" room
  io.socketsJoin("room1");

  // make all Socket instances of the "admin" namespace in the "room1" room join the "room2" room
  io.of("/admin").in("room1").socketsJoin("room2");

  // make all Socket instances leave the "room1" room
  io.socketsLeave("room1");

  // make all Socket instances of the "admin" namespace in the "room1" room leave the "room2" room
  io.of("/admin").in("room1").socketsLeave("room2");

  // make all Socket instances disconnect
  io.disconnectSockets();

  // make all Socket instances of the "admin" namespace in the "room1" room disconnect
  io.of("/admin").in("room1").disconnectSockets();

  // this also works with a single socket ID
  io.of("/admin").in(theSocketId).disconnectSockets();
}

// "Migrating from `socket.io-emitter`"
{
  const redisClient = createClient();
  const io = new Emitter(redisClient);
  io.emit("event");
}

// "Emitter(client[, opts])": the options
{
  const redisClient = createClient();
  const io = new Emitter(redisClient, { key: "my-prefix" }, "/admin");
  io.volatile.compress(false).emit("event");
}
