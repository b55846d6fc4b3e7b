'use strict';
// What a benchmark run is told (knobs in BENCH_* environment variables) and what it says about
// itself in its report (the command that reproduces it, the versions measured). Shared by
// bench.js and scale.js.

/** A non-negative number from the environment, or `fallback`. */
function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return value;
}

/** A comma-separated list of positive integers from the environment (e.g. "2,4,8"), sorted and deduplicated, or `fallback`. */
function envIntList(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.some((v) => !Number.isInteger(v) || v <= 0)) throw new Error(`${name} must be a comma-separated list of positive integers, got ${JSON.stringify(raw)}`);
  return [...new Set(values)].sort((a, b) => a - b);
}

/** A comma-separated list of words from the environment, each one of `allowed`, or `fallback`. */
function envWordList(name, allowed, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const values = raw.split(',').map((part) => part.trim()).filter(Boolean);
  const unknown = values.filter((v) => !allowed.includes(v));
  if (unknown.length) throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return values;
}

/**
 * How this run was started, to print and to record with the results: the BENCH_* variables set
 * (`prefix`; BENCH_ENTRY and BENCH_VERBOSE left out), `leading` assignments first, then the
 * entry point (BENCH_ENTRY, set by the shell wrappers, or `defaultEntry`).
 */
function commandLine(defaultEntry, { prefix = 'BENCH_', leading = [] } = {}) {
  const vars = Object.keys(process.env)
    .filter((k) => k.startsWith(prefix) && k !== 'BENCH_ENTRY' && k !== 'BENCH_VERBOSE')
    .sort()
    .map((k) => `${k}=${process.env[k]}`);
  return [...leading, ...vars, process.env.BENCH_ENTRY || defaultEntry].join(' ');
}

/** The installed version of npm package `pkg`, or '?'. */
function versionOf(pkg) {
  try {
    return require(`${pkg}/package.json`).version;
  } catch {
    return '?';
  }
}

/** The versions line of a report: node, Redis (`redisVersion`), socket.io and the official adapter. */
function versionsText(redisVersion) {
  return `node ${process.version}, Redis ${redisVersion}, socket.io ${versionOf('socket.io')}, socket.io-client ${versionOf('socket.io-client')}, @socket.io/redis-adapter ${versionOf('@socket.io/redis-adapter')} with redis (node-redis) ${versionOf('redis')}`;
}

module.exports = { envNumber, envIntList, envWordList, commandLine, versionOf, versionsText };
