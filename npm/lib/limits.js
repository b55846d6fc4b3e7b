"use strict";
// The limit options (maxMessageBytes, maxQueuedBytes, ...): their defaults come from the Rust
// core, which enforces them; here they are only checked for form, with the option's name in
// the error.

const native = require("./native");
const { optionError } = require("./connection");

const DEFAULTS = native.PROTOCOL.limits;

/** Every limit option's name (the core's list: its defaults). */
const LIMIT_OPTIONS = Object.keys(DEFAULTS);

/** Largest value of each option that is not "any positive integer". */
const CEILINGS = { maxMessageDepth: native.PROTOCOL.maxMessageDepthCeiling, maxQueuedPublishes: 2 ** 32 - 1 };

/**
 * The limit options of `opts`, checked, with the defaults for those not given: one object
 * `{maxMessageBytes, ..., maxQueuedBytes}`, which the connection and the engines read.
 */
function readLimits(opts) {
  const value = (name) => {
    const given = opts ? opts[name] : undefined;
    if (given === undefined) return DEFAULTS[name];
    const ceiling = CEILINGS[name] ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(given) || given < 1 || given > ceiling) {
      const shown = typeof given === "number" || typeof given === "bigint" ? `${given}${typeof given === "bigint" ? "n" : ""}` : JSON.stringify(given);
      throw optionError(name, `expected an integer from 1 to ${ceiling}, got ${shown}`);
    }
    return given;
  };
  return Object.fromEntries(LIMIT_OPTIONS.map((name) => [name, value(name)]));
}

module.exports = { readLimits, LIMIT_OPTIONS, DEFAULTS };
