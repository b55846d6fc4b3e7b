// The official README's "With the `redis` package" example, importing "sioadapter".
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "sioadapter";

const pubClient = createClient({ url: "redis://localhost:6379" });
const subClient = pubClient.duplicate();

await Promise.all([
  pubClient.connect(),
  subClient.connect()
]);

const io = new Server({
  adapter: createAdapter(pubClient, subClient)
});

io.listen(3000);
