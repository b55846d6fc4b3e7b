// The official README's "With the `ioredis` package and a Redis cluster" example, importing "sioadapter".
import { Cluster } from "ioredis";
import { Server } from "socket.io";
import { createAdapter } from "sioadapter";

const pubClient = new Cluster([
  {
    host: "localhost",
    port: 7000,
  },
  {
    host: "localhost",
    port: 7001,
  },
  {
    host: "localhost",
    port: 7002,
  },
]);
const subClient = pubClient.duplicate();

const io = new Server({
  adapter: createAdapter(pubClient, subClient)
});

io.listen(3000);
