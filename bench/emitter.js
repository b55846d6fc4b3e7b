'use strict';
// One emitter process of the benchmark (bench.js drives it over IPC), with either package:
//   kind 'ours'     — require('../npm').Emitter, given the Redis URL
//   kind 'official' — @socket.io/redis-emitter 5.1.0 over a node-redis v5 client
// `run` emits `n` broadcasts of ~100 B to the whole namespace, `chunk` per event-loop turn (so the
// official emitter's client is not handed everything in one synchronous loop), then waits until
// Redis has taken every message: ours until its queue is empty, the official one for a PING
// answered after every PUBLISH (node-redis answers in order). It returns the wall time and this
// process's CPU time (all threads) for that.

const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { setImmediate: turn } = require('node:timers/promises');
const { serve, childConfig } = require('./lib/proc');

const config = childConfig(); // { kind, key, redisUrl }

/** The emitter of `config.kind`, a function that resolves once Redis took everything emitted, and a closer. */
async function open({ kind, key, redisUrl }) {
  if (kind === 'ours') {
    const { Emitter } = require(path.join(__dirname, '..', 'npm'));
    const emitter = new Emitter(redisUrl, { key });
    const drained = async () => {
      while (emitter.stats().redis.pending > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    };
    return { emitter, drained, close: () => emitter.close() };
  }
  if (kind === 'official') {
    const { Emitter } = require('@socket.io/redis-emitter');
    const { createClient } = require('redis');
    const client = createClient({ url: redisUrl });
    await client.connect();
    return { emitter: new Emitter(client, { key }), drained: () => client.ping(), close: () => client.quit() };
  }
  throw new Error(`unknown emitter kind ${kind}`);
}

let opened;

serve({
  async start() {
    opened = await open(config);
  },
  async run({ n, chunk }) {
    const { emitter, drained } = opened;
    const payload = { user: 'alice', text: 'hello from the emitter, how is everyone today?', seq: 0, ts: 1700000000000 };
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (let sent = 0; sent < n; ) {
      for (const end = Math.min(n, sent + chunk); sent < end; sent++) {
        payload.seq = sent;
        emitter.emit('m', payload);
      }
      await turn();
    }
    await drained();
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return { ms, cpuUs: used.user + used.system };
  },
  async stop() {
    if (opened) await opened.close();
  },
});
