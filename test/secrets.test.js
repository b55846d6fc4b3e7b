'use strict';
// No Redis password ever reaches what a user can see. Every URL form and client-settings form
// below (each holding a known password) goes through every error path of ours, and everything a
// user could see is collected: thrown errors (message and stack), rejected promises, adapter
// 'error' events, console.warn/console.error, process warnings, uncaught errors, stats() and the
// raw stdout/stderr of the process (native code included), plus sio_last_error(), the adapters'
// error events and request completions of the C API. None of it may hold the password, raw or
// percent-encoded (or a recognisable piece of it); each row must have produced something, so the
// test cannot pass vacuously.
//
// Each row runs in its own child process (this file, forked with SIO_SECRETS_CHILD=<row name>):
// its stdout/stderr are then exactly what the library (and Node on its behalf) printed, and
// nothing a row starts can outlive it. The child builds the source (URL, client, settings
// object) and runs it through:
//   adapter  createAdapter(src, undefined, { key, requestsTimeout }), attached to a socket.io
//            Server (io.of('/') creates the adapter) with an 'error' listener: the throw, or the
//            first 'error' event, then serverCount/allRooms/fetchSockets/serverSideEmitWithAck
//            (rejections), stats(), close() (rejection);
//   warn     createAdapter(src) with no 'error' listener: the process warning that replaces it;
//   sharded  createShardedAdapter(src) likewise (with a listener);
//   emitter  new Emitter(src): the throw, or emit + close();
//   subClient createAdapter('redis://127.0.0.1:1', src): the throw when src is rejected (nothing
//            connects: the factory is never used).
// Auth rows connect to a private redis-server with `requirepass` set to another password and
// must get an adapter 'error' saying that authentication failed. The C part (test/c/secrets_test.c,
// one process per URL, run while the rows run) prints sio_last_error() after sio_emitter_new /
// sio_adapter_new, and for handles that were made the emitter's flush error, the adapter's first
// SIO_EVENT_ERROR message and a server_count completion's error.
//
// A failure lists every place the password was seen (path / what / the text around it). Each row
// and C run prints a one-line summary of what was seen (t.diagnostic).

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { fork, execFileSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The awkward password (a URL must carry it percent-encoded) and a plain one. */
const PW = 'Pw/s3cr@t#x?y';
const PLAIN = 'plainSecret123';
const enc = encodeURIComponent;
const E = enc(PW); // Pw%2Fs3cr%40t%23x%3Fy
/** What must never appear: both passwords, the encoded form, and pieces a naive split would leave. */
const NEEDLES = [PW, E, 's3cr', 't#x?y', 'x%3Fy', PLAIN];
/** The password the private Redis of the auth rows really has (it is no secret of the test). */
const RIGHT_PASSWORD = 'the-right-one-42';
const UNREACHABLE = '127.0.0.1:1';

const OURS_MODULE = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');

const refused = /refused|unreachable|cannot connect|no reachable|no primary|os error/i;
const invalidOption = /invalid option/;
const authFailed = /WRONGPASS|invalid username-password|NOAUTH/;

// -------------------------------------------------------------------------------------------------
// The table. `make(ctx)` runs in the child and returns the source; `cleanup(src)` stops a client
// object from connecting; `expect`: patterns the collected text must match (at least one item
// each); `auth`: needs the private Redis (ctx.authPort). ctx: { Redis (ioredis), createClient
// (node-redis), authPort }. `secrets`: more needles for the row (a password of its own).

const ROWS = [
  // URL forms
  { name: 'redis://user:PW@ unreachable', make: () => `redis://user:${E}@${UNREACHABLE}`, expect: [refused] },
  { name: 'redis://:PW@ unreachable', make: () => `redis://:${E}@${UNREACHABLE}`, expect: [refused] },
  { name: 'redis://user:PW@ with the password not encoded', make: () => `redis://user:${PW}@${UNREACHABLE}`, expect: [invalidOption] },
  { name: 'rediss://user:PW@ unreachable', make: () => `rediss://user:${E}@${UNREACHABLE}`, expect: [refused] },
  { name: 'rediss://user:PW@…#insecure (warns: no certificate check)', make: () => `rediss://user:${E}@${UNREACHABLE}#insecure`, expect: [refused] },
  { name: 'redis:/user:PW@ (one slash)', make: () => `redis:/user:${E}@${UNREACHABLE}`, expect: [invalidOption] },
  { name: 'redis:user:PW@ (no slash)', make: () => `redis:user:${E}@${UNREACHABLE}`, expect: [invalidOption] },
  { name: 'user:PW@host (no scheme, raw)', make: () => `user:${PW}@${UNREACHABLE}`, expect: [invalidOption] },
  // redis:// ignores unknown query parameters (redis-rs does): the row fails later, unreachable.
  { name: 'redis://user:PW@…?bogus=1 (unknown parameter)', make: () => `redis://user:${E}@${UNREACHABLE}?bogus=1`, expect: [refused] },
  { name: 'redis+sentinel://:PW@…/mymaster', make: () => `redis+sentinel://:${E}@${UNREACHABLE}/mymaster`, expect: [refused] },
  {
    name: 'redis+sentinel://…?sentinelPassword=PW&bogus=1',
    make: () => `redis+sentinel://${UNREACHABLE}/mymaster?sentinelPassword=${E}&bogus=1`,
    expect: [invalidOption, /bogus/],
  },
  {
    name: 'redis+sentinel://…?sentinelPassword=PW (not encoded)&bogus=1',
    make: () => `redis+sentinel://${UNREACHABLE}/mymaster?sentinelPassword=${PW}&bogus=1`,
    expect: [invalidOption, /bogus/],
  },
  { name: 'redis+sentinel://…?sentinelPassword=PW (plain)', make: () => `redis+sentinel://${UNREACHABLE}/mymaster?sentinelPassword=${PLAIN}`, expect: [refused] },
  { name: 'redis+cluster://:PW@ unreachable', make: () => `redis+cluster://:${E}@${UNREACHABLE}`, expect: [refused] },
  { name: 'redis+cluster://:PW@…?bogus=1', make: () => `redis+cluster://:${E}@${UNREACHABLE}?bogus=1`, expect: [invalidOption] },
  { name: 'garbage: redis//user:PW@host', make: () => `redis//user:${PW}@${UNREACHABLE}`, expect: [invalidOption] },
  { name: 'garbage: http://user:PW@host', make: () => `http://user:${E}@${UNREACHABLE}`, expect: [invalidOption] },
  { name: 'garbage: redis://user:PW@host:notaport', make: () => `redis://user:${E}@127.0.0.1:notaport`, expect: [invalidOption] },
  { name: 'redis://…?password=PW', make: () => `redis://${UNREACHABLE}?password=${E}`, expect: [refused] },
  { name: 'redis://…?pass=PW (plain)', make: () => `redis://${UNREACHABLE}?pass=${PLAIN}`, expect: [refused] },
  { name: 'redis://…/x?password=PW (not encoded, bad db)', make: () => `redis://${UNREACHABLE}/x?password=${PW}`, expect: [invalidOption] },
  { name: 'redis+cluster://…?password=PW (not encoded, unknown there)', make: () => `redis+cluster://${UNREACHABLE}?password=${PW}`, expect: [invalidOption] },
  // Passwords with a space or quotes, not encoded: redis-rs accepts them (the url crate encodes
  // them), so the library does too; a later error about the URL must still hide them.
  {
    name: 'redis://u:PW-with-space@…/x (not encoded, bad db)',
    secrets: ['sp4ce pass', 'sp4ce'],
    make: () => `redis://u:sp4ce pass@${UNREACHABLE}/x`,
    expect: [invalidOption],
  },
  {
    name: 'redis://u:PW-with-quotes@…/x (not encoded, bad db)',
    secrets: [`qu"o't3d`, 'qu"o'],
    make: () => `redis://u:qu"o't3d@${UNREACHABLE}/x`,
    expect: [invalidOption],
  },
  { name: 'seeds array [redis://user:PW@host]', make: () => [`redis://user:${E}@${UNREACHABLE}`], expect: [refused] },

  // Client settings forms (read for their settings, never connected by the library)
  {
    name: 'node-redis createClient({ url: redis://u:PW@ })',
    make: ({ createClient }) => createClient({ url: `redis://u:${E}@${UNREACHABLE}` }),
    expect: [refused],
  },
  {
    name: 'node-redis createClient({ password, socket })',
    make: ({ createClient }) => createClient({ password: PW, socket: { host: '127.0.0.1', port: 1 } }),
    expect: [refused],
  },
  {
    name: 'node-redis createClient({ password: plain, socket })',
    make: ({ createClient }) => createClient({ password: PLAIN, socket: { host: '127.0.0.1', port: 1 } }),
    expect: [refused],
  },
  {
    name: 'ioredis new Redis({ host, port, password })',
    make: ({ Redis }) => new Redis({ host: '127.0.0.1', port: 1, password: PW, lazyConnect: true }),
    cleanup: (c) => c.disconnect(),
    expect: [refused],
  },
  {
    name: 'ioredis new Redis({ password, tls: { rejectUnauthorized: false } })',
    make: ({ Redis }) => new Redis({ host: '127.0.0.1', port: 1, password: PW, tls: { rejectUnauthorized: false }, lazyConnect: true }),
    cleanup: (c) => c.disconnect(),
    expect: [refused],
  },
  {
    name: 'node-redis createClient({ url: rediss://u:PW@, socket: { tls: true } })',
    make: ({ createClient }) => createClient({ url: `rediss://u:${E}@${UNREACHABLE}`, socket: { tls: true, rejectUnauthorized: false } }),
    expect: [refused],
  },
  {
    name: '{ url: redis://u:PW@, socket: { tls: true } } (TLS from the settings)',
    make: () => ({ url: `redis://u:${E}@${UNREACHABLE}`, socket: { tls: true, rejectUnauthorized: false } }),
    expect: [refused],
  },
  {
    name: 'ioredis new Redis({ sentinels, name, sentinelPassword, password })',
    make: ({ Redis }) => new Redis({ sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'mymaster', sentinelPassword: PW, password: PW, lazyConnect: true }),
    cleanup: (c) => c.disconnect(),
    expect: [refused],
  },
  {
    name: 'ioredis new Redis.Cluster(seeds, { redisOptions: { password } })',
    make: ({ Redis }) => new Redis.Cluster([{ host: '127.0.0.1', port: 1 }], { redisOptions: { password: PW }, lazyConnect: true }),
    cleanup: (c) => c.disconnect(),
    expect: [refused],
  },
  { name: "{ host, port: 'bad', password } (bad option)", make: () => ({ host: '127.0.0.1', port: 'bad', password: PW }), expect: [invalidOption, /port/] },
  { name: '{ host: 42, password } (bad option)', make: () => ({ host: 42, port: 1, password: PLAIN }), expect: [invalidOption, /host/] },
  {
    name: '{ sentinels: [{ port: 99999, password }], name } (bad sentinel)',
    make: () => ({ sentinels: [{ host: '127.0.0.1', port: 99999, password: PW }], name: 'm' }),
    expect: [invalidOption, /sentinel/],
  },
  {
    name: '{ sentinels, sentinelPassword } without name',
    make: () => ({ sentinels: [{ host: '127.0.0.1', port: 1 }], sentinelPassword: PW, password: PW }),
    expect: [invalidOption, /name/],
  },
  {
    name: 'seeds [{ host, port: 70000, password }] (bad seed)',
    make: () => [{ host: '127.0.0.1', port: 70000, password: PW }],
    expect: [invalidOption, /seed/],
  },
  {
    name: '{ url: redis+sentinel://:PW@…, tls: true } (TLS through Sentinel)',
    make: () => ({ url: `redis+sentinel://:${E}@${UNREACHABLE}/mymaster`, tls: true }),
    expect: [/TLS|refused|no primary/],
  },
  { name: '{ password, db: -1 } (bad db)', make: () => ({ host: '127.0.0.1', port: 1, password: PW, db: -1 }), expect: [invalidOption, /database/] },

  // Authentication refused by a real redis-server (requirepass RIGHT_PASSWORD)
  { name: 'auth: redis://:PW@ wrong password', auth: true, make: ({ authPort }) => `redis://:${E}@127.0.0.1:${authPort}`, expect: [authFailed] },
  { name: 'auth: redis://default:PLAIN@ wrong password', auth: true, make: ({ authPort }) => `redis://default:${PLAIN}@127.0.0.1:${authPort}`, expect: [authFailed] },
  {
    name: 'auth: node-redis createClient({ password }) wrong password',
    auth: true,
    make: ({ createClient, authPort }) => createClient({ password: PW, socket: { host: '127.0.0.1', port: authPort } }),
    expect: [authFailed],
  },
  {
    name: 'auth: ioredis new Redis({ password }) wrong password',
    auth: true,
    make: ({ Redis, authPort }) => new Redis({ host: '127.0.0.1', port: authPort, password: PLAIN, lazyConnect: true }),
    cleanup: (c) => c.disconnect(),
    expect: [authFailed],
  },
  { name: 'auth: { host, port, password } settings wrong password', auth: true, make: ({ authPort }) => ({ host: '127.0.0.1', port: authPort, password: PW }), expect: [authFailed] },
];

/** URLs given to the C program: bad ones (sio_last_error) and ones that fail later (events, completions). */
const C_URLS = [
  { name: 'raw password in redis://', url: `redis://user:${PW}@${UNREACHABLE}`, expect: /SIO_ERR_INVALID|invalid/i },
  { name: 'redis:/ one slash', url: `redis:/user:${E}@${UNREACHABLE}`, expect: /invalid/i },
  { name: 'sentinelPassword & bogus', url: `redis+sentinel://${UNREACHABLE}/mymaster?sentinelPassword=${E}&bogus=1`, expect: /bogus/ },
  { name: 'sentinelPassword not encoded & bogus', url: `redis+sentinel://${UNREACHABLE}/mymaster?sentinelPassword=${PW}&bogus=1`, expect: /bogus/ },
  { name: 'redis+cluster bogus', url: `redis+cluster://:${E}@${UNREACHABLE}?bogus=1`, expect: /bogus/ },
  { name: 'garbage scheme', url: `nope://user:${E}@${UNREACHABLE}`, expect: /invalid/i },
  { name: 'unreachable redis://user:PW@', url: `redis://user:${E}@${UNREACHABLE}`, expect: /on_event error: .*(refused|os error)/i },
  { name: 'unreachable redis+sentinel://:PW@', url: `redis+sentinel://:${E}@${UNREACHABLE}/mymaster`, expect: /on_event error/ },
  { name: 'auth: wrong password', url: (port) => `redis://:${E}@127.0.0.1:${port}`, expect: /on_event error: .*(WRONGPASS|invalid username-password)/ },
];

// -------------------------------------------------------------------------------------------------
// Shared by parent and child

/** Each needle (NEEDLES and the row's own `secrets`) found in `text`. */
function leaksIn(text, extra = []) {
  return [...NEEDLES, ...extra].filter((needle) => String(text).includes(needle));
}

/** `text` on one line, cut to `max` characters. */
function short(text, max = 90) {
  const line = String(text).replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

// -------------------------------------------------------------------------------------------------
// Child: one row through every path

async function runChild(rowName) {
  const row = ROWS.find((r) => r.name === rowName);
  const seen = []; // { path, kind, text }
  const note = (path, kind, text) => seen.push({ path, kind, text: String(text) });
  const noteError = (path, kind, err) => {
    if (err instanceof Error) note(path, kind, `${err.code ? `[${err.code}] ` : ''}${err.message}\n${err.stack}`);
    else note(path, kind, typeof err === 'string' ? err : JSON.stringify(err));
  };
  // What reaches the process as a whole (the paths run concurrently): path 'process'.
  process.on('uncaughtException', (err) => noteError('process', 'uncaughtException', err));
  process.on('unhandledRejection', (err) => noteError('process', 'unhandledRejection', err));
  process.on('warning', (w) => noteError('process', 'process warning', w));
  const { inspect } = require('node:util');
  for (const level of ['warn', 'error', 'log', 'info', 'debug', 'trace']) {
    const original = console[level];
    console[level] = (...args) => {
      note('process', `console.${level}`, args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' '));
      original.apply(console, args); // still printed: the parent checks the raw output too
    };
  }

  const { createAdapter, createShardedAdapter, Emitter } = require(OURS_MODULE);
  const { Server } = require('socket.io');
  const ctx = { Redis: require('ioredis'), createClient: require('redis').createClient, authPort: Number(process.env.SIO_SECRETS_AUTH_PORT) };
  const key = `t-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const WAIT_MS = 8000;

  /** Resolves once `pred()` holds (or after WAIT_MS). */
  const until = async (pred) => {
    for (const deadline = Date.now() + WAIT_MS; !pred() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
  };
  const sources = []; // client objects to stop
  /** The row's source; what building it throws is the row's bug (the client library's), not ours. */
  const made = () => {
    const s = row.make(ctx);
    sources.push(s);
    return s;
  };

  /** The error paths, run concurrently (closing a connection with messages queued takes seconds). */
  const paths = {
    // With an 'error' listener: the throw or the 'error' events, requests, a broadcast, stats, close.
    async adapter(attempt, p) {
      const src = made();
      const r = await attempt('thrown by createAdapter', () => createAdapter(src, undefined, { key, requestsTimeout: 300 }));
      const a = r.ok && (await attach(r.value, p, attempt));
      if (!a) return;
      await until(() => a.errors.length > 0);
      const requests = {
        serverCount: () => a.adapter.serverCount(),
        allRooms: () => a.adapter.allRooms(),
        fetchSockets: () => a.adapter.fetchSockets({ rooms: new Set(), except: new Set(), flags: {} }),
        serverSideEmitWithAck: () =>
          new Promise((resolve, reject) => a.adapter.serverSideEmit(['secret-test', (err, replies) => (err ? reject(err) : resolve(replies))])),
      };
      for (const [name, call] of Object.entries(requests)) {
        const res = await attempt(`rejection of ${name}()`, call);
        if (res.ok) note(p, `${name}() resolved`, JSON.stringify(res.value));
      }
      await attempt('thrown by broadcast', () => a.io.emit('secret-test', 1));
      const stats = await attempt('thrown by stats()', () => a.adapter.stats());
      if (stats.ok) note(p, 'stats()', JSON.stringify(stats.value));
      await attempt('rejection of close()', () => a.adapter.close());
    },
    // Without an 'error' listener: the adapter emits a process warning instead (noted as 'process').
    async warn(attempt) {
      const src = made();
      const r = await attempt('thrown by createAdapter', () => createAdapter(src));
      const a = r.ok && (await attach(r.value, null, attempt));
      if (!a) return;
      await until(() => seen.some((s) => s.kind === 'process warning' && s.text.includes("add an 'error' listener")));
      await attempt('rejection of close()', () => a.adapter.close());
    },
    async sharded(attempt, p) {
      const src = made();
      const r = await attempt('thrown by createShardedAdapter', () => createShardedAdapter(src, undefined, { channelPrefix: key }));
      const a = r.ok && (await attach(r.value, p, attempt));
      if (!a) return;
      await until(() => a.errors.length > 0);
      const res = await attempt('rejection of serverCount()', () => a.adapter.serverCount());
      if (res.ok) note(p, 'serverCount() resolved', JSON.stringify(res.value));
      await attempt('rejection of close()', () => a.adapter.close());
    },
    async emitter(attempt) {
      const src = made();
      const r = await attempt('thrown by new Emitter', () => new Emitter(src, { key }));
      if (!r.ok) return;
      await attempt('thrown by emit', () => r.value.emit('secret-test', 1));
      await attempt('thrown by serverSideEmit', () => r.value.serverSideEmit('secret-test', 1));
      await attempt('rejection of close()', () => r.value.close());
    },
    // The source as subClient: checked, never connected (the factory is not used).
    async subClient(attempt) {
      const src = made();
      await attempt('thrown by createAdapter(url, subClient)', () => createAdapter(`redis://${UNREACHABLE}`, src));
    },
  };

  /**
   * The adapter of a new socket.io Server on `factory` (io.adapter creates '/'), or null when that
   * throws; with an 'error' listener noting each event for path `listenFor` unless it is null.
   */
  async function attach(factory, listenFor, attempt) {
    const io = new Server();
    let adapter = null;
    const r = await attempt('thrown by io.adapter(factory)', () => {
      io.adapter(factory);
      adapter = io.of('/').adapter;
    });
    if (!r.ok || !adapter) return null;
    const errors = [];
    if (listenFor) {
      adapter.on('error', (err) => {
        errors.push(err);
        noteError(listenFor, "'error' event", err);
      });
    }
    return { io, adapter, errors };
  }

  await Promise.all(Object.entries(paths).map(async ([p, run]) => {
    /** Runs `fn` (sync or async) and notes what it throws or rejects with. */
    const attempt = async (kind, fn) => {
      try {
        return { ok: true, value: await fn() };
      } catch (err) {
        noteError(p, kind, err);
        return { ok: false };
      }
    };
    try {
      await run(attempt, p);
    } catch (err) {
      noteError(p, 'runner failed', err); // a bug of the path itself: the parent fails the row
    }
  }));
  for (const s of sources) {
    try {
      if (row.cleanup) row.cleanup(s);
    } catch (err) {
      noteError('cleanup', 'runner failed', err);
    }
  }
  // Whatever arrives late (events, warnings) still counts: give the loop a turn.
  await new Promise((r) => setImmediate(r));
  process.send({ row: row.name, seen }, () => process.disconnect());
}

// -------------------------------------------------------------------------------------------------
// Parent

/**
 * Runs `command args` (a row: this file forked, with IPC) to its end; resolves with { report,
 * stdout, stderr, code, ms }. It must end by itself: what a row or C handle starts must not
 * outlive it (SIGKILLed after `timeoutMs`, which fails the row).
 */
function run(command, args, { env, ipc = false, timeoutMs = 45000 }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const stdio = ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])];
    const child = ipc ? fork(command, args, { env, stdio }) : spawn(command, args, { env, stdio });
    let stdout = '';
    let stderr = '';
    let report = null;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('message', (m) => (report = m));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ report, stdout, stderr, code: code ?? signal, ms: Date.now() - started });
    });
  });
}

/** Runs `fn` over `items`, at most `n` at a time; the results in the order of `items`. */
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

/** Where each needle occurs in `text`, with some context, for failure messages. */
function showLeaks(text, extra) {
  const found = leaksIn(text, extra);
  // One entry per place: a piece found inside a longer needle found there is the same leak.
  return found.filter((n) => !found.some((m) => m !== n && m.includes(n))).map((needle) => {
    const i = text.indexOf(needle);
    return `"${needle}" in …${text.slice(Math.max(0, i - 160), i + needle.length + 40).replace(/\n/g, '⏎')}…`;
  });
}

/** Fails listing every leak of `texts` ([where, text] pairs), if any. */
function assertNoLeaks(texts, extra = []) {
  const found = texts.flatMap(([where, text]) => showLeaks(String(text), extra).map((leak) => `${where}: ${leak}`));
  if (found.length > 0) assert.fail(`LEAK: the password is visible in ${found.length} place(s):\n  ${found.join('\n  ')}`);
}

const CONCURRENCY = 12; // the rows mostly wait (closing with messages queued takes seconds)

if (process.env.SIO_SECRETS_CHILD) {
  runChild(process.env.SIO_SECRETS_CHILD).catch((err) => {
    // A bug of the row runner: report it as the row's result (the parent fails the row).
    process.send({ seen: [{ path: 'runner', kind: 'runner failed', text: `${err.message}\n${err.stack}` }] }, () => process.disconnect());
  });
} else {
  describe('no Redis password in anything a user can see', { timeout: 120000 }, () => {
    const { privateRedis, stopAllRedis } = require('./helpers/private-redis');
    const { command } = require('./helpers/redis-process');
    const { libDir, flags } = require('./helpers/c-library').cLibrary();
    let auth;
    let dir;
    let results; // row name -> run()
    let cResults; // C_URLS index -> run(), or the error of the C part
    let wall;

    before(async () => {
      const t0 = Date.now();
      // A Redis that wants another password; CONFIG SET after start (the helper waits for PING).
      auth = await privateRedis();
      const set = await command(auth.port, ['CONFIG', 'SET', 'requirepass', RIGHT_PASSWORD]);
      assert.equal(set, 'OK', `CONFIG SET requirepass: ${set}`);
      const ping = await command(auth.port, ['PING']);
      assert.ok(ping instanceof Error && /NOAUTH/.test(ping.message), `PING without AUTH should be refused, got ${ping}`);

      // The C program, one process per URL, runs while the rows do.
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sioadapter-secrets-'));
      const exe = path.join(dir, 'secrets_test');
      execFileSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', path.join(__dirname, 'c', 'secrets_test.c'), ...flags, '-o', exe], { stdio: 'inherit' });
      const cEnv = { ...process.env, LD_LIBRARY_PATH: libDir };
      const cRuns = Promise.all(C_URLS.map((c) => run(exe, [typeof c.url === 'function' ? c.url(auth.port) : c.url], { env: cEnv })))
        .then((r) => (cResults = r), (err) => (cResults = err));

      const env = { ...process.env, SIO_SECRETS_AUTH_PORT: String(auth.port) };
      delete env.NODE_TEST_CONTEXT; // the rows are plain processes, not test files
      results = new Map(await pool(ROWS, CONCURRENCY, async (row) => [row.name, await run(__filename, [], { env: { ...env, SIO_SECRETS_CHILD: row.name }, ipc: true })]));
      await cRuns;
      wall = Date.now() - t0;
    });

    after(async () => {
      await stopAllRedis();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    for (const row of ROWS) {
      test(row.name, (t) => {
        const r = results.get(row.name);
        const seen = r.report && r.report.seen;
        assert.ok(seen, `the row's child reported nothing (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
        assert.ok(!seen.some((s) => s.kind === 'runner failed'), `row runner failed:\n${seen.map((s) => s.text).join('\n')}`);
        assert.equal(r.code, 0, `the row's child exited with ${r.code} (SIGKILL: something kept it alive)\n${r.stderr}`);

        // The point: no password anywhere.
        assertNoLeaks([...seen.map((s) => [`${s.path} / ${s.kind}`, s.text]), ['stdout of the process', r.stdout], ['stderr of the process', r.stderr]], row.secrets);

        // Not vacuous: each main path showed the user something, and the row's patterns were seen.
        const by = (p) => seen.filter((s) => s.path === p);
        for (const p of ['adapter', 'sharded']) assert.ok(by(p).length > 0, `path ${p}: nothing was seen (no throw, no 'error' event, no rejection)`);
        const warned = seen.filter((s) => s.kind === 'process warning' && s.text.includes("add an 'error' listener"));
        assert.ok(by('warn').length > 0 || warned.length > 0, "path warn: neither a throw nor the process warning of an adapter without 'error' listener");
        const all = seen.map((s) => s.text).join('\n');
        for (const pattern of row.expect) assert.match(all, pattern, `the row's expected text ${pattern} was not seen`);
        if (row.auth) {
          const events = by('adapter').filter((s) => s.kind === "'error' event");
          assert.ok(events.some((s) => authFailed.test(s.text)), `no adapter 'error' saying that authentication failed: ${events.map((s) => short(s.text)).join(' | ')}`);
        }

        const firstOf = (items) => (items.length ? `${items[0].kind}: ${short(items[0].text.split('\n')[0], 64)}${items.length > 1 ? ` (+${items.length - 1})` : ''}` : '-');
        const summary = ['adapter', 'sharded', 'emitter', 'subClient'].map((p) => `${p}: ${firstOf(by(p))}`);
        summary.splice(1, 0, `warn: ${firstOf(warned.length ? warned : by('warn'))}`);
        const other = by('process').filter((s) => !warned.includes(s));
        if (other.length) summary.push(`process: ${firstOf(other)}`);
        t.diagnostic(`${r.ms} ms, ${seen.length} items, stderr ${r.stderr.length} B | ${summary.join(' | ')}`);
      });
    }

    C_URLS.forEach((c, i) => {
      test(`C API: ${c.name}`, (t) => {
        if (cResults instanceof Error) throw cResults;
        const r = cResults[i];
        assert.equal(r.code, 0, `secrets_test exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
        assertNoLeaks([...r.stdout.split('\n').map((line) => ['C program', line]), ['stderr of the C program', r.stderr]]);
        const lines = r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^\d+ /, ''));
        // Something was said: a sio_last_error text, an error event or a completion's error.
        assert.ok(lines.some((l) => /: SIO_ERR_\w+: \S|on_event error: \S|error=(?!\(null\))\S/.test(l)), `no error text from the C API:\n${r.stdout}`);
        assert.match(r.stdout, c.expect);
        t.diagnostic(`${r.ms} ms | ${lines.filter((l) => !/: SIO_OK: $/.test(l)).map((l) => short(l, 130)).join(' + ')}`);
      });
    });

    test('summary', (t) => {
      const items = [...results.values()].reduce((n, r) => n + (r.report ? r.report.seen.length : 0), 0);
      const slowest = [...results.entries()].sort((a, b) => b[1].ms - a[1].ms)[0];
      t.diagnostic(`${ROWS.length} rows (${CONCURRENCY} at a time) and ${C_URLS.length} C runs in ${wall} ms; ${items} items checked; ` +
        `slowest row: ${slowest[0]} (${slowest[1].ms} ms)`);
      assert.equal(results.size, ROWS.length);
    });
  });
}
