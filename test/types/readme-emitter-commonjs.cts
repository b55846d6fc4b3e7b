// The official @socket.io/redis-emitter README's "CommonJS" example, in a CommonJS TypeScript
// file (`require` becomes `import ... = require`), importing "sioadapter".
import sioadapter = require("sioadapter");
import redis = require("redis");

const { Emitter } = sioadapter;
const { createClient } = redis; // not included, needs to be explicitly installed

const redisClient = createClient();

redisClient.connect().then(() => {
  const io = new Emitter(redisClient);

  setInterval(() => {
    io.emit("time", new Date);
  }, 5000);
});

// The adapter from CommonJS, as the official package is used there.
const { createAdapter, createShardedAdapter } = sioadapter;
export const factories = [createAdapter(redisClient, redisClient.duplicate()), createShardedAdapter(redisClient, redisClient.duplicate())];
