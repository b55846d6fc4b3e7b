'use strict';
// The one way the benchmark runs child processes: `spawnNode` forks a Node script with an IPC
// channel and returns a handle whose `call(cmd, payload)` resolves with the child's answer (or
// rejects after a timeout); `serve(handlers)` is the child's side of the same protocol. Every
// child is tracked and SIGKILLed when the benchmark exits for any reason, and a child exits by
// itself when its parent goes away (the IPC channel closes), so nothing outlives a run.

const { fork } = require('node:child_process');

const live = new Set();
let seq = 0;
let hooksInstalled = false;

/** Kills every child still running (SIGKILL: used on exit paths, where nothing can wait). */
function killAll() {
  for (const proc of live) proc.child.kill('SIGKILL');
  live.clear();
}

function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      killAll();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

class Proc {
  constructor(child, label) {
    this.child = child;
    this.label = label;
    this.pending = new Map();
    this.exit = null;
    this.output = '';
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        for (const { reject } of this.pending.values()) reject(new Error(`${label} exited (code ${code}, signal ${signal})${this.tail()}`));
        this.pending.clear();
        resolve(this.exit);
      });
    });
    child.on('message', (msg) => {
      const entry = this.pending.get(msg.id);
      if (!entry) return;
      this.pending.delete(msg.id);
      if (msg.error) entry.reject(new Error(`${label} ${entry.cmd}: ${msg.error}`));
      else entry.resolve(msg.result);
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        this.output = (this.output + chunk).slice(-4000);
        if (process.env.BENCH_VERBOSE) process.stderr.write(`[${label}] ${chunk}`);
      });
    }
  }

  tail() {
    return this.output ? `\n--- ${this.label} output (tail) ---\n${this.output.trimEnd()}` : '';
  }

  /** Runs `cmd` in the child; rejects if it fails, the child exits, or `timeoutMs` passes. */
  call(cmd, payload = {}, timeoutMs = 15000) {
    if (this.exit) return Promise.reject(new Error(`${this.label} is not running${this.tail()}`));
    const id = ++seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label} ${cmd}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (fn) => (value) => {
        clearTimeout(timer);
        fn(value);
      };
      this.pending.set(id, { cmd, resolve: settle(resolve), reject: settle(reject) });
      this.child.send({ id, cmd, payload });
    });
  }

  /** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
  async stop(graceMs = 2000) {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Forks `script` with `config` as its JSON argument and an IPC channel; `execArgv`: node's own flags (e.g. ['--expose-gc']). */
function spawnNode(script, config, label, { execArgv } = {}) {
  installExitHooks();
  const child = fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], ...(execArgv ? { execArgv } : {}) });
  const proc = new Proc(child, label);
  live.add(proc);
  return proc;
}

/** The config a child was spawned with (see `spawnNode`). */
function childConfig() {
  return JSON.parse(process.argv[2] || '{}');
}

/** Child side: answers `{ id, cmd, payload }` messages with `handlers[cmd](payload)`. */
function serve(handlers) {
  process.on('message', async ({ id, cmd, payload }) => {
    try {
      const handler = handlers[cmd];
      if (!handler) throw new Error(`unknown command ${cmd}`);
      const result = await handler(payload);
      process.send({ id, result: result === undefined ? null : result });
    } catch (err) {
      if (process.connected) process.send({ id, error: (err && err.stack) || String(err) });
    }
  });
  // The parent went away (finished, crashed or was killed): nothing left to do here.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
function wallNow() {
  return performance.timeOrigin + performance.now();
}

/**
 * Handlers measuring this process: `mark` starts a window (with `{ gc: true }`, after a full
 * garbage collection when the process runs with --expose-gc, so that the window does not pay for
 * garbage made before it), `usage` gives CPU µs (user+system, all threads) and event-loop
 * utilisation since the mark, and RSS now.
 */
function usageHandlers() {
  const { performance } = require('node:perf_hooks');
  let mark = { cpu: process.cpuUsage(), elu: performance.eventLoopUtilization() };
  return {
    mark({ gc = false } = {}) {
      if (gc && typeof global.gc === 'function') global.gc();
      mark = { cpu: process.cpuUsage(), elu: performance.eventLoopUtilization() };
    },
    usage() {
      const cpu = process.cpuUsage(mark.cpu);
      return {
        cpuUs: cpu.user + cpu.system,
        elu: performance.eventLoopUtilization(mark.elu).utilization,
        rss: process.memoryUsage().rss,
      };
    },
  };
}

/**
 * Runs a coordinator's `main` and exits: 1 when it throws or when `failures()` is above 0 at the
 * end (a round that failed, not merely lost messages), 0 otherwise; every child is killed first.
 */
function runMain(main, failures) {
  main().then(
    () => {
      killAll();
      process.exit(failures() > 0 ? 1 : 0);
    },
    (err) => {
      process.stderr.write(`${err.stack || String(err)}\n`);
      killAll();
      process.exit(1);
    },
  );
}

module.exports = { spawnNode, serve, childConfig, killAll, runMain, wallNow, usageHandlers };
