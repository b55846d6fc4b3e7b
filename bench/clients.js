'use strict';
// The socket.io clients of the benchmark, all in this one process (so their cost is not charged
// to either server node). They count what they receive; the coordinator asks them to expect
// `n` messages of an event and then waits for the last client to have the last one — or for
// delivery to stall, in which case the missing messages are reported as lost.

const { io: connect } = require('socket.io-client');
const { serve, wallNow, usageHandlers } = require('./lib/proc');

/** Connected clients by group name. */
const groups = new Map();

/** What the clients are counting now. */
let target = null; // { event, need: Map socket -> n, counts: Map socket -> n, reached, delivered, lastAt, doneAt }
let wake = null;

function onEvent(socket, event) {
  if (!target || event !== target.event || !target.counts.has(socket)) return;
  const count = target.counts.get(socket) + 1;
  target.counts.set(socket, count);
  target.delivered++;
  target.lastAt = wallNow();
  if (count === target.need.get(socket) && ++target.reached === target.counts.size) {
    target.doneAt = target.lastAt;
    if (wake) wake();
  }
}

function connectOne(port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, timeout: timeoutMs });
    socket.onAny((event) => onEvent(socket, event));
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(new Error(`client to port ${port}: ${err.message}`)));
  });
}

serve({
  ...usageHandlers(),

  async connect({ group, port, n, timeoutMs = 5000 }) {
    const sockets = await Promise.all(Array.from({ length: n }, () => connectOne(port, timeoutMs)));
    groups.set(group, [...(groups.get(group) || []), ...sockets]);
    return sockets.length;
  },

  disconnect({ group }) {
    for (const socket of groups.get(group) || []) socket.disconnect();
    groups.delete(group);
  },

  /**
   * Resets the counters: from now on each client of `group` (a name or a list of names) should
   * get `n` × `event`; or, with `perGroup` ({ name: n, ... }), each client of each named group
   * its group's n (0: the client counts as done from the start).
   */
  expect({ group, event, n, perGroup }) {
    const needs = perGroup || Object.fromEntries([].concat(group).map((name) => [name, n]));
    const need = new Map();
    for (const [name, count] of Object.entries(needs)) for (const socket of groups.get(name) || []) need.set(socket, count);
    const reached = [...need.values()].filter((count) => count === 0).length;
    target = { event, need, counts: new Map([...need.keys()].map((s) => [s, 0])), reached, delivered: 0, lastAt: 0, doneAt: 0 };
    if (reached === need.size) target.doneAt = wallNow();
  },

  /**
   * Resolves when every client has its `n` messages, or when nothing arrived for `idleMs`, or
   * after `maxMs` — whichever comes first. Times are wall-clock ms (see wallNow).
   */
  async wait({ idleMs, maxMs }) {
    const started = wallNow();
    while (!target.doneAt) {
      const now = wallNow();
      if (now - Math.max(started, target.lastAt) >= idleMs || now - started >= maxMs) break;
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
      wake = null;
    }
    const expected = [...target.need.values()].reduce((a, b) => a + b, 0);
    return {
      complete: Boolean(target.doneAt),
      delivered: target.delivered,
      expected,
      clients: target.counts.size,
      doneAt: target.doneAt,
      lastAt: target.lastAt,
    };
  },
});
