"use strict";
// Turning what users pass as `pubClient` (a node-redis or ioredis client, a URL, an options
// object, or nothing) into the Redis URL the Rust core connects to. The core owns its own
// connections; the client objects are only read, never used.

const DEFAULT_URL = "redis://127.0.0.1:6379";

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** True for a node-redis or ioredis client (or anything that looks like a Redis client). */
function isRedisClient(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    !isPlainObject(value) &&
    (typeof value.publish === "function" || typeof value.sendCommand === "function" || typeof value.send_command === "function")
  );
}

function optionError(option, reason) {
  const err = new TypeError(`sioadapter: invalid option \`${option}\`: ${reason}`);
  err.code = "ERR_SIO_OPTION";
  return err;
}

function fromString(text, option) {
  if (/^(redis|rediss|unix|redis\+unix):\/\//i.test(text)) return text;
  // The seeds' `adapter('localhost:6379')` form.
  const m = /^\[?([^\]\s/]*?)\]?(?::(\d+))?$/.exec(text);
  if (!m || !m[1]) throw optionError(option, `not a Redis URL or host:port: ${JSON.stringify(redact(text))}`);
  return `redis://${m[1].includes(":") ? `[${m[1]}]` : m[1]}:${m[2] || 6379}`;
}

/** Builds a URL from host/port/username/password/db/tls settings (node-redis or ioredis shapes). */
function fromSettings(o, option) {
  const socket = isPlainObject(o.socket) ? o.socket : {};
  const host = socket.host ?? o.host;
  const path = socket.path ?? o.path;
  const hasExplicit = host !== undefined || path !== undefined || socket.port !== undefined || o.port !== undefined;
  if (typeof o.url === "string" && !hasExplicit) return fromString(o.url, option);
  const port = socket.port ?? o.port ?? 6379;
  const tls = socket.tls ?? o.tls;
  // node-redis puts TLS options (ca, rejectUnauthorized) beside `socket.tls: true`; ioredis in `tls`.
  const tlsOptions = isPlainObject(o.tls) ? o.tls : socket.tls ? socket : {};
  const insecure = tls && tlsOptions.rejectUnauthorized === false ? "#insecure" : "";
  const username = o.username ?? undefined;
  const password = o.password ?? undefined;
  const db = o.database ?? o.db ?? 0;
  if (host !== undefined && typeof host !== "string") throw optionError(option, "host must be a string");
  if (!Number.isInteger(Number(port)) || Number(port) <= 0 || Number(port) > 65535) throw optionError(option, `port must be 1..65535, got ${JSON.stringify(port)}`);
  if (!Number.isInteger(Number(db)) || Number(db) < 0) throw optionError(option, `database must be a non-negative integer, got ${JSON.stringify(db)}`);
  const enc = encodeURIComponent;
  const auth = username || password ? `${username ? enc(username) : ""}${password ? `:${enc(password)}` : ""}@` : "";
  if (typeof path === "string") {
    const query = [`db=${Number(db)}`];
    if (username) query.push(`user=${enc(username)}`);
    if (password) query.push(`pass=${enc(password)}`);
    return `redis+unix://${path}?${query.join("&")}`;
  }
  const h = host || "127.0.0.1";
  return `${tls ? "rediss" : "redis"}://${auth}${h.includes(":") ? `[${h}]` : h}:${Number(port)}/${Number(db)}${insecure}`;
}

/**
 * The URL for the Rust core, from a client, URL string, settings object or nothing.
 * @param {unknown} source
 * @param {string} option the name used in error messages
 */
function resolveRedisUrl(source, option = "pubClient") {
  if (source === undefined || source === null) return DEFAULT_URL;
  if (typeof source === "string") return fromString(source, option);
  if (isRedisClient(source)) {
    if (Array.isArray(source.masters) || typeof source.nodes === "function" || source.isCluster) {
      throw optionError(option, "Redis Cluster clients are not supported yet; pass a standalone client or URL");
    }
    const settings = source.options;
    if (!settings || typeof settings !== "object") throw optionError(option, "cannot read the connection settings of this Redis client");
    return fromSettings(settings, option);
  }
  if (isPlainObject(source)) return fromSettings(source, option);
  throw optionError(option, `expected a node-redis or ioredis client, a redis:// URL or {host, port}, got ${typeof source}`);
}

/**
 * The certificate authorities (PEM text) a client's or settings object's TLS options name
 * (`tls.ca` for ioredis and settings, `socket.ca` for node-redis), or undefined for the system's.
 */
function resolveTlsCa(source) {
  const o = source && typeof source === "object" ? (isRedisClient(source) ? source.options : source) : null;
  if (!o) return undefined;
  const socket = isPlainObject(o.socket) ? o.socket : {};
  const ca = (isPlainObject(o.tls) && o.tls.ca) || socket.ca;
  if (ca === undefined || ca === null) return undefined;
  return (Array.isArray(ca) ? ca : [ca]).map((c) => String(c)).join("\n");
}

/** Hides the password of a URL for messages. */
function redact(text) {
  return String(text).replace(/(\/\/[^:/@\s]*):[^@/\s]*@/g, "$1:***@");
}

module.exports = { resolveRedisUrl, resolveTlsCa, isPlainObject, isRedisClient, optionError, redact, DEFAULT_URL };
