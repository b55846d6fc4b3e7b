'use strict';
// Rust socket.io servers (issue 17's benchmark row): the same broadcast workloads as bench.js's
// first ones, on three two-node clusters in alternating rounds:
//   - socketioxide + this crate's adapter (bindings/socketioxide, the official protocol);
//   - socketioxide + socketioxide-redis (socketioxide's own Redis adapter and protocol, which no
//     Node server can join);
//   - Node + @socket.io/redis-adapter (bench/node.js), the reference.
// The Rust servers are bindings/socketioxide/examples/socketioxide_bench.rs (one binary, either
// adapter). An emitting node broadcasts N times to every socket; BENCH_CLIENTS websocket clients on
// the receiving node (in BENCH_CLIENT_PROCS processes, bench/clients.js) count them. Figures:
// broadcasts/s end to end, and CPU per broadcast (user+system of the whole process, all threads,
// from /proc/<pid>/stat for the Rust servers and process.cpuUsage() for Node) on the emitting and
// the receiving node. Writes the `## Rust servers` section of bench/RESULTS.md.
// Run: node bench/socketioxide.js (bash bench/run.sh runs it; it needs the example built:
// cargo build --release -p sioadapter-socketioxide --example socketioxide_bench).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const readline = require('node:readline');
const { spawn, execFileSync } = require('node:child_process');
const { spawnNode, killAll, runMain } = require('./lib/proc');
const { ClientPool } = require('./lib/client-pool');
const { summarize } = require('./lib/stats');
const { deliver, warmUp } = require('./lib/delivery');
const { envNumber, commandLine } = require('./lib/env');
const { writeSection } = require('./lib/results');

const BINARY = path.join(__dirname, '..', 'target', 'release', 'examples', 'socketioxide_bench');
const NODE_SCRIPT = path.join(__dirname, 'node.js');
const CLIENTS_SCRIPT = path.join(__dirname, 'clients.js');
const RESULTS_FILE = path.join(__dirname, 'RESULTS.md');
const HEADING = '## Rust servers: socketioxide with this adapter, with socketioxide-redis, and a Node server';

const KINDS = [
  { id: 'sioadapter', label: 'socketioxide + sioadapter-socketioxide' },
  { id: 'socketioxide-redis', label: 'socketioxide + socketioxide-redis (its own protocol)' },
  { id: 'official', label: 'Node socket.io + @socket.io/redis-adapter' },
];
const CFG = {
  rounds: Math.max(1, envNumber('BENCH_SOCKETIOXIDE_ROUNDS', 3)),
  clients: Math.max(1, envNumber('BENCH_CLIENTS', 10)),
  clientProcs: Math.max(1, envNumber('BENCH_CLIENT_PROCS', 2)),
  chunk: Math.max(1, envNumber('BENCH_CHUNK', 500)),
  idleMs: envNumber('BENCH_IDLE_MS', 3000),
  maxWaitMs: envNumber('BENCH_MAX_WAIT_MS', 20000),
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  workloads: [
    { id: 'small', label: '~100 B object', payload: 'small', n: envNumber('BENCH_SOCKETIOXIDE_N', 30000) },
    { id: 'large', label: '10 KB string', payload: 'large', n: envNumber('BENCH_SOCKETIOXIDE_N_LARGE', 10000) },
  ].filter((w) => w.n > 0),
};
const log = (line) => process.stderr.write(`${line}\n`);
const CLOCK_TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** CPU µs (user+system, every thread) of process `pid` so far. */
function cpuUsOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US;
}

/** A socketioxide_bench process with the `call` interface of a bench/node.js node. */
class RustNode {
  constructor(adapter, key, role) {
    this.role = role;
    this.child = spawn(BINARY, [adapter, CFG.redisUrl, key, '0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.waiters = [];
    this.output = '';
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.output = `${this.output}${line}\n`.slice(-2000);
      const waiter = this.waiters.findIndex((w) => line.startsWith(w.prefix));
      if (waiter >= 0) this.waiters.splice(waiter, 1)[0].resolve(line);
    });
    this.child.stderr.on('data', (d) => (this.output = `${this.output}${d}`.slice(-2000)));
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  line(prefix, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.role}: no "${prefix}" within ${timeoutMs} ms; output:\n${this.output}`)), timeoutMs);
      this.waiters.push({ prefix, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }

  async start() {
    this.port = Number((await this.line('LISTENING', 20000)).split(' ')[1]);
    return this;
  }

  async call(cmd, payload = {}, timeoutMs = 120000) {
    switch (cmd) {
      case 'emit': {
        const done = this.line('EMITTED', timeoutMs);
        this.child.stdin.write(`emit ${payload.event} ${payload.payload} ${payload.n} ${payload.chunk}\n`);
        const [, t0, t1] = (await done).split(' ');
        return { t0: Number(t0), t1: Number(t1) };
      }
      case 'mark':
        this.mark = cpuUsOf(this.child.pid);
        return null;
      case 'usage':
        return { cpuUs: cpuUsOf(this.child.pid) - this.mark };
      default:
        throw new Error(`RustNode: unknown command ${cmd}`);
    }
  }

  async stop() {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts the two nodes of `kind` on key `key`: [emitter, receiver]. */
async function startNodes(kind, key, procs) {
  const roles = ['emitter', 'receiver'];
  if (kind === 'official') {
    const nodes = roles.map((role) => spawnNode(NODE_SCRIPT, { kind, key, redisUrl: CFG.redisUrl }, `${kind} ${role}`));
    procs.push(...nodes);
    for (const node of nodes) node.port = (await node.call('start', {}, 30000)).port;
    await Promise.all(nodes.map((n) => n.call('waitForNodes', { nodes: nodes.length }, 15000)));
    return nodes;
  }
  const nodes = roles.map((role) => new RustNode(kind, key, `${kind} ${role}`));
  procs.push(...nodes);
  return Promise.all(nodes.map((n) => n.start()));
}

const samples = new Map(); // `${kind}.${metric}` -> values

function add(kind, metric, value) {
  const id = `${kind}.${metric}`;
  if (!samples.has(id)) samples.set(id, []);
  if (Number.isFinite(value)) samples.get(id).push(value);
}

async function runRound(kind, round) {
  const key = `bench-sx-${process.pid}-${crypto.randomBytes(3).toString('hex')}-${kind}-${round}`;
  const procs = [];
  try {
    const [emitter, receiver] = await startNodes(kind, key, procs);
    const clientProcs = Array.from({ length: CFG.clientProcs }, (_, i) => spawnNode(CLIENTS_SCRIPT, {}, `clients ${i + 1}`));
    procs.push(...clientProcs);
    const clients = new ClientPool(clientProcs);
    await clients.call('connect', { group: 'recv', port: receiver.port, n: CFG.clients });
    await warmUp(emitter, clients, 'recv');
    for (const w of CFG.workloads) {
      await Promise.all([emitter.call('mark'), receiver.call('mark')]);
      const r = await deliver(emitter, clients, { group: 'recv', n: w.n }, { event: `m.${w.id}`, payload: w.payload, n: w.n, chunk: CFG.chunk }, { idleMs: CFG.idleMs, maxWaitMs: CFG.maxWaitMs });
      const [ue, ur] = await Promise.all([emitter.call('usage'), receiver.call('usage')]);
      const received = r.arrived / r.clients;
      add(kind, `${w.id}.rate`, r.rate);
      add(kind, `${w.id}.cpuEmit`, ue.cpuUs / w.n);
      add(kind, `${w.id}.cpuRecv`, received > 0 ? ur.cpuUs / received : NaN);
      add(kind, `${w.id}.lost`, r.lost);
      log(`  [round ${round} ${kind}] ${w.label}: ${Math.round(r.rate)} msg/s, CPU/broadcast ${(ue.cpuUs / w.n).toFixed(1)} µs emitting, ${(ur.cpuUs / received).toFixed(1)} µs receiving, lost ${r.lost}`);
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

function report(startedAt) {
  const cell = (kind, metric, fmt) => {
    const s = summarize(samples.get(`${kind}.${metric}`) || []);
    return s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : 'n/a';
  };
  const int = (v) => Math.round(v).toLocaleString('en-US');
  const us = (v) => v.toFixed(1);
  const lines = [HEADING, ''];
  lines.push(`- date: ${new Date(startedAt).toISOString()} (took ${Math.round((Date.now() - startedAt) / 1000)} s); command: \`${commandLine('node bench/socketioxide.js')}\``);
  lines.push(`- machine: ${os.cpus().length} cores, load average at start ${loadAtStart}; ${CFG.rounds} rounds, alternating the three clusters, each on fresh processes and a fresh key; two nodes per cluster, ${CFG.clients} websocket clients on the receiving node (in ${CFG.clientProcs} processes), broadcasts to every socket in chunks of ${CFG.chunk} per turn of the emitting node's scheduler.`);
  lines.push('- CPU: user+system of the whole node process (every thread) over the workload, per broadcast emitted (emitting node) or received (receiving node). Median (min–max) over the rounds.');
  lines.push('');
  lines.push('| cluster | workload | broadcasts/s end to end ↑ | CPU per broadcast, emitting node (µs) ↓ | CPU per broadcast received, receiving node (µs) ↓ | lost |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const w of CFG.workloads) {
    for (const kind of KINDS) {
      lines.push(`| ${kind.label} | ${w.label} (N=${w.n.toLocaleString('en-US')}) | ${cell(kind.id, `${w.id}.rate`, int)} | ${cell(kind.id, `${w.id}.cpuEmit`, us)} | ${cell(kind.id, `${w.id}.cpuRecv`, us)} | ${cell(kind.id, `${w.id}.lost`, int)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const loadAtStart = os.loadavg().map((v) => v.toFixed(2)).join(' ');
let failures = 0;

async function main() {
  if (!fs.existsSync(BINARY)) throw new Error(`${path.relative(process.cwd(), BINARY)} is not built: cargo build --release -p sioadapter-socketioxide --example socketioxide_bench`);
  const startedAt = Date.now();
  for (let round = 1; round <= CFG.rounds; round++) {
    for (const kind of KINDS) {
      log(`round ${round}/${CFG.rounds}: ${kind.id}`);
      try {
        await runRound(kind.id, round);
      } catch (err) {
        failures++;
        log(`  [round ${round} ${kind.id}] FAILED: ${err.message}`);
      }
    }
  }
  const text = report(startedAt);
  process.stdout.write(`\n${text}`);
  writeSection(RESULTS_FILE, HEADING, text);
  killAll();
}

runMain(main, () => failures);
