"use strict";
// A separate user project installs the package the ways a user can, and each must load the
// addon and carry a broadcast between two servers:
//   - the tarball `npm pack` makes in a checkout (it carries the addon built here);
//   - the folder npm/ itself;
//   - as published: the main package (JavaScript only) and the prebuilt package for this
//     platform, installed together on a machine without Rust.
const { test, describe, before, after } = require("node:test");
const assert = require("node:assert");
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const zlib = require("node:zlib");
const { TARGETS, currentTarget, binaryName, packageName } = require("../npm/scripts/targets");

const pkgDir = path.join(__dirname, "..", "npm");
const platformsScript = path.join(pkgDir, "scripts", "platforms.js");
const testModules = path.join(__dirname, "node_modules");
const app = path.join(__dirname, "fixtures", "packaged-app.js");
const env = { ...process.env, REDIS_URL: process.env.REDIS_URL || "redis://127.0.0.1:6379" };
const win = process.platform === "win32";

const target = currentTarget();
const platformPkg = packageName(target);
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;

/** npm, also on Windows (npm.cmd, through a shell); returns stdout and stderr together. */
function npm(args, cwd, runEnv = env) {
  const argv = [...args, "--no-audit", "--no-fund", "--loglevel=error"];
  const r = spawnSync(win ? "npm.cmd" : "npm", win ? argv.map((a) => (/\s/.test(a) ? `"${a}"` : a)) : argv, {
    cwd,
    env: runEnv,
    encoding: "utf8",
    shell: win,
  });
  const out = `${r.stdout || ""}${r.stderr || ""}`;
  if (r.error) throw r.error;
  assert.strictEqual(r.status, 0, `npm ${args.join(" ")} failed:\n${out}`);
  return { stdout: r.stdout, out };
}

function tempDir(t, prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function userProject(t) {
  const dir = tempDir(t, "sioadapter-user-");
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "user-app", version: "1.0.0", private: true }));
  return dir;
}

/** Runs the app from inside the user project, so `require("sioadapter")` resolves there. */
function runApp(dir, runEnv = env) {
  fs.copyFileSync(app, path.join(dir, "app.js"));
  return execFileSync(process.execPath, ["app.js", testModules], { cwd: dir, env: runEnv, encoding: "utf8", timeout: 30000 });
}

/** The entries of a .tgz as name → contents (npm's tarballs: ustar, short names). */
function tarEntries(file) {
  const b = zlib.gunzipSync(fs.readFileSync(file));
  const entries = new Map();
  const field = (at, len) => b.toString("utf8", at, at + len).replace(/\0[\s\S]*$/, "");
  for (let at = 0; at + 512 <= b.length; ) {
    const name = field(at, 100);
    if (!name) break;
    const size = parseInt(field(at + 124, 12).trim() || "0", 8);
    const type = field(at + 156, 1);
    const prefix = field(at + 345, 155);
    if (type === "0" || type === "") entries.set(prefix ? `${prefix}/${name}` : name, b.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/**
 * The environment of a machine without Rust: PATH without any directory holding cargo or
 * rustc, and no CARGO*, RUSTUP* variables.
 */
function envWithoutRust() {
  const out = {};
  for (const [k, v] of Object.entries(env)) if (!/^(CARGO|RUSTUP|RUSTC)/i.test(k)) out[k] = v;
  const pathKey = Object.keys(out).find((k) => k.toUpperCase() === "PATH") || "PATH";
  const tools = win ? ["cargo.exe", "rustc.exe", "cargo.cmd", "rustup.exe"] : ["cargo", "rustc", "rustup"];
  const dirs = (out[pathKey] || "").split(path.delimiter).filter(Boolean);
  const kept = dirs.filter((d) => !tools.some((tool) => fs.existsSync(path.join(d, tool))));
  out[pathKey] = kept.join(path.delimiter);
  for (const needed of ["node", "npm"]) {
    const names = win ? [`${needed}.exe`, `${needed}.cmd`] : [needed];
    assert.ok(
      kept.some((d) => names.some((n) => fs.existsSync(path.join(d, n)))),
      `${needed} shares a directory with cargo/rustc on PATH; this test cannot hide Rust here`,
    );
  }
  return out;
}

test("the tarball from npm pack carries the addon and works in another project", { timeout: 180000 }, (t) => {
  const packDir = tempDir(t, "sioadapter-pack-");
  const [info] = JSON.parse(npm(["pack", "--json", "--pack-destination", packDir], pkgDir).stdout);
  const files = info.files.map((f) => f.path);
  for (const needed of ["index.js", "index.mjs", "index.d.ts", "lib/native.js", "lib/connection.js", "scripts/targets.js", "package.json"]) {
    assert.ok(files.includes(needed), `${needed} missing from the tarball: ${files.join(", ")}`);
  }
  assert.ok(files.includes(binaryName(target)), "the addon built here is missing from the tarball");
  assert.ok(!files.some((f) => f.startsWith("node_modules/")), "node_modules must not be packed");
  assert.ok(!files.some((f) => f.startsWith("platforms/")), "the platform packages must not be packed into the main one");
  assert.ok(!files.some((f) => /\.rs$|(^|\/)Cargo\.(toml|lock)$/.test(f)), `Rust sources packed: ${files.join(", ")}`);

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

test("the platform packages are at npm/package.json's version", () => {
  execFileSync(process.execPath, [platformsScript, "check"], { encoding: "utf8" });
  for (const t of Object.keys(TARGETS)) {
    const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, "platforms", t, "package.json"), "utf8"));
    assert.strictEqual(manifest.name, packageName(t));
    assert.strictEqual(manifest.version, version);
    assert.strictEqual(manifest.main, binaryName(t));
  }
  // listed at release by pack-main (checked below), not in the checkout's package.json,
  // whose lockfile could not hold packages the registry does not have yet
  const main = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  assert.ok(!Object.keys(main.optionalDependencies || {}).some((name) => name.startsWith("sioadapter-")));
});

const builtHere = path.join(pkgDir, binaryName(target));
const cannotPack = !TARGETS[target]
  ? `no prebuilt package for ${target}`
  : !fs.existsSync(builtHere)
    ? `${binaryName(target)} is not built (node npm/scripts/build.js)`
    : false;

describe("as published: the main package and the prebuilt package for this platform", { skip: cannotPack }, () => {
  let packDir;
  let mainTgz;
  let platformTgz;
  let noRust;

  before(() => {
    packDir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-release-"));
    const pack = (args) => execFileSync(process.execPath, [platformsScript, ...args, "--out", packDir], { encoding: "utf8" }).trim();
    platformTgz = pack(["pack", target]);
    mainTgz = pack(["pack-main"]);
    noRust = envWithoutRust();
  });
  after(() => packDir && fs.rmSync(packDir, { recursive: true, force: true }));

  test("the main tarball is JavaScript only: no addon, no install hook, no Rust sources", () => {
    const entries = tarEntries(mainTgz);
    const files = [...entries.keys()];
    for (const needed of ["package/LICENSE", "package/README.md", "package/index.js", "package/index.mjs", "package/index.d.ts", "package/lib/native.js", "package/scripts/targets.js"]) {
      assert.ok(files.includes(needed), `${needed} missing: ${files.join(", ")}`);
    }
    assert.ok(!files.some((f) => f.endsWith(".node")), `an addon in the main tarball: ${files.join(", ")}`);
    assert.ok(!files.some((f) => /\.rs$|Cargo\.(toml|lock)$|\/platforms\//.test(f)), `Rust sources or platform folders: ${files.join(", ")}`);
    const manifest = JSON.parse(entries.get("package/package.json"));
    assert.strictEqual(manifest.scripts, undefined, "the published package must not run scripts at install");
    assert.deepStrictEqual(
      manifest.optionalDependencies,
      Object.fromEntries(Object.keys(TARGETS).map((t) => [packageName(t), version])),
      "every platform package, at the main package's version",
    );
  });

  test(`the ${platformPkg} tarball holds the addon and says where it runs`, () => {
    const entries = tarEntries(platformTgz);
    assert.deepStrictEqual([...entries.keys()].sort(), ["package/LICENSE", "package/README.md", `package/${binaryName(target)}`, "package/package.json"].sort());
    const manifest = JSON.parse(entries.get("package/package.json"));
    assert.strictEqual(manifest.name, platformPkg);
    assert.strictEqual(manifest.version, version);
    assert.deepStrictEqual(manifest.os, [TARGETS[target].os]);
    assert.deepStrictEqual(manifest.cpu, [TARGETS[target].cpu]);
    if (TARGETS[target].libc) assert.deepStrictEqual(manifest.libc, [TARGETS[target].libc]);
    assert.strictEqual(manifest.main, binaryName(target));
  });

  test("both tarballs install without Rust, nothing is built, the addon loads from the platform package", { timeout: 180000 }, (t) => {
    const cargo = spawnSync(win ? "cargo.exe" : "cargo", ["--version"], { env: noRust });
    assert.strictEqual(cargo.error && cargo.error.code, "ENOENT", "cargo is still on PATH");

    const dir = userProject(t);
    const { out } = npm(["install", mainTgz, platformTgz], dir, noRust);
    assert.doesNotMatch(out, /Compiling |sioadapter: built|cargo|install-scripts/, `the install built something or ran a script:\n${out}`);

    const installed = path.join(dir, "node_modules", "sioadapter");
    assert.deepStrictEqual(fs.readdirSync(installed).filter((f) => f.endsWith(".node")), [], "no addon next to the main package");
    const loaded = execFileSync(
      process.execPath,
      ["-e", "require('sioadapter'); console.log(Object.keys(require.cache).filter((f) => f.endsWith('.node')).join('\\n'))"],
      { cwd: dir, env: noRust, encoding: "utf8" },
    ).trim();
    assert.strictEqual(loaded, path.join(fs.realpathSync(dir), "node_modules", platformPkg, binaryName(target)));

    assert.match(runApp(dir, noRust), /received: from the installed package/);
  });

  test("the main package alone installs, and requiring it names the package to install", { timeout: 180000 }, (t) => {
    const dir = userProject(t);
    npm(["install", mainTgz, "--omit=optional"], dir, noRust);
    assert.ok(!fs.existsSync(path.join(dir, "node_modules", platformPkg)));
    const r = spawnSync(
      process.execPath,
      ["-e", "try { require('sioadapter') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"],
      { cwd: dir, env: noRust, encoding: "utf8" },
    );
    const err = JSON.parse(r.stdout);
    assert.strictEqual(err.code, "ERR_SIO_NATIVE_MISSING");
    assert.match(err.message, new RegExp(`${platformPkg}@${version.replace(/\./g, "\\.")}`));
    assert.match(err.message, /build it from source/i);
  });
});
