'use strict';
// sioadapter vs @socket.io/redis-adapter (node-redis v5): same workloads, alternating rounds,
// one table of medians (min–max) and ratios. Usage: bash bench/run.sh (see bench/README.md).
//
// Per round and adapter kind, with a fresh key prefix:
//   1+2. an emitting node broadcasts N messages (in chunks per event-loop turn) that a second
//        node delivers to clients in a third process; throughput until the last client has the
//        last message, CPU per broadcast and event-loop utilisation on both nodes, lost messages;
//   3.   fetchSockets() and serverSideEmitWithAck() across three nodes, p50/p99;
//   4.   RSS of every node;
//   6.   a burst of 10 KB broadcasts emitted in one synchronous loop: arrived / lost;
//   7.   emitters: ours against @socket.io/redis-emitter, each in a process of its own (bench/
//        emitter.js), N broadcasts of ~100 B: rate until Redis took them all, CPU per message,
//        and what a subscriber received; and the Rust emitter (examples/emitter_bench, ours only).
// Before the rounds, redis-benchmark measures raw PUBLISH as a ceiling (5).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { spawnNode, killAll, runMain } = require('./lib/proc');
const { ClientPool } = require('./lib/client-pool');
const { Collector, percentile } = require('./lib/stats');
const { deliver: deliverTo, warmUp } = require('./lib/delivery');
const { envNumber, commandLine: describeCommand, versionsText } = require('./lib/env');
const { readSection, writeSection } = require('./lib/results');

const NODE_SCRIPT = path.join(__dirname, 'node.js');
const CLIENTS_SCRIPT = path.join(__dirname, 'clients.js');
const EMITTER_SCRIPT = path.join(__dirname, 'emitter.js');
const RUST_EMITTER = path.join(__dirname, '..', 'target', 'release', 'examples', 'emitter_bench');
const RESULTS_FILE = path.join(__dirname, 'RESULTS.md');
/**
 * BENCH_PARSER=json (read by node.js too): both adapters use a JSON `parser`, what a custom
 * parser costs; the table goes to a section of RESULTS.md of its own.
 */
const PARSER_RUN = Boolean(process.env.BENCH_PARSER);
const PARSER_HEADING = `## With a custom parser: \`parser: { encode: JSON.stringify, decode: JSON.parse }\` on both adapters`;
const KINDS = ['ours', 'official'];

const CFG = {
  rounds: Math.max(1, envNumber('BENCH_ROUNDS', 5)),
  clients: Math.max(1, envNumber('BENCH_CLIENTS', 10)),
  clientProcs: Math.max(1, envNumber('BENCH_CLIENT_PROCS', 2)),
  chunk: Math.max(1, envNumber('BENCH_CHUNK', 500)),
  workloads: [
    { id: 'small', label: '~100 B object', payload: 'small', n: envNumber('BENCH_N', 30000) },
    { id: 'large', label: '10 KB string', payload: 'large', n: envNumber('BENCH_N_LARGE', 10000) },
    { id: 'buffer', label: '1 KB Buffer', payload: 'buffer', n: envNumber('BENCH_N_BUFFER', 20000) },
  ].filter((w) => w.n > 0),
  requests: envNumber('BENCH_REQUESTS', 200),
  socketsPerNode: envNumber('BENCH_SOCKETS_PER_NODE', 5),
  burst: envNumber('BENCH_BURST', 10000),
  idleMs: envNumber('BENCH_IDLE_MS', 3000),
  settleMs: envNumber('BENCH_SETTLE_MS', 3000),
  maxWaitMs: envNumber('BENCH_MAX_WAIT_MS', 20000),
  emitterN: envNumber('BENCH_EMITTER_N', 100000),
  rustEmitterN: envNumber('BENCH_RUST_EMITTER_N', 400000),
  rawN: envNumber('BENCH_RAW_N', 200000),
  deadlineS: envNumber('BENCH_DEADLINE_S', 420),
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
};

/** The cluster requests timed in workload 3, as the issue's targets name them. */
const REQUEST_OPS = ['fetchSockets', 'serverSideEmitWithAck', 'allRooms', 'serverCount'];

const runId = crypto.randomBytes(3).toString('hex');
const startedAt = Date.now();
const loadAtStart = os.loadavg().map((l) => l.toFixed(2)).join(' ');
const collector = new Collector(KINDS);
const notes = [];
let failures = 0;
const log = (line) => process.stderr.write(`${line}\n`);

function defineMetrics() {
  for (const w of CFG.workloads) {
    collector.define(`${w.id}.rate`, `broadcasts/s end to end, ${w.label} (N=${w.n})`, 'msg/s', 'higher');
    collector.define(`${w.id}.cpuEmit`, `CPU per broadcast, emitting node, ${w.label}`, 'µs', 'lower');
    collector.define(`${w.id}.cpuRecv`, `CPU per broadcast received, receiving node, ${w.label}`, 'µs', 'lower');
    collector.define(`${w.id}.eluEmit`, `event-loop utilisation, emitting node, ${w.label}`, '%', 'lower');
    collector.define(`${w.id}.eluRecv`, `event-loop utilisation, receiving node, ${w.label}`, '%', 'lower');
    collector.define(`${w.id}.eluClients`, `event-loop utilisation, busiest clients' process, ${w.label}`, '%', 'lower');
  }
  collector.define('lost', 'lost messages, the broadcast workloads above (per round, all clients)', 'count', 'lower', { ratio: false });
  if (CFG.requests > 0) {
    for (const op of REQUEST_OPS) {
      for (const p of [50, 99]) collector.define(`${op}.p${p}`, `${op}() round trip, 3 nodes × ${CFG.socketsPerNode} sockets, p${p}`, 'ms', 'lower');
    }
  }
  for (const role of ['emitter', 'receiver', 'third']) collector.define(`rss.${role}`, `RSS of the ${role} node ${CFG.settleMs / 1000} s after workloads 1–3`, 'MB', 'lower');
  if (CFG.burst > 0) {
    const total = CFG.burst * CFG.clients;
    collector.define('burst.arrived', `burst: ${CFG.burst} × 10 KB in one loop, arrived (of ${total.toLocaleString('en-US')})`, 'count', 'higher');
    collector.define('burst.lost', 'burst: lost', 'count', 'lower', { ratio: false });
    collector.define('burst.rssPeak', 'burst: peak RSS of the receiving node during it (sampled every 10 ms)', 'MB', 'lower');
    collector.define('burst.rssRecv', 'burst: RSS of the receiving node after it', 'MB', 'lower');
    collector.define('burst.rssSettled', `burst: RSS of the receiving node ${CFG.settleMs / 1000} s after it (nothing sent meanwhile)`, 'MB', 'lower');
  }
  if (CFG.emitterN > 0) {
    collector.define('emitter.rate', `Node Emitter: ${CFG.emitterN} broadcasts of ~100 B, until Redis took them all`, 'msg/s', 'higher');
    collector.define('emitter.cpu', 'Node Emitter: CPU per broadcast (its process, all threads)', 'µs', 'lower');
    collector.define('emitter.lost', 'Node Emitter: broadcasts a subscriber did not receive', 'count', 'lower', { ratio: false });
  }
  if (CFG.rustEmitterN > 0) {
    collector.define('rustEmitter.rate', `Rust emitter (no official one): ${CFG.rustEmitterN} broadcasts of 100 B, pipelined`, 'msg/s', 'higher', { ratio: false });
  }
}

/** How this run was started, to print and to record in RESULTS.md. */
function commandLine() {
  const url = process.env.REDIS_URL;
  return describeCommand('node bench/bench.js', { leading: url && url !== 'redis://127.0.0.1:6379' ? [`REDIS_URL=${url}`] : [] });
}

function redisArgs() {
  const url = new URL(CFG.redisUrl);
  const args = ['-h', url.hostname || '127.0.0.1', '-p', url.port || '6379'];
  if (url.password) args.push('-a', decodeURIComponent(url.password), '--no-auth-warning');
  if (url.username) args.push('--user', decodeURIComponent(url.username));
  return args;
}

function redisVersion() {
  const r = spawnSync('redis-cli', [...redisArgs(), 'INFO', 'server'], { encoding: 'utf8', timeout: 5000 });
  const m = /redis_version:(\S+)/.exec(r.stdout || '');
  return m ? m[1] : '?';
}

/** Raw PUBLISH ceiling with redis-benchmark (5); null when it is not installed. */
function rawCeiling() {
  const results = [];
  for (const pipeline of [1, 32]) {
    const args = [...redisArgs(), '-n', String(CFG.rawN), '-q', ...(pipeline > 1 ? ['-P', String(pipeline)] : []), 'PUBLISH', 'benchchan', 'payload'];
    const shown = `redis-benchmark ${args.join(' ')}`.replace(/-a \S+/, '-a ***');
    const r = spawnSync('redis-benchmark', args, { encoding: 'utf8', timeout: 120000 });
    if (r.error && r.error.code === 'ENOENT') return null;
    const matches = [...(r.stdout || '').matchAll(/([\d.]+) requests per second/g)];
    const rps = matches.length ? Number(matches[matches.length - 1][1]) : NaN;
    results.push({ pipeline, command: shown, rps, error: Number.isFinite(rps) ? null : (r.error ? r.error.message : (r.stderr || r.stdout).trim().slice(-200)) });
  }
  return results;
}

/** Starts one socket.io node of adapter `kind`; `procs` collects it for teardown. */
async function startNode(procs, kind, key, role) {
  const proc = spawnNode(NODE_SCRIPT, { kind, key, redisUrl: CFG.redisUrl }, `${kind} ${role}`);
  procs.push(proc);
  proc.role = role;
  proc.port = (await proc.call('start', {}, 20000)).port;
  return proc;
}

function waitForNodes(nodes) {
  return Promise.all(nodes.map((n) => n.call('waitForNodes', { nodes: nodes.length }, 15000)));
}

/** Emits `n` × `payload` from `emitter` and waits (bounded) for the clients of `group`. */
function deliver(emitter, clients, group, { event, payload, n, chunk }) {
  return deliverTo(emitter, clients, { group, n }, { event, payload, n, chunk }, { idleMs: CFG.idleMs, maxWaitMs: CFG.maxWaitMs });
}

/** Workloads 1 and 2: returns the messages lost over the three payloads. */
async function broadcastWorkloads(kind, tag, emitter, receiver, clients) {
  let lost = 0;
  for (const w of CFG.workloads) {
    await Promise.all([emitter.call('mark'), receiver.call('mark'), clients.call('mark')]);
    const r = await deliver(emitter, clients, 'recv', { event: `m.${w.id}`, payload: w.payload, n: w.n, chunk: CFG.chunk });
    const [ue, ur, uc] = await Promise.all([emitter.call('usage'), receiver.call('usage'), clients.call('usage')]);
    collector.add(`${w.id}.rate`, kind, r.rate);
    collector.add(`${w.id}.cpuEmit`, kind, ue.cpuUs / w.n);
    // The receiver is charged per broadcast it got (all N unless some were lost).
    const received = r.arrived / r.clients;
    collector.add(`${w.id}.cpuRecv`, kind, received > 0 ? ur.cpuUs / received : NaN);
    collector.add(`${w.id}.eluEmit`, kind, ue.elu);
    collector.add(`${w.id}.eluRecv`, kind, ur.elu);
    collector.add(`${w.id}.eluClients`, kind, uc.elu);
    lost += r.lost;
    if (r.lost) notes.push(`${tag}: ${w.label}: ${r.lost} of ${r.expected} messages lost (waited ${CFG.idleMs} ms without progress, at most ${CFG.maxWaitMs} ms)`);
    log(`  ${tag} ${w.label}: ${Math.round(r.rate)} msg/s, CPU/broadcast ${(ue.cpuUs / w.n).toFixed(1)} µs emitting, ${(ur.cpuUs / received).toFixed(1)} µs receiving, lost ${r.lost}`);
  }
  collector.add('lost', kind, lost);
}

/** Resolves once `done()` holds, or once `idleMs` passed without `progress()` changing. */
async function settle(done, progress) {
  let last = progress();
  let lastChange = Date.now();
  while (!done() && Date.now() - lastChange < CFG.idleMs) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (progress() !== last) [last, lastChange] = [progress(), Date.now()];
  }
}

/** Workload 7: a Node emitter of `kind` in its own process; a subscriber here counts what arrives. */
async function emitterWorkload(kind, tag, key, procs) {
  const emitKey = `${key}-emitter`;
  const { createClient } = require('redis');
  const subscriber = createClient({ url: CFG.redisUrl });
  await subscriber.connect();
  let received = 0;
  try {
    await subscriber.pSubscribe(`${emitKey}#*`, () => received++, true);
    const proc = spawnNode(EMITTER_SCRIPT, { kind, key: emitKey, redisUrl: CFG.redisUrl }, `${kind} emitter process`);
    procs.push(proc);
    await proc.call('start', {}, 20000);
    const r = await proc.call('run', { n: CFG.emitterN, chunk: CFG.chunk }, 120000);
    await settle(() => received >= CFG.emitterN, () => received);
    collector.add('emitter.rate', kind, CFG.emitterN / (r.ms / 1000));
    collector.add('emitter.cpu', kind, r.cpuUs / CFG.emitterN);
    collector.add('emitter.lost', kind, CFG.emitterN - received);
    log(`  ${tag} Node emitter: ${Math.round(CFG.emitterN / (r.ms / 1000))} msg/s, ${received} received`);
    await proc.call('stop');
  } finally {
    await subscriber.quit().catch(() => {});
  }
}

/** The Rust emitter's rate (examples/emitter_bench), when it is built. */
function rustEmitterRate(tag) {
  if (!fs.existsSync(RUST_EMITTER)) {
    notes.push(`${tag} Rust emitter: not measured (${path.relative(process.cwd(), RUST_EMITTER)} is not built: cargo build --release --example emitter_bench)`);
    return;
  }
  const r = spawnSync(RUST_EMITTER, [String(CFG.rustEmitterN)], { encoding: 'utf8', timeout: 120000, env: { ...process.env, REDIS_URL: CFG.redisUrl } });
  const m = /= (\d+) msg\/s/.exec(r.stdout || '');
  if (!m) throw new Error(`Rust emitter: ${(r.stderr || r.stdout || (r.error && r.error.message) || '').trim().slice(-200)}`);
  collector.add('rustEmitter.rate', 'ours', Number(m[1]));
  log(`  ${tag} Rust emitter: ${m[1]} msg/s`);
}

/** Workload 3: sequential requests from the emitter across all `nodes`. */
async function requestWorkload(kind, tag, nodes) {
  // What each request must return: every socket, every other node's ack, every room (each
  // socket is in its own), every node.
  const expectations = {
    fetchSockets: nodes.length * CFG.socketsPerNode,
    serverSideEmitWithAck: nodes.length - 1,
    allRooms: nodes.length * CFG.socketsPerNode,
    serverCount: nodes.length,
  };
  for (const op of REQUEST_OPS) {
    const expected = expectations[op];
    const { latencies, errors } = await nodes[0].call('requests', { op, n: CFG.requests, expected, budgetMs: 30000 }, 45000);
    for (const p of [50, 99]) collector.add(`${op}.p${p}`, kind, percentile(latencies, p));
    if (errors.length) notes.push(`${tag}: ${op}: ${errors.length} failed (stopped after 3): ${errors[0]}`);
    log(`  ${tag} ${op}: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms over ${latencies.length}`);
  }
}

/** One round of every workload for adapter `kind`, on fresh processes and a fresh key prefix. */
async function runRound(kind, round) {
  const tag = `[round ${round} ${kind}]`;
  const key = `bench-${process.pid}-${runId}-${kind}-${round}`;
  const procs = [];
  try {
    const [emitter, receiver] = await Promise.all([startNode(procs, kind, key, 'emitter'), startNode(procs, kind, key, 'receiver')]);
    const clientProcs = Array.from({ length: CFG.clientProcs }, (_, i) => spawnNode(CLIENTS_SCRIPT, {}, `clients ${i + 1}`));
    procs.push(...clientProcs);
    const clients = new ClientPool(clientProcs);
    await waitForNodes([emitter, receiver]);
    await clients.call('connect', { group: 'recv', port: receiver.port, n: CFG.clients });
    await warmUp(emitter, clients, 'recv');
    await broadcastWorkloads(kind, tag, emitter, receiver, clients);
    await clients.call('disconnect', { group: 'recv' });

    if (CFG.requests > 0) {
      const third = await startNode(procs, kind, key, 'third');
      const nodes = [emitter, receiver, third];
      await waitForNodes(nodes);
      for (const node of nodes) await clients.call('connect', { group: 'req', port: node.port, n: CFG.socketsPerNode });
      await requestWorkload(kind, tag, nodes);
      // What a node holds once the work is over, not in the middle of its last batch.
      await new Promise((resolve) => setTimeout(resolve, CFG.settleMs));
      for (const node of nodes) collector.add(`rss.${node.role}`, kind, await node.call('memory'));
      await clients.call('disconnect', { group: 'req' });
      await third.stop();
    } else {
      await new Promise((resolve) => setTimeout(resolve, CFG.settleMs));
      for (const node of [emitter, receiver]) collector.add(`rss.${node.role}`, kind, await node.call('memory'));
    }

    if (CFG.burst > 0) {
      await clients.call('connect', { group: 'recv', port: receiver.port, n: CFG.clients });
      await warmUp(emitter, clients, 'recv');
      await receiver.call('peakMemory');
      const r = await deliver(emitter, clients, 'recv', { event: 'm.burst', payload: 'large', n: CFG.burst, chunk: CFG.burst });
      collector.add('burst.arrived', kind, r.arrived);
      collector.add('burst.lost', kind, r.lost);
      collector.add('burst.rssPeak', kind, await receiver.call('peakMemory'));
      collector.add('burst.rssRecv', kind, await receiver.call('memory'));
      await new Promise((resolve) => setTimeout(resolve, CFG.settleMs));
      collector.add('burst.rssSettled', kind, await receiver.call('memory'));
      log(`  ${tag} burst: ${r.arrived} arrived, ${r.lost} lost`);
    }
  } catch (err) {
    failures++;
    notes.push(`${tag} failed: ${err.message.split('\n')[0]}`);
    log(`  ${tag} FAILED: ${err.message}`);
  } finally {
    for (const proc of procs) {
      if (proc.role && !proc.exit) {
        const found = await proc.call('incidents', {}, 2000).catch(() => []);
        for (const text of found) notes.push(`${tag} ${proc.role}: ${text}`);
      }
    }
    await Promise.all(procs.map((p) => p.stop()));
  }
  // Once the nodes are gone, the emitters have the machine to themselves.
  const emitters = [];
  try {
    if (CFG.emitterN > 0) await emitterWorkload(kind, tag, key, emitters);
    if (CFG.rustEmitterN > 0 && kind === 'ours') rustEmitterRate(tag);
  } catch (err) {
    failures++;
    notes.push(`${tag} emitters failed: ${err.message.split('\n')[0]}`);
    log(`  ${tag} emitters FAILED: ${err.message}`);
  } finally {
    await Promise.all(emitters.map((p) => p.stop()));
  }
}

function report(raw, { aborted }) {
  const cores = os.cpus().length;
  const lines = [];
  lines.push(PARSER_RUN ? PARSER_HEADING : `# sioadapter vs @socket.io/redis-adapter`);
  lines.push('');
  lines.push(`- date: ${new Date(startedAt).toISOString()} (took ${Math.round((Date.now() - startedAt) / 1000)} s${aborted ? `, STOPPED at the ${CFG.deadlineS} s deadline` : ''})`);
  lines.push(`- command: \`${commandLine()}\``);
  lines.push(`- machine: ${cores} cores (${os.cpus()[0] ? os.cpus()[0].model.trim() : '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load average at start ${loadAtStart}. **This machine has ${cores} cores and is shared with other work: absolute numbers move with its load; only the ratios (same run, alternating rounds) matter.**`);
  lines.push(`- versions: ${versionsText(redisVersion())}`);
  lines.push(`- settings: ${CFG.rounds} rounds per adapter, alternating ${KINDS.join(', ')}; ${CFG.clients} websocket clients on the receiving node (in ${CFG.clientProcs} client processes); emits in chunks of ${CFG.chunk} per event-loop turn; ${CFG.requests} sequential requests with ${CFG.socketsPerNode} sockets per node; burst ${CFG.burst}; wait for stragglers: ${CFG.idleMs} ms without progress, ${CFG.maxWaitMs} ms at most`);
  lines.push('');
  if (raw === undefined) lines.push('Raw Redis PUBLISH ceiling: not measured (BENCH_RAW_N=0).');
  else if (raw === null) lines.push('Raw Redis PUBLISH ceiling: skipped (redis-benchmark is not installed).');
  else {
    lines.push('Raw Redis PUBLISH ceiling (reference, no subscribers):');
    lines.push('');
    for (const r of raw) lines.push(`- ${r.pipeline === 1 ? 'unpipelined' : `pipelined ${r.pipeline} deep`}: ${Number.isFinite(r.rps) ? `${Math.round(r.rps).toLocaleString('en-US')} PUBLISH/s` : `failed (${r.error})`} — \`${r.command}\``);
  }
  lines.push('');
  lines.push('Medians over the rounds, (min–max) in brackets; the ratio is ours/official of the medians: above 1 is better for ↑ rows, below 1 for ↓ rows.');
  lines.push('');
  lines.push(collector.table());
  if (notes.length) {
    lines.push('');
    lines.push('Notes:');
    lines.push('');
    for (const n of notes) lines.push(`- ${n}`);
  }
  const text = `${lines.join('\n')}\n`;
  process.stdout.write(`\n${text}`);
  if (PARSER_RUN) {
    // A section of its own, after the main run's table (bench/run.sh runs it second).
    writeSection(RESULTS_FILE, PARSER_HEADING, text);
  } else {
    // The growth curves (bench/scale.sh, a separate run) are kept.
    const growth = readSection(RESULTS_FILE, '## Growth curves');
    fs.writeFileSync(RESULTS_FILE, growth ? `${text}\n${growth}` : text);
  }
  log(`\nwritten to ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}`);
}

async function main() {
  defineMetrics();
  const cores = os.cpus().length;
  log(`sioadapter benchmark — command: ${commandLine()}`);
  log(`This machine has ${cores} cores and is shared with other work: only the ratios ours/official matter.`);
  log(`Redis: ${CFG.redisUrl}; ${CFG.rounds} rounds per adapter, alternating ${KINDS.join(' / ')}`);

  let raw; // undefined: not measured; null: redis-benchmark missing
  let aborted = false;
  // A last resort: whatever hangs, the run ends, prints what it has and kills its children.
  const hardStop = setTimeout(() => {
    notes.push(`hard deadline (${CFG.deadlineS + 120} s) reached: the run was cut short`);
    report(raw, { aborted: true });
    killAll();
    process.exit(1);
  }, (CFG.deadlineS + 120) * 1000);
  hardStop.unref();

  if (CFG.rawN > 0) {
    log('redis-benchmark (raw PUBLISH ceiling)...');
    raw = rawCeiling();
  }
  for (let round = 1; round <= CFG.rounds; round++) {
    // Checked per round, so both adapters always have the same number of rounds.
    if ((Date.now() - startedAt) / 1000 > CFG.deadlineS) {
      aborted = true;
      notes.push(`deadline of ${CFG.deadlineS} s (BENCH_DEADLINE_S) reached: stopped after ${round - 1} of ${CFG.rounds} rounds`);
      break;
    }
    for (const kind of KINDS) {
      log(`round ${round}/${CFG.rounds}: ${kind}`);
      await runRound(kind, round);
    }
  }
  clearTimeout(hardStop);
  report(raw, { aborted });
}

// The table is printed either way; a round that failed (not merely lost messages) fails the run.
runMain(main, () => failures);
