"use strict";
// Logs users can turn on (issue 14): DEBUG=socket.io* shows the adapter's lines
// (socket.io-sioadapter) and the Rust core's (socket.io-sioadapter:core: the link coming up, a
// request sent and settled), nothing of either without DEBUG; warnings are process warnings with a
// code (SIO_UNKNOWN_OPTION), not console output. The coalesceWrites option is checked and
// honoured. Each run uses its own key on the shared Redis.
const { test } = require("node:test");
const assert = require("node:assert");
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const { uniqueKey } = require("./helpers/cluster");

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const app = path.join(__dirname, "fixtures", "logs-app.js");

function run(env) {
  const out = spawnSync(process.execPath, [app, REDIS_URL, uniqueKey()], { cwd: __dirname, env: { ...process.env, ...env }, encoding: "utf8", timeout: 30000 });
  assert.strictEqual(out.status, 0, `logs-app: exit ${out.status}\n${out.stdout}\n${out.stderr}`);
  assert.match(out.stdout, /^DONE 2$/m);
  return out;
}

test("DEBUG=socket.io* shows the adapter's and the Rust core's lines", () => {
  const { stderr } = run({ DEBUG: "socket.io*", DEBUG_COLORS: "0" });
  assert.match(stderr, /socket\.io-sioadapter namespace \/: node \w{6} on /, "the adapter's own line");
  assert.match(stderr, /socket\.io-sioadapter namespace \/: ready/, "the ready event");
  assert.match(stderr, /socket\.io-sioadapter:core debug sioadapter::transport::driver: link Connecting -> Up/, "the core's link state");
  assert.match(stderr, /socket\.io-sioadapter:core debug sioadapter::requests: request sent id=\S+ kind=AllRooms/, "a request sent");
  assert.match(stderr, /socket\.io-sioadapter:core debug sioadapter::requests: request counted id=\S+ expected=1/, "its nodes counted");
  assert.match(stderr, /socket\.io-sioadapter:core debug sioadapter::requests: request settled/, "and settled");
});

test("without DEBUG nothing is logged; warnings are process warnings with a code", () => {
  const { stdout, stderr } = run({ DEBUG: "" });
  assert.doesNotMatch(stderr, /socket\.io-sioadapter/);
  assert.match(stdout, /^WARNING SIO_UNKNOWN_OPTION$/m, "the unknown option is a process warning with its code");
});

test("coalesceWrites: a boolean, default on, for both adapters", () => {
  const { createAdapter, createShardedAdapter } = require("../npm");
  for (const make of [createAdapter, createShardedAdapter]) {
    assert.throws(() => make(REDIS_URL, REDIS_URL, { coalesceWrites: "no" }), (err) => err.code === "ERR_SIO_OPTION" && /coalesceWrites/.test(err.message));
  }
});
