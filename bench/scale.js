'use strict';
// Growth curves: how the cost of single-room broadcasts and of requests grows with the cluster,
// for sioadapter and @socket.io/redis-adapter 8.3.0 (node-redis v5) in the same run.
// Usage: bash bench/scale.sh (knobs: BENCH_SCALE_* variables, see bench/README.md).
//
// A private redis-server (so that its `total_net_output_bytes` counts nothing else) serves, per
// round and adapter mode, a cluster of socket.io nodes (bench/node.js, one process each) that
// grows: 2 nodes, then 4, then 8 (BENCH_SCALE_NODES). Each node has a few websocket clients
// (bench/clients.js, in their own process) that join, server-side, the node's share of R rooms
// (room r lives on node r % nodes). Node 0 emits BENCH_SCALE_MSGS broadcasts of ~100 B, the i-th
// to room i % R; every delivery is counted and what does not arrive is reported as lost. Fresh
// processes are warmed up first (BENCH_SCALE_WARMUP unmeasured broadcasts, and a short pass
// before each point). At each point:
//   - CPU of node 1 (process.cpuUsage, user+system) per broadcast addressed to its rooms;
//   - Redis output bytes per broadcast (INFO stats total_net_output_bytes, before and after);
//   - with BENCH_SCALE_NODES: fetchSockets() from node 0, sequential, p50 and p99.
// Curves: nodes (R = BENCH_SCALE_NODES_ROOMS) and rooms (R in BENCH_SCALE_ROOMS, on
// BENCH_SCALE_ROOMS_NODES nodes); a point on both is measured once. Modes: the classic adapter
// (ours with PSUBSCRIBE, ours with perRoomSubscriptions, official) and the sharded adapter
// (subscriptionMode dynamic and static, ours and official), alternating within each round.
// Writes bench/scale/*.svg and the "## Growth curves" section of bench/RESULTS.md.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnNode, killAll, runMain } = require('./lib/proc');
const { ClientPool } = require('./lib/client-pool');
const { percentile } = require('./lib/stats');
const { deliver, warmUp } = require('./lib/delivery');
const { Curves, verdictRule } = require('./lib/curves');
const { envNumber, envIntList, envWordList, commandLine, versionsText } = require('./lib/env');
const { writeSection } = require('./lib/results');
const { privateRedis } = require('../test/helpers/private-redis');
const { redisCommand, pollUntil } = require('../test/helpers/redis-process');

const NODE_SCRIPT = path.join(__dirname, 'node.js');
const CLIENTS_SCRIPT = path.join(__dirname, 'clients.js');
const RESULTS_FILE = path.join(__dirname, 'RESULTS.md');
const SVG_DIR = path.join(__dirname, 'scale');
const SECTION = '## Growth curves';

/**
 * The adapter modes, in the order they run within a round (ours, then its official
 * counterpart). `vs`: the mode an ours mode's ratio is taken against; `roomChannels`: each room
 * has its own Redis channel (subscribed on join), which the run waits for before measuring.
 * Colours: ours cool, official warm; classic solid, sharded dynamic dashed, sharded static dotted.
 */
const MODES = [
  { id: 'ours', label: 'ours, classic (PSUBSCRIBE)', short: 'ours', kind: 'ours', vs: 'official', color: '#1f77b4' },
  { id: 'official', label: 'official, classic (PSUBSCRIBE)', short: 'official', kind: 'official', color: '#d62728' },
  { id: 'ours-per-room', label: 'ours, perRoomSubscriptions', short: 'ours per-room', kind: 'ours', perRoom: true, roomChannels: true, vs: 'official', color: '#2ca02c' },
  { id: 'ours-sharded', label: 'ours, sharded dynamic', short: 'ours sharded dynamic', kind: 'ours', sharded: 'dynamic', roomChannels: true, vs: 'official-sharded', color: '#9467bd', dash: '7 4' },
  { id: 'official-sharded', label: 'official, sharded dynamic', short: 'official sharded dynamic', kind: 'official', sharded: 'dynamic', roomChannels: true, color: '#ff7f0e', dash: '7 4' },
  { id: 'ours-sharded-static', label: 'ours, sharded static', short: 'ours sharded static', kind: 'ours', sharded: 'static', vs: 'official-sharded-static', color: '#17becf', dash: '2 3' },
  { id: 'official-sharded-static', label: 'official, sharded static', short: 'official sharded static', kind: 'official', sharded: 'static', color: '#8c564b', dash: '2 3' },
];

const QUICK = Boolean(process.env.BENCH_SCALE_QUICK && process.env.BENCH_SCALE_QUICK !== '0');

const CFG = {
  rounds: Math.max(1, envNumber('BENCH_SCALE_ROUNDS', QUICK ? 1 : 5)),
  nodes: envIntList('BENCH_SCALE_NODES', QUICK ? [2, 4] : [2, 4, 8]).filter((k) => k >= 2),
  nodesRooms: Math.max(2, envNumber('BENCH_SCALE_NODES_ROOMS', 100)),
  rooms: envIntList('BENCH_SCALE_ROOMS', QUICK ? [10, 1000] : [10, 100, 1000, 10000]).filter((r) => r >= 2),
  roomsNodes: Math.max(2, envNumber('BENCH_SCALE_ROOMS_NODES', 4)),
  msgs: Math.max(1, envNumber('BENCH_SCALE_MSGS', QUICK ? 1000 : 4000)),
  warmup: envNumber('BENCH_SCALE_WARMUP', QUICK ? 3000 : 10000),
  clientsPerNode: Math.max(1, envNumber('BENCH_SCALE_CLIENTS_PER_NODE', 3)),
  clientProcs: Math.max(1, envNumber('BENCH_SCALE_CLIENT_PROCS', 1)),
  requests: envNumber('BENCH_SCALE_REQUESTS', QUICK ? 30 : 100),
  chunk: Math.max(1, envNumber('BENCH_SCALE_CHUNK', 500)),
  modes: envWordList('BENCH_SCALE_MODES', MODES.map((m) => m.id), MODES.map((m) => m.id)),
  idleMs: envNumber('BENCH_SCALE_IDLE_MS', 2000),
  maxWaitMs: envNumber('BENCH_SCALE_MAX_WAIT_MS', 20000),
  deadlineS: envNumber('BENCH_SCALE_DEADLINE_S', QUICK ? 90 : 540),
};
const modes = MODES.filter((m) => CFG.modes.includes(m.id));

const runId = crypto.randomBytes(3).toString('hex');
const startedAt = Date.now();
const loadAtStart = os.loadavg().map((l) => l.toFixed(2)).join(' ');
const curves = new Curves(modes);
const deliveries = new Map(modes.map((m) => [m.id, { expected: 0, arrived: 0 }]));
const notes = [];
let failures = 0;
const log = (line) => process.stderr.write(`${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function defineCurves() {
  const us = (v) => v.toFixed(1);
  const bytes = (v) => Math.round(v).toLocaleString('en-US');
  const ms = (v) => v.toFixed(2);
  const cpuLabel = 'CPU per broadcast, receiving node (µs)';
  const bytesLabel = 'Redis output bytes per broadcast';
  const nodesX = { label: 'nodes (processes)', unit: 'nodes' };
  const roomsX = { label: 'rooms', unit: 'rooms', log: true };
  const perNodes = `${CFG.nodesRooms} rooms, ${CFG.clientsPerNode} clients per node, ${CFG.msgs.toLocaleString('en-US')} broadcasts per point`;
  const perRooms = `${CFG.roomsNodes} nodes, ${CFG.clientsPerNode} clients per node, ${CFG.msgs.toLocaleString('en-US')} broadcasts per point`;
  const perFetch = `${CFG.clientsPerNode} sockets per node, ${CFG.requests} sequential fetchSockets() from node 0`;
  const cpuNote = 'process.cpuUsage() of node 1 divided by the single-room broadcasts addressed to its rooms';
  const bytesNote = 'INFO stats total_net_output_bytes delta on a private redis-server / broadcasts (~100 B payload)';
  curves.define('nodes-cpu', { title: 'CPU per broadcast on a receiving node vs nodes', subtitle: perNodes, x: nodesX, y: { label: cpuLabel, format: us }, file: 'nodes-cpu.svg', note: cpuNote });
  curves.define('nodes-bytes', { title: 'Redis output bytes per broadcast vs nodes', subtitle: perNodes, x: nodesX, y: { label: bytesLabel, format: bytes }, file: 'nodes-bytes.svg', note: bytesNote });
  curves.define('rooms-cpu', { title: 'CPU per broadcast on a receiving node vs rooms', subtitle: perRooms, x: roomsX, y: { label: cpuLabel, format: us }, file: 'rooms-cpu.svg', note: cpuNote });
  curves.define('rooms-bytes', { title: 'Redis output bytes per broadcast vs rooms', subtitle: perRooms, x: roomsX, y: { label: bytesLabel, format: bytes }, file: 'rooms-bytes.svg', note: bytesNote });
  curves.define('fetch-p50', { title: 'fetchSockets() latency, p50, vs nodes', subtitle: perFetch, x: nodesX, y: { label: 'fetchSockets() p50 (ms)', format: ms }, file: 'fetch-p50.svg' });
  curves.define('fetch-p99', { title: 'fetchSockets() latency, p99, vs nodes', subtitle: perFetch, x: nodesX, y: { label: 'fetchSockets() p99 (ms)', format: ms }, file: 'fetch-p99.svg' });
}

/**
 * The room counts to measure on a cluster of `k` nodes: at the rooms curve's node count, its room
 * counts (ascending); the nodes curve's count last, so that the requests measured next find the
 * sockets in the same rooms at every node count (fetchSockets answers carry each socket's rooms).
 */
function roomCountsAt(k) {
  const counts = k === CFG.roomsNodes ? CFG.rooms.filter((r) => r !== CFG.nodesRooms) : [];
  if (CFG.nodes.includes(k) || (k === CFG.roomsNodes && CFG.rooms.includes(CFG.nodesRooms))) counts.push(CFG.nodesRooms);
  return counts;
}

/** The cluster sizes a round goes through, ascending. */
function clusterSizes() {
  const sizes = new Set(CFG.nodes);
  if (CFG.rooms.length) sizes.add(CFG.roomsNodes);
  return [...sizes].sort((a, b) => a - b);
}

/** How many of `n` round-robin single-room broadcasts over `rooms` rooms address each of `k` nodes' rooms. */
function addressedPerNode(n, rooms, k) {
  const counts = new Array(k).fill(0);
  for (let i = 0; i < n; i++) counts[(i % rooms) % k]++;
  return counts;
}

/** Redis's total_net_output_bytes (the reply to this INFO is counted only after it is read). */
async function outputBytes(port) {
  const info = await redisCommand(port, ['INFO', 'stats'], 5000);
  return Number(/total_net_output_bytes:(\d+)/.exec(info)[1]);
}

/** Waits until Redis has a subscribed channel for each of `rooms` rooms of set `tag` (modes with per-room channels). */
async function roomChannelsSubscribed(port, mode, key, tag, rooms) {
  const args = ['PUBSUB', mode.sharded ? 'SHARDCHANNELS' : 'CHANNELS', `${key}#/#${tag}-*`];
  let seen = 0;
  await pollUntil(async () => (seen = (await redisCommand(port, args, 5000)).length) === rooms, 30000, () => `${rooms} room channels of ${tag} to be subscribed (${seen} so far)`, 50);
}

/** Starts nodes until the cluster has `k`, each with its clients (group `n<index>`). */
async function growCluster(run, k) {
  const fresh = [];
  for (let i = run.nodes.length; i < k; i++) {
    const config = { kind: run.mode.kind, key: run.key, redisUrl: run.redis.url, perRoom: Boolean(run.mode.perRoom), sharded: run.mode.sharded || null };
    const proc = spawnNode(NODE_SCRIPT, config, `${run.mode.id} node ${i}`, { execArgv: ['--expose-gc'] });
    run.procs.push(proc);
    run.nodes.push(proc);
    fresh.push({ proc, index: i });
  }
  await Promise.all(fresh.map(async ({ proc }) => {
    proc.port = (await proc.call('start', {}, 30000)).port;
  }));
  for (const { proc, index } of fresh) await run.clients.call('connect', { group: `n${index}`, port: proc.port, n: CFG.clientsPerNode }, 20000);
  await Promise.all(run.nodes.map((n) => n.call('waitForNodes', { nodes: k, timeoutMs: 15000 }, 20000)));
}

/**
 * Puts the cluster's sockets in room set `tag` of `rooms` rooms (room r on node r % k), waits
 * for the rooms' channels where the mode has them and for a broadcast to reach every client.
 */
async function assignRooms(run, k, rooms, tag) {
  await Promise.all(run.nodes.map((node, index) => node.call('setRooms', { tag, total: rooms, nodes: k, index }, 60000)));
  if (run.mode.roomChannels) await roomChannelsSubscribed(run.redis.port, run.mode, run.key, tag, rooms);
  await warmUp(run.nodes[0], run.clients, run.nodes.map((_, i) => `n${i}`));
}

/** Node 0 emits `n` single-room broadcasts (`event`) round robin over room set `tag`; every delivery counted (lib/delivery.js). */
function broadcastPass(run, k, rooms, tag, event, n) {
  const addressed = addressedPerNode(n, rooms, k);
  const perGroup = Object.fromEntries(run.nodes.map((_, i) => [`n${i}`, addressed[i]]));
  return deliver(run.nodes[0], run.clients, { perGroup }, { event, payload: 'small', n, chunk: CFG.chunk, rooms: { tag, total: rooms } }, CFG);
}

/** Broadcasts of the unmeasured pass before each point: a tenth of the measured ones, at least 200. */
function pointWarmup() {
  return Math.min(CFG.msgs, Math.max(200, Math.round(CFG.msgs / 10)));
}

/** An unmeasured pass: what it lost is only noted. */
async function warmPass(run, k, rooms, tag, n, what) {
  const r = await broadcastPass(run, k, rooms, tag, `w.${tag}`, n);
  if (r.lost) notes.push(`[round ${run.round} ${run.mode.id}] ${what}: ${r.lost} of ${r.expected} deliveries lost`);
}

/**
 * One point: rooms assigned and subscribed, a short unmeasured pass (new rooms, new nodes), then
 * the measured broadcasts: node 1's CPU per broadcast addressed to it and Redis's output bytes
 * per broadcast over that window.
 */
async function measurePoint(run, k, rooms) {
  const { mode, redis } = run;
  const tag = `k${k}r${rooms}`;
  await assignRooms(run, k, rooms, tag);
  await warmPass(run, k, rooms, tag, pointWarmup(), `${k} nodes, ${rooms} rooms: warm-up pass`);

  const receiver = run.nodes[1];
  const b0 = await outputBytes(redis.port);
  const before = await outputBytes(redis.port);
  await receiver.call('mark', { gc: true });
  const windowStart = Date.now();
  const r = await broadcastPass(run, k, rooms, tag, `m.${tag}`, CFG.msgs);
  const usage = await receiver.call('usage');
  const windowMs = Date.now() - windowStart;
  // The INFO replies before the window are counted inside it: one of them is subtracted (b0 → before).
  const bytes = (await outputBytes(redis.port)) - before - (before - b0);
  const tally = deliveries.get(mode.id);
  tally.expected += r.expected;
  tally.arrived += r.arrived;
  if (r.lost) notes.push(`[round ${run.round} ${mode.id}] ${k} nodes, ${rooms} rooms: ${r.lost} of ${r.expected} deliveries lost (no progress for ${CFG.idleMs} ms, or ${CFG.maxWaitMs} ms in all)`);
  const point = { cpu: usage.cpuUs / addressedPerNode(CFG.msgs, rooms, k)[1], bytes: bytes / CFG.msgs };
  log(`  [round ${run.round} ${mode.id}] ${k} nodes, ${rooms} rooms: node 1 ${point.cpu.toFixed(1)} µs/broadcast (${(usage.cpuUs / 1000).toFixed(0)} ms CPU in a ${windowMs} ms window, event loop ${(usage.elu * 100).toFixed(0)}% busy), Redis ${Math.round(point.bytes)} B/broadcast, ${r.arrived}/${r.expected} delivered`);
  return point;
}

/**
 * The first cluster's warm-up, unmeasured: BENCH_SCALE_WARMUP broadcasts, so that node 1 (the
 * measured one, there from the start) has its code optimised before the first point.
 */
async function warmCluster(run, k) {
  if (CFG.warmup <= 0) return;
  const rooms = CFG.nodesRooms;
  await assignRooms(run, k, rooms, 'warm');
  await warmPass(run, k, rooms, 'warm', CFG.warmup, `${k} nodes: cluster warm-up`);
}

/** fetchSockets() from node 0, sequential: p50 and p99 in ms. */
async function measureLatency(run, k) {
  const expected = k * CFG.clientsPerNode;
  // A few unmeasured first (code paths of the new nodes' first answers).
  await run.nodes[0].call('requests', { op: 'fetchSockets', n: Math.min(10, CFG.requests), expected, budgetMs: 10000 }, 20000);
  const { latencies, errors } = await run.nodes[0].call('requests', { op: 'fetchSockets', n: CFG.requests, expected, budgetMs: 30000 }, 45000);
  if (errors.length) notes.push(`[round ${run.round} ${run.mode.id}] ${k} nodes: fetchSockets: ${errors.length} failed (stopped after 3): ${errors[0].split('\n')[0]}`);
  const result = { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  log(`  [round ${run.round} ${run.mode.id}] ${k} nodes: fetchSockets p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms over ${latencies.length}`);
  return result;
}

/** One round of one mode: the cluster grows through clusterSizes(), every point of both curves measured on the way. */
async function runMode(mode, round, redis) {
  const run = { mode, round, redis, key: `scale-${process.pid}-${runId}-${mode.id}-${round}`, procs: [], nodes: [] };
  try {
    const clientProcs = Array.from({ length: CFG.clientProcs }, (_, i) => spawnNode(CLIENTS_SCRIPT, {}, `clients ${i + 1}`));
    run.procs.push(...clientProcs);
    run.clients = new ClientPool(clientProcs);
    for (const k of clusterSizes()) {
      await growCluster(run, k);
      if (k === clusterSizes()[0]) await warmCluster(run, k);
      for (const rooms of roomCountsAt(k)) {
        const point = await measurePoint(run, k, rooms);
        if (CFG.nodes.includes(k) && rooms === CFG.nodesRooms) {
          curves.add('nodes-cpu', k, mode.id, point.cpu);
          curves.add('nodes-bytes', k, mode.id, point.bytes);
        }
        if (k === CFG.roomsNodes && CFG.rooms.includes(rooms)) {
          curves.add('rooms-cpu', rooms, mode.id, point.cpu);
          curves.add('rooms-bytes', rooms, mode.id, point.bytes);
        }
      }
      if (CFG.requests > 0 && CFG.nodes.includes(k)) {
        const { p50, p99 } = await measureLatency(run, k);
        curves.add('fetch-p50', k, mode.id, p50);
        curves.add('fetch-p99', k, mode.id, p99);
      }
    }
  } catch (err) {
    failures++;
    notes.push(`[round ${round} ${mode.id}] failed: ${err.message.split('\n')[0]}`);
    log(`  [round ${round} ${mode.id}] FAILED: ${err.message}`);
  } finally {
    for (const node of run.nodes) {
      if (node.exit) continue;
      const found = await node.call('incidents', {}, 2000).catch(() => []);
      for (const text of found) notes.push(`[round ${round} ${mode.id}] ${node.label}: ${text}`);
    }
    await Promise.all(run.procs.map((p) => p.stop()));
  }
}

/** The SVG files, and the markdown section (printed and written into RESULTS.md). */
async function report(redis, { aborted }) {
  fs.mkdirSync(SVG_DIR, { recursive: true });
  let redisVersion = '?';
  if (redis) {
    const info = await redisCommand(redis.port, ['INFO', 'server'], 5000).catch(() => '');
    redisVersion = (/redis_version:(\S+)/.exec(info) || [])[1] || '?';
  }
  const cores = os.cpus().length;
  const lines = [SECTION, ''];
  lines.push(`- date: ${new Date(startedAt).toISOString()} (took ${Math.round((Date.now() - startedAt) / 1000)} s${aborted ? `, STOPPED by the ${CFG.deadlineS} s deadline: see the notes` : ''})`);
  lines.push(`- command: \`${commandLine('node bench/scale.js', { prefix: 'BENCH_SCALE_' })}\``);
  lines.push(`- machine: ${cores} cores (${os.cpus()[0] ? os.cpus()[0].model.trim() : '?'}), load average at start ${loadAtStart}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}. **Every node is a process on these ${cores} cores, shared with other work: absolute numbers move with the load; compare the modes within this run.**`);
  lines.push(`- versions: ${versionsText(redisVersion)} (one private redis-server, not a cluster, for both adapters' sharded mode too)`);
  lines.push(`- settings: ${CFG.rounds} round(s), each running every mode in turn (${modes.map((m) => m.id).join(', ')}) on fresh processes and a fresh key prefix; ${CFG.msgs.toLocaleString('en-US')} single-room broadcasts of ~100 B per point from node 0, round robin over the rooms (room r on node r % nodes, in chunks of ${CFG.chunk} per event-loop turn); ${CFG.clientsPerNode} websocket clients per node, each in all of its node's rooms (\`socket.join\` server-side); nodes curve at ${CFG.nodesRooms} rooms, rooms curve at ${CFG.roomsNodes} nodes; unmeasured warm-up: ${CFG.warmup.toLocaleString('en-US')} broadcasts on the first cluster of each round and mode, ${pointWarmup()} before each point; ${CFG.requests} sequential fetchSockets() per node count (after 10 unmeasured), with the sockets in the nodes curve's ${CFG.nodesRooms} rooms.`);
  lines.push('- CPU: `process.cpuUsage()` (user+system, all threads) of node 1 over the broadcasts and their delivery (the window starts after a full GC), divided by the broadcasts addressed to node 1\'s rooms — what one useful broadcast costs a receiving node. Bytes: the delta of Redis\'s `INFO stats` `total_net_output_bytes` over the same window, divided by all broadcasts — everything Redis sent to every node.');
  lines.push(`- Each cell: median (min–max) over the rounds. Ratio rows: ours / official of the medians (below 1: ours costs less). Trend: the factor from the first to the last point and the slope of log(median) against log(x) (1: in proportion to x; 0: flat), in words: ${verdictRule()}.`);
  lines.push('');
  for (const [id, curve] of curves.curves) {
    if (curves.measuredModes(id).length === 0) continue;
    fs.writeFileSync(path.join(SVG_DIR, curve.file), curves.svg(id));
    lines.push(`### ${curve.title} (${curve.subtitle})`, '');
    lines.push(`![${curve.title}](scale/${curve.file})`, '');
    lines.push(curves.table(id), '');
    lines.push(curves.trendLine(id), '');
  }
  const tallies = modes.map((m) => {
    const t = deliveries.get(m.id);
    return `${m.short} ${t.arrived.toLocaleString('en-US')} / ${t.expected.toLocaleString('en-US')}`;
  });
  const lost = [...deliveries.values()].reduce((a, t) => a + t.expected - t.arrived, 0);
  lines.push(`Deliveries (arrived / expected, every point and round): ${tallies.join('; ')} — ${lost === 0 ? 'none lost' : `**${lost.toLocaleString('en-US')} lost**`}.`);
  if (notes.length) {
    lines.push('', 'Notes:', '');
    for (const n of notes) lines.push(`- ${n}`);
  }
  const text = `${lines.join('\n')}\n`;
  process.stdout.write(`\n${text}`);
  writeSection(RESULTS_FILE, SECTION, text);
  log(`\nwritten: ${path.relative(process.cwd(), RESULTS_FILE)} (section "${SECTION}") and ${path.relative(process.cwd(), SVG_DIR)}/*.svg`);
}

async function main() {
  if (modes.length === 0) throw new Error('BENCH_SCALE_MODES selects no mode');
  defineCurves();
  log(`sioadapter growth curves — command: ${commandLine('node bench/scale.js', { prefix: 'BENCH_SCALE_' })}${QUICK ? ' (quick mode)' : ''}`);
  log(`${CFG.rounds} round(s) × modes ${modes.map((m) => m.id).join(', ')}; nodes ${CFG.nodes.join(', ')} (${CFG.nodesRooms} rooms); rooms ${CFG.rooms.join(', ')} (${CFG.roomsNodes} nodes); ${CFG.msgs} broadcasts per point`);
  const redis = await privateRedis();
  log(`private redis-server on ${redis.url}`);
  let reported = false;
  // A last resort: whatever hangs, the run ends, reports what it has and kills its children.
  const hardStop = setTimeout(async () => {
    notes.push(`hard deadline (${CFG.deadlineS + 120} s) reached: the run was cut short`);
    if (!reported) {
      reported = true;
      await report(redis, { aborted: true }).catch((err) => log(err.stack));
    }
    killAll();
    process.exit(1);
  }, (CFG.deadlineS + 120) * 1000);
  hardStop.unref();
  let aborted = false;
  try {
    let slowestRoundS = 0;
    for (let round = 1; round <= CFG.rounds; round++) {
      // Checked per round, so every mode always has the same number of rounds: a round starts
      // only if one as slow as the slowest so far would end before the deadline.
      const elapsedS = (Date.now() - startedAt) / 1000;
      if (round > 1 && elapsedS + slowestRoundS > CFG.deadlineS) {
        aborted = true;
        notes.push(`deadline of ${CFG.deadlineS} s (BENCH_SCALE_DEADLINE_S): stopped after ${round - 1} of ${CFG.rounds} rounds (${Math.round(elapsedS)} s elapsed, a round took up to ${Math.round(slowestRoundS)} s)`);
        break;
      }
      const roundStart = Date.now();
      for (const mode of modes) {
        log(`round ${round}/${CFG.rounds}: ${mode.label}`);
        await runMode(mode, round, redis);
        await sleep(100);
      }
      slowestRoundS = Math.max(slowestRoundS, (Date.now() - roundStart) / 1000);
    }
    clearTimeout(hardStop);
    if (!reported) {
      reported = true;
      await report(redis, { aborted });
    }
  } finally {
    await redis.stop();
  }
}

runMain(main, () => failures);
