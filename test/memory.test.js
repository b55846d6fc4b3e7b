'use strict';
// `releaseMemoryWhenIdle` (npm/lib/heap.js): a node that received a heavy stretch of broadcasts
// gives the memory back once the traffic stops, instead of keeping it until V8 next needs room.
//
// One key, four nodes: A (official) emits 2,000 broadcasts of a 10 KB string (20 MB) to every
// client; B is ours (default options), C is ours with `releaseMemoryWhenIdle: false`, D is the
// official adapter; each has 2 websocket clients. Asserted, as a user sees it:
// 1. every client gets every broadcast exactly once (the release never touches delivery);
// 2. within 6 s of the last delivery, B's V8 heap (heapUsed + arrayBuffers) is back within
//    HEAP_SLACK of what it was before the stretch, and its RSS gave back at least a third of what it
//    grew by during it.
// C and D (no release) are reported beside B as diagnostics: V8 collects their garbage whenever
// it next needs room, so what they hold at a given moment is not asserted.
// Run: node --test test/memory.test.js (from the repository root).

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { io: connect } = require('socket.io-client');

const { uniqueKey, startServers, waitUntil, stopAll } = require('./helpers/cluster');

const COMMANDS_MODULE = path.join(__dirname, 'helpers', 'memory-commands.js');
const COUNT = 2000;
const SIZE = 10 * 1024;
const CLIENTS_PER_NODE = 2;
const MiB = 2 ** 20;
/** How far above its level before the stretch B's V8 heap may stay once released. */
const HEAP_SLACK = 16 * MiB;
const mib = (n) => (n / MiB).toFixed(0);
const v8Held = (m) => m.heapUsed + m.arrayBuffers;

after(stopAll);

/** A socket.io client of `port` that counts `event`s by sequence number (nothing else kept). */
function countingClient(port, event) {
  const socket = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
  const seen = new Map();
  socket.on(event, (n) => seen.set(n, (seen.get(n) || 0) + 1));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, seen }));
    socket.once('connect_error', reject);
  });
}

describe('releaseMemoryWhenIdle: memory falls back after a heavy stretch of broadcasts', { timeout: 90000 }, () => {
  it(`after ${COUNT} × ${SIZE / 1024} KB broadcasts, ours gives the memory back; delivery untouched`, async (t) => {
    const [A, ...receivers] = await startServers(
      [
        { adapter: 'official', label: 'A(official)' },
        { adapter: 'ours', label: 'B(ours)' },
        { adapter: 'ours', label: 'C(ours, releaseMemoryWhenIdle: false)', releaseMemoryWhenIdle: false },
        { adapter: 'official', label: 'D(official)' },
      ],
      { key: uniqueKey(), namespaces: ['/'], commandModules: [COMMANDS_MODULE] },
    );
    const clients = [];
    for (const node of receivers) {
      for (let i = 0; i < CLIENTS_PER_NODE; i++) clients.push({ node, ...(await countingClient(node.port, 'big')) });
    }
    try {
      const before = await Promise.all(receivers.map((n) => n.command('memory')));
      const peak = before.map((m) => m.rss);
      const sampling = setInterval(async () => {
        const now = await Promise.all(receivers.map((n) => n.command('memory').catch(() => null)));
        now.forEach((m, i) => m && (peak[i] = Math.max(peak[i], m.rss)));
      }, 100);
      try {
        await A.command('emitStrings', { event: 'big', count: COUNT, size: SIZE, chunk: 100 });
        await waitUntil(() => clients.every((c) => c.seen.size === COUNT), { timeoutMs: 30000, intervalMs: 50, what: `every client has ${COUNT} broadcasts` });
      } finally {
        clearInterval(sampling);
      }
      for (const c of clients) {
        const twice = [...c.seen.values()].filter((k) => k !== 1).length;
        assert.equal(twice, 0, `${c.node.label}: ${twice} broadcasts arrived more than once`);
      }
      const delivered = await Promise.all(receivers.map((n) => n.command('memory')));
      // B, ours with the defaults: its V8 heap back near where it was, and at least a third of
      // the RSS growth given back (the trim runs on a thread of the addon's, just after; V8 keeps
      // some of the pages its heap grew by).
      const b = 0;
      const grew = peak[b] - before[b].rss;
      let now = delivered[b];
      await waitUntil(async () => {
        now = await receivers[b].command('memory');
        return v8Held(now) <= v8Held(before[b]) + HEAP_SLACK && now.rss - before[b].rss <= (grew * 2) / 3;
      }, { timeoutMs: 6000, intervalMs: 200, what: `${receivers[b].label}'s memory given back` }).catch((err) => {
        err.message += `: V8 heap+buffers ${mib(v8Held(before[b]))} → ${mib(v8Held(now))} MiB (at most +${mib(HEAP_SLACK)}), ` +
          `RSS ${mib(before[b].rss)} → peak ${mib(peak[b])} → ${mib(now.rss)} MiB (at most two thirds of the growth kept)`;
        throw err;
      });
      const later = await Promise.all(receivers.map((n) => n.command('memory')));
      receivers.forEach((node, i) => {
        t.diagnostic(`${node.label}: RSS ${mib(before[i].rss)} → peak ${mib(peak[i])} → delivered ${mib(delivered[i].rss)} → now ${mib(later[i].rss)} MiB; ` +
          `V8 heap+buffers ${mib(v8Held(before[i]))} → ${mib(v8Held(delivered[i]))} → ${mib(v8Held(later[i]))} MiB`);
      });
    } finally {
      for (const c of clients) c.socket.close();
    }
  });
});
