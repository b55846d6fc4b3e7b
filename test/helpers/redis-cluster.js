'use strict';
// A private Redis Cluster for tests: 6 redis-server processes (3 primaries, 3 replicas) on free
// loopback ports below the ephemeral range, so that neither a node's port nor its cluster bus port
// (port + 10000) can be held by an outgoing connection. Created with
// `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`, then waited on until every
// node reports cluster_state:ok and all nodes agree on the topology (CLUSTER NODES).
//
//   const cluster = await startRedisCluster();
//   cluster.url        // 'redis+cluster://127.0.0.1:p1,...' (every node)
//   cluster.seeds      // [{ host: '127.0.0.1', port }, ...] (every node)
//   cluster.ports      // every node's port
//   cluster.primaries  // ports of the primaries, as created (see topology() for the current ones)
//   cluster.replicas   // ports of the replicas, as created
//   cluster.replicaOf  // { replicaPort: primaryPort }
//   await cluster.command(port, ['CLUSTER', 'INFO'])  // one-shot RESP command on one node
//   await cluster.topology()   // current view of a live node: { primaries, replicas, failed, replicaOf }
//   await cluster.kill(port)   // kill -9 one node
//   await cluster.waitForFailover(port)  // a replica of the killed primary took over, all live nodes agree
//   await cluster.stop()       // kills every node and removes the temp dir
//
// Every cluster is also SIGKILLed (and its directory removed) when the test process exits.

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const live = new Set();
const HOST = '127.0.0.1';
/** Base ports are picked in this range; bus ports (+10000) stay below the ephemeral range (32768). */
const BASE_RANGE = [20000, 22700];
const BUS_OFFSET = 10000;

// -------------------------------------------------------------------------------------------------
// Ports

/** True when HOST:port can be listened on right now. */
function portBindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** True when something accepts TCP connections on HOST:port. */
function portAnswers(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const taken = new Set(); // ports handed out by this process

/** `count` consecutive ports p..p+count-1 such that every p and p+BUS_OFFSET is free. */
async function freePortBlock(count) {
  const [lo, hi] = BASE_RANGE;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = lo + Math.floor(Math.random() * (hi - lo - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    let ok = true;
    for (const port of ports) {
      if (taken.has(port) || !(await portBindable(port)) || !(await portBindable(port + BUS_OFFSET)) ||
        (await portAnswers(port)) || (await portAnswers(port + BUS_OFFSET))) {
        ok = false;
        break;
      }
    }
    if (ok) {
      for (const port of ports) taken.add(port);
      return ports;
    }
  }
  throw new Error(`no block of ${count} free ports (and bus ports) in ${lo}..${hi}`);
}

// -------------------------------------------------------------------------------------------------
// A minimal RESP client: one connection per command

/** Parses one RESP2 reply at `offset` of `buf`; returns [value, nextOffset] or null if incomplete. */
function parseReply(buf, offset = 0) {
  if (offset >= buf.length) return null;
  const eol = buf.indexOf('\r\n', offset);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('utf8', offset + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+': return [line, next];
    case '-': return [Object.assign(new Error(line), { redisError: true }), next];
    case ':': return [Number(line), next];
    case '$': {
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return null;
      return [buf.toString('utf8', next, next + len), next + len + 2];
    }
    case '*': {
      const len = Number(line);
      if (len < 0) return [null, next];
      const items = [];
      let at = next;
      for (let i = 0; i < len; i++) {
        const parsed = parseReply(buf, at);
        if (!parsed) return null;
        items.push(parsed[0]);
        at = parsed[1];
      }
      return [items, at];
    }
    default:
      throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
  }
}

/**
 * Sends one command (array of strings) to HOST:port on a fresh connection and resolves with the
 * reply (a Redis error reply resolves as an Error with `redisError: true`); rejects on connection
 * failure or after `timeoutMs`.
 */
function command(port, args, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`${HOST}:${port} ${args.join(' ')}: no reply within ${timeoutMs} ms`)), timeoutMs);
    function finish(err, value) {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    }
    socket.once('connect', () => {
      const parts = [`*${args.length}\r\n`];
      for (const a of args) parts.push(`$${Buffer.byteLength(String(a))}\r\n${a}\r\n`);
      socket.write(parts.join(''));
    });
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let parsed;
      try {
        parsed = parseReply(buf);
      } catch (err) {
        finish(err);
        return;
      }
      if (parsed) finish(null, parsed[0]);
    });
    socket.once('error', (err) => finish(new Error(`${HOST}:${port} ${args.join(' ')}: ${err.message}`)));
  });
}

/** `CLUSTER INFO` as an object of strings. */
async function clusterInfo(port) {
  const text = await command(port, ['CLUSTER', 'INFO']);
  if (text instanceof Error) throw text;
  return Object.fromEntries(String(text).split('\r\n').filter(Boolean).map((l) => l.split(':')));
}

/**
 * `CLUSTER NODES` parsed: [{ id, port, flags: [..], master: id|null, linkState, slots: 'a-b c-d', myself }].
 */
async function clusterNodes(port) {
  const text = await command(port, ['CLUSTER', 'NODES']);
  if (text instanceof Error) throw text;
  return String(text).split('\n').filter(Boolean).map((line) => {
    const f = line.trim().split(' ');
    const flags = f[2].split(',');
    const addr = f[1].split('@')[0];
    return {
      id: f[0],
      port: Number(addr.slice(addr.lastIndexOf(':') + 1)),
      flags,
      master: f[3] === '-' ? null : f[3],
      linkState: f[7],
      slots: f.slice(8).join(' '),
      myself: flags.includes('myself'),
    };
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -------------------------------------------------------------------------------------------------
// The cluster

class RedisCluster {
  constructor(ports, { nodeTimeout = 2000 } = {}) {
    this.ports = ports;
    this.nodeTimeout = nodeTimeout;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sio-redis-cluster-'));
    this.children = new Map(); // port → child process
    this.logs = new Map(); // port → tail of its output
    this.primaries = [];
    this.replicas = [];
    this.replicaOf = {};
    this.killed = new Set();
    this.createOutput = '';
  }

  get url() {
    return `redis+cluster://${this.ports.map((p) => `${HOST}:${p}`).join(',')}`;
  }

  get seeds() {
    return this.ports.map((port) => ({ host: HOST, port }));
  }

  /** Ports of the nodes that are running. */
  get livePorts() {
    return this.ports.filter((p) => this.running(p));
  }

  running(port) {
    const child = this.children.get(port);
    return Boolean(child) && child.exitCode === null && child.signalCode === null;
  }

  command(port, args, timeoutMs) {
    return command(port, args, timeoutMs);
  }

  /** Spawns every node and waits until each answers PING. */
  async spawnAll(timeoutMs = 10000) {
    for (const port of this.ports) {
      const child = spawn('redis-server', [
        '--port', String(port), '--bind', HOST, '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(this.nodeTimeout),
        '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', this.dir, '--loglevel', 'warning',
        '--repl-diskless-sync-delay', '0', // replicas sync at once (the default waits 5 s)
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.set(port, child);
      this.logs.set(port, '');
      child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      for (const stream of [child.stdout, child.stderr]) {
        stream.setEncoding('utf8');
        stream.on('data', (chunk) => this.logs.set(port, (this.logs.get(port) + chunk).slice(-4000)));
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (const port of this.ports) {
      for (;;) {
        if (!this.running(port)) {
          const { code, signal } = await this.children.get(port).exited;
          throw new Error(`redis-server on ${port} exited at start (code ${code}, signal ${signal}):\n${this.logs.get(port)}`);
        }
        const pong = await command(port, ['PING'], 1000).catch(() => null);
        if (pong === 'PONG') break;
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer PING within ${timeoutMs} ms:\n${this.logs.get(port)}`);
        await sleep(30);
      }
    }
  }

  /** redis-cli --cluster create with one replica per primary. */
  create(timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      execFile('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
        { timeout: timeoutMs }, (err, stdout, stderr) => {
          this.createOutput = `${stdout}${stderr}`;
          if (err) reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${this.createOutput}`));
          else resolve();
        });
    });
  }

  /**
   * Every node in `ports` (default: the running ones) reports cluster_state:ok, all slots ok,
   * and they all describe the same topology (same nodes, roles, replica links and slots; nodes
   * not in `ports` flagged fail; no handshake/pfail/noaddr). Returns the agreed topology, or a
   * reason string when not there yet.
   */
  async agreement(ports = this.livePorts) {
    const views = [];
    for (const port of ports) {
      let info;
      let nodes;
      try {
        info = await clusterInfo(port);
        nodes = await clusterNodes(port);
      } catch (err) {
        return `${port}: ${err.message}`;
      }
      if (info.cluster_state !== 'ok') return `${port}: cluster_state:${info.cluster_state}`;
      if (info.cluster_slots_ok !== '16384') return `${port}: cluster_slots_ok:${info.cluster_slots_ok}`;
      if (nodes.length !== this.ports.length) return `${port}: knows ${nodes.length} nodes`;
      for (const n of nodes) {
        const bad = n.flags.filter((f) => ['handshake', 'noaddr', 'fail?'].includes(f) || (f === 'fail' && ports.includes(n.port)));
        if (bad.length) return `${port}: node ${n.port} flagged ${bad.join(',')}`;
        if (!ports.includes(n.port) && !n.flags.includes('fail')) return `${port}: stopped node ${n.port} not flagged fail yet`;
        if (ports.includes(n.port) && n.linkState !== 'connected') return `${port}: link to ${n.port} ${n.linkState}`;
      }
      const me = nodes.find((n) => n.myself);
      if (me && me.flags.includes('slave')) {
        // A replica that never synced with its primary would not be allowed to fail over.
        const repl = await command(port, ['INFO', 'replication']).catch((err) => err);
        if (!/master_link_status:up/.test(String(repl))) return `${port}: replica link to its primary not up yet`;
      }
      const byId = new Map(nodes.map((n) => [n.id, n]));
      const sig = nodes.filter((n) => ports.includes(n.port))
        .map((n) => `${n.port}:${n.flags.includes('master') ? 'M' : 'S'}:${n.master ? byId.get(n.master)?.port : '-'}:${n.slots}`)
        .sort().join('|');
      views.push({ port, sig, nodes });
    }
    if (views.length === 0) return 'no running node';
    const differing = views.find((v) => v.sig !== views[0].sig);
    if (differing) return `${views[0].port} and ${differing.port} disagree: ${views[0].sig} vs ${differing.sig}`;
    return this.describe(views[0].nodes, ports);
  }

  describe(nodes, ports) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const alive = (n) => ports.includes(n.port) && !n.flags.includes('fail');
    const primaries = nodes.filter((n) => alive(n) && n.flags.includes('master') && n.slots).map((n) => n.port).sort((a, b) => a - b);
    const replicas = nodes.filter((n) => alive(n) && n.flags.includes('slave')).map((n) => n.port).sort((a, b) => a - b);
    const replicaOf = Object.fromEntries(nodes.filter((n) => n.master).map((n) => [n.port, byId.get(n.master)?.port]));
    const failed = nodes.filter((n) => !alive(n)).map((n) => n.port);
    const slots = Object.fromEntries(nodes.filter((n) => n.slots).map((n) => [n.port, n.slots]));
    return { primaries, replicas, replicaOf, failed, slots };
  }

  /** Waits until `agreement()` holds; resolves with the topology. */
  async waitForAgreement(timeoutMs = 20000, what = 'the cluster to be ok and agreed') {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.agreement();
      if (typeof last === 'object') return last;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
      await sleep(100);
    }
  }

  /** The current topology as a running node sees it (no agreement required). */
  async topology() {
    for (const port of this.livePorts) {
      try {
        return this.describe(await clusterNodes(port), this.livePorts);
      } catch {
        // try the next node
      }
    }
    throw new Error('no running node answered CLUSTER NODES');
  }

  /** kill -9 (or `signal`) the node on `port`; resolves once it is gone and its port refuses connections. */
  async kill(port, signal = 'SIGKILL') {
    const child = this.children.get(port);
    if (!child) throw new Error(`no node on port ${port}`);
    this.killed.add(port);
    if (this.running(port)) child.kill(signal);
    const result = await child.exited;
    for (let i = 0; i < 100 && (await portAnswers(port)); i++) await sleep(20);
    return result;
  }

  /**
   * After kill(primaryPort): waits until a replica of it was promoted and every running node is
   * ok and agrees. Resolves with { topology, promoted } (the port of the new primary).
   */
  async waitForFailover(primaryPort, timeoutMs = 20000) {
    const topology = await this.waitForAgreement(timeoutMs, `a replica of ${primaryPort} to take over`);
    const promoted = topology.primaries.find((p) => this.replicaOf[p] === primaryPort);
    if (promoted === undefined) throw new Error(`after killing ${primaryPort}: no former replica of it is a primary: ${JSON.stringify(topology)}`);
    return { topology, promoted };
  }

  /** Kills every node and removes the directory. */
  async stop() {
    await Promise.all([...this.children.keys()].map(async (port) => {
      const child = this.children.get(port);
      if (this.running(port)) child.kill('SIGKILL');
      await child.exited;
    }));
    live.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Output tails of every node and of redis-cli, for failure messages. */
  logTail() {
    return [...this.logs].map(([port, log]) => `--- redis ${port}${this.killed.has(port) ? ' (killed)' : ''}:\n${log.trim()}`).join('\n') +
      `\n--- redis-cli --cluster create:\n${this.createOutput.trim().split('\n').slice(-15).join('\n')}`;
  }
}

/**
 * Starts a 6-node cluster (3 primaries with one replica each) and waits until it is ok and every
 * node agrees. On failure everything started is killed and the error rethrown.
 */
async function startRedisCluster({ nodes = 6, nodeTimeout = 2000, timeoutMs = 30000 } = {}) {
  const cluster = new RedisCluster(await freePortBlock(nodes), { nodeTimeout });
  live.add(cluster);
  try {
    await cluster.spawnAll();
    await cluster.create(timeoutMs);
    const topology = await cluster.waitForAgreement(timeoutMs);
    cluster.primaries = topology.primaries;
    cluster.replicas = topology.replicas;
    cluster.replicaOf = topology.replicaOf;
    if (cluster.primaries.length !== nodes / 2 || cluster.replicas.length !== nodes / 2) {
      throw new Error(`unexpected topology after create: ${JSON.stringify(topology)}`);
    }
    return cluster;
  } catch (err) {
    err.message += `\n${cluster.logTail()}`;
    await cluster.stop();
    throw err;
  }
}

/** Stops every cluster started by this process. */
async function stopAllRedisClusters() {
  await Promise.all([...live].map((c) => c.stop()));
}

// Last resort if a test file dies without running its hooks.
process.on('exit', () => {
  for (const cluster of live) {
    for (const child of cluster.children.values()) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    try {
      fs.rmSync(cluster.dir, { recursive: true, force: true });
    } catch {
      // nothing more to do
    }
  }
});

module.exports = { startRedisCluster, stopAllRedisClusters, RedisCluster, command, clusterInfo, clusterNodes, portAnswers };
