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
// TLS-only (helpers/tls-redis.js): `startRedisCluster({ tls: certs, nodes: 3, replicas: 0 })` runs
// every node with `--port 0 --tls-port <port> --tls-cluster yes --tls-replication yes` (bus and
// replication over TLS too), creates it with `redis-cli --tls --cacert`, and speaks TLS in every
// admin command (`cluster.command`, the checks); `cluster.url` is then 'rediss+cluster://...'.
//
// Every node is also SIGKILLed (and the directory removed) when the test process exits or gets
// SIGINT/SIGTERM/SIGHUP (helpers/redis-process.js, which also runs each node).

const { execFile } = require('node:child_process');
const path = require('node:path');

const { HOST, RedisProcess, answersPing, command, freePortBlock, portAnswers, serverArgs, sleep, tempDir, removeDir,
  tlsServerArgs, tlsCommandOptions } = require('./redis-process');

const live = new Set();
/** Base ports are picked in this range; bus ports (+10000) stay below the ephemeral range (32768). */
const BASE_RANGE = [20000, 22700];
const BUS_OFFSET = 10000;

// -------------------------------------------------------------------------------------------------
// Commands (`command`: one RESP command on a fresh connection, see helpers/redis-process.js)

/** `CLUSTER INFO` as an object of strings (`options`: see `command`, e.g. TLS). */
async function clusterInfo(port, options) {
  const text = await command(port, ['CLUSTER', 'INFO'], undefined, options);
  if (text instanceof Error) throw text;
  return Object.fromEntries(String(text).split('\r\n').filter(Boolean).map((l) => l.split(':')));
}

/**
 * `CLUSTER NODES` parsed: [{ id, port, flags: [..], master: id|null, linkState, slots: 'a-b c-d', myself }].
 */
async function clusterNodes(port, options) {
  const text = await command(port, ['CLUSTER', 'NODES'], undefined, options);
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

// -------------------------------------------------------------------------------------------------
// The cluster

class RedisCluster {
  /** `tls`: certs ({ certFile, keyFile, caFile, ca }) for a TLS-only cluster (see the file comment). */
  constructor(ports, { nodeTimeout = 2000, replicas = 1, tls = null } = {}) {
    this.ports = ports;
    this.nodeTimeout = nodeTimeout;
    this.replicasPerPrimary = replicas;
    this.tls = tls;
    this.commandOptions = tlsCommandOptions(tls);
    this.dir = tempDir(tls ? 'sio-redis-tls-cluster-' : 'sio-redis-cluster-');
    const clusterArgs = (port) => ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(this.dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', String(nodeTimeout),
      '--repl-diskless-sync-delay', '0']; // replicas sync at once (the default waits 5 s)
    const ready = (port) => answersPing(port, this.commandOptions);
    this.nodes = new Map(ports.map((port) => [port, tls
      // The bus port is port + 10000 either way (with tls-cluster the TLS port is the one announced);
      // said explicitly since the plaintext port is 0.
      ? new RedisProcess('TLS cluster node', port, tlsServerArgs(port, this.dir, tls, [['tls-cluster', 'yes'], ['tls-replication', 'yes']],
        ...clusterArgs(port), '--cluster-port', String(port + BUS_OFFSET)), { ready })
      : new RedisProcess('cluster node', port, serverArgs(port, this.dir, ...clusterArgs(port)))]));
    this.primaries = [];
    this.replicas = [];
    this.replicaOf = {};
    this.killed = new Set();
    this.createOutput = '';
  }

  get url() {
    return `${this.tls ? 'rediss' : 'redis'}+cluster://${this.ports.map((p) => `${HOST}:${p}`).join(',')}`;
  }

  get seeds() {
    return this.ports.map((port) => ({ host: HOST, port }));
  }

  /** Ports of the nodes that are running. */
  get livePorts() {
    return this.ports.filter((p) => this.running(p));
  }

  running(port) {
    const node = this.nodes.get(port);
    return Boolean(node) && node.running;
  }

  /** One command on the node on `port` (over TLS for a TLS cluster); error replies resolve as Errors. */
  command(port, args, timeoutMs) {
    return command(port, args, timeoutMs, this.commandOptions);
  }

  /** Spawns every node and waits until each answers PING. */
  async spawnAll(timeoutMs = 10000) {
    await Promise.all([...this.nodes.values()].map((node) => node.start(timeoutMs)));
  }

  /** redis-cli --cluster create with `replicas` replicas per primary (over TLS for a TLS cluster). */
  create(timeoutMs = 30000) {
    const tlsArgs = this.tls ? ['--tls', '--cacert', this.tls.caFile] : [];
    return new Promise((resolve, reject) => {
      execFile('redis-cli', [...tlsArgs, '--cluster', 'create', ...this.ports.map((p) => `${HOST}:${p}`),
        '--cluster-replicas', String(this.replicasPerPrimary), '--cluster-yes'],
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
        info = await clusterInfo(port, this.commandOptions);
        nodes = await clusterNodes(port, this.commandOptions);
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
        const repl = await this.command(port, ['INFO', 'replication']).catch((err) => err);
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
        return this.describe(await clusterNodes(port, this.commandOptions), this.livePorts);
      } catch {
        // try the next node
      }
    }
    throw new Error('no running node answered CLUSTER NODES');
  }

  /** kill -9 (or `signal`) the node on `port`; resolves once it is gone and its port refuses connections. */
  async kill(port, signal = 'SIGKILL') {
    const node = this.nodes.get(port);
    if (!node) throw new Error(`no node on port ${port}`);
    this.killed.add(port);
    return node.kill(signal);
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
    await Promise.all([...this.nodes.values()].map((node) => node.stop()));
    live.delete(this);
    removeDir(this.dir);
  }

  /** Output tails of every node and of redis-cli, for failure messages. */
  logTail() {
    return [...this.nodes].map(([port, node]) => `--- redis ${port}${this.killed.has(port) ? ' (killed)' : ''}:\n${node.log.trim()}`).join('\n') +
      `\n--- redis-cli --cluster create:\n${this.createOutput.trim().split('\n').slice(-15).join('\n')}`;
  }
}

/**
 * Starts a cluster of `nodes` nodes, `replicas` replicas per primary (default 6 nodes: 3 primaries
 * with one replica each), TLS-only with `tls` (certs, see the file comment), and waits until it is
 * ok and every node agrees. On failure everything started is killed and the error rethrown.
 */
async function startRedisCluster({ nodes = 6, replicas = 1, nodeTimeout = 2000, timeoutMs = 30000, tls = null } = {}) {
  const primaries = nodes / (replicas + 1);
  if (!Number.isInteger(primaries) || primaries < 3) throw new Error(`startRedisCluster: ${nodes} nodes cannot make >= 3 primaries with ${replicas} replicas each`);
  const cluster = new RedisCluster(await freePortBlock(nodes, BASE_RANGE, [BUS_OFFSET]), { nodeTimeout, replicas, tls });
  live.add(cluster);
  try {
    await cluster.spawnAll();
    await cluster.create(timeoutMs);
    const topology = await cluster.waitForAgreement(timeoutMs);
    cluster.primaries = topology.primaries;
    cluster.replicas = topology.replicas;
    cluster.replicaOf = topology.replicaOf;
    if (cluster.primaries.length !== primaries || cluster.replicas.length !== nodes - primaries) {
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

module.exports = { startRedisCluster, stopAllRedisClusters, RedisCluster, command, clusterInfo, clusterNodes, portAnswers };
