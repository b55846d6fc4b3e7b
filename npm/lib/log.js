"use strict";
// Logs users can turn on, as socket.io's own: the `debug` module. `DEBUG=socket.io*` (or
// `DEBUG=socket.io-sioadapter*`) shows what the adapter does (socket.io-sioadapter) and what the
// Rust core does underneath (socket.io-sioadapter:core: link state, requests sent and settled,
// messages dropped and why). The core's events cross into JS only when that namespace is enabled
// when the package loads; otherwise the core does not even format them. Warnings go through
// process.emitWarning with a code, so `--no-warnings` or a 'warning' listener handles them.

const createDebug = require("debug");
const native = require("./native");

/** The adapter's own log. */
const debug = createDebug("socket.io-sioadapter");
/** The Rust core's events. */
const core = createDebug("socket.io-sioadapter:core");
/** Level names of the core's events, by the number the addon passes. */
const LEVELS = ["off", "error", "warn", "info", "debug", "trace"];

if (core.enabled) {
  native.setLogger(LEVELS.indexOf("trace"), (level, target, text) => core("%s %s: %s", LEVELS[level], target, text));
}

/** A process warning with `code` (e.g. SIO_UNKNOWN_OPTION), once per call. */
function warn(message, code) {
  process.emitWarning(message, { code });
}

module.exports = { debug, warn };
