"use strict";
// The limit options (maxMessageBytes, maxQueuedBytes, ...): their defaults come from the Rust
// core, which enforces them; here they are only checked for form, with the option's name in
// the error.

const native = require("./native");
const { optionError } = require("./connection");

const DEFAULTS = native.limitDefaults();

/** Options bounding what the Rust core accepts from other nodes (passed to each engine). */
const ENGINE_LIMITS = ["maxMessageBytes", "maxMessageValues", "maxMessageDepth", "maxReceiveBufferBytes"];
/** Options bounding the publish queue (passed to the connection). */
const QUEUE_LIMITS = ["maxQueuedPublishes", "maxQueuedBytes"];
/** Every limit option's name. */
const LIMIT_OPTIONS = [...ENGINE_LIMITS, ...QUEUE_LIMITS];

/** Largest value of each option that is not "any positive integer". */
const CEILINGS = { maxMessageDepth: DEFAULTS.maxMessageDepthCeiling, maxQueuedPublishes: 2 ** 32 - 1 };

/**
 * The limit options of `opts`, checked, with the defaults for those not given:
 * `{ engine: {maxMessageBytes, ...}, queue: {maxQueuedPublishes, maxQueuedBytes} }`.
 */
function readLimits(opts) {
  const value = (name) => {
    const given = opts ? opts[name] : undefined;
    if (given === undefined) return DEFAULTS[name];
    const ceiling = CEILINGS[name] ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(given) || given < 1 || given > ceiling) {
      throw optionError(name, `expected an integer from 1 to ${ceiling}, got ${JSON.stringify(given)}`);
    }
    return given;
  };
  const pick = (names) => Object.fromEntries(names.map((name) => [name, value(name)]));
  return { engine: pick(ENGINE_LIMITS), queue: pick(QUEUE_LIMITS) };
}

module.exports = { readLimits, LIMIT_OPTIONS, DEFAULTS };
