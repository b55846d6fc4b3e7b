'use strict';
// Broadcasts that must reach the clients: emit from one node (bench/node.js `emit`), count in
// the clients' processes (bench/clients.js `expect` / `wait`, via a ClientPool), and never wait
// forever — what has not arrived when delivery stalls is reported as lost. Shared by bench.js
// and scale.js.

/**
 * Emits `emission` ({ event, payload, n, chunk, rooms? }: see node.js `emit`) from `emitter`
 * and waits (bounded by `idleMs` without progress and `maxWaitMs` in all) for the clients to
 * have what `expectation` says ({ group, n } or { perGroup }: see clients.js `expect`).
 * Returns the clients' `wait` result plus `arrived`, `lost`, `t0` and `emittedAt` (wall ms of
 * the first and the last emit) and `rate` (broadcasts per second per client, until the last one
 * arrived).
 */
async function deliver(emitter, clients, expectation, emission, { idleMs, maxWaitMs }) {
  await clients.call('expect', { ...expectation, event: emission.event });
  const { t0, t1 } = await emitter.call('emit', emission, 120000);
  const result = await clients.call('wait', { idleMs, maxMs: maxWaitMs }, maxWaitMs + 10000);
  const arrived = Math.min(result.delivered, result.expected);
  const end = result.complete ? result.doneAt : result.lastAt;
  const seconds = (end - t0) / 1000;
  return { ...result, t0, emittedAt: t1, arrived, lost: result.expected - arrived, rate: seconds > 0 ? arrived / result.clients / seconds : NaN };
}

/**
 * Emits a marker to every socket until each client of `group` (a name or a list of names) has
 * one: proves the whole path is subscribed. Throws after 50 attempts (about 10 s).
 */
async function warmUp(emitter, clients, group) {
  for (let attempt = 0; attempt < 50; attempt++) {
    await clients.call('expect', { group, event: 'warm', n: 1 });
    await emitter.call('emit', { event: 'warm', payload: 'small', n: 1, chunk: 1 });
    const r = await clients.call('wait', { idleMs: 200, maxMs: 200 });
    if (r.complete) return;
  }
  throw new Error('warm-up broadcast never reached every client (10 s)');
}

module.exports = { deliver, warmUp };
