'use strict';
// The adapter events an ours node reports (server spec `adapterEvents: true`; ServerHandle
// `adapterEvents`: [{ at, nsp, event, error }]), for tests that wait on them:
//
//   const { eventLog, findEvent, waitForAdapterEvent } = adapterEventHelpers({ timeoutMs: 15000 });
//   const i = await waitForAdapterEvent(node, mark, isError, `${node.label}: adapter 'error'`);
//   assert.ok(findEvent(node, i + 1, isReady) >= 0, eventLog(node, mark));

const assert = require('node:assert/strict');

const isError = (e) => e.event === 'error';
const isRedisError = (e) => e.event === 'error' && Boolean(e.error) && e.error.code === 'ERR_SIO_REDIS';
const isReady = (e) => e.event === 'ready';

/** Time of day, HH:MM:SS.mmm (UTC). */
const clock = (ms) => new Date(ms).toISOString().slice(11, 23);
/** `+N ms` (or `-N ms`) relative to `t0`. */
const since = (t0) => (ms) => `${ms - t0 >= 0 ? '+' : ''}${ms - t0} ms`;

/**
 * eventLog / findEvent / waitForAdapterEvent for one test file:
 * - `nsp`: only the events of this namespace (default: all);
 * - `at(ms)`: how eventLog writes times (default: time of day);
 * - `timeoutMs`: waitForAdapterEvent's default timeout (default: ServerHandle#waitForMessages');
 * - `report(server)` (may be async): what a failed wait adds to its message (default: eventLog and
 *   the node's state).
 */
function adapterEventHelpers({ nsp = null, at = clock, timeoutMs: defaultTimeoutMs, report = null } = {}) {
  const selected = (e) => nsp === null || e.nsp === nsp;

  /** A node's adapter events since index `from`, one line each (times relative to `t0` if given), for failure messages. */
  function eventLog(server, from = 0, t0 = null) {
    const time = t0 === null ? at : since(t0);
    const lines = server.adapterEvents.slice(from).filter(selected).map((e) =>
      `${time(e.at)} ${e.nsp} ${e.event}${e.error ? ` [${e.error.code}] ${e.error.message}` : ''}`);
    return `${server.label} adapter events${nsp === null ? '' : ` on '${nsp}'`}${from ? ` since #${from}` : ''}: ` +
      `${lines.length ? `\n    ${lines.join('\n    ')}` : 'none'}`;
  }

  /** Index of the first adapter event at or after `from` matching `pred`, or -1. */
  function findEvent(server, from, pred) {
    for (let i = from; i < server.adapterEvents.length; i++) {
      const e = server.adapterEvents[i];
      if (selected(e) && pred(e)) return i;
    }
    return -1;
  }

  /** Waits for an adapter event at or after index `from` matching `pred`; returns its index. */
  async function waitForAdapterEvent(server, from, pred, what, timeoutMs = defaultTimeoutMs) {
    try {
      await server.waitForMessages('adapterEvent', () => findEvent(server, from, pred) >= 0, timeoutMs, what);
    } catch (err) {
      assert.fail(`${err.message}\n${report ? await report(server) : `${eventLog(server)}\n${server.describeState()}`}`);
    }
    return findEvent(server, from, pred);
  }

  return { eventLog, findEvent, waitForAdapterEvent };
}

module.exports = { adapterEventHelpers, isError, isRedisError, isReady, clock, since };
