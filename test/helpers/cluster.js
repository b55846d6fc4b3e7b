'use strict';
// Test-side helpers: start socket.io servers (helpers/server.js) as child processes, talk to them
// over IPC, connect socket.io clients that record what they receive, and wait for conditions
// instead of sleeping. Everything started here is tracked and torn down by stopAll(), which each
// test file registers as an `after` hook (plus a last-resort SIGKILL on process exit).

const { fork } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const { EventEmitter } = require('node:events');

const { encodeBuffers, deserializeError } = require('./wire');

const SERVER_SCRIPT = path.join(__dirname, 'server.js');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DEFAULT_TIMEOUT = 5000;
/**
 * How long a server may take to start (fork, load socket.io and the adapter, connect its Redis
 * clients, listen): longer than other waits, since the suites run two files at once and a
 * neighbour may be loading Redis (e.g. DEBUG POPULATE) on the same two cores.
 */
const STARTUP_TIMEOUT = 15000;
// [emitting node's adapter, receiving node's adapter]
const ALL_PAIRINGS = [['official', 'official'], ['ours', 'ours'], ['ours', 'official'], ['official', 'ours']];
const CLIENT_KINDS = ['node-redis', 'ioredis'];

const live = { servers: new Set(), clients: new Set(), redis: new Set() };
let seq = 0;

/** A key prefix no other test (or parallel test file) uses, e.g. `t-1234-9f2c01ab`. */
function uniqueKey() {
  return `t-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

/** Rejects after `ms` with `what` in the message, unless `promise` settles first. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// -------------------------------------------------------------------------------------------------
// Matrix selection from the environment

/**
 * Pairings [emittingKind, receivingKind] from env SIO_PAIRINGS, a comma list such as
 * `official-official,ours-official`; default: all four combinations.
 */
function pairings() {
  const env = process.env.SIO_PAIRINGS;
  if (!env) return ALL_PAIRINGS.map((p) => [...p]);
  return env.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const pair = ALL_PAIRINGS.find((p) => p.join('-') === s);
    if (!pair) throw new Error(`bad SIO_PAIRINGS entry "${s}" (expected one of ${ALL_PAIRINGS.map((p) => p.join('-')).join(', ')})`);
    return [...pair];
  });
}

/** Redis client libraries the servers use, from env SIO_CLIENTS (comma list); default: both. */
function clientKinds() {
  const env = process.env.SIO_CLIENTS;
  if (!env) return [...CLIENT_KINDS];
  return env.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    if (!CLIENT_KINDS.includes(s)) throw new Error(`bad SIO_CLIENTS entry "${s}" (expected ${CLIENT_KINDS.join(' or ')})`);
    return s;
  });
}

// -------------------------------------------------------------------------------------------------
// Servers

class ServerHandle extends EventEmitter {
  constructor(child, config, label) {
    super();
    this.child = child;
    this.config = config;
    this.label = label;
    this.port = null;
    this.connections = []; // { nsp, id, tag } as reported by the server
    this.disconnects = []; // { nsp, id, reason } as reported by the server
    this.connCloses = []; // { nsp, id, reason }: a socket's underlying connection closed
    this.serverEvents = []; // { nsp, event, args, withAck }: calls of `onServerEvent` listeners
    this.customHookCalls = []; // { nsp, data }: calls of the `setCustomHook` hook
    this.errors = []; // caught errors reported by the server ({ source, error })
    this.uncaught = []; // uncaughtException / unhandledRejection in the server ({ source, error })
    this.adapterEvents = []; // with config adapterEvents: { nsp, event, error?, at } in arrival order
    this.output = ''; // tail of the child's stdout+stderr, for failure messages
    this.exit = null; // { code, signal } once exited
    this.pending = new Map();
    this.stopping = null;

    child.on('message', (msg) => this.onMessage(msg));
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      for (const { reject } of this.pending.values()) {
        reject(new Error(`${this.label} exited (code ${code}, signal ${signal})${this.outputTail()}`));
      }
      this.pending.clear();
      this.emit('exit', this.exit);
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        this.output = (this.output + chunk).slice(-8000);
        if (process.env.SIO_SERVER_LOGS) process.stderr.write(`[${this.label}] ${chunk}`);
      });
    }
  }

  onMessage(msg) {
    switch (msg.type) {
      case 'reply': {
        const entry = this.pending.get(msg.id);
        if (!entry) return;
        this.pending.delete(msg.id);
        if (msg.error) entry.reject(deserializeError(msg.error, `${this.label} command "${entry.name}"`));
        else entry.resolve(msg.result);
        return;
      }
      case 'connection':
        this.connections.push({ nsp: msg.nsp, id: msg.id, tag: msg.tag });
        break;
      case 'disconnect':
        this.disconnects.push({ nsp: msg.nsp, id: msg.id, reason: msg.reason });
        break;
      case 'connClose':
        this.connCloses.push({ nsp: msg.nsp, id: msg.id, reason: msg.reason });
        break;
      case 'serverEvent':
        this.serverEvents.push({ nsp: msg.nsp, event: msg.event, args: msg.args, withAck: msg.withAck });
        break;
      case 'customHook':
        this.customHookCalls.push({ nsp: msg.nsp, data: msg.data });
        break;
      case 'error':
        this.errors.push({ source: msg.source, error: msg.error });
        break;
      case 'uncaught':
        this.uncaught.push({ source: msg.source, error: msg.error });
        break;
      case 'adapterEvent':
        this.adapterEvents.push({ nsp: msg.nsp, event: msg.event, error: msg.error, at: msg.at });
        break;
      default:
        break;
    }
    // Re-emitted as `ipc:<type>` (a plain 'error' event without listener would throw).
    this.emit(`ipc:${msg.type}`, msg);
  }

  outputTail() {
    return this.output ? `\n--- ${this.label} output ---\n${this.output}` : '';
  }

  /** One-paragraph account of the server's health, to append to failure messages. */
  describeState() {
    const list = (entries) => entries.map((e) => `${e.source}: ${e.error.message}`).join('; ') || 'none';
    return `${this.label}: ${this.alive ? 'running' : `exited ${JSON.stringify(this.exit)}`}; ` +
      `uncaught errors: ${list(this.uncaught)}; reported errors: ${list(this.errors)}${this.outputTail()}`;
  }

  /** True while the child process runs. */
  get alive() {
    return this.exit === null;
  }

  /** Runs a command of the server's COMMANDS table; Buffers in the payload are carried across. */
  command(name, payload = {}, timeoutMs = DEFAULT_TIMEOUT) {
    if (!this.alive) return Promise.reject(new Error(`${this.label} is not running${this.outputTail()}`));
    const id = ++seq;
    const reply = new Promise((resolve, reject) => {
      this.pending.set(id, { name, resolve, reject });
      this.child.send({ type: 'command', id, name, payload: encodeBuffers(payload) });
    });
    return withTimeout(reply, timeoutMs, `${this.label} command "${name}"`).finally(() => this.pending.delete(id));
  }

  /**
   * Resolves once `predicate()` holds, checked now and after every IPC message of type `type`
   * (e.g. 'disconnect', 'serverEvent'); rejects after `timeoutMs` with `what`.
   */
  waitForMessages(type, predicate, timeoutMs = DEFAULT_TIMEOUT, what = `${type} condition`) {
    if (predicate()) return Promise.resolve();
    let listener;
    const wait = new Promise((resolve) => {
      listener = () => predicate() && resolve();
      this.on(`ipc:${type}`, listener);
    });
    return withTimeout(wait, timeoutMs, `${this.label}: ${what}`).finally(() => this.off(`ipc:${type}`, listener));
  }

  /** Resolves with the server-side disconnect record of socket `id`. */
  async waitForDisconnect(id, timeoutMs = DEFAULT_TIMEOUT) {
    const find = () => this.disconnects.find((d) => d.id === id);
    await this.waitForMessages('disconnect', () => Boolean(find()), timeoutMs, `server-side disconnect of socket ${id}`);
    return find();
  }

  /** Resolves with the reason the underlying connection of socket `id` closed for. */
  async waitForConnClose(id, timeoutMs = DEFAULT_TIMEOUT) {
    const find = () => this.connCloses.find((d) => d.id === id);
    await this.waitForMessages('connClose', () => Boolean(find()), timeoutMs, `connection close of socket ${id}`);
    return find().reason;
  }

  /** Calls of the `onServerEvent` listener for `event` (optionally in namespace `nsp`). */
  serverEventCalls(event, nsp) {
    return this.serverEvents.filter((e) => e.event === event && (nsp === undefined || e.nsp === nsp));
  }

  /** Resolves once the `onServerEvent` listener for `event` was called at least `count` times. */
  waitForServerEvent(event, count = 1, timeoutMs = DEFAULT_TIMEOUT) {
    return this.waitForMessages('serverEvent', () => this.serverEventCalls(event).length >= count, timeoutMs,
      `${count} call(s) of server-side listener "${event}" (got ${this.serverEventCalls(event).length})`);
  }

  /** Resolves with the server-side connection record whose client tag is `tag`. */
  waitForConnection(tag, timeoutMs = DEFAULT_TIMEOUT) {
    const found = this.connections.find((c) => c.tag === tag);
    if (found) return Promise.resolve(found);
    let listener;
    const wait = new Promise((resolve) => {
      listener = (msg) => msg.tag === tag && resolve({ nsp: msg.nsp, id: msg.id, tag: msg.tag });
      this.on('ipc:connection', listener);
    });
    return withTimeout(wait, timeoutMs, `${this.label}: server-side connection of client ${tag}`).finally(() =>
      this.off('ipc:connection', listener),
    );
  }

  /**
   * Connects a client to namespace `nsp` of this server and resolves once both the client is
   * connected and the server reported the socket. `client.serverSocketId` is the server's id for it.
   * The second argument is either a timeout in ms or `{ timeoutMs, data }`; `data` travels in the
   * handshake (`auth.data`) and the server sets it as `socket.data`; `transports` is passed to
   * the client (default websocket only; the server must allow it, see server config `transports`).
   */
  async connect(nsp = '/', options = {}) {
    const { timeoutMs = DEFAULT_TIMEOUT, data, transports } = typeof options === 'number' ? { timeoutMs: options } : options;
    const tag = `c${++seq}`;
    const [client, conn] = await Promise.all([
      connectClient(this.port, nsp, { tag, timeoutMs, data, transports }),
      this.waitForConnection(tag, timeoutMs),
    ]);
    client.server = this;
    client.serverSocketId = conn.id;
    return client;
  }

  /**
   * Ordering barrier: emits a marker event from this server to every namespace of `clients` and
   * waits until each client got it. Messages this server broadcast earlier are then either
   * delivered or never will be (Redis pub/sub and websockets keep per-connection order), so a
   * test can assert that something did NOT arrive without sleeping.
   */
  flush(clients, timeoutMs = DEFAULT_TIMEOUT) {
    return flush(clients, (event, nsp) => this.command('emit', { nsp, event }), timeoutMs);
  }

  /**
   * Closes the server via the `close` command and waits for the process to exit by itself; kills
   * it (SIGKILL) if it has not after `timeoutMs`. Resolves with
   * { exitedByItself, code, signal, closeResult, closeError }.
   */
  stop(timeoutMs = DEFAULT_TIMEOUT) {
    if (!this.stopping) this.stopping = this.doStop(timeoutMs);
    return this.stopping;
  }

  async doStop(timeoutMs) {
    const wasRunning = this.alive;
    const exited = new Promise((resolve) => (wasRunning ? this.once('exit', resolve) : resolve(this.exit)));
    let closeResult = null;
    let closeError = null;
    if (wasRunning) {
      try {
        closeResult = await this.command('close', {}, timeoutMs);
      } catch (err) {
        closeError = err;
      }
    } else {
      closeError = new Error(`${this.label} had already exited ${JSON.stringify(this.exit)}`);
    }
    // A server that died before stop() did not "exit by itself" after a close.
    let exitedByItself = wasRunning;
    try {
      await withTimeout(exited, timeoutMs, `${this.label} exit`);
    } catch {
      exitedByItself = false;
      this.child.kill('SIGKILL');
      await exited;
    }
    live.servers.delete(this);
    return { label: this.label, exitedByItself, ...this.exit, closeResult, closeError };
  }
}

/**
 * Forks one server. `spec`: { adapter, client, key, namespaces, redisUrl, commandModules, label }.
 * Resolves with a ServerHandle once the server listens; rejects (and kills it) on startup failure.
 */
async function startServer(spec, timeoutMs = STARTUP_TIMEOUT) {
  const { label, ...config } = {
    adapter: 'official',
    client: 'node-redis',
    namespaces: ['/', '/admin'],
    redisUrl: REDIS_URL,
    ...spec,
  };
  if (!config.key) throw new Error('startServer: a key is required (use uniqueKey())');
  const child = fork(SERVER_SCRIPT, [], {
    env: { ...process.env, SIO_SERVER_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const handle = new ServerHandle(child, config, label || `server(${config.adapter}/${config.client}) pid ${child.pid}`);
  live.servers.add(handle);

  const ready = new Promise((resolve, reject) => {
    handle.once('ipc:ready', (msg) => resolve(msg));
    handle.once('ipc:fatal', (msg) => reject(deserializeError(msg.error, `${handle.label} failed to start`)));
    handle.once('exit', ({ code, signal }) =>
      reject(new Error(`${handle.label} exited during startup (code ${code}, signal ${signal})`)),
    );
  });
  try {
    const { port } = await withTimeout(ready, timeoutMs, `${handle.label} startup`);
    handle.port = port;
    return handle;
  } catch (err) {
    err.message += handle.outputTail();
    child.kill('SIGKILL');
    live.servers.delete(handle);
    throw err;
  }
}

/**
 * Starts several servers sharing `common` settings (typically { key }), e.g.
 * `startServers([{ adapter: 'ours' }, { adapter: 'official' }], { key: uniqueKey() })`, then (unless
 * `common.mesh === false`) waits until each one's broadcasts reach every other (see awaitMesh).
 * If anything fails, the servers are stopped and the error is rethrown.
 */
async function startServers(specs, { mesh = true, ...common } = {}) {
  const results = await Promise.allSettled(specs.map((s) => startServer({ ...common, ...s })));
  const servers = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  try {
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (mesh) {
      const namespaces = [...new Set(servers.flatMap((s) => s.config.namespaces))];
      await awaitMesh(servers, namespaces);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return servers;
}

/**
 * The adapters subscribe asynchronously, so a server that says 'ready' may not receive Redis
 * broadcasts yet. This connects a probe client to every server and namespace, and has each server
 * broadcast a marker (re-sent every 100 ms, a poll rather than a fixed sleep) until every probe got
 * every server's marker. Probes are closed afterwards.
 */
async function awaitMesh(servers, namespaces = ['/'], timeoutMs = DEFAULT_TIMEOUT) {
  // A server whose config lists its namespaces only takes part in those (a client could not even
  // connect to a namespace the server does not have).
  const has = (server, nsp) => !server.config.namespaces || server.config.namespaces.includes(nsp);
  const probes = [];
  try {
    for (const nsp of namespaces) probes.push(...(await Promise.all(servers.filter((s) => has(s, nsp)).map((s) => s.connect(nsp)))));
    const deadline = Date.now() + timeoutMs;
    await Promise.all(servers.map(async (server) => {
      const marker = `__mesh_${++seq}`;
      const missing = () => probes.filter((p) => has(server, p.nsp) && p.received(marker).length === 0);
      while (missing().length > 0) {
        if (Date.now() > deadline) {
          throw new Error(`${server.label}: broadcasts did not reach ${missing().map((p) => `${p.server.label} ${p.nsp}`).join(', ')} ` +
            `within ${timeoutMs} ms${server.outputTail()}`);
        }
        for (const nsp of namespaces.filter((n) => has(server, n))) await server.command('emit', { nsp, event: marker });
        await Promise.race([
          Promise.all(missing().map((p) => p.waitForEvent(marker))).catch(() => {}),
          new Promise((resolve) => setTimeout(resolve, 100)),
        ]);
      }
    }));
  } finally {
    for (const probe of probes) probe.close();
  }
}

// -------------------------------------------------------------------------------------------------
// Clients

class TestClient {
  constructor(socket, nsp, tag) {
    this.socket = socket;
    this.nsp = nsp;
    this.tag = tag;
    this.events = []; // every received event, in order: { event, args } (an ack callback stays in args)
    this.waiters = new Set();
    this.disconnectReason = null; // set when the socket disconnected
    socket.onAny((event, ...args) => {
      this.events.push({ event, args });
      for (const waiter of this.waiters) waiter();
    });
    socket.on('disconnect', (reason) => {
      this.disconnectReason = reason;
      for (const waiter of this.waiters) waiter();
    });
  }

  /**
   * Acknowledges every later `event` that asks for an ack: with `reply(...args)` when `reply` is a
   * function, else with `reply` itself. Events without ack callback are left alone.
   */
  setAckHandler(event, reply) {
    this.socket.on(event, (...args) => {
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') return;
      ack(typeof reply === 'function' ? reply(...args.slice(0, -1)) : reply);
    });
  }

  /** Resolves with the reason once the client got disconnected. */
  async waitForDisconnect(timeoutMs = DEFAULT_TIMEOUT) {
    await this.waitFor(() => this.disconnectReason !== null, timeoutMs, 'disconnect');
    return this.disconnectReason;
  }

  get id() {
    return this.socket.id;
  }

  /** Argument lists of every received `event`, in order. */
  received(event) {
    return this.events.filter((e) => e.event === event).map((e) => e.args);
  }

  /**
   * Resolves once `predicate(this.events)` is true (checked now and after every event); rejects
   * after `timeoutMs` with `what` and the list of received event names.
   */
  waitFor(predicate, timeoutMs = DEFAULT_TIMEOUT, what = 'condition') {
    if (predicate(this.events)) return Promise.resolve(this.events);
    let waiter;
    const wait = new Promise((resolve) => {
      waiter = () => predicate(this.events) && resolve(this.events);
      this.waiters.add(waiter);
    });
    return withTimeout(wait, timeoutMs, `client ${this.tag} (${this.nsp}, ${this.id}) waiting for ${what}; ` +
      `received so far: [${this.events.map((e) => e.event).join(', ')}]`).finally(() => this.waiters.delete(waiter));
  }

  /** Resolves once `event` was received at least `count` times. */
  waitForEvent(event, count = 1, timeoutMs = DEFAULT_TIMEOUT) {
    return this.waitFor((evs) => evs.filter((e) => e.event === event).length >= count, timeoutMs, `${count} x "${event}"`);
  }

  close() {
    this.socket.disconnect();
    live.clients.delete(this);
  }
}

/**
 * Connects a socket.io client (websocket only unless `transports` says otherwise, e.g.
 * ['polling'] for a client that never upgrades; no reconnection) to 127.0.0.1:`port`, namespace
 * `nsp`. The handshake carries `auth.tag`, which the server echoes in its 'connection' report, and
 * `auth.data` when `data` is given (the server sets it as `socket.data`).
 */
function connectClient(port, nsp = '/', { tag = `c${++seq}`, timeoutMs = DEFAULT_TIMEOUT, data, transports = ['websocket'] } = {}) {
  const { io } = require('socket.io-client');
  const socket = io(`http://127.0.0.1:${port}${nsp}`, {
    transports,
    forceNew: true, // one Manager (and connection) per client, even for several namespaces
    reconnection: false,
    auth: data === undefined ? { tag } : { tag, data },
  });
  const client = new TestClient(socket, nsp, tag);
  live.clients.add(client);
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(client));
    socket.once('connect_error', (err) => reject(new Error(`client ${tag} could not connect to :${port}${nsp}: ${err.message}`)));
  });
  return withTimeout(connected, timeoutMs, `client ${tag} connecting to :${port}${nsp}`).catch((err) => {
    client.close();
    throw err;
  });
}

/**
 * Ordering barrier (see ServerHandle#flush): `sendMarker(event, nsp)` must broadcast `event` to
 * namespace `nsp` through the same path as the messages under test; resolves when every client
 * has received its namespace's marker.
 */
async function flush(clients, sendMarker, timeoutMs = DEFAULT_TIMEOUT) {
  const marker = `__flush_${++seq}`;
  const namespaces = [...new Set(clients.map((c) => c.nsp))];
  for (const nsp of namespaces) await sendMarker(marker, nsp);
  await Promise.all(clients.map((c) => c.waitForEvent(marker, 1, timeoutMs)));
}

/**
 * Polls `check()` (may be async) every `intervalMs` until it returns a truthy value, which is
 * returned; rejects after `timeoutMs` with `what` and the last value seen. For state that can only
 * be read by asking (a server's local rooms, an adapter's pending tables), never a fixed sleep.
 */
async function waitUntil(check, { timeoutMs = DEFAULT_TIMEOUT, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// -------------------------------------------------------------------------------------------------
// Raw Redis clients for tests (emitter, raw publishing)

/** A connected node-redis v5 client, closed by stopAll(). */
async function redisClient(url = REDIS_URL) {
  const { createClient } = require('redis');
  const client = createClient({ url });
  client.on('error', () => {}); // connection errors surface as rejected commands
  await client.connect();
  live.redis.add(client);
  return client;
}

// -------------------------------------------------------------------------------------------------
// Cleanup

/** Closes every client, stops every server and closes every Redis client started here. */
async function stopAll() {
  for (const client of [...live.clients]) client.close();
  const results = await Promise.all([...live.servers].map((s) => s.stop()));
  await Promise.all([...live.redis].map((c) => (c.isOpen ? c.close() : null)));
  live.redis.clear();
  return results;
}

// Last resort if a test file dies without running its hooks.
process.on('exit', () => {
  for (const server of live.servers) if (server.alive) server.child.kill('SIGKILL');
});

module.exports = {
  DEFAULT_TIMEOUT,
  uniqueKey,
  withTimeout,
  waitUntil,
  pairings,
  clientKinds,
  startServer,
  startServers,
  awaitMesh,
  connectClient,
  flush,
  redisClient,
  stopAll,
  ServerHandle,
  TestClient,
};
