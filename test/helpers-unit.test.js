'use strict';
// Unit tests of the pure JS helpers of the npm package, in-process: no Redis, no network, no
// socket.io server. Run: node --test test/helpers-unit.test.js (from the repository root).
//
// - npm/lib/connection.js: resolveRedisUrl turns what users pass as pubClient (URL strings,
//   host:port, settings objects, real node-redis v5 / ioredis v5 clients, clusters and Sentinel
//   clients, seed lists) into the URL the Rust core connects to, reading settings only;
//   resolveTlsCa collects the CAs; isPlainObject / isRedisClient; optionError (TypeError, code
//   ERR_SIO_OPTION, redacted); redact (the core's redaction, through the addon); the one-time
//   SIO_TLS_INSECURE warning.
// - npm/lib/sharded.js: encodeMessage (JSON, or notepack msgpack when a binary-capable type
//   carries binary) and decodeMessage (null for whatever ClusterAdapter could not handle), for
//   every message type 1..13.
// - npm/lib/limits.js: readLimits defaults, valid values and refused values (ERR_SIO_OPTION).
//
// The real Redis clients are constructed but never connected (node-redis: no connect();
// ioredis: lazyConnect). A guard on net.Socket#connect fails the run if anything tries the
// network. Requiring npm/lib needs the native addon (npm/sioadapter.<platform>.node) and the
// package's dependencies (notepack.io, socket.io-adapter); SIOADAPTER_MODULE may point elsewhere.

const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');

// Any connection attempt from this process is a failure: these helpers only read settings.
const connectAttempts = [];
const realConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  connectAttempts.push(args[0]);
  return realConnect.apply(this, args);
};

const NPM = process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm');
const CONNECTION = require.resolve(path.join(NPM, 'lib', 'connection'));
const connection = require(CONNECTION);
const { resolveRedisUrl, resolveTlsCa, isPlainObject, isRedisClient, optionError, redact, DEFAULT_URL } = connection;
const { encodeMessage, decodeMessage } = require(path.join(NPM, 'lib', 'sharded'));
const { readLimits, LIMIT_OPTIONS } = require(path.join(NPM, 'lib', 'limits'));
const notepack = require('notepack.io');
const redis = require('redis');
const Redis = require('ioredis');

/** ioredis clients made here, disconnected at the end (a no-op on the network for lazyConnect). */
const ioredisClients = [];
function ioredis(...args) {
  const client = new Redis(...args);
  ioredisClients.push(client);
  return client;
}
function ioredisCluster(seeds, opts) {
  const client = new Redis.Cluster(seeds, { lazyConnect: true, ...opts });
  ioredisClients.push(client);
  return client;
}

after(() => {
  // Disconnect everything first (so that the process exits even when a check below fails).
  const notLazy = ioredisClients.filter((client) => client.status !== 'wait').map((client) => client.status);
  for (const client of ioredisClients) client.disconnect();
  net.Socket.prototype.connect = realConnect;
  assert.deepEqual(notLazy, [], 'an ioredis client left its lazy state (it tried to connect)');
  assert.deepEqual(connectAttempts, [], 'nothing may connect');
});

/** Asserts that `fn` throws the option error of `option` whose message matches `why`. */
function throwsOption(fn, why, option = 'pubClient') {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, `expected a TypeError, got ${err && err.constructor && err.constructor.name}`);
    assert.equal(err.code, 'ERR_SIO_OPTION');
    assert.ok(err.message.startsWith(`sioadapter: invalid option \`${option}\`: `), err.message);
    assert.match(err.message, why);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// connection.js
// ---------------------------------------------------------------------------------------------

describe('resolveRedisUrl: nothing and URL strings', () => {
  test('undefined and null give the default URL', () => {
    assert.equal(DEFAULT_URL, 'redis://127.0.0.1:6379');
    assert.equal(resolveRedisUrl(undefined), 'redis://127.0.0.1:6379');
    assert.equal(resolveRedisUrl(null), 'redis://127.0.0.1:6379');
  });

  test('every supported scheme passes through unchanged (scheme case-insensitive)', () => {
    for (const url of [
      'redis://h:1/2',
      'rediss://u:p@h:6380/0',
      'unix:///tmp/redis.sock',
      'redis+unix:///tmp/redis.sock?db=1',
      'redis+cluster://a:7000,b:7001',
      'rediss+cluster://a:7000#insecure',
      'redis+sentinel://s:26379/mymaster/0',
      'rediss+sentinel://s:26379/mymaster/0?sentinelTls=false',
      'REDIS://H:1',
      'Rediss+Sentinel://s:1/m',
    ]) {
      assert.equal(resolveRedisUrl(url), url);
    }
  });

  test('host[:port] becomes redis://, with brackets for IPv6', () => {
    assert.equal(resolveRedisUrl('localhost:6380'), 'redis://localhost:6380');
    assert.equal(resolveRedisUrl('cache.internal'), 'redis://cache.internal:6379');
    assert.equal(resolveRedisUrl('10.0.0.5:7000'), 'redis://10.0.0.5:7000');
    assert.equal(resolveRedisUrl('[::1]:7000'), 'redis://[::1]:7000');
    assert.equal(resolveRedisUrl('[::1]'), 'redis://[::1]:6379');
  });

  test('strings that are neither a Redis URL nor host:port are refused', () => {
    throwsOption(() => resolveRedisUrl(''), /not a Redis URL or host:port: ""/);
    throwsOption(() => resolveRedisUrl('http://h:1'), /not a Redis URL or host:port/);
    throwsOption(() => resolveRedisUrl('two words'), /not a Redis URL or host:port/);
    throwsOption(() => resolveRedisUrl('h/0'), /not a Redis URL or host:port/);
    // The option's name given by the caller is the one in the message.
    throwsOption(() => resolveRedisUrl('two words', 'subClient'), /not a Redis URL/, 'subClient');
  });

  test('the refusal of a bad URL does not show its password', () => {
    const secret = 'Hx7-unit-secret';
    assert.throws(() => resolveRedisUrl(`http://user:${secret}@h:1`), (err) => {
      assert.equal(err.code, 'ERR_SIO_OPTION');
      assert.ok(!err.message.includes(secret), err.message);
      assert.ok(!String(err.stack).includes(secret), 'stack');
      assert.match(err.message, /http:\/\/user:\*\*\*@h:1/);
      return true;
    });
  });

  test('bare IPv6 hosts and colons in host:port', () => {
    assert.equal(resolveRedisUrl('::1'), 'redis://[::1]:6379');
    assert.equal(resolveRedisUrl('fe80::1'), 'redis://[fe80::1]:6379');
    assert.equal(resolveRedisUrl('[fe80::1]:7000'), 'redis://[fe80::1]:7000');
    assert.throws(() => resolveRedisUrl('h:port'), { code: 'ERR_SIO_OPTION' });
    assert.throws(() => resolveRedisUrl('h:99999'), { code: 'ERR_SIO_OPTION' });
    assert.throws(() => resolveRedisUrl('h:0'), { code: 'ERR_SIO_OPTION' });
    assert.throws(() => resolveRedisUrl('a:'), { code: 'ERR_SIO_OPTION' }, 'one colon and no port is not an IPv6 address');
  });
});

describe('resolveRedisUrl: values that are neither clients, URLs nor settings', () => {
  test('numbers, booleans, functions, symbols and non-plain objects are refused', () => {
    const cases = [
      [6379, /got number/],
      [0, /got number/],
      [NaN, /got number/],
      [true, /got boolean/],
      [10n, /got bigint/],
      [() => {}, /got function/],
      [Symbol('x'), /got symbol/],
      [new Map(), /got object/],
      [new Date(0), /got object/],
      [new (class Settings { constructor() { this.host = 'h'; } })(), /got object/],
      [Buffer.from('redis://h:1'), /got object/],
    ];
    for (const [value, why] of cases) {
      throwsOption(() => resolveRedisUrl(value), why);
      throwsOption(() => resolveRedisUrl(value), /expected a node-redis or ioredis client, a redis:\/\/ URL or \{host, port\}/);
    }
  });

  test('a client-like object without readable settings is refused (clear message, not a crash)', () => {
    const bare = new (class Custom { publish() {} })();
    throwsOption(() => resolveRedisUrl(bare), /cannot read the connection settings of this Redis client/);
    const cluster = new (class OtherCluster { constructor() { this.isCluster = true; } sendCommand() {} })();
    throwsOption(() => resolveRedisUrl(cluster), /cannot read the seed nodes of this Redis Cluster client/);
    const masters = new (class Masters { constructor() { this.masters = []; } send_command() {} })();
    throwsOption(() => resolveRedisUrl(masters), /cannot read the seed nodes/);
  });
});

describe('resolveRedisUrl: settings objects', () => {
  test('{} gives the default host and port with database 0', () => {
    assert.equal(resolveRedisUrl({}), 'redis://127.0.0.1:6379/0');
  });

  test('host, port, db / database, username, password (percent-encoded)', () => {
    assert.equal(resolveRedisUrl({ host: 'h', port: 7000, db: 3 }), 'redis://h:7000/3');
    assert.equal(resolveRedisUrl({ host: 'h', port: '7001' }), 'redis://h:7001/0');
    assert.equal(resolveRedisUrl({ database: 4 }), 'redis://127.0.0.1:6379/4');
    assert.equal(resolveRedisUrl({ database: 5, db: 6 }), 'redis://127.0.0.1:6379/5', 'node-redis `database` wins over `db`');
    assert.equal(resolveRedisUrl({ host: '::1', port: 7002 }), 'redis://[::1]:7002/0');
    assert.equal(resolveRedisUrl({ username: 'u', password: 'p' }), 'redis://u:p@127.0.0.1:6379/0');
    assert.equal(resolveRedisUrl({ password: 'p' }), 'redis://:p@127.0.0.1:6379/0');
    assert.equal(resolveRedisUrl({ username: 'u' }), 'redis://u@127.0.0.1:6379/0');
    assert.equal(resolveRedisUrl({ username: 'a b', password: 'p w@/:#?%' }), 'redis://a%20b:p%20w%40%2F%3A%23%3F%25@127.0.0.1:6379/0');
  });

  test('node-redis shape: socket.host / socket.port win over top-level host / port', () => {
    assert.equal(resolveRedisUrl({ socket: { host: 's', port: 7100 }, host: 'top', port: 7200 }), 'redis://s:7100/0');
    assert.equal(resolveRedisUrl({ socket: { port: 7101 } }), 'redis://127.0.0.1:7101/0');
  });

  test('a plain object with a publish() method is still read as settings, not as a client', () => {
    assert.equal(resolveRedisUrl({ host: 'h', port: 1, publish() {} }), 'redis://h:1/0');
  });

  test('unix socket path: redis+unix:// with db, user and pass parameters', () => {
    assert.equal(resolveRedisUrl({ path: '/tmp/r.sock' }), 'redis+unix:///tmp/r.sock?db=0');
    assert.equal(resolveRedisUrl({ socket: { path: '/tmp/r.sock' }, username: 'u', password: 'p w', db: 2 }), 'redis+unix:///tmp/r.sock?db=2&user=u&pass=p%20w');
  });

  test('invalid host, port and database are refused', () => {
    throwsOption(() => resolveRedisUrl({ host: 42 }), /host must be a string/);
    for (const port of [0, -1, 65536, 1.5, 'abc', 'x1']) {
      throwsOption(() => resolveRedisUrl({ port }), /port must be 1\.\.65535/);
    }
    throwsOption(() => resolveRedisUrl({ socket: { port: 70000 } }), /port must be 1\.\.65535, got 70000/);
    for (const db of [-1, 1.5, 'two']) {
      throwsOption(() => resolveRedisUrl({ db }), /database must be a non-negative integer/);
    }
    throwsOption(() => resolveRedisUrl({ database: -2 }), /database must be a non-negative integer, got -2/);
  });

  test('`url` in settings: used as given, unless host/port/path are also set', () => {
    assert.equal(resolveRedisUrl({ url: 'redis://u:p@h:1/4' }), 'redis://u:p@h:1/4');
    assert.equal(resolveRedisUrl({ url: 'h:2' }), 'redis://h:2');
    assert.equal(resolveRedisUrl({ url: 'redis://h:1', socket: { host: 'other', port: 9 } }), 'redis://other:9/0');
    throwsOption(() => resolveRedisUrl({ url: 'not a url' }), /not a Redis URL or host:port/);
  });

  test('TLS: tls: true, tls objects and node-redis socket.tls give rediss://', () => {
    assert.equal(resolveRedisUrl({ tls: true }), 'rediss://127.0.0.1:6379/0');
    assert.equal(resolveRedisUrl({ host: 'h', tls: {} }), 'rediss://h:6379/0');
    assert.equal(resolveRedisUrl({ host: 'h', tls: { rejectUnauthorized: true } }), 'rediss://h:6379/0');
    assert.equal(resolveRedisUrl({ socket: { host: 'h', port: 6380, tls: true } }), 'rediss://h:6380/0');
    assert.equal(resolveRedisUrl({ host: 'h', tls: false }), 'redis://h:6379/0');
    assert.equal(resolveRedisUrl({ socket: { host: 'h', tls: false } }), 'redis://h:6379/0');
  });

  test('TLS with rejectUnauthorized: false adds #insecure (ioredis tls object and node-redis socket)', () => {
    assert.equal(resolveRedisUrl({ host: 'h', tls: { rejectUnauthorized: false } }), 'rediss://h:6379/0#insecure');
    assert.equal(resolveRedisUrl({ socket: { host: 'h', tls: true, rejectUnauthorized: false } }), 'rediss://h:6379/0#insecure');
    // rejectUnauthorized without TLS means nothing.
    assert.equal(resolveRedisUrl({ host: 'h', socket: { rejectUnauthorized: false } }), 'redis://h:6379/0');
  });

  test('TLS on settings with a url upgrades the URL (never plaintext), or is refused', () => {
    assert.equal(resolveRedisUrl({ url: 'redis://h:1', socket: { tls: true } }), 'rediss://h:1');
    assert.equal(resolveRedisUrl({ url: 'redis://h:1', tls: { rejectUnauthorized: false } }), 'rediss://h:1#insecure');
    assert.equal(resolveRedisUrl({ url: 'redis://h:1#frag', tls: { rejectUnauthorized: false } }), 'rediss://h:1#insecure');
    assert.equal(resolveRedisUrl({ url: 'rediss://h:1#insecure', tls: { rejectUnauthorized: false } }), 'rediss://h:1#insecure');
    assert.equal(resolveRedisUrl({ url: 'redis+cluster://a:1,b:2', tls: true }), 'rediss+cluster://a:1,b:2');
    assert.equal(resolveRedisUrl({ url: 'redis+sentinel://s:1/m', socket: { tls: true } }), 'rediss+sentinel://s:1/m');
    assert.equal(resolveRedisUrl({ url: 'h:3', tls: true }), 'rediss://h:3');
    throwsOption(() => resolveRedisUrl({ url: 'redis+unix:///tmp/r.sock', socket: { tls: true } }), /asks for TLS, which redis\+unix:\/\/ URLs cannot carry/);
    throwsOption(() => resolveRedisUrl({ url: 'unix:///tmp/r.sock', tls: {} }), /asks for TLS, which unix:\/\/ URLs cannot carry/);
  });

  test('TLS asked together with a unix socket path', () => {
    assert.throws(() => resolveRedisUrl({ path: '/tmp/r.sock', tls: true }), { code: 'ERR_SIO_OPTION' });
  });
});

describe('resolveRedisUrl: Sentinel settings (ioredis shape)', () => {
  const sentinels = [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }];

  test('sentinels + name, data-node credentials and db', () => {
    assert.equal(resolveRedisUrl({ sentinels, name: 'mymaster' }), 'redis+sentinel://s1:26379,s2:26380/mymaster/0');
    assert.equal(resolveRedisUrl({ sentinels, name: 'my master', db: 2, username: 'du', password: 'd p' }), 'redis+sentinel://du:d%20p@s1:26379,s2:26380/my%20master/2');
    assert.equal(resolveRedisUrl({ sentinels: [{ host: '::1', port: 26379 }, { host: 's3' }, {}], name: 'm' }), 'redis+sentinel://[::1]:26379,s3:26379,127.0.0.1:26379/m/0');
  });

  test('sentinelUsername / sentinelPassword become query parameters', () => {
    assert.equal(
      resolveRedisUrl({ sentinels, name: 'm', sentinelUsername: 's u', sentinelPassword: 'p&w' }),
      'redis+sentinel://s1:26379,s2:26380/m/0?sentinelUsername=s%20u&sentinelPassword=p%26w',
    );
  });

  test('TLS: data nodes with tls + enableTLSForSentinelMode, sentinels with sentinelTLS', () => {
    const base = { sentinels: [{ host: 's', port: 26379 }], name: 'm' };
    assert.equal(resolveRedisUrl({ ...base, tls: {}, enableTLSForSentinelMode: true }), 'rediss+sentinel://s:26379/m/0?sentinelTls=false');
    assert.equal(resolveRedisUrl({ ...base, tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} }), 'rediss+sentinel://s:26379/m/0');
    assert.equal(resolveRedisUrl({ ...base, sentinelTLS: {} }), 'redis+sentinel://s:26379/m/0?sentinelTls=true');
    assert.equal(resolveRedisUrl({ ...base, sentinelTLS: { rejectUnauthorized: false } }), 'redis+sentinel://s:26379/m/0?sentinelTls=true#insecure');
    assert.equal(
      resolveRedisUrl({ ...base, tls: { rejectUnauthorized: false }, enableTLSForSentinelMode: true, sentinelTLS: { rejectUnauthorized: false } }),
      'rediss+sentinel://s:26379/m/0#insecure',
    );
    // #insecure only when every TLS connection turns verification off.
    assert.equal(
      resolveRedisUrl({ ...base, tls: { rejectUnauthorized: false }, enableTLSForSentinelMode: true, sentinelTLS: {} }),
      'rediss+sentinel://s:26379/m/0',
    );
    assert.equal(
      resolveRedisUrl({ ...base, sentinelPassword: 'sp', tls: {}, enableTLSForSentinelMode: true }),
      'rediss+sentinel://s:26379/m/0?sentinelPassword=sp&sentinelTls=false',
    );
  });

  test('tls without enableTLSForSentinelMode is refused (ioredis would reach the primary in plaintext)', () => {
    throwsOption(() => resolveRedisUrl({ sentinels, name: 'm', tls: {} }), /`tls` in Sentinel settings needs `enableTLSForSentinelMode: true`/);
    throwsOption(() => resolveRedisUrl({ sentinels, name: 'm', tls: true, enableTLSForSentinelMode: false }), /enableTLSForSentinelMode/);
  });

  test('missing name, no sentinels, bad entries and bad db are refused', () => {
    throwsOption(() => resolveRedisUrl({ sentinels }), /Sentinel settings need `name`/);
    throwsOption(() => resolveRedisUrl({ sentinels, name: '' }), /Sentinel settings need `name`/);
    throwsOption(() => resolveRedisUrl({ sentinels, name: 7 }), /Sentinel settings need `name`/);
    throwsOption(() => resolveRedisUrl({ sentinels: [], name: 'm' }), /at least one entry in `sentinels`/);
    throwsOption(() => resolveRedisUrl({ sentinels: [{ host: 5, port: 26379 }], name: 'm' }), /each sentinel needs a host string and a port 1\.\.65535, got \{"host":5,"port":26379\}/);
    throwsOption(() => resolveRedisUrl({ sentinels: [{ host: 's', port: 70000 }], name: 'm' }), /each sentinel needs/);
    throwsOption(() => resolveRedisUrl({ sentinels: [{ host: 's', port: 'x' }], name: 'm' }), /each sentinel needs/);
    throwsOption(() => resolveRedisUrl({ sentinels, name: 'm', db: -1 }), /db must be a non-negative integer/);
    throwsOption(() => resolveRedisUrl({ sentinels, name: 'm', db: 0.5 }), /db must be a non-negative integer/);
  });

  test('a refused sentinel entry is shown without its password', () => {
    assert.throws(() => resolveRedisUrl({ sentinels: [{ host: 's', port: -5, password: 'Sentinel-Entry-Secret' }], name: 'm' }), (err) => {
      assert.equal(err.code, 'ERR_SIO_OPTION');
      assert.match(err.message, /got \{"host":"s","port":-5\}/);
      assert.ok(!err.message.includes('Sentinel-Entry-Secret'), err.message);
      return true;
    });
  });
});

describe('resolveRedisUrl: cluster seed lists', () => {
  test('strings, ports, {host, port}, {url} and {socket} seeds', () => {
    assert.equal(resolveRedisUrl(['a:7000', 'b']), 'redis+cluster://a:7000,b:6379');
    assert.equal(resolveRedisUrl([7000, 7001]), 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001');
    assert.equal(resolveRedisUrl([{ host: 'a', port: 7000 }, { host: '::1', port: 7001 }, { host: 'c' }]), 'redis+cluster://a:7000,[::1]:7001,c:6379');
    assert.equal(resolveRedisUrl([{ url: 'redis://a:7000' }, { socket: { host: 'b', port: 7001 } }]), 'redis+cluster://a:7000,b:7001');
    assert.equal(resolveRedisUrl(['redis://a:7000/0', '[::1]:7002']), 'redis+cluster://a:7000,[::1]:7002');
  });

  test('credentials come from the first seed URL that has them', () => {
    assert.equal(resolveRedisUrl(['redis://a:7000', 'redis://u:p@b:7001']), 'redis+cluster://u:p@a:7000,b:7001');
    assert.equal(resolveRedisUrl([{ url: 'redis://:pw@a:7000' }]), 'redis+cluster://:pw@a:7000');
  });

  test('TLS when a seed asks for it or is rediss://, for every node; #insecure only when all TLS settings say so', () => {
    assert.equal(resolveRedisUrl(['rediss://a:7000', 'b:7001']), 'rediss+cluster://a:7000,b:7001');
    assert.equal(resolveRedisUrl([{ url: 'REDISS://a:7000' }]), 'rediss+cluster://a:7000');
    assert.equal(resolveRedisUrl([{ host: 'a', port: 1, tls: true }]), 'rediss+cluster://a:1');
    assert.equal(resolveRedisUrl([{ socket: { host: 'a', port: 1, tls: true, rejectUnauthorized: false } }]), 'rediss+cluster://a:1#insecure');
    assert.equal(resolveRedisUrl([{ host: 'a', port: 1, tls: { rejectUnauthorized: false } }]), 'rediss+cluster://a:1#insecure');
    assert.equal(
      resolveRedisUrl([{ socket: { host: 'a', port: 1, tls: true, rejectUnauthorized: false } }, { socket: { host: 'b', port: 2, tls: true } }]),
      'rediss+cluster://a:1,b:2',
    );
  });

  test('empty lists and entries that are not seed nodes are refused', () => {
    throwsOption(() => resolveRedisUrl([]), /a Redis Cluster needs at least one seed node/);
    throwsOption(() => resolveRedisUrl([null]), /not a seed node: null/);
    throwsOption(() => resolveRedisUrl(['a:1', true]), /not a seed node: true/);
    throwsOption(() => resolveRedisUrl([{ host: 5, port: 1 }]), /each seed node needs a host string and a port 1\.\.65535, got \{"host":5,"port":1\}/);
    throwsOption(() => resolveRedisUrl([{ host: 'a', port: -1, password: 'Seed-Entry-Secret' }]), /got \{"host":"a","port":-1\}$/);
  });

  test('seed numbers outside 1..65535', () => {
    for (const seed of [0, -1, 70000, 1.5]) assert.throws(() => resolveRedisUrl([seed]), { code: 'ERR_SIO_OPTION' }, String(seed));
  });

  test('seed URLs of another scheme, and bare IPv6 seeds', () => {
    assert.throws(() => resolveRedisUrl(['http://a:1']), { code: 'ERR_SIO_OPTION' });
    assert.throws(() => resolveRedisUrl(['redis+cluster://a:1']), { code: 'ERR_SIO_OPTION' });
    assert.throws(() => resolveRedisUrl(['abc://x:1']), { code: 'ERR_SIO_OPTION' });
    assert.match(resolveRedisUrl(['::1']), /^redis\+cluster:\/\/\[::1\]:6379$/);
  });
});

describe('resolveRedisUrl: real node-redis v5 clients (never connected)', () => {
  test('createClient() with no options', () => {
    const client = redis.createClient();
    assert.equal(isRedisClient(client), true);
    assert.equal(resolveRedisUrl(client), 'redis://127.0.0.1:6379/0');
    assert.equal(client.isOpen, false);
  });

  test('createClient({ url }) keeps credentials, host, port and database', () => {
    assert.equal(resolveRedisUrl(redis.createClient({ url: 'redis://u:p@h:7000/3' })), 'redis://u:p@h:7000/3');
    assert.equal(resolveRedisUrl(redis.createClient({ url: 'redis://:only%20pw@h:7000' })), 'redis://:only%20pw@h:7000/0');
    assert.equal(resolveRedisUrl(redis.createClient({ url: 'rediss://u:p@h:6380/1' })), 'rediss://u:p@h:6380/1');
  });

  test('createClient({ socket, username, password, database }) with TLS, CA and rejectUnauthorized', () => {
    const client = redis.createClient({ socket: { host: 'h', port: 7, tls: true, ca: 'NODE-REDIS-CA', rejectUnauthorized: false }, database: 3, username: 'u', password: 'p' });
    assert.equal(resolveRedisUrl(client), 'rediss://u:p@h:7/3#insecure');
    assert.equal(resolveTlsCa(client), 'NODE-REDIS-CA');
    const plain = redis.createClient({ socket: { host: 'h', port: 8 } });
    assert.equal(resolveRedisUrl(plain), 'redis://h:8/0');
    assert.equal(resolveTlsCa(plain), undefined);
  });

  test('createClient({ socket: { path } })', () => {
    assert.equal(resolveRedisUrl(redis.createClient({ socket: { path: '/tmp/s.sock' }, password: 'pw' })), 'redis+unix:///tmp/s.sock?db=0&pass=pw');
  });

  test('createCluster: rootNodes and defaults (credentials, TLS, CA)', () => {
    const cluster = redis.createCluster({
      rootNodes: [{ url: 'redis://a:7000' }, { socket: { host: 'b', port: 7001, ca: 'SEED-CA' } }],
      defaults: { username: 'u', password: 'p', socket: { tls: true, ca: 'DEFAULTS-CA' } },
    });
    assert.equal(isRedisClient(cluster), true);
    assert.equal(resolveRedisUrl(cluster), 'rediss+cluster://u:p@a:7000,b:7001');
    assert.equal(resolveTlsCa(cluster), 'DEFAULTS-CA\nSEED-CA');
  });

  test('createCluster: credentials of a seed URL when defaults have none; defaults win otherwise', () => {
    assert.equal(resolveRedisUrl(redis.createCluster({ rootNodes: [{ url: 'redis://su:sp@a:7000' }, { url: 'redis://b:7001' }] })), 'redis+cluster://su:sp@a:7000,b:7001');
    assert.equal(resolveRedisUrl(redis.createCluster({ rootNodes: [{ url: 'redis://su:sp@a:7000' }], defaults: { password: 'dp' } })), 'redis+cluster://:dp@a:7000');
  });

  test('createSentinel is refused with a hint to pass a redis+sentinel:// URL', () => {
    const sentinel = redis.createSentinel({ name: 'm', sentinelRootNodes: [{ host: 'h', port: 26379 }] });
    assert.equal(isRedisClient(sentinel), true);
    throwsOption(() => resolveRedisUrl(sentinel), /for a node-redis Sentinel, pass redis\+sentinel:\/\/host:port,\.\.\.\/<name> instead/);
  });
});

describe('resolveRedisUrl: real ioredis v5 clients (lazyConnect, never connected)', () => {
  test('defaults: ioredis says localhost', () => {
    const client = ioredis({ lazyConnect: true });
    assert.equal(isRedisClient(client), true);
    assert.equal(resolveRedisUrl(client), 'redis://localhost:6379/0');
  });

  test('host, port, username, password (encoded) and db', () => {
    assert.equal(resolveRedisUrl(ioredis({ lazyConnect: true, host: 'h', port: 2, username: 'u', password: 'p w', db: 3 })), 'redis://u:p%20w@h:2/3');
    assert.equal(resolveRedisUrl(ioredis({ lazyConnect: true, host: 'h', password: 'p' })), 'redis://:p@h:6379/0');
  });

  test('made from a URL', () => {
    assert.equal(resolveRedisUrl(ioredis('redis://u:p@h:5/1', { lazyConnect: true })), 'redis://u:p@h:5/1');
    assert.equal(resolveRedisUrl(ioredis('rediss://u:p@h:5/1', { lazyConnect: true })), 'rediss://u:p@h:5/1');
  });

  test('tls: CA and rejectUnauthorized: false', () => {
    const client = ioredis({ lazyConnect: true, host: 'h', tls: { ca: 'IOREDIS-CA', rejectUnauthorized: false } });
    assert.equal(resolveRedisUrl(client), 'rediss://h:6379/0#insecure');
    assert.equal(resolveTlsCa(client), 'IOREDIS-CA');
    assert.equal(resolveRedisUrl(ioredis({ lazyConnect: true, host: 'h', tls: {} })), 'rediss://h:6379/0');
    assert.equal(resolveRedisUrl(ioredis('redis://h:9', { lazyConnect: true, tls: {} })), 'rediss://h:9/0');
  });

  test('unix socket path', () => {
    assert.equal(resolveRedisUrl(ioredis({ lazyConnect: true, path: '/tmp/s.sock', db: 1 })), 'redis+unix:///tmp/s.sock?db=1');
  });

  test('Sentinel client: sentinels, name, credentials of both, db', () => {
    const client = ioredis({
      lazyConnect: true,
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
      name: 'mymaster',
      sentinelUsername: 'su',
      sentinelPassword: 'sp',
      username: 'du',
      password: 'dp',
      db: 2,
    });
    assert.equal(resolveRedisUrl(client), 'redis+sentinel://du:dp@s1:26379,s2:26380/mymaster/2?sentinelUsername=su&sentinelPassword=sp');
  });

  test('Sentinel client with TLS: needs enableTLSForSentinelMode; CAs of both', () => {
    const sentinels = [{ host: 's1', port: 26379 }];
    throwsOption(() => resolveRedisUrl(ioredis({ lazyConnect: true, sentinels, name: 'm', tls: {} })), /enableTLSForSentinelMode/);
    const both = ioredis({ lazyConnect: true, sentinels, name: 'm', tls: { ca: 'DATA-CA' }, enableTLSForSentinelMode: true, sentinelTLS: { ca: 'SENTINEL-CA' } });
    assert.equal(resolveRedisUrl(both), 'rediss+sentinel://s1:26379/m/0');
    assert.equal(resolveTlsCa(both), 'DATA-CA\nSENTINEL-CA');
    const dataOnly = ioredis({ lazyConnect: true, sentinels, name: 'm', tls: {}, enableTLSForSentinelMode: true });
    assert.equal(resolveRedisUrl(dataOnly), 'rediss+sentinel://s1:26379/m/0?sentinelTls=false');
    const sentinelOnly = ioredis({ lazyConnect: true, sentinels, name: 'm', sentinelTLS: {} });
    assert.equal(resolveRedisUrl(sentinelOnly), 'redis+sentinel://s1:26379/m/0?sentinelTls=true');
  });

  test('Cluster: startupNodes of every form, redisOptions credentials', () => {
    const cluster = ioredisCluster([{ host: 'a', port: 7000 }, 'b:7001', 7002, 'redis://c:7003'], { redisOptions: { username: 'u', password: 'p' } });
    assert.equal(isRedisClient(cluster), true);
    assert.equal(resolveRedisUrl(cluster), 'redis+cluster://u:p@a:7000,b:7001,127.0.0.1:7002,c:7003');
  });

  test('Cluster: redisOptions.tls (CA, rejectUnauthorized: false)', () => {
    const cluster = ioredisCluster([{ host: 'a', port: 7000 }], { redisOptions: { tls: { ca: 'CLUSTER-CA', rejectUnauthorized: false } } });
    assert.equal(resolveRedisUrl(cluster), 'rediss+cluster://a:7000#insecure');
    assert.equal(resolveTlsCa(cluster), 'CLUSTER-CA');
    assert.equal(resolveRedisUrl(ioredisCluster([{ host: 'a', port: 7000 }], { redisOptions: { tls: {} } })), 'rediss+cluster://a:7000');
    assert.equal(resolveRedisUrl(ioredisCluster([{ host: 'a', port: 7000 }])), 'redis+cluster://a:7000');
  });
});

describe('resolveTlsCa', () => {
  test('nothing, strings and settings without a CA give undefined (system CAs)', () => {
    assert.equal(resolveTlsCa(undefined), undefined);
    assert.equal(resolveTlsCa('rediss://h:1'), undefined);
    assert.equal(resolveTlsCa({}), undefined);
    assert.equal(resolveTlsCa({ tls: {} }), undefined);
    assert.equal(resolveTlsCa({ tls: { ca: null } }), undefined);
  });

  test('tls.ca, socket.ca and sentinelTLS.ca of settings; arrays, Buffers, duplicates dropped', () => {
    assert.equal(resolveTlsCa({ tls: { ca: 'A' } }), 'A');
    assert.equal(resolveTlsCa({ socket: { tls: true, ca: 'B' } }), 'B');
    assert.equal(resolveTlsCa({ sentinelTLS: { ca: 'S' } }), 'S');
    assert.equal(resolveTlsCa({ tls: { ca: ['A', Buffer.from('B')] } }), 'A\nB');
    assert.equal(resolveTlsCa({ tls: { ca: [Buffer.from('A'), 'B', 'A'] }, socket: { ca: 'C' }, sentinelTLS: { ca: 'D' } }), 'C\nA\nB\nD');
    assert.equal(resolveTlsCa({ tls: { ca: 'SAME' }, sentinelTLS: { ca: 'SAME' } }), 'SAME');
  });

  test('seed lists: each seed\'s CA', () => {
    assert.equal(resolveTlsCa([{ socket: { host: 'a', port: 1, ca: 'A' } }, { host: 'b', port: 2, tls: { ca: 'B' } }, 'c:3']), 'A\nB');
  });
});

describe('isPlainObject and isRedisClient', () => {
  test('isPlainObject: object literals and null-prototype objects only', () => {
    assert.equal(isPlainObject({}), true);
    assert.equal(isPlainObject(Object.create(null)), true);
    assert.equal(isPlainObject({ a: 1 }), true);
    for (const value of [null, undefined, [], 'x', 1, () => {}, new Map(), new Date(), new (class A {})(), Object.create({})]) {
      assert.equal(isPlainObject(value), false, String(value));
    }
  });

  test('isRedisClient: non-plain objects with publish, sendCommand or send_command', () => {
    assert.equal(isRedisClient(new (class A { publish() {} })()), true);
    assert.equal(isRedisClient(new (class B { sendCommand() {} })()), true);
    assert.equal(isRedisClient(new (class C { send_command() {} })()), true);
    assert.equal(isRedisClient(new (class D { publish = 'not a function'; })()), false);
    assert.equal(isRedisClient(new (class E {})()), false);
    assert.equal(isRedisClient({ publish() {} }), false, 'a plain object is settings, not a client');
    assert.equal(isRedisClient(null), false);
    assert.equal(isRedisClient(Object.assign(() => {}, { publish() {} })), false, 'functions are not clients');
    assert.equal(isRedisClient('redis://h:1'), false);
  });
});

describe('optionError and redact', () => {
  test('optionError: a TypeError with code ERR_SIO_OPTION naming the option', () => {
    const err = optionError('maxMessageBytes', 'expected a number');
    assert.ok(err instanceof TypeError);
    assert.equal(err.code, 'ERR_SIO_OPTION');
    assert.equal(err.message, 'sioadapter: invalid option `maxMessageBytes`: expected a number');
  });

  test('optionError redacts a URL password in its reason', () => {
    const err = optionError('pubClient', 'cannot use redis://user:Opt-Err-Pass@h:1/0');
    assert.equal(err.message, 'sioadapter: invalid option `pubClient`: cannot use redis://user:***@h:1/0');
  });

  test('redact hides userinfo passwords and password / pass / sentinelPassword parameters', () => {
    const cases = [
      ['redis://user:s3cr/e@t#x?y@host:6379/0', 'redis://user:***@host:6379/0'],
      ['failed redis://:pw1@h x', 'failed redis://:***@h x'],
      ['rediss://default:pw2@h:1?x=1', 'rediss://default:***@h:1?x=1'],
      ['not a URL: "redis+sentinel://:pw3@h:1/m"', 'not a URL: "redis+sentinel://:***@h:1/m"'],
      ['redis+sentinel://127.0.0.1:1/mymaster?sentinelPassword=abc&bogus=1', 'redis+sentinel://127.0.0.1:1/mymaster?sentinelPassword=***&bogus=1'],
      ['redis://h:1?PASSWORD=abc', 'redis://h:1?PASSWORD=***'],
      ['redis+unix:///tmp/s.sock?db=0&user=u&pass=abc', 'redis+unix:///tmp/s.sock?db=0&user=u&pass=***'],
      ['(redis://u:abc@h), redis://u:def@h', '(redis://u:***@h), redis://u:***@h'],
    ];
    for (const [text, expected] of cases) assert.equal(redact(text), expected);
  });

  test('redact keeps what is not a secret', () => {
    for (const text of ['redis://host:6379', 'redis://user@host:6379', 'error: host:6379 refused', 'no url, x=1 y=2', '']) {
      assert.equal(redact(text), text);
    }
    assert.equal(redact(42), '42');
  });

  test('a password given in a URL is hidden later wherever it appears, even outside a URL', () => {
    const secret = 'Noted-Unit-Secret-9f3';
    assert.equal(resolveRedisUrl(`redis://u:${secret}@h:1/0`), `redis://u:${secret}@h:1/0`);
    assert.equal(redact(`AUTH failed for ${secret}.`), 'AUTH failed for ***.');
  });
});

describe('the SIO_TLS_INSECURE warning', () => {
  /** A fresh copy of connection.js (its warned-once flag unset); the addon stays loaded once. */
  function freshConnection() {
    const saved = require.cache[CONNECTION];
    delete require.cache[CONNECTION];
    try {
      return require(CONNECTION);
    } finally {
      require.cache[CONNECTION] = saved;
    }
  }

  /** The SIO_TLS_INSECURE warnings emitted by `fn` (warnings are delivered on a later tick). */
  async function warningsOf(fn) {
    // Let the warnings of earlier tests (emitWarning delivers them on process.nextTick, which a
    // chain of promise jobs defers) arrive before listening.
    await new Promise((resolve) => setImmediate(resolve));
    const seen = [];
    const listener = (w) => seen.push(w);
    process.on('warning', listener);
    try {
      fn();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    return seen.filter((w) => w.code === 'SIO_TLS_INSECURE');
  }

  test('once per process when verification is off, never when it is on', async () => {
    const fresh = freshConnection();
    assert.notEqual(fresh, connection);
    const secure = await warningsOf(() => {
      fresh.resolveRedisUrl({ host: 'h', tls: {} });
      fresh.resolveRedisUrl('rediss://h:1');
    });
    assert.equal(secure.length, 0);
    const insecure = await warningsOf(() => {
      fresh.resolveRedisUrl({ host: 'h', tls: { rejectUnauthorized: false } });
      fresh.resolveRedisUrl('rediss://h:1#insecure');
    });
    assert.equal(insecure.length, 1);
    assert.match(insecure[0].message, /TLS certificate verification is turned off/);
  });
});

// ---------------------------------------------------------------------------------------------
// sharded.js
// ---------------------------------------------------------------------------------------------

const UID = 'a1b2c3d4e5f60718';
const opts = (rooms = ['room'], except = []) => ({ rooms, except, flags: { volatile: false } });
const packet = { type: 2, data: ['event', 1, 'two', { three: [3] }], nsp: '/' };

/** One well-formed message of each ClusterAdapter type (1..13), as ClusterAdapter builds them. */
const MESSAGES = {
  1: { uid: UID, nsp: '/', type: 1 }, // INITIAL_HEARTBEAT
  2: { uid: UID, nsp: '/', type: 2 }, // HEARTBEAT
  3: { uid: UID, nsp: '/', type: 3, data: { opts: opts(), packet } }, // BROADCAST
  '3+ack': { uid: UID, nsp: '/', type: 3, data: { opts: opts([], ['x']), packet, requestId: 'req-3' } },
  4: { uid: UID, nsp: '/', type: 4, data: { opts: opts(), rooms: ['r1', 'r2'] } }, // SOCKETS_JOIN
  5: { uid: UID, nsp: '/', type: 5, data: { opts: opts(), rooms: ['r1'] } }, // SOCKETS_LEAVE
  6: { uid: UID, nsp: '/', type: 6, data: { opts: opts(), close: true } }, // DISCONNECT_SOCKETS
  7: { uid: UID, nsp: '/', type: 7, data: { opts: opts(), requestId: 'req-7' } }, // FETCH_SOCKETS
  8: { uid: UID, nsp: '/', type: 8, data: { requestId: 'req-7', sockets: [{ id: 'sid', handshake: { query: {} }, rooms: ['sid'], data: { n: 1 } }] } }, // FETCH_SOCKETS_RESPONSE
  9: { uid: UID, nsp: '/', type: 9, data: { packet: ['hello', 1] } }, // SERVER_SIDE_EMIT
  '9+ack': { uid: UID, nsp: '/', type: 9, data: { packet: ['hello'], requestId: 'req-9' } },
  10: { uid: UID, nsp: '/', type: 10, data: { requestId: 'req-9', packet: 'answer' } }, // SERVER_SIDE_EMIT_RESPONSE
  11: { uid: UID, nsp: '/', type: 11, data: { requestId: 'req-3', clientCount: 4 } }, // BROADCAST_CLIENT_COUNT
  12: { uid: UID, nsp: '/', type: 12, data: { requestId: 'req-3', packet: ['ack'] } }, // BROADCAST_ACK
  13: { uid: UID, nsp: '/', type: 13 }, // ADAPTER_CLOSE
};

const clone = (value) => JSON.parse(JSON.stringify(value));
const json = (value) => Buffer.from(JSON.stringify(value));

describe('encodeMessage / decodeMessage: well-formed messages', () => {
  test('every type 1..13 round-trips as JSON text', () => {
    const types = new Set();
    for (const [name, message] of Object.entries(MESSAGES)) {
      const bytes = encodeMessage(message);
      assert.ok(Buffer.isBuffer(bytes), name);
      assert.equal(bytes.toString(), JSON.stringify(message), name);
      assert.deepEqual(decodeMessage(bytes), message, name);
      types.add(message.type);
    }
    assert.deepEqual([...types].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  });

  test('msgpack-encoded messages of every type are accepted too', () => {
    for (const [name, message] of Object.entries(MESSAGES)) {
      assert.deepEqual(decodeMessage(notepack.encode(message)), message, name);
    }
  });

  test('extra fields and unknown fields are kept', () => {
    const message = { ...MESSAGES[4], extra: { any: [1] } };
    assert.deepEqual(decodeMessage(encodeMessage(message)), message);
  });
});

describe('encodeMessage / decodeMessage: binary', () => {
  // Each binary-capable type with a Buffer put somewhere in its data.
  const binaryTypes = [
    ['BROADCAST', 3, (m, bin) => m.data.packet.data.push(bin)],
    ['FETCH_SOCKETS_RESPONSE', 8, (m, bin) => (m.data.sockets[0].data = { blob: bin })],
    ['SERVER_SIDE_EMIT', 9, (m, bin) => m.data.packet.push(bin)],
    ['SERVER_SIDE_EMIT_RESPONSE', 10, (m, bin) => (m.data.packet = [bin])],
    ['BROADCAST_ACK', 12, (m, bin) => (m.data.packet = [{ deep: [[bin]] }])],
  ];

  for (const [name, type, put] of binaryTypes) {
    test(`${name} (${type}) carrying a Buffer is msgpack and decodes with the bytes`, () => {
      const message = clone(MESSAGES[type]);
      const bin = Buffer.from([0, 1, 2, 0xff]);
      put(message, bin);
      const bytes = encodeMessage(message);
      assert.notEqual(bytes[0], 0x7b, 'not JSON');
      assert.throws(() => JSON.parse(bytes.toString()));
      assert.deepEqual(notepack.decode(bytes), message);
      const decoded = decodeMessage(bytes);
      assert.deepEqual(decoded, message);
      const back = [];
      (function walk(v) {
        if (Buffer.isBuffer(v)) back.push(v);
        else if (v && typeof v === 'object') Object.values(v).forEach(walk);
      })(decoded.data);
      assert.equal(back.length, 1, 'one Buffer back');
      assert.deepEqual([...back[0]], [0, 1, 2, 0xff]);
    });
  }

  test('ArrayBuffer, Uint8Array and Buffer views with an offset choose msgpack and keep exactly their bytes', () => {
    const backing = new Uint8Array([10, 11, 12, 13, 14, 15]).buffer;
    const message = clone(MESSAGES[9]);
    message.data.packet = ['bin', backing, new Uint8Array(backing, 2, 3), Buffer.from(backing, 4, 2)];
    const bytes = encodeMessage(message);
    assert.notEqual(bytes[0], 0x7b);
    const decoded = decodeMessage(bytes);
    assert.ok(decoded);
    const [event, whole, view, buf] = decoded.data.packet;
    assert.equal(event, 'bin');
    assert.deepEqual([...whole], [10, 11, 12, 13, 14, 15]);
    assert.deepEqual([...view], [12, 13, 14], 'only the view\'s bytes, not its whole buffer');
    assert.deepEqual([...buf], [14, 15]);
  });

  test('views of wider elements and DataView keep their bytes; the message is not changed', () => {
    const message = clone(MESSAGES[9]);
    const wide = new Uint16Array([0x0102]);
    message.data.packet = ['bin', wide, new DataView(new Uint8Array([1, 2, 3]).buffer, 1, 2), { nested: [new Float32Array([1])] }];
    const decoded = decodeMessage(encodeMessage(message));
    assert.deepEqual([...decoded.data.packet[1]], [...Buffer.from(wide.buffer)]);
    assert.deepEqual([...decoded.data.packet[2]], [2, 3]);
    assert.equal(decoded.data.packet[3].nested[0].length, 4);
    assert.ok(message.data.packet[1] === wide, 'the caller\'s message keeps its own objects');
  });

  test('binary reached through toJSON() chooses msgpack', () => {
    const message = clone(MESSAGES[9]);
    message.data.packet = ['e', { toJSON: () => ({ b: Buffer.from([7]) }) }];
    const bytes = encodeMessage(message);
    assert.notEqual(bytes[0], 0x7b);
    const decoded = decodeMessage(bytes);
    assert.deepEqual(decoded.data.packet[1], { b: Buffer.from([7]) });
  });

  test('types that cannot carry binary stay JSON even with a Buffer inside', () => {
    for (const type of [4, 5, 6, 7, 11]) {
      const message = clone(MESSAGES[type]);
      message.data.blob = Buffer.from([1, 2]);
      const bytes = encodeMessage(message);
      assert.equal(bytes[0], 0x7b, `type ${type}`);
      assert.deepEqual(JSON.parse(bytes.toString()).data.blob, { type: 'Buffer', data: [1, 2] });
    }
  });

  test('binary-capable types without binary stay JSON', () => {
    for (const type of [3, 8, 9, 10, 12]) {
      assert.equal(encodeMessage(MESSAGES[type])[0], 0x7b, `type ${type}`);
    }
  });
});

describe('decodeMessage: malformed input gives null', () => {
  test('invalid JSON, msgpack garbage, empty and truncated input', () => {
    const full = notepack.encode(MESSAGES[3]);
    for (const bytes of [
      Buffer.from('{'),
      Buffer.from('{"uid":"x","type":1'),
      Buffer.from('{"uid":"x","type":1}}'),
      Buffer.from([0xc1]), // never used in msgpack
      Buffer.from([0xff, 0x00, 0x13]),
      Buffer.alloc(0),
      full.subarray(0, full.length - 3),
      Buffer.concat([full, Buffer.from([0x01])]), // trailing bytes
      Buffer.from(' {"uid":"x","type":1}'), // JSON must start with '{'
    ]) {
      assert.equal(decodeMessage(bytes), null, JSON.stringify(bytes.toString('hex')));
    }
  });

  test('decoded values that are not message objects', () => {
    for (const value of [null, 1, 'x', true, [MESSAGES[1]]]) {
      assert.equal(decodeMessage(notepack.encode(value)), null, JSON.stringify(value));
    }
    assert.equal(decodeMessage(json([MESSAGES[1]])), null);
  });

  // Whether a message has the fields its type needs (uid, type, data.opts, ...) is checked by
  // the Rust engine before JS sees it: src/protocol/cluster.rs tests every type's fields, in
  // JSON and msgpack, and test/rust/sharded_engine.rs that such messages are dropped.
});

// ---------------------------------------------------------------------------------------------
// limits.js
// ---------------------------------------------------------------------------------------------

describe('readLimits', () => {
  const MIB = 1024 * 1024;
  const DOCUMENTED = {
    maxMessageBytes: 16 * MIB,
    maxMessageValues: 1_000_000,
    maxMessageDepth: 256,
    maxReceiveBufferBytes: 256 * MIB,
    maxQueuedPublishes: 100_000,
    maxQueuedBytes: 64 * MIB,
  };
  const CEILING = { maxMessageDepth: 1024, maxQueuedPublishes: 2 ** 32 - 1 };

  test('the option list', () => {
    assert.deepEqual([...LIMIT_OPTIONS].sort(), ['maxMessageBytes', 'maxMessageDepth', 'maxMessageValues', 'maxQueuedBytes', 'maxQueuedPublishes', 'maxReceiveBufferBytes']);
  });

  test('defaults (the documented values) when nothing or undefined is given', () => {
    assert.deepEqual(readLimits(undefined), DOCUMENTED);
    assert.deepEqual(readLimits(null), DOCUMENTED);
    assert.deepEqual(readLimits({}), DOCUMENTED);
    assert.deepEqual(readLimits({ key: 'socket.io', maxMessageBytes: undefined, unrelated: 'x' }), DOCUMENTED);
  });

  test('each option alone: accepted at 1, a typical value and its ceiling; only it changes', () => {
    for (const name of LIMIT_OPTIONS) {
      for (const value of [1, 8, CEILING[name] ?? Number.MAX_SAFE_INTEGER]) {
        const got = readLimits({ [name]: value });
        const expected = clone(DOCUMENTED);
        expected[name] = value;
        assert.deepEqual(got, expected, `${name} = ${value}`);
      }
    }
  });

  test('all options at once', () => {
    const given = { maxMessageBytes: 4096, maxMessageValues: 200, maxMessageDepth: 8, maxReceiveBufferBytes: 1 << 20, maxQueuedPublishes: 10, maxQueuedBytes: 100000 };
    assert.deepEqual(readLimits(given), given);
  });

  test('each option refuses 0, negatives, non-integers, strings, NaN, Infinity, null, booleans, objects and unsafe integers', () => {
    const bad = [0, -1, -100, 1.5, 0.5, '10', '', NaN, Infinity, -Infinity, null, true, [1], { n: 1 }, Number.MAX_SAFE_INTEGER + 1];
    for (const name of LIMIT_OPTIONS) {
      const ceiling = CEILING[name] ?? Number.MAX_SAFE_INTEGER;
      for (const value of bad) {
        throwsOption(() => readLimits({ [name]: value }), new RegExp(`expected an integer from 1 to ${ceiling}, got `), name);
      }
    }
  });

  test('values over the ceiling are refused: maxMessageDepth 1025, maxQueuedPublishes 2^32', () => {
    throwsOption(() => readLimits({ maxMessageDepth: 1025 }), /expected an integer from 1 to 1024, got 1025$/, 'maxMessageDepth');
    throwsOption(() => readLimits({ maxMessageDepth: 1_000_000 }), /from 1 to 1024/, 'maxMessageDepth');
    throwsOption(() => readLimits({ maxQueuedPublishes: 2 ** 32 }), /expected an integer from 1 to 4294967295, got 4294967296$/, 'maxQueuedPublishes');
    // Options without a ceiling of their own take any safe integer.
    assert.equal(readLimits({ maxMessageBytes: 2 ** 40 }).maxMessageBytes, 2 ** 40);
  });

  test('the error names the first bad option and shows the value', () => {
    throwsOption(() => readLimits({ maxMessageValues: -3 }), /got -3$/, 'maxMessageValues');
    throwsOption(() => readLimits({ maxQueuedBytes: '10' }), /got "10"$/, 'maxQueuedBytes');
  });

  test('a BigInt value', () => {
    throwsOption(() => readLimits({ maxMessageBytes: 10n }), /got 10n$/, 'maxMessageBytes');
    throwsOption(() => readLimits({ maxMessageBytes: NaN }), /got NaN$/, 'maxMessageBytes');
  });
});
