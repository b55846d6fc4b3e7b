'use strict';
// A private redis-server for tests that must kill and restart Redis: started as a child process
// on a free loopback port below the ephemeral range (so that no outgoing connection can hold the
// port while Redis is down and must come back on it), no persistence. Every instance is tracked
// and killed by stopAllRedis() (and, as a last resort, SIGKILLed when the test process exits).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const live = new Set();
const PORT_RANGE = [6300, 6399];

/** True when something accepts TCP connections on 127.0.0.1:port. */
function portAnswers(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True when 127.0.0.1:port can be listened on right now. */
function portBindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const taken = new Set(); // ports handed out by this process
/**
 * A port of PORT_RANGE (or of `range`, [lo, hi]) nobody listens on (and not handed out before by
 * this process).
 */
async function freePort(range = PORT_RANGE) {
  const [lo, hi] = range;
  const start = lo + Math.floor(Math.random() * (hi - lo + 1));
  for (let i = 0; i <= hi - lo; i++) {
    const port = lo + ((start - lo + i) % (hi - lo + 1));
    if (taken.has(port)) continue;
    if ((await portBindable(port)) && !(await portAnswers(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${lo}..${hi}`);
}

/** Resolves with true once Redis on `port` answers PING with +PONG (one attempt, 1 s at most). */
function pingOnce(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

class PrivateRedis {
  constructor(port) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sio-redis-'));
    this.child = null;
    this.log = '';
    this.starts = 0;
  }

  get running() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts redis-server on this.port and resolves once it answers PING (rejects after timeoutMs). */
  async start(timeoutMs = 10000) {
    if (this.running) throw new Error(`redis-server on ${this.port} is already running`);
    this.starts++;
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', this.dir, '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(this);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.exited = exited;
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => (this.log = (this.log + chunk).slice(-4000)));
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) {
        const { code, signal } = await exited;
        throw new Error(`redis-server on port ${this.port} exited at start (code ${code}, signal ${signal}):\n${this.log}`);
      }
      if (await pingOnce(this.port)) return this;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${timeoutMs} ms:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** kill -9 (or `signal`), resolves once the process is gone and the port refuses connections. */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    if (!child) return null;
    if (this.running) child.kill(signal);
    const result = await child.exited;
    for (let i = 0; i < 100 && (await portAnswers(this.port)); i++) await new Promise((r) => setTimeout(r, 20));
    return result;
  }

  /** Kills the server (if running) and removes its directory. */
  async stop() {
    await this.kill('SIGKILL');
    live.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A PrivateRedis on a free port, started unless `{ start: false }`. */
async function privateRedis({ start = true } = {}) {
  const redis = new PrivateRedis(await freePort());
  live.add(redis);
  if (start) await redis.start();
  return redis;
}

/** Kills every private Redis started by this process. */
async function stopAllRedis() {
  await Promise.all([...live].map((r) => r.stop()));
}

process.on('exit', () => {
  for (const r of live) if (r.running) r.child.kill('SIGKILL');
});

/**
 * Server settings (helpers/cluster.js startServer spec) of an ours node whose adapter gets
 * `redisUrl` itself (a URL, or a settings object such as `{ sentinels, name }`) and which opens no
 * other Redis client, reports its adapter events, serves namespace '/' only and loads the command
 * modules `commandModules` (a path or a list). `extra` overrides or adds settings.
 */
function oursNode(redisUrl, label, { commandModules = [], requestsTimeout, ...extra } = {}) {
  return {
    label,
    adapter: 'ours',
    redisUrl,
    redisClients: false,
    adapterEvents: true,
    ...(requestsTimeout === undefined ? {} : { requestsTimeout }),
    namespaces: ['/'],
    commandModules: [].concat(commandModules),
    ...extra,
  };
}

/**
 * `oursNode` with a test file's defaults bound, e.g.
 * `const oursNode = oursNodeWith({ commandModules: COMMANDS_MODULE, requestsTimeout: 2000 })`;
 * the result is `(redisUrl, label, extra = {}) => spec`, `extra` overriding the defaults.
 */
function oursNodeWith(defaults) {
  return (redisUrl, label, extra = {}) => oursNode(redisUrl, label, { ...defaults, ...extra });
}

module.exports = { privateRedis, stopAllRedis, freePort, portAnswers, PrivateRedis, oursNode, oursNodeWith };
