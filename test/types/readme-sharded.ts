// The official README's "With Redis sharded Pub/Sub" example, importing "sioadapter". One change:
// the README passes `{ host: "localhost", port: 6379 }` to createClient, which node-redis' own
// types refuse (with the official package too); the same server is given as a URL here.
import { Server } from "socket.io";
import { createClient } from "redis";
import { createShardedAdapter } from "sioadapter";

const pubClient = createClient({ url: "redis://localhost:6379" });
const subClient = pubClient.duplicate();

await Promise.all([
  pubClient.connect(),
  subClient.connect()
]);

const io = new Server({
  adapter: createShardedAdapter(pubClient, subClient)
});

io.listen(3000);

// The options table of the README ("Sharded adapter").
io.adapter(createShardedAdapter(pubClient, subClient, { channelPrefix: "my-app", subscriptionMode: "dynamic-private" }));
