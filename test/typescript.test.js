"use strict";
// TypeScript written for @socket.io/redis-adapter and @socket.io/redis-emitter compiles against
// sioadapter's index.d.ts unchanged, under `tsc --strict`, as a user installs the package.
//
// test/types/ holds the code: every example of the official READMEs with the import changed to
// "sioadapter", a subclass of RedisAdapter, casts of `io.of("/").adapter`, the official option
// types, a typed Emitter and BroadcastOperator, sioadapter's additions, and `@ts-expect-error`
// lines that must stay errors; test/types/negative/ holds files that must NOT compile, each
// naming the error it expects (`expect: TSnnnn`), so this cannot pass with types that accept
// anything.
//
// Two user projects are installed once (npm's cache first): one from the tarball `npm pack`
// makes, one from the folder npm/ as the README says (`install-links=true` in the project's
// .npmrc, then `npm install <folder>`: a copy, not a link to the checkout). Each must
// see ONE copy of socket.io-adapter, the one socket.io uses: with two, a cast of
// `io.of("/").adapter` to RedisAdapter does not compile. Package versions: test/package-lock.json's.
const { test, before, after } = require("node:test");
const assert = require("node:assert");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const pkgDir = path.join(__dirname, "..", "npm");
const typesDir = path.join(__dirname, "types");
const win = process.platform === "win32";

/** What the user projects install besides sioadapter, at the versions test/ is locked to. */
const DEPENDENCIES = ["socket.io", "socket.io-client", "redis", "ioredis", "typescript", "@types/node"].map((name) => {
  const lock = JSON.parse(fs.readFileSync(path.join(__dirname, "package-lock.json"), "utf8"));
  const entry = lock.packages[`node_modules/${name}`];
  assert.ok(entry, `${name} is missing from test/package-lock.json (a devDependency of test/package.json)`);
  return `${name}@${entry.version}`;
});

/** tsc's options besides the files (`--strict --noEmit`, ES modules as Node.js runs them). */
const TSC_OPTIONS = ["--strict", "--noEmit", "--module", "nodenext", "--target", "es2022", "--types", "node"];

/** The addon the tarball must carry; without it `npm pack` would start a Rust build. */
const addon = fs.readdirSync(pkgDir).find((f) => f.endsWith(".node"));
const skip = addon ? false : "the native addon is not built in npm/ (run `npm run build` there)";

function run(command, args, cwd) {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", shell: win && command === "npm", timeout: 240000 });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout || ""}${r.stderr || ""}`, stdout: r.stdout };
}

function npm(args, cwd) {
  const r = run(win ? "npm.cmd" : "npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], cwd);
  assert.strictEqual(r.status, 0, `npm ${args.join(" ")} failed:\n${r.out}`);
  return r;
}

/** Runs the project's tsc on `files` (relative to `dir`). */
function tsc(dir, files) {
  return run(process.execPath, [path.join(dir, "node_modules", "typescript", "bin", "tsc"), ...TSC_OPTIONS, ...files], dir);
}

const temps = [];
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/**
 * A user project (ES modules) with test/types/ copied into src/ and negative/, `config` set in
 * its .npmrc, and `install` installed.
 */
function userProject(name, install, config = []) {
  const dir = tempDir(`sioadapter-ts-${name}-`);
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: `user-app-${name}`, version: "1.0.0", private: true, type: "module" }));
  for (const setting of config) npm(["config", "set", ...setting, "--location=project"], dir);
  for (const sub of ["src", "negative"]) {
    const from = sub === "src" ? typesDir : path.join(typesDir, sub);
    fs.mkdirSync(path.join(dir, sub));
    for (const f of fs.readdirSync(from)) if (/\.[cm]?ts$/.test(f)) fs.copyFileSync(path.join(from, f), path.join(dir, sub, f));
  }
  npm(["install", "--prefer-offline", ...install, ...DEPENDENCIES], dir);
  return dir;
}

/** The files of `sub` in project `dir`, relative to it. */
function filesOf(dir, sub) {
  return fs.readdirSync(path.join(dir, sub)).filter((f) => /\.[cm]?ts$/.test(f)).map((f) => `${sub}/${f}`);
}

/**
 * Asserts that the project holds one socket.io-adapter, and that sioadapter's types and
 * socket.io's resolve to it (TypeScript and Node.js resolve from a package's real path).
 */
function assertOneSocketIoAdapter(dir) {
  const copies = npm(["ls", "socket.io-adapter", "--all", "--parseable"], dir).stdout.trim().split("\n").filter(Boolean);
  assert.deepStrictEqual(copies, [path.join(fs.realpathSync(dir), "node_modules", "socket.io-adapter")], `socket.io-adapter copies: ${copies.join(", ")}`);
  const from = (pkg) => require.resolve("socket.io-adapter", { paths: [fs.realpathSync(path.join(dir, "node_modules", pkg))] });
  assert.strictEqual(from("sioadapter"), from("socket.io"));
}

let packed, folder;

before(() => {
  if (skip) return;
  const packDir = tempDir("sioadapter-ts-pack-");
  const [info] = JSON.parse(npm(["pack", "--json", "--pack-destination", packDir], pkgDir).stdout);
  packed = userProject("packed", [path.join(packDir, info.filename)]);
  folder = userProject("folder", [pkgDir], [["install-links", "true"]]);
});

after(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

test("the packed package gives the user project one socket.io-adapter", { skip }, () => {
  assertOneSocketIoAdapter(packed);
});

test("code written for the official packages compiles against the packed package under tsc --strict", { skip, timeout: 300000 }, () => {
  const files = filesOf(packed, "src");
  for (const needed of ["src/readme-redis.ts", "src/readme-emitter.ts", "src/subclass.ts", "src/cast.ts", "src/readme-emitter-commonjs.cts"]) {
    assert.ok(files.includes(needed), `${needed} missing: ${files.join(", ")}`);
  }
  const r = tsc(packed, files);
  assert.strictEqual(r.status, 0, `tsc ${files.join(" ")} failed:\n${r.out}`);
});

test("tsc rejects each file of test/types/negative with the error it names", { skip, timeout: 300000 }, () => {
  const files = filesOf(packed, "negative");
  assert.ok(files.length > 0, "no negative files");
  const r = tsc(packed, files);
  assert.notStrictEqual(r.status, 0, `tsc accepted the negative files:\n${r.out}`);
  for (const file of files) {
    const expected = /expect: (TS\d+)/.exec(fs.readFileSync(path.join(packed, file), "utf8"));
    assert.ok(expected, `${file} does not name the error it expects (\`expect: TSnnnn\`)`);
    const errors = r.out.split("\n").filter((line) => line.startsWith(`${file}(`));
    assert.ok(errors.some((line) => line.includes(`error ${expected[1]}:`)), `${file}: expected ${expected[1]}, tsc said:\n${errors.join("\n") || r.out}`);
  }
});

test("installed from the folder with install-links (README): a copy, one socket.io-adapter, casts compile", { skip, timeout: 300000 }, () => {
  const installed = path.join(folder, "node_modules", "sioadapter");
  assert.ok(!fs.lstatSync(installed).isSymbolicLink(), "npm linked the folder instead of copying it");
  assert.ok(!fs.existsSync(path.join(installed, "node_modules")), "the copy carries a node_modules of its own");
  assertOneSocketIoAdapter(folder);
  const r = tsc(folder, ["src/cast.ts", "src/subclass.ts"]);
  assert.strictEqual(r.status, 0, `tsc failed:\n${r.out}`);
});
