"use strict";
// The `parser` option of the official adapter and emitter: what encodes broadcasts, broadcasts
// with ack and their acknowledgements (every other request and response is JSON). notepack.io,
// the default, is spoken by the Rust core itself; any other `{ encode, decode }` (e.g. JSON, so
// other languages can read the channels, or msgpackr) is called here, in JS, and the core passes
// its messages through unread.

const notepack = require("notepack.io");
const { optionError } = require("./connection");

/** True for a parser that is notepack.io (any copy of it): the same bytes for a probe. */
function encodesLikeNotepack(parser) {
  const probe = [1, -2.5, "é", { a: [true, null] }, Buffer.from([1, 2])];
  try {
    return Buffer.compare(toBuffer(parser.encode(probe)), notepack.encode(probe)) === 0;
  } catch {
    return false;
  }
}

/**
 * The `parser` option, checked: `{ parser, custom }`, where `custom` says that JS encodes and
 * decodes with it (it is not notepack.io). `needsDecode`: the adapter decodes too; the emitter
 * only encodes.
 */
function readParser(parser, needsDecode) {
  if (parser === undefined || parser === null) return { parser: notepack, custom: false };
  const methods = needsDecode ? ["encode", "decode"] : ["encode"];
  const missing = methods.filter((name) => typeof parser[name] !== "function");
  if (typeof parser !== "object" || missing.length > 0) {
    throw optionError("parser", `expected an object with ${methods.map((m) => `${m}()`).join(" and ")} (e.g. notepack.io, msgpackr, or { encode: JSON.stringify, decode: JSON.parse })`);
  }
  return { parser, custom: !encodesLikeNotepack(parser) };
}

/** What a parser's `encode` returned (a string, a Buffer, any byte view) as a Buffer. */
function toBuffer(encoded) {
  if (Buffer.isBuffer(encoded)) return encoded;
  if (typeof encoded === "string") return Buffer.from(encoded);
  if (ArrayBuffer.isView(encoded)) return Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  if (encoded instanceof ArrayBuffer) return Buffer.from(encoded);
  throw new TypeError(`the parser's encode() returned ${encoded === null ? "null" : typeof encoded}, not a string or bytes`);
}

module.exports = { readParser, toBuffer };
