'use strict';
// Counting numbered broadcasts at socket.io test clients (helpers/cluster.js TestClient), for the
// tests that measure loss and duplicates under faults (faults.test.js, sentinel.test.js,
// cluster.test.js): every event whose name starts with `prefix` and whose first argument is a
// number n is counted per event and n.
//
//   attachTally(client);                        // once per client, before the traffic
//   streamStats(client, 'f1:A', sent)           // { sent, received (distinct 1..sent), lost, dups }
//   dupsOf(client, 'f1:')                       // { dups, detail } over every event starting with 'f1:'

/** Starts counting at `client` (client.tally: event → Map n → copies); returns the client. */
function attachTally(client, prefix = 'f') {
  client.tally = new Map();
  // prependAny: counted before TestClient's own onAny wakes up its waiters.
  client.socket.prependAny((event, n) => {
    if (typeof event !== 'string' || !event.startsWith(prefix) || typeof n !== 'number') return;
    let m = client.tally.get(event);
    if (!m) client.tally.set(event, (m = new Map()));
    m.set(n, (m.get(n) || 0) + 1);
  });
  return client;
}

/** { sent, received (distinct, 1..sent), lost, dups } of `event` at `client`. */
function streamStats(client, event, sent) {
  const m = client.tally.get(event) || new Map();
  let received = 0;
  let dups = 0;
  for (const [n, copies] of m) {
    if (n >= 1 && n <= sent) received++;
    dups += copies - 1;
  }
  return { sent, received, lost: sent - received, dups };
}

/** Numbers of `event` among `numbers` that `client` never got. */
function missing(client, event, numbers) {
  const m = client.tally.get(event) || new Map();
  return numbers.filter((n) => !m.has(n));
}

/** Copies beyond the first of every numbered broadcast whose event starts with `prefix`, at `client`. */
function dupsOf(client, prefix) {
  let dups = 0;
  const detail = [];
  for (const [event, m] of client.tally) {
    if (!event.startsWith(prefix)) continue;
    for (const [n, copies] of m) {
      if (copies > 1) {
        dups += copies - 1;
        if (detail.length < 5) detail.push(`${event} #${n} x${copies}`);
      }
    }
  }
  return { dups, detail };
}

module.exports = { attachTally, streamStats, missing, dupsOf };
