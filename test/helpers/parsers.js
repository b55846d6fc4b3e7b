'use strict';
// The `parser` options the tests give adapters and emitters, by name (a parser is functions, so
// a test server child gets its name in its config): what the official README suggests besides
// notepack.io, the default.

const PARSERS = {
  /** Readable by any language: JSON (binary data does not survive it, as officially). */
  json: { encode: JSON.stringify, decode: JSON.parse },
  /** msgpackr: msgpack too, but not notepack.io's bytes. */
  msgpackr: (() => {
    const { pack, unpack } = require('msgpackr');
    return { encode: pack, decode: unpack };
  })(),
};

/** The parser named `name`; throws for an unknown name. */
function parserNamed(name) {
  const parser = PARSERS[name];
  if (!parser) throw new Error(`unknown parser ${name}: one of ${Object.keys(PARSERS).join(', ')}`);
  return parser;
}

module.exports = { parserNamed, PARSER_NAMES: Object.keys(PARSERS) };
