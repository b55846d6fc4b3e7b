"use strict";
// Turning what users pass as `pubClient` (a node-redis or ioredis client, a URL, an options
// object, or nothing) into the Redis URL the Rust core connects to. The core owns its own
// connections; the client objects are only read, never used.

const native = require("./native");

const DEFAULT_URL = native.PROTOCOL.defaults.redisUrl;

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
  const err = new TypeError(redact(`sioadapter: invalid option \`${option}\`: ${reason}`));
  err.code = "ERR_SIO_OPTION";
  return err;
}

/** `host:port`, with brackets around an IPv6 host. */
function hostPort(host, port) {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * `host:port` of a `{ host, port }` entry (a sentinel, a seed node), checked; `what` names the
 * entry in the error, which shows `shown` (what the user passed).
 */
function endpoint(entry, defaultPort, what, option, shown = entry) {
  const host = (entry && entry.host) || "127.0.0.1";
  const port = Number((entry && entry.port) || defaultPort);
  if (typeof host !== "string" || !Number.isInteger(port) || port <= 0 || port > 65535) {
    const seen = isPlainObject(shown) ? { host: shown.host, port: shown.port } : shown; // never its password
    throw optionError(option, `each ${what} needs a host string and a port 1..65535, got ${JSON.stringify(seen)}`);
  }
  return hostPort(host, port);
}

/**
 * `host:port` of `text`: `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address (port
 * `defaultPort` when none), or null when it is none of these or the port is not 1..65535.
 */
function parseHostPort(text, defaultPort) {
  const m =
    /^\[([0-9a-f:.]+)\](?::(\d+))?$/i.exec(text) || // [v6] or [v6]:port
    /^([^:\s/[\]@?#]+)(?::(\d+))?$/.exec(text) || // host or host:port
    (/^[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*$/i.test(text) && [text, text, undefined]); // bare IPv6 (2+ colons), e.g. ::1
  if (!m) return null;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  return port >= 1 && port <= 65535 ? hostPort(m[1], port) : null;
}

function fromString(text, option) {
  native.noteSecrets(text);
  if (/^(redis|rediss|unix|redis\+unix|rediss?\+sentinel|rediss?\+cluster):\/\//i.test(text)) return text;
  // The seeds' `adapter('localhost:6379')` form.
  const address = parseHostPort(text, 6379);
  if (!address) throw optionError(option, `not a Redis URL or host:port: ${JSON.stringify(redact(text))}`);
  return `redis://${address}`;
}

/** True when every TLS settings object of `parts` turns verification off (`rejectUnauthorized: false`). */
function allInsecure(parts) {
  return parts.length > 0 && parts.every((t) => isPlainObject(t) && t.rejectUnauthorized === false);
}

/**
 * `redis[s]+sentinel://` from ioredis' Sentinel settings: `sentinels` ([{host, port}]), `name`,
 * the data nodes' `username`/`password`/`db`, the sentinels' `sentinelUsername`/`sentinelPassword`.
 * TLS as ioredis reads it: to the data nodes with `tls` and `enableTLSForSentinelMode: true`, to
 * the sentinels with `sentinelTLS`.
 */
function fromSentinelSettings(o, option) {
  if (typeof o.name !== "string" || !o.name) throw optionError(option, "Sentinel settings need `name`, the monitored primary's name");
  if (o.sentinels.length === 0) throw optionError(option, "Sentinel settings need at least one entry in `sentinels`");
  if (o.tls && !o.enableTLSForSentinelMode) {
    throw optionError(option, "`tls` in Sentinel settings needs `enableTLSForSentinelMode: true` (without it ioredis itself would reach the primary in plaintext); set it, or remove `tls`");
  }
  const enc = encodeURIComponent;
  const hosts = o.sentinels.map((s) => endpoint(s, 26379, "sentinel", option));
  const auth = userinfo(o);
  const db = Number(o.db ?? o.database ?? 0);
  if (!Number.isInteger(db) || db < 0) throw optionError(option, `db must be a non-negative integer, got ${JSON.stringify(o.db)}`);
  const dataTls = Boolean(o.tls);
  const sentinelTls = Boolean(o.sentinelTLS);
  const query = [];
  if (o.sentinelUsername) query.push(`sentinelUsername=${enc(o.sentinelUsername)}`);
  if (o.sentinelPassword) query.push(`sentinelPassword=${enc(o.sentinelPassword)}`);
  if (sentinelTls !== dataTls) query.push(`sentinelTls=${sentinelTls}`);
  const insecure = allInsecure([dataTls && o.tls, sentinelTls && o.sentinelTLS].filter(Boolean)) ? "#insecure" : "";
  const scheme = dataTls ? "rediss+sentinel" : "redis+sentinel";
  return `${scheme}://${auth}${hosts.join(",")}/${enc(o.name)}/${db}${query.length ? `?${query.join("&")}` : ""}${insecure}`;
}

/** `user:password@` (percent-encoded) from `username`/`password`, or "". */
function userinfo(o) {
  const enc = encodeURIComponent;
  return o && (o.username || o.password) ? `${o.username ? enc(o.username) : ""}${o.password ? `:${enc(o.password)}` : ""}@` : "";
}

/** The TLS settings object an object (node-redis `socket`, ioredis `tls`) asks for, `{}` for `tls: true`, or null. */
function tlsOf(o) {
  if (!isPlainObject(o)) return null;
  const socket = isPlainObject(o.socket) ? o.socket : null;
  if (o.tls) return isPlainObject(o.tls) ? o.tls : socket || {};
  if (socket && socket.tls) return socket;
  return null;
}

/**
 * `redis[s]+cluster://` from seed nodes: "host:port" or redis:// URL strings, ports, `{host, port}`,
 * `{url}` or `{socket: {host, port}}` (node-redis `rootNodes`, ioredis `startupNodes`); the
 * credentials come from `auth` (`username`/`password`) or the first seed's URL. TLS (to every
 * node) when `auth` or a seed asks for it or a seed is a `rediss://` URL.
 */
function fromClusterSeeds(seeds, auth, option) {
  if (seeds.length === 0) throw optionError(option, "a Redis Cluster needs at least one seed node");
  const urlOf = (seed) => (typeof seed === "string" ? seed : seed && typeof seed.url === "string" ? seed.url : null);
  const tlsParts = [auth, ...seeds].map(tlsOf).filter(Boolean);
  const tls = tlsParts.length > 0 || seeds.some((seed) => /^rediss:/i.test(urlOf(seed) || ""));
  const insecure = tls && allInsecure(tlsParts) ? "#insecure" : "";
  let credentials = userinfo(auth);
  const hosts = seeds.map((seed) => {
    if (typeof seed === "number") {
      if (!Number.isInteger(seed) || seed < 1 || seed > 65535) throw optionError(option, `a seed port must be 1..65535, got ${seed}`);
      return `127.0.0.1:${seed}`;
    }
    const url = urlOf(seed);
    if (url !== null) {
      // Another scheme (`http://`, `redis+cluster://`) leaves `scheme:` as the host, which is refused.
      const m = /^(?:rediss?:\/\/)?(?:([^@/]*)@)?([^/?#]+)(?:[/?#].*)?$/i.exec(url);
      const address = m ? parseHostPort(m[2], 6379) : null;
      if (!address) throw optionError(option, `not a seed node (host:port or redis[s]://host:port): ${JSON.stringify(redact(url))}`);
      if (m[1] && !credentials) credentials = `${m[1]}@`;
      return address;
    }
    const s = seed && isPlainObject(seed.socket) ? seed.socket : seed;
    if (!s || typeof s !== "object") throw optionError(option, `not a seed node: ${JSON.stringify(seed)}`);
    return endpoint(s, 6379, "seed node", option, seed);
  });
  return `${tls ? "rediss" : "redis"}+cluster://${credentials}${hosts.join(",")}${insecure}`;
}

/** The seeds and credentials of a node-redis cluster or an ioredis Cluster, or null. */
function clusterOf(client) {
  const nodeRedis = client._options || (client._self && client._self._options);
  if (nodeRedis && Array.isArray(nodeRedis.rootNodes)) return { seeds: nodeRedis.rootNodes, auth: nodeRedis.defaults || {} };
  if (client.isCluster && Array.isArray(client.startupNodes)) return { seeds: client.startupNodes, auth: (client.options && client.options.redisOptions) || {} };
  return null;
}

/** Builds a URL from host/port/username/password/db/tls settings (node-redis or ioredis shapes). */
function fromSettings(o, option) {
  if (Array.isArray(o.sentinels)) return fromSentinelSettings(o, option);
  const socket = isPlainObject(o.socket) ? o.socket : {};
  const host = socket.host ?? o.host;
  const path = socket.path ?? o.path;
  const hasExplicit = host !== undefined || path !== undefined || socket.port !== undefined || o.port !== undefined;
  const tls = socket.tls ?? o.tls;
  // node-redis puts TLS options (ca, rejectUnauthorized) beside `socket.tls: true`; ioredis in `tls`.
  const tlsOptions = isPlainObject(o.tls) ? o.tls : socket.tls ? socket : {};
  const insecure = tls && tlsOptions.rejectUnauthorized === false ? "#insecure" : "";
  if (typeof o.url === "string" && !hasExplicit) return withTls(fromString(o.url, option), tls, insecure, option);
  const port = socket.port ?? o.port ?? 6379;
  const db = o.database ?? o.db ?? 0;
  if (host !== undefined && typeof host !== "string") throw optionError(option, "host must be a string");
  if (!Number.isInteger(Number(port)) || Number(port) <= 0 || Number(port) > 65535) throw optionError(option, `port must be 1..65535, got ${JSON.stringify(port)}`);
  if (!Number.isInteger(Number(db)) || Number(db) < 0) throw optionError(option, `database must be a non-negative integer, got ${JSON.stringify(db)}`);
  const enc = encodeURIComponent;
  const auth = userinfo(o);
  if (typeof path === "string") {
    if (tls) throw optionError(option, "TLS was asked for with a unix socket path, which carries no TLS (it would connect in plaintext)");
    const query = [`db=${Number(db)}`];
    if (o.username) query.push(`user=${enc(o.username)}`);
    if (o.password) query.push(`pass=${enc(o.password)}`);
    return `redis+unix://${path}?${query.join("&")}`;
  }
  const h = host || "127.0.0.1";
  return `${tls ? "rediss" : "redis"}://${auth}${hostPort(h, Number(port))}/${Number(db)}${insecure}`;
}

/**
 * `url` (from a client's `url` setting) with the client's own TLS settings applied: TLS set on
 * the client means TLS or an error, never plaintext.
 */
function withTls(url, tls, insecure, option) {
  if (!tls) return url;
  const scheme = url.slice(0, url.indexOf(":")).toLowerCase();
  const m = /^rediss?(\+sentinel|\+cluster)?$/.exec(scheme);
  if (!m) throw optionError(option, `the client asks for TLS, which ${scheme}:// URLs cannot carry (it would connect in plaintext)`);
  const secure = `rediss${m[1] || ""}${url.slice(scheme.length)}`;
  return insecure && !secure.endsWith(insecure) ? `${secure.replace(/#.*$/, "")}${insecure}` : secure;
}

let warnedInsecure = false;

/** Warns once per process that a connection's TLS certificate is not verified. */
function warnIfInsecure(url) {
  if (warnedInsecure || !url.endsWith("#insecure")) return;
  warnedInsecure = true;
  process.emitWarning("sioadapter: TLS certificate verification is turned off (rejectUnauthorized: false or #insecure): the connection to Redis can be intercepted", { code: "SIO_TLS_INSECURE" });
}

/**
 * The URL for the Rust core, from a client, URL string, settings object or nothing.
 * @param {unknown} source
 * @param {string} option the name used in error messages
 */
function resolveRedisUrl(source, option = "pubClient") {
  const url = readRedisUrl(source, option);
  warnIfInsecure(url);
  return url;
}

/** [resolveRedisUrl] without the warning. */
function readRedisUrl(source, option) {
  if (source === undefined || source === null) return DEFAULT_URL;
  if (typeof source === "string") return fromString(source, option);
  if (Array.isArray(source)) return fromClusterSeeds(source, {}, option);
  if (isRedisClient(source)) {
    const cluster = clusterOf(source);
    if (cluster) return fromClusterSeeds(cluster.seeds, cluster.auth, option);
    if (Array.isArray(source.masters) || source.isCluster) {
      throw optionError(option, "cannot read the seed nodes of this Redis Cluster client; pass redis+cluster://host:port,... instead");
    }
    const settings = source.options;
    if (!settings || typeof settings !== "object") {
      throw optionError(option, "cannot read the connection settings of this Redis client (for a node-redis Sentinel, pass redis+sentinel://host:port,.../<name> instead)");
    }
    return fromSettings(settings, option);
  }
  if (isPlainObject(source)) return fromSettings(source, option);
  throw optionError(option, `expected a node-redis or ioredis client, a redis:// URL or {host, port}, got ${typeof source}`);
}

/**
 * The certificate authorities (PEM text) named by the TLS settings of a client or settings object
 * (`tls.ca` for ioredis and settings, `socket.ca` for node-redis, ioredis Sentinel's
 * `sentinelTLS.ca`, a cluster's `defaults.socket.ca` / `redisOptions.tls.ca` / seeds' `socket.ca`),
 * every distinct one joined, or undefined for the system's.
 */
function resolveTlsCa(source) {
  const objects = [];
  const add = (o) => isPlainObject(o) && objects.push(o, o.socket, o.tls, o.sentinelTLS);
  if (Array.isArray(source)) source.forEach(add);
  else if (isRedisClient(source)) {
    const cluster = clusterOf(source);
    if (cluster) [cluster.auth, ...cluster.seeds].forEach(add);
    else add(source.options);
  } else add(source);
  const cas = [];
  for (const o of objects) {
    if (!isPlainObject(o) || o.ca === undefined || o.ca === null) continue;
    for (const ca of Array.isArray(o.ca) ? o.ca : [o.ca]) {
      const text = String(ca);
      if (!cas.includes(text)) cas.push(text);
    }
  }
  return cas.length > 0 ? cas.join("\n") : undefined;
}

/** Hides the secrets of every URL in `text` for messages: the core's redaction (see `redact` in src/error.rs). */
function redact(text) {
  return native.redact(String(text));
}

module.exports = { resolveRedisUrl, resolveTlsCa, isPlainObject, isRedisClient, optionError, redact, DEFAULT_URL };
