'use strict';
// redis-server child processes for tests, and what the helpers that start them share
// (helpers/private-redis.js, helpers/sentinel.js, helpers/redis-cluster.js, tls.test.js):
//
// - free loopback ports below the ephemeral range (freePort, freePortBlock), so that no outgoing
//   connection can hold a port while its server is down and must come back on it;
// - a one-shot RESP2 client, no client library involved (command, redisCommand), in plaintext or,
//   with `{ tls: { ca, ... } }` (node's tls.connect options), over TLS (helpers/tls-redis.js);
// - RedisProcess: spawn redis-server, resolve once it answers PING, kill -9 and wait until the port
//   refuses connections, keep the tail of its output for failure messages;
// - temp dirs (tempDir / removeDir);
// - last resort cleanup: whatever process is still running, and whatever temp dir is still there,
//   is SIGKILLed / removed when the test process exits, and on SIGINT, SIGTERM and SIGHUP (which end
//   a process without running its 'exit' handlers; node --test SIGTERMs a file it gives up on).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const tls = require('node:tls');
const os = require('node:os');
const path = require('node:path');

const HOST = '127.0.0.1';
const live = new Set(); // RedisProcess instances started and not stopped
const dirs = new Set(); // temp dirs not removed yet

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -------------------------------------------------------------------------------------------------
// Ports

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

/** True when HOST:port can be listened on right now. */
function portBindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

const taken = new Set(); // ports handed out by this process

/** True when `port` was not handed out before, can be listened on and nobody answers on it. */
async function portFree(port) {
  return !taken.has(port) && (await portBindable(port)) && !(await portAnswers(port));
}

const DEFAULT_RANGE = [6300, 6399];

/**
 * A port of `range` ([lo, hi]; default 6300..6399) nobody listens on (and not handed out before by
 * this process).
 */
async function freePort(range = DEFAULT_RANGE) {
  const [lo, hi] = range;
  const start = lo + Math.floor(Math.random() * (hi - lo + 1));
  for (let i = 0; i <= hi - lo; i++) {
    const port = lo + ((start - lo + i) % (hi - lo + 1));
    if (await portFree(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${lo}..${hi}`);
}

/**
 * `count` consecutive ports p..p+count-1 of `range` such that every p, and p + each of `offsets`
 * (e.g. [10000] for Redis Cluster bus ports), is free.
 */
async function freePortBlock(count, range, offsets = []) {
  const [lo, hi] = range;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = lo + Math.floor(Math.random() * (hi - lo - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    let ok = true;
    for (const port of ports.flatMap((p) => [p, ...offsets.map((o) => p + o)])) {
      if (!(await portFree(port))) {
        ok = false;
        break;
      }
    }
    if (ok) {
      for (const port of ports) taken.add(port);
      return ports;
    }
  }
  throw new Error(`no block of ${count} free ports${offsets.length ? ` (and +${offsets.join(', +')})` : ''} in ${lo}..${hi}`);
}

// -------------------------------------------------------------------------------------------------
// One command over a fresh connection (RESP2)

function encodeCommand(args) {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) {
    const s = String(arg);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return parts.join('');
}

/**
 * Parses one RESP2 reply at `i`: { value, next } or null when incomplete. Error replies are Error
 * values with `redisError: true`.
 */
function parseReply(buf, i = 0) {
  if (i >= buf.length) return null;
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: Object.assign(new Error(line), { redisError: true }), next };
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
 * Sends `args` (e.g. ['CLUSTER', 'INFO']) to HOST:`port` on a new connection and resolves with the
 * reply (strings, numbers, arrays, null; an error reply resolves as an Error with
 * `redisError: true`); rejects on a connection error or after `timeoutMs`. `options.tls`: connect
 * over TLS with these tls.connect options (e.g. `{ ca }`; the certificate is verified unless they
 * say otherwise) instead of plain TCP.
 */
function command(port, args, timeoutMs = 2000, options = {}) {
  const tlsOptions = options && options.tls;
  return new Promise((resolve, reject) => {
    const socket = tlsOptions ? tls.connect({ host: HOST, port, ...tlsOptions }) : net.connect({ host: HOST, port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const what = `${args.join(' ')} on ${HOST}:${port}${tlsOptions ? ' (TLS)' : ''}`;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`${what}: no reply within ${timeoutMs} ms`)), timeoutMs);
    socket.once(tlsOptions ? 'secureConnect' : 'connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let parsed;
      try {
        parsed = parseReply(buf);
      } catch (err) {
        finish(err);
        return;
      }
      if (parsed) finish(null, parsed.value);
    });
    socket.once('error', (err) => finish(new Error(`${what}: ${err.message}`)));
    socket.once('close', () => finish(new Error(`${what}: connection closed before the reply`)));
  });
}

/** `command`, but an error reply rejects (saying the command and the port). */
async function redisCommand(port, args, timeoutMs, options) {
  const value = await command(port, args, timeoutMs, options);
  if (value instanceof Error) throw new Error(`${args.join(' ')} on ${HOST}:${port}: ${value.message}`);
  return value;
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
    await sleep(intervalMs);
  }
}

// -------------------------------------------------------------------------------------------------
// Temp dirs

/** A new temp dir named `prefix`..., removed at exit at the latest. */
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

// -------------------------------------------------------------------------------------------------
// Processes

/**
 * The arguments of a data node on HOST:`port` working in `dir`: no persistence, not daemonized,
 * warnings only; `extra` appended.
 */
function serverArgs(port, dir, ...extra) {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning', ...extra];
}

/**
 * TLS of a test server (helpers/tls-redis.js makes them): `certs` = { certFile, keyFile, caFile, ca }
 * (files by absolute path, `ca` the CA's PEM text).
 *
 * tlsSettings(certs): the redis-server settings [[name, value], ...] of a TLS port with that
 * certificate, clients not asked for one (`tls-auth-clients no`); `extra` pairs appended (e.g.
 * ['tls-replication', 'yes']). As arguments: tlsServerArgs; as config file lines: name value.
 */
function tlsSettings(certs, ...extra) {
  return [['tls-cert-file', certs.certFile], ['tls-key-file', certs.keyFile], ['tls-ca-cert-file', certs.caFile],
    ['tls-auth-clients', 'no'], ...extra];
}

/**
 * The arguments of a TLS-ONLY data node (`--port 0`: no plaintext port at all, `--tls-port
 * port`) working in `dir`, like serverArgs; `settings`: more [name, value] pairs of tlsSettings;
 * `extra` appended as is.
 */
function tlsServerArgs(port, dir, certs, settings = [], ...extra) {
  return serverArgs(0, dir, '--tls-port', String(port), ...tlsSettings(certs, ...settings).flatMap(([k, v]) => [`--${k}`, v]), ...extra);
}

/** `command` options that speak TLS to a server of `certs`, verifying its certificate with the CA. */
function tlsCommandOptions(certs) {
  return certs ? { tls: { ca: certs.ca } } : {};
}

/** True when the server on `port` answers PING (`options`: see `command`, e.g. `{ tls: { ca } }`). */
async function answersPing(port, options) {
  return (await command(port, ['PING'], 1000, options)) === 'PONG';
}

class RedisProcess {
  /**
   * A `redis-server ...args` on `port` (not started); `role` names it in messages. `ready(port)`
   * (async) tells when it is up, by default when it answers PING; `cwd`: its working directory.
   */
  constructor(role, port, args, { cwd, ready = answersPing } = {}) {
    this.role = role;
    this.port = port;
    this.args = args;
    this.cwd = cwd;
    this.ready = ready;
    this.child = null;
    this.log = '';
  }

  get running() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once it is up (rejects after timeoutMs, or when it exits). */
  async start(timeoutMs = 10000) {
    if (this.running) throw new Error(`${this.role} on ${this.port} is already running`);
    const child = spawn('redis-server', this.args, { cwd: this.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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
        throw Object.assign(new Error(`${this.role} on port ${this.port} (redis-server ${this.args.join(' ')}) exited at start ` +
          `(code ${code}, signal ${signal}):\n${this.log}`), { fatal: true });
      }
      return this.ready(this.port);
    }, timeoutMs, () => `${this.role} on port ${this.port} to be up:\n${this.log}`, 30);
    return this;
  }

  /** kill -9 (or `signal`); resolves with { code, signal } once gone and the port refuses connections. */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    if (!child) return null;
    if (this.running) child.kill(signal);
    const result = await child.exited;
    for (let i = 0; i < 100 && (await portAnswers(this.port)); i++) await sleep(20);
    return result;
  }

  /** Kills the process (if running). */
  async stop() {
    await this.kill('SIGKILL');
    live.delete(this);
  }
}

// -------------------------------------------------------------------------------------------------
// Last resort if a test file dies without running its hooks

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

module.exports = {
  HOST,
  sleep,
  portAnswers,
  portBindable,
  freePort,
  freePortBlock,
  command,
  redisCommand,
  pollUntil,
  answersPing,
  tempDir,
  removeDir,
  serverArgs,
  tlsSettings,
  tlsServerArgs,
  tlsCommandOptions,
  RedisProcess,
};
