"use strict";
// A separate user project installs the package from the tarball `npm pack` makes, and from the
// folder; both must load the addon and carry a broadcast between two servers.
const { test } = require("node:test");
const assert = require("node:assert");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const pkgDir = path.join(__dirname, "..", "npm");
const testModules = path.join(__dirname, "node_modules");
const app = path.join(__dirname, "fixtures", "packaged-app.js");
const env = { ...process.env, REDIS_URL: process.env.REDIS_URL || "redis://127.0.0.1:6379" };

function npm(args, cwd) {
  return execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, env, encoding: "utf8" });
}

function userProject(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-user-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "user-app", version: "1.0.0", private: true }));
  return dir;
}

/** Runs the app from inside the user project, so `require("sioadapter")` resolves there. */
function runApp(dir) {
  fs.copyFileSync(app, path.join(dir, "app.js"));
  return execFileSync(process.execPath, ["app.js", testModules], { cwd: dir, env, encoding: "utf8", timeout: 30000 });
}

test("the tarball from npm pack carries the addon and works in another project", { timeout: 180000 }, (t) => {
  const packDir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-pack-"));
  t.after(() => fs.rmSync(packDir, { recursive: true, force: true }));
  const [info] = JSON.parse(npm(["pack", "--json", "--pack-destination", packDir], pkgDir));
  const files = info.files.map((f) => f.path);
  for (const needed of ["index.js", "index.mjs", "index.d.ts", "lib/native.js", "lib/connection.js", "package.json"]) {
    assert.ok(files.includes(needed), `${needed} missing from the tarball: ${files.join(", ")}`);
  }
  assert.ok(files.some((f) => f.endsWith(".node")), "the prebuilt addon is missing from the tarball");
  assert.ok(!files.some((f) => f.startsWith("node_modules/")), "node_modules must not be packed");

  const dir = userProject(t);
  npm(["install", path.join(packDir, info.filename)], dir);
  assert.match(runApp(dir), /received: from the installed package/);
});

test("npm install <path to npm/> works in another project", { timeout: 180000 }, (t) => {
  const dir = userProject(t);
  npm(["install", pkgDir], dir);
  assert.match(runApp(dir), /received: from the installed package/);
});

test("the ESM entry and the types are there", async () => {
  const esm = await import(path.join(pkgDir, "index.mjs"));
  assert.strictEqual(typeof esm.createAdapter, "function");
  assert.strictEqual(typeof esm.default, "function");
  assert.strictEqual(esm.createAdapter, esm.default.createAdapter);
  const dts = fs.readFileSync(path.join(pkgDir, "index.d.ts"), "utf8");
  assert.match(dts, /export declare function createAdapter/);
});
