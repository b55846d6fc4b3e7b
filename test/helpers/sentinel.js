'use strict';
// A private Redis Sentinel deployment for tests: a primary, one replica (`--replicaof`) and three
// sentinels (`redis-server <conf> --sentinel`, each with its own writable config file, since
// sentinels rewrite it), all child processes on free loopback ports below the ephemeral range (a
// range of their own, apart from helpers/private-redis.js's), no persistence, everything in one
// temp dir. start() resolves once every sentinel names the primary, knows the replica (in sync)
// and the two other sentinels, so that a failover can be voted at once. stop() kills every
// process and removes the dir; on process exit, whatever is left is SIGKILLed and removed.
//
//   const dep = await startSentinelDeployment();
//   dep.url              // 'redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster'
//   dep.ioredisOptions   // { sentinels: [{ host, port }, ...], name: 'mymaster' }
//   await dep.primary.kill();                  // kill -9
//   await dep.waitForPrimary(dep.replica.port) // Sentinel names the former replica
//   await dep.stop();

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { freePort, portAnswers } = require('./private-redis');

const PORT_RANGE = [16300, 16599];
const NAME = 'mymaster';
const live = new Set(); // RedisProcess
const dirs = new Set(); // temp dirs to remove

// -------------------------------------------------------------------------------------------------
// One command over a fresh connection (RESP2), no client library involved

function encodeCommand(args) {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) {
    const s = String(arg);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return parts.join('');
}

/** Parses one RESP2 reply at `i`: { value, next } or null when incomplete. Error replies are Error values. */
function parseReply(buf, i = 0) {
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new Error(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), next: next + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items = [];
      let at = next;
      for (let n = 0; n < count; n++) {
        const item = parseReply(buf, at);
        if (!item) return null;
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/**
 * Sends `args` (e.g. ['SENTINEL', 'masters']) to 127.0.0.1:`port` on a new connection and resolves
 * with the reply (strings, numbers, arrays, null); rejects on an error reply, a connection error
 * or after `timeoutMs`.
 */
function redisCommand(port, args, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const what = `${args.join(' ')} on 127.0.0.1:${port}`;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`${what}: no reply within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let parsed;
      try {
        parsed = parseReply(buf);
      } catch (err) {
        finish(err);
        return;
      }
      if (!parsed) return;
      if (parsed.value instanceof Error) finish(new Error(`${what}: ${parsed.value.message}`));
      else finish(null, parsed.value);
    });
    socket.once('error', (err) => finish(new Error(`${what}: ${err.message}`)));
    socket.once('close', () => finish(new Error(`${what}: connection closed before the reply`)));
  });
}

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

/**
 * Polls `check()` every `intervalMs` until truthy (returned); errors it throws count as "not yet"
 * unless marked `fatal`. Rejects after `timeoutMs` saying `what` (a string or an async function).
 */
async function pollUntil(check, timeoutMs, what, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      lastErr = null;
    } catch (err) {
      if (err.fatal) throw err;
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? await what() : what}` +
        `${lastErr ? ` (last error: ${lastErr.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// -------------------------------------------------------------------------------------------------
// Processes

class RedisProcess {
  /** `args(port)`: the redis-server arguments. */
  constructor(role, port, args) {
    this.role = role;
    this.port = port;
    this.args = args;
    this.child = null;
    this.log = '';
  }

  get running() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once it answers PING. */
  async start(timeoutMs = 10000) {
    if (this.running) throw new Error(`${this.role} on ${this.port} is already running`);
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(this);
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.once('error', (err) => (this.log += `\nspawn error: ${err.message}`));
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => (this.log = (this.log + chunk).slice(-4000)));
    }
    await pollUntil(async () => {
      if (!this.running) {
        const { code, signal } = await child.exited;
        throw Object.assign(new Error(`${this.role} (redis-server ${this.args.join(' ')}) exited at start (code ${code}, signal ${signal}):\n${this.log}`), { fatal: true });
      }
      return (await redisCommand(this.port, ['PING'], 1000)) === 'PONG';
    }, timeoutMs, () => `${this.role} on port ${this.port} to answer PING:\n${this.log}`);
    return this;
  }

  /** kill -9 (or `signal`); resolves with { code, signal } once gone and the port refuses connections. */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    if (!child) return null;
    if (this.running) child.kill(signal);
    const result = await child.exited;
    for (let i = 0; i < 100 && (await portAnswers(this.port)); i++) await new Promise((r) => setTimeout(r, 20));
    return result;
  }

  async stop() {
    await this.kill('SIGKILL');
    live.delete(this);
  }
}

// -------------------------------------------------------------------------------------------------
// The deployment

class SentinelDeployment {
  constructor() {
    this.name = NAME;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sio-sentinel-'));
    dirs.add(this.dir);
    this.primary = null;
    this.replica = null;
    this.sentinels = [];
  }

  /** `redis+sentinel://` URL of the deployment (sentinels in order, primary name, no db). */
  get url() {
    return `redis+sentinel://${this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${this.name}`;
  }

  /** ioredis' Sentinel options: { sentinels: [{ host, port }], name }. */
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
      return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning',
        // The default (5 s) would make the replica wait that long for its first sync.
        '--repl-diskless-sync-delay', '0'];
    };
    const primaryPort = await freePort(PORT_RANGE);
    this.primary = new RedisProcess('primary', primaryPort, dataArgs(primaryPort, 'primary'));
    await this.primary.start();
    const replicaPort = await freePort(PORT_RANGE);
    this.replica = new RedisProcess('replica', replicaPort, [...dataArgs(replicaPort, 'replica'), '--replicaof', '127.0.0.1', String(primaryPort)]);
    await this.replica.start();
    // The replica is in sync before the sentinels start: their first INFO of the primary lists it.
    await pollUntil(async () => parseInfo(await redisCommand(replicaPort, ['INFO', 'replication'])).master_link_status === 'up',
      left(), `the replica on ${replicaPort} to be in sync with the primary on ${primaryPort}`);

    const sentinelPorts = [];
    for (let i = 0; i < 3; i++) sentinelPorts.push(await freePort(PORT_RANGE));
    this.sentinels = sentinelPorts.map((port, i) => {
      const file = path.join(this.dir, `sentinel-${i + 1}.conf`);
      fs.writeFileSync(file, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 5000`,
        `sentinel parallel-syncs ${NAME} 1`,
        '',
      ].join('\n'));
      return new RedisProcess(`sentinel ${i + 1}`, port, [file, '--sentinel', '--loglevel', 'warning']);
    });
    await Promise.all(this.sentinels.map((s) => s.start()));
    await pollUntil(async () => (await Promise.all(this.sentinels.map((s) => this.sentinelReady(s)))).every(Boolean),
      left(), async () => `every sentinel to name the primary, know the replica and the other sentinels:\n${await this.describe()}`, 100);
    return this;
  }

  /** True when `sentinel` names the current primary, sees the replica in sync and knows 2 other sentinels. */
  async sentinelReady(sentinel) {
    const addr = await redisCommand(sentinel.port, ['SENTINEL', 'get-master-addr-by-name', NAME]);
    if (!addr || Number(addr[1]) !== this.primary.port) return false;
    const replicas = (await redisCommand(sentinel.port, ['SENTINEL', 'replicas', NAME])).map(pairs);
    const replica = replicas.find((r) => Number(r.port) === this.replica.port);
    if (!replica || replica.flags !== 'slave' || replica['master-link-status'] !== 'ok') return false;
    const others = (await redisCommand(sentinel.port, ['SENTINEL', 'sentinels', NAME])).map(pairs);
    return others.filter((o) => !/down|disconnected/.test(o.flags)).length >= 2;
  }

  /** The primary's port as the first answering sentinel names it (null when none answers). */
  async primaryPort() {
    for (const s of this.sentinels.filter((x) => x.running)) {
      try {
        const addr = await redisCommand(s.port, ['SENTINEL', 'get-master-addr-by-name', NAME], 1000);
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
        redisCommand(s.port, ['SENTINEL', 'get-master-addr-by-name', NAME], 1000).catch(() => null)));
      return answers.length > 0 && answers.every((a) => a && Number(a[1]) === port);
    }, timeoutMs, async () => `every sentinel to name 127.0.0.1:${port} as the primary:\n${await this.describe()}`, 50);
  }

  /** ROLE of the server on `port`: 'master', 'slave', 'sentinel' (first element of the reply). */
  async role(port) {
    return (await redisCommand(port, ['ROLE']))[0];
  }

  /** Sends `args` to the data node or sentinel on `port`. */
  command(port, args, timeoutMs) {
    return redisCommand(port, args, timeoutMs);
  }

  /** A few lines on the state of every process, for failure messages. */
  async describe() {
    const lines = [];
    for (const p of [this.primary, this.replica].filter(Boolean)) {
      let state = 'not running';
      if (p.running) {
        try {
          const info = parseInfo(await redisCommand(p.port, ['INFO', 'replication'], 1000));
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
          const m = pairs((await redisCommand(s.port, ['SENTINEL', 'master', NAME], 1000)));
          const replicas = (await redisCommand(s.port, ['SENTINEL', 'replicas', NAME], 1000)).map(pairs);
          const others = (await redisCommand(s.port, ['SENTINEL', 'sentinels', NAME], 1000)).map(pairs);
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
    fs.rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}

/** Starts a deployment (see SentinelDeployment#start); on failure, cleans up and rethrows. */
async function startSentinelDeployment(options) {
  const dep = new SentinelDeployment();
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

// Last resort if a test file dies without running its hooks: on exit, and on the signals that
// end a process without 'exit' handlers (node --test's runner SIGTERMs a file it gives up on).
function killLeftovers() {
  for (const p of live) if (p.running) p.child.kill('SIGKILL');
  for (const dir of dirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}
process.on('exit', killLeftovers);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  const onSignal = () => {
    killLeftovers();
    // Alone on this signal: let its default action (ending the process) happen after all.
    if (process.listenerCount(signal) === 1) {
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    }
  };
  process.on(signal, onSignal);
}

module.exports = { startSentinelDeployment, SentinelDeployment, redisCommand, parseInfo, unusedPort, NAME };
