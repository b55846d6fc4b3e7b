'use strict';
// Exact-delivery checks shared by the sharded tests.

const assert = require('node:assert/strict');

/**
 * Asserts that every client got exactly what was sent to it: `sent` lists `{ event, args,
 * recipients }` (a Set of clients), `clients` every client that might have received something.
 * One assertion listing every wrong delivery.
 */
function assertExactDeliveries(sent, clients) {
  const failures = [];
  for (const { event, args, recipients } of sent) {
    for (const c of clients) {
      const got = c.received(event);
      const want = recipients.has(c) ? [args] : [];
      try {
        assert.deepStrictEqual(got, want);
      } catch {
        failures.push(`${event} → ${c.role} on ${c.server.label}: got ${got.length} (${JSON.stringify(got).slice(0, 120)}), want ${want.length}`);
      }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} wrong deliveries:\n  ${failures.join('\n  ')}`);
}

module.exports = { assertExactDeliveries };
