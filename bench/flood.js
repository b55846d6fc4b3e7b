'use strict';
// How fast a receiving node can be fed before Redis cuts its subscriber off (its pub/sub output
// buffer limit, 32 MB by default), for sioadapter and @socket.io/redis-adapter side by side.
// Two socket.io nodes of one kind (bench/node.js) and 10 websocket clients on the receiving one
// (bench/clients.js, in 2 processes); the emitting node sends BENCH_FLOOD_N broadcasts of 10 KB
// at each pace of BENCH_FLOOD_PACES (`chunk/everyMs`: `chunk` per `everyMs` ms, `chunk/0` per
// event-loop turn, as bench.js does). Prints, per kind and pace, the emitting rate, what the
// clients got, and the receiving node's incidents, and writes the table into bench/RESULTS.md
// ("## Floods"). Usage: node bench/flood.js (run by bench/run.sh; REDIS_URL honoured;
// BENCH_FLOOD_KINDS=ours measures one kind).

const crypto = require('node:crypto');
const path = require('node:path');
const { spawnNode, killAll, runMain } = require('./lib/proc');
const { ClientPool } = require('./lib/client-pool');
const { deliver, warmUp } = require('./lib/delivery');
const { envNumber } = require('./lib/env');
const { writeSection } = require('./lib/results');

const CFG = {
  n: envNumber('BENCH_FLOOD_N', 10000),
  paces: (process.env.BENCH_FLOOD_PACES || '100/10,200/10,500/10,500/0').split(',').map((p) => p.split('/').map(Number)),
  kinds: (process.env.BENCH_FLOOD_KINDS || 'ours,official').split(','),
  clients: 10,
  clientProcs: 2,
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
};
const log = (line) => process.stderr.write(`${line}\n`);

async function measure(kind, [chunk, everyMs]) {
  const key = `flood-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const procs = [];
  try {
    const start = async (role) => {
      const proc = spawnNode(path.join(__dirname, 'node.js'), { kind, key, redisUrl: CFG.redisUrl }, `${kind} ${role}`);
      procs.push(proc);
      proc.port = (await proc.call('start', {}, 20000)).port;
      return proc;
    };
    const [emitter, receiver] = [await start('emitter'), await start('receiver')];
    await Promise.all([emitter, receiver].map((n) => n.call('waitForNodes', { nodes: 2 }, 15000)));
    const clientProcs = Array.from({ length: CFG.clientProcs }, (_, i) => spawnNode(path.join(__dirname, 'clients.js'), {}, `clients ${i + 1}`));
    procs.push(...clientProcs);
    const clients = new ClientPool(clientProcs);
    await clients.call('connect', { group: 'recv', port: receiver.port, n: CFG.clients });
    await warmUp(emitter, clients, 'recv');
    const r = await deliver(emitter, clients, { group: 'recv', n: CFG.n }, { event: 'flood', payload: 'large', n: CFG.n, chunk, everyMs }, { idleMs: 3000, maxWaitMs: 30000 });
    const emitSeconds = (r.emittedAt - r.t0) / 1000;
    return { kind, pace: `${chunk}/${everyMs}`, rate: Number.isFinite(emitSeconds) && emitSeconds > 0 ? Math.round(CFG.n / emitSeconds) : NaN, arrived: r.arrived, expected: r.expected, incidents: await receiver.call('incidents', {}, 2000) };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

async function main() {
  const rows = [];
  for (const pace of CFG.paces) {
    for (const kind of CFG.kinds) {
      log(`${kind}, pace ${pace.join('/')}...`);
      rows.push(await measure(kind, pace));
    }
  }
  const lines = [
    '## Floods: how fast a receiving node can be fed',
    '',
    `- command: \`node bench/flood.js\` (run by \`bash bench/run.sh\`), ${new Date().toISOString()}`,
    `- two socket.io nodes of one kind, ${CFG.clients} websocket clients on the receiving one (in ${CFG.clientProcs} processes); the emitting node sends ${CFG.n.toLocaleString('en-US')} broadcasts of 10 KB at each pace (BENCH_FLOOD_N, BENCH_FLOOD_PACES); \`500/0\` is bench.js's pace (500 per event-loop turn)`,
    '- a receiving node that falls more than Redis\'s pub/sub output buffer limit (32 MB by default) behind is cut off by Redis: the incidents column says so',
    '',
    `| adapter | pace (emits / ms) | emitted per second | delivered (${CFG.clients} clients × ${CFG.n}) | receiving node's incidents |`,
    '| --- | --- | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.kind} | ${r.pace} | ${Number.isFinite(r.rate) ? r.rate.toLocaleString('en-US') : '?'} | ${r.arrived.toLocaleString('en-US')} / ${r.expected.toLocaleString('en-US')} | ${r.incidents.join('; ') || 'none'} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeSection(path.join(__dirname, 'RESULTS.md'), lines[0], `${lines.join('\n')}\n`);
  killAll();
}

runMain(main, () => 0);
