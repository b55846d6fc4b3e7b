'use strict';
// A private redis-server for tests that must kill and restart Redis: started as a child process
// on a free loopback port below the ephemeral range (so that no outgoing connection can hold the
// port while Redis is down and must come back on it), no automatic persistence (an explicit SAVE
// still writes dump.rdb in its own dir, which a restart loads). Every instance is tracked
// and killed by stopAllRedis(); as a last resort, helpers/redis-process.js SIGKILLs it (and removes
// its directory) when the test process exits or gets SIGINT/SIGTERM/SIGHUP.

const { RedisProcess, freePort, portAnswers, serverArgs, tempDir, removeDir } = require('./redis-process');

const created = new Set(); // PrivateRedis instances not stopped yet

class PrivateRedis extends RedisProcess {
  /** `extraArgs`: more redis-server arguments, e.g. ['--enable-debug-command', 'local']. */
  constructor(port, extraArgs = []) {
    const dir = tempDir('sio-redis-');
    super('redis-server', port, serverArgs(port, dir, ...extraArgs));
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = dir;
    this.starts = 0;
    created.add(this);
  }

  /** Starts redis-server on this.port and resolves once it answers PING (rejects after timeoutMs). */
  async start(timeoutMs = 10000) {
    if (!this.running) this.starts++;
    return super.start(timeoutMs);
  }

  // kill(signal = 'SIGKILL'): see RedisProcess#kill (resolves once the port refuses connections).

  /** Kills the server (if running) and removes its directory. */
  async stop() {
    await super.stop();
    created.delete(this);
    removeDir(this.dir);
  }
}

/** A PrivateRedis on a free port, started unless `{ start: false }`; `args`: more redis-server arguments. */
async function privateRedis({ start = true, args = [] } = {}) {
  const redis = new PrivateRedis(await freePort(), args);
  if (start) await redis.start();
  return redis;
}

/** Kills every private Redis started by this process. */
async function stopAllRedis() {
  await Promise.all([...created].map((r) => r.stop()));
}

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
