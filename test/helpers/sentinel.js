'use strict';
// A private Redis Sentinel deployment for tests: a primary, one replica (`--replicaof`) and three
// sentinels (`redis-server <conf> --sentinel`, each with its own writable config file, since
// sentinels rewrite it), all child processes on free loopback ports below the ephemeral range (a
// range of their own, apart from helpers/private-redis.js's), no persistence, everything in one
// temp dir. start() resolves once every sentinel names the primary, knows the replica (in sync)
// and the two other sentinels, so that a failover can be voted at once. stop() kills every
// process and removes the dir; on process exit (or SIGINT/SIGTERM/SIGHUP), whatever is left is
// SIGKILLed and removed (helpers/redis-process.js, which also runs each process).
//
//   const dep = await startSentinelDeployment();
//   dep.url              // 'redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster'
//   dep.ioredisOptions   // { sentinels: [{ host, port }, ...], name: 'mymaster' }
//   await dep.primary.kill();                  // kill -9
//   await dep.waitForPrimary(dep.replica.port) // Sentinel names the former replica
//   await dep.stop();
//
// TLS-only (helpers/tls-redis.js): `startSentinelDeployment({ tls: certs })` runs the primary and
// the replica with `--port 0 --tls-port <port> --tls-replication yes` and the sentinels with
// `port 0`, `tls-port`, `tls-replication yes` (so that they talk TLS to the data nodes and to each
// other); every admin command speaks TLS; `dep.url` is then 'rediss+sentinel://...'. With
// `plainSentinelPorts: true` as well, each sentinel also listens in plaintext on
// `sentinel.plainPort` (`dep.plainSentinelUrl`; the data nodes stay TLS-only).

const fs = require('node:fs');
const path = require('node:path');

const { RedisProcess, answersPing, freePort, redisCommand: plainRedisCommand, pollUntil, serverArgs, tempDir, removeDir,
  tlsSettings, tlsServerArgs, tlsCommandOptions } = require('./redis-process');

const PORT_RANGE = [16300, 16599];
const NAME = 'mymaster';

/** A flat [k1, v1, k2, v2, ...] reply (SENTINEL replicas/sentinels entries) as an object. */
function pairs(list) {
  const out = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]] = list[i + 1];
  return out;
}

/** An INFO reply as { field: value }. */
function parseInfo(text) {
  const out = {};
  for (const line of String(text).split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// The deployment

class SentinelDeployment {
  /** `tls`: certs for a TLS-only deployment, `plainSentinelPorts`: see the file comment. */
  constructor({ tls = null, plainSentinelPorts = false } = {}) {
    this.name = NAME;
    this.tls = tls;
    this.plainSentinelPorts = Boolean(tls && plainSentinelPorts);
    this.commandOptions = tlsCommandOptions(tls);
    this.dir = tempDir(tls ? 'sio-sentinel-tls-' : 'sio-sentinel-');
    this.primary = null;
    this.replica = null;
    this.sentinels = [];
  }

  /** `redis+sentinel://` (TLS: `rediss+sentinel://`) URL of the deployment (sentinels in order, primary name, no db). */
  get url() {
    return `${this.tls ? 'rediss' : 'redis'}+sentinel://${this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${this.name}`;
  }

  /** With plainSentinelPorts: the sentinels' plaintext ports as a `rediss+sentinel://` URL (data nodes over TLS). */
  get plainSentinelUrl() {
    if (!this.plainSentinelPorts) throw new Error('the sentinels have no plaintext port (plainSentinelPorts)');
    return `rediss+sentinel://${this.sentinels.map((s) => `127.0.0.1:${s.plainPort}`).join(',')}/${this.name}`;
  }

  /** ioredis' Sentinel options: { sentinels: [{ host, port }], name } (no TLS settings). */
  get ioredisOptions() {
    return { sentinels: this.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: this.name };
  }

  /** Starts everything; see the file comment for what "ready" means. */
  async start({ timeoutMs = 20000 } = {}) {
    const started = Date.now();
    const left = () => Math.max(1000, timeoutMs - (Date.now() - started));
    const dataArgs = (port, role) => {
      const dir = path.join(this.dir, role);
      fs.mkdirSync(dir, { recursive: true });
      // The default delay (5 s) would make the replica wait that long for its first sync.
      if (this.tls) return tlsServerArgs(port, dir, this.tls, [['tls-replication', 'yes']], '--repl-diskless-sync-delay', '0');
      return serverArgs(port, dir, '--repl-diskless-sync-delay', '0');
    };
    const processOptions = { ready: (port) => answersPing(port, this.commandOptions) };
    const primaryPort = await freePort(PORT_RANGE);
    this.primary = new RedisProcess('primary', primaryPort, dataArgs(primaryPort, 'primary'), processOptions);
    await this.primary.start();
    const replicaPort = await freePort(PORT_RANGE);
    this.replica = new RedisProcess('replica', replicaPort, [...dataArgs(replicaPort, 'replica'), '--replicaof', '127.0.0.1', String(primaryPort)], processOptions);
    await this.replica.start();
    // The replica is in sync before the sentinels start: their first INFO of the primary lists it.
    await pollUntil(async () => parseInfo(await this.command(replicaPort, ['INFO', 'replication'])).master_link_status === 'up',
      left(), `the replica on ${replicaPort} to be in sync with the primary on ${primaryPort}`);

    const sentinelPorts = [];
    for (let i = 0; i < 3; i++) sentinelPorts.push(await freePort(PORT_RANGE));
    const plainPorts = [];
    if (this.plainSentinelPorts) for (let i = 0; i < 3; i++) plainPorts.push(await freePort(PORT_RANGE));
    this.sentinels = sentinelPorts.map((port, i) => {
      const file = path.join(this.dir, `sentinel-${i + 1}.conf`);
      // TLS: the sentinels' port is the TLS port (plaintext port 0 or, with plainSentinelPorts, a
      // second one); `tls-replication yes` makes them talk TLS to the data nodes and announce
      // their TLS port to each other.
      const portLines = this.tls
        ? [`port ${this.plainSentinelPorts ? plainPorts[i] : 0}`, `tls-port ${port}`,
          ...tlsSettings(this.tls, ['tls-replication', 'yes']).map(([k, v]) => `${k} ${v}`)]
        : [`port ${port}`];
      fs.writeFileSync(file, [
        ...portLines,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 5000`,
        `sentinel parallel-syncs ${NAME} 1`,
        '',
      ].join('\n'));
      const sentinel = new RedisProcess(`sentinel ${i + 1}`, port, [file, '--sentinel', '--loglevel', 'warning'], processOptions);
      if (this.plainSentinelPorts) sentinel.plainPort = plainPorts[i];
      return sentinel;
    });
    await Promise.all(this.sentinels.map((s) => s.start()));
    await pollUntil(async () => (await Promise.all(this.sentinels.map((s) => this.sentinelReady(s)))).every(Boolean),
      left(), async () => `every sentinel to name the primary, know the replica and the other sentinels:\n${await this.describe()}`, 100);
    return this;
  }

  /** True when `sentinel` names the current primary, sees the replica in sync and knows 2 other sentinels. */
  async sentinelReady(sentinel) {
    const addr = await this.command(sentinel.port, ['SENTINEL', 'get-master-addr-by-name', NAME]);
    if (!addr || Number(addr[1]) !== this.primary.port) return false;
    const replicas = (await this.command(sentinel.port, ['SENTINEL', 'replicas', NAME])).map(pairs);
    const replica = replicas.find((r) => Number(r.port) === this.replica.port);
    if (!replica || replica.flags !== 'slave' || replica['master-link-status'] !== 'ok') return false;
    const others = (await this.command(sentinel.port, ['SENTINEL', 'sentinels', NAME])).map(pairs);
    return others.filter((o) => !/down|disconnected/.test(o.flags)).length >= 2;
  }

  /** The primary's port as the first answering sentinel names it (null when none answers). */
  async primaryPort() {
    for (const s of this.sentinels.filter((x) => x.running)) {
      try {
        const addr = await this.command(s.port, ['SENTINEL', 'get-master-addr-by-name', NAME], 1000);
        return addr ? Number(addr[1]) : null;
      } catch {
        // try the next one
      }
    }
    return null;
  }

  /** Resolves once every running sentinel names the primary on `port`. */
  waitForPrimary(port, timeoutMs = 30000) {
    return pollUntil(async () => {
      const answers = await Promise.all(this.sentinels.filter((s) => s.running).map((s) =>
        this.command(s.port, ['SENTINEL', 'get-master-addr-by-name', NAME], 1000).catch(() => null)));
      return answers.length > 0 && answers.every((a) => a && Number(a[1]) === port);
    }, timeoutMs, async () => `every sentinel to name 127.0.0.1:${port} as the primary:\n${await this.describe()}`, 50);
  }

  /** ROLE of the server on `port`: 'master', 'slave', 'sentinel' (first element of the reply). */
  async role(port) {
    return (await this.command(port, ['ROLE']))[0];
  }

  /** Sends `args` to the data node or sentinel on `port` (over TLS in a TLS deployment); error replies reject. */
  command(port, args, timeoutMs) {
    return plainRedisCommand(port, args, timeoutMs, this.commandOptions);
  }

  /** A few lines on the state of every process, for failure messages. */
  async describe() {
    const lines = [];
    for (const p of [this.primary, this.replica].filter(Boolean)) {
      let state = 'not running';
      if (p.running) {
        try {
          const info = parseInfo(await this.command(p.port, ['INFO', 'replication'], 1000));
          state = `role=${info.role} master_link_status=${info.master_link_status || '-'} connected_slaves=${info.connected_slaves || '-'}`;
        } catch (err) {
          state = `running, INFO failed: ${err.message}`;
        }
      }
      lines.push(`  ${p.role} :${p.port}: ${state}`);
    }
    for (const s of this.sentinels) {
      let state = 'not running';
      if (s.running) {
        try {
          const m = pairs((await this.command(s.port, ['SENTINEL', 'master', NAME], 1000)));
          const replicas = (await this.command(s.port, ['SENTINEL', 'replicas', NAME], 1000)).map(pairs);
          const others = (await this.command(s.port, ['SENTINEL', 'sentinels', NAME], 1000)).map(pairs);
          state = `master ${m.ip}:${m.port} flags=${m.flags} failover-state=${m['failover-state'] || '-'}; ` +
            `replicas ${replicas.map((r) => `${r.port}(${r.flags},${r['master-link-status']})`).join(' ') || 'none'}; ` +
            `other sentinels ${others.map((o) => `${o.port}(${o.flags})`).join(' ') || 'none'}`;
        } catch (err) {
          state = `running, SENTINEL failed: ${err.message}`;
        }
      }
      lines.push(`  ${s.role} :${s.port}: ${state}`);
    }
    const logs = [this.primary, this.replica, ...this.sentinels].filter((p) => p && p.log.trim())
      .map((p) => `  --- ${p.role} log tail ---\n${p.log.trim().split('\n').filter((l) => !/overcommit|oO0OoO0|version=|Configuration loaded|Server initialized/.test(l)).slice(-8).join('\n')}`);
    return [...lines, ...logs].join('\n');
  }

  /** Kills every process and removes the temp dir. */
  async stop() {
    await Promise.all([this.primary, this.replica, ...this.sentinels].filter(Boolean).map((p) => p.stop()));
    removeDir(this.dir);
  }
}

/**
 * Starts a deployment (see SentinelDeployment#start; `{ tls, plainSentinelPorts }` go to the
 * constructor, the rest to start()); on failure, cleans up and rethrows.
 */
async function startSentinelDeployment({ tls, plainSentinelPorts, ...options } = {}) {
  const dep = new SentinelDeployment({ tls, plainSentinelPorts });
  try {
    return await dep.start(options);
  } catch (err) {
    await dep.stop();
    throw err;
  }
}

/** A port of the deployments' range that nothing listens on (e.g. an unreachable "sentinel"). */
function unusedPort() {
  return freePort(PORT_RANGE);
}

module.exports = { startSentinelDeployment, SentinelDeployment, redisCommand: plainRedisCommand, parseInfo, unusedPort, NAME };
