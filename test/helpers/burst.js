'use strict';
// The numbered burst of coalesce.test.js, shared by the test (expected values) and the server
// child (coalesce-commands.js `burst`): message i is `emit(event, ...burstArgs(i))`.
//   every 100th (i % 100 === 0): [i, ~20 KB string (with a non-ASCII character)]
//   every other 50th:            [i, Buffer, { n, nested: Buffer }]   (two binary attachments)
//   the rest:                    [i, small object]

const BIG = 20 * 1024;

function bigString(i) {
  return `${i}|é|`.padEnd(BIG, String.fromCharCode(97 + (Math.floor(i / 100) % 26)));
}

/** `len` bytes derived from `seed`, every byte value 0..255 appearing across the burst. */
function bytes(seed, len) {
  const buf = Buffer.alloc(len);
  for (let k = 0; k < len; k++) buf[k] = (seed * 31 + k * 7) & 0xff;
  return buf;
}

function burstArgs(i) {
  if (i % 100 === 0) return [i, bigString(i)];
  if (i % 50 === 0) return [i, bytes(i, 1 + (i % 257)), { n: i, nested: bytes(i + 1, 16) }];
  return [i, { n: i, s: `m${i}`, list: [i, i % 7, null, true] }];
}

/** Burst messages around which coalesce.test.js makes the server emit directly to one socket. */
function isDirectPoint(i) {
  return i % 150 === 0 || i % 300 === 77;
}

module.exports = { burstArgs, isDirectPoint };
