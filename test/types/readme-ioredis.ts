// The official README's "With the `ioredis` package" example, importing "sioadapter".
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { createAdapter } from "sioadapter";

const pubClient = new Redis();
const subClient = pubClient.duplicate();

const io = new Server({
  adapter: createAdapter(pubClient, subClient)
});

io.listen(3000);
