#!/usr/bin/env node
"use strict";
// The per-platform packages (npm/platforms/<platform>/), the napi-rs way: the published main
// package `sioadapter` holds the JavaScript and lists one prebuilt package per platform in its
// optionalDependencies; npm installs the one whose os/cpu/libc match and skips the others.
//
// As `napi prepublish` does, the optionalDependencies are written when the main package is
// packed for release (pack-main), from the platform table at npm/package.json's version, not
// kept in npm/package.json: a lockfile cannot hold packages the registry does not have yet, so
// listing them there would break `npm ci` in npm/ before every release is published.
//
//   node scripts/platforms.js check
//       every platform package.json agrees with the platform table (scripts/targets.js) and
//       carries npm/package.json's version; exits 1 when not.
//   node scripts/platforms.js sync
//       rewrites them so they do (`npm version <v>` runs it).
//   node scripts/platforms.js collect <platform> [--cargo-target-dir target] [--out DIR]
//       copies cargo's library for the platform's Rust target (built with --target) to
//       DIR/sioadapter.<platform>.node (DIR defaults to npm/).
//   node scripts/platforms.js pack <platform...|all> [--binaries DIR] [--out DIR]
//       packs each platform package with its addon, sioadapter.<platform>.node, found anywhere
//       under DIR (defaults to npm/), after checking the file is a library for that platform.
//   node scripts/platforms.js pack-main [--out DIR]
//       packs the main package as it is published: its JavaScript and scripts/targets.js, and
//       optionalDependencies on every platform package at its version; no addon file (it
//       comes in the platform package), no install hook, no build tooling, no Rust sources.
// Packing works on a copy in a temporary folder, so the checkout is left as it was; the
// tarballs land in --out (default: the current directory) and their paths are printed.

const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { TARGETS, CARGO_LIB, binaryName, packageName } = require("./targets");

const pkgDir = path.join(__dirname, "..");
const platformsDir = path.join(pkgDir, "platforms");
const mainJsonPath = path.join(pkgDir, "package.json");
/** The repository's license, shipped in every tarball (npm always packs a LICENSE file). */
const licenseFile = path.join(pkgDir, "..", "LICENSE");

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
const writeJson = (file, value) => fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

/** What npm/platforms/<target>/package.json must say, derived from the main package. */
function platformManifest(target, main) {
  const t = TARGETS[target];
  const manifest = {
    name: packageName(target),
    version: main.version,
    description: `The ${target} (${t.rust}) native addon of sioadapter, installed by it as an optional dependency`,
    os: [t.os],
    cpu: [t.cpu],
  };
  if (t.libc) manifest.libc = [t.libc];
  Object.assign(manifest, {
    main: binaryName(target),
    files: [binaryName(target)],
    license: main.license,
    engines: main.engines,
  });
  // where it comes from, when the main package says (npm's provenance check compares
  // `repository` with the repository that publishes)
  for (const key of ["repository", "homepage", "bugs", "author"]) if (main[key] !== undefined) manifest[key] = main[key];
  return manifest;
}

function platformReadme(target) {
  return `# \`${packageName(target)}\`

The prebuilt native addon of [\`sioadapter\`](https://www.npmjs.com/package/sioadapter) for
${target} (Rust target \`${TARGETS[target].rust}\`). Install \`sioadapter\`, not this package: it
lists this one in its \`optionalDependencies\`, and npm picks the one that matches the machine.
`;
}

function optionalDependencies(main) {
  return Object.fromEntries(Object.keys(TARGETS).map((t) => [packageName(t), main.version]));
}

/** The differences between the files and the table, as sentences; empty when in sync. */
function drift() {
  const main = readJson(mainJsonPath);
  const problems = [];
  const listed = Object.keys(main.optionalDependencies || {}).filter((name) => name.startsWith("sioadapter-"));
  if (listed.length) {
    problems.push(`npm/package.json lists ${listed.join(", ")}: pack-main adds the platform packages at release; keep them out`);
  }
  for (const target of Object.keys(TARGETS)) {
    const file = path.join(platformsDir, target, "package.json");
    if (!fs.existsSync(file)) {
      problems.push(`${path.relative(pkgDir, file)} is missing`);
      continue;
    }
    const have = readJson(file);
    const expected = platformManifest(target, main);
    if (JSON.stringify(have) !== JSON.stringify(expected)) {
      const keys = Object.keys(expected).filter((k) => JSON.stringify(have[k]) !== JSON.stringify(expected[k]));
      const extra = Object.keys(have).filter((k) => !(k in expected));
      problems.push(`${path.relative(pkgDir, file)} differs in: ${[...keys, ...extra].join(", ")}`);
    }
  }
  if (fs.existsSync(platformsDir)) {
    for (const dir of fs.readdirSync(platformsDir)) {
      if (!TARGETS[dir]) problems.push(`platforms/${dir} is not a known platform (scripts/targets.js)`);
    }
  }
  return problems;
}

function check() {
  const problems = drift();
  if (problems.length) {
    console.error(`sioadapter: the platform packages are out of step with npm/package.json:\n  - ${problems.join("\n  - ")}`);
    console.error("Run `node scripts/platforms.js sync` in npm/.");
    process.exit(1);
  }
  console.log(`sioadapter: ${Object.keys(TARGETS).length} platform packages at ${readJson(mainJsonPath).version}, in step`);
}

function sync() {
  const main = readJson(mainJsonPath);
  for (const target of Object.keys(TARGETS)) {
    const dir = path.join(platformsDir, target);
    fs.mkdirSync(dir, { recursive: true });
    writeJson(path.join(dir, "package.json"), platformManifest(target, main));
    fs.writeFileSync(path.join(dir, "README.md"), platformReadme(target));
  }
  console.log(`sioadapter: platform packages written at ${main.version}`);
}

function option(args, name, fallback) {
  const i = args.indexOf(name);
  if (i === -1) return fallback;
  const value = args[i + 1];
  if (!value || value.startsWith("--")) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

function knownTarget(target) {
  if (!TARGETS[target]) throw new Error(`unknown platform ${target}; known: ${Object.keys(TARGETS).join(", ")}`);
  return target;
}

function collect(target, cargoTargetDir, out) {
  const t = TARGETS[knownTarget(target)];
  const from = path.join(cargoTargetDir, t.rust, "release", CARGO_LIB[t.os]);
  const to = path.join(out, binaryName(target));
  verifyBinary(target, from);
  fs.mkdirSync(out, { recursive: true });
  fs.copyFileSync(from, to);
  console.log(to);
}

/**
 * Refuses a file that is not a shared library for the platform: the machine type in its ELF,
 * Mach-O or PE header, and for Linux which C library it was linked against (glibc binaries
 * carry GLIBC_x.y symbol versions, musl has none).
 */
function verifyBinary(target, file) {
  const t = TARGETS[target];
  const b = fs.readFileSync(file);
  const fail = (why) => {
    throw new Error(`${file} is not the ${target} addon: ${why}`);
  };
  if (t.os === "linux") {
    if (b.readUInt32BE(0) !== 0x7f454c46) fail("not an ELF file");
    if (b[4] !== 2 || b[5] !== 1) fail("not a 64-bit little-endian ELF file");
    if (b.readUInt16LE(16) !== 3) fail("not a shared object");
    const machine = { x64: 62, arm64: 183 }[t.cpu];
    if (b.readUInt16LE(18) !== machine) fail(`ELF machine ${b.readUInt16LE(18)}, expected ${machine}`);
    const glibc = b.includes("GLIBC_");
    if (t.libc === "glibc" && !glibc) fail("no GLIBC_ symbol versions: not linked against glibc");
    if (t.libc === "musl" && glibc) fail("GLIBC_ symbol versions: linked against glibc, not musl");
  } else if (t.os === "darwin") {
    if (b.readUInt32LE(0) !== 0xfeedfacf) fail("not a 64-bit Mach-O file");
    const cpu = { x64: 0x01000007, arm64: 0x0100000c }[t.cpu];
    if (b.readUInt32LE(4) !== cpu) fail(`Mach-O CPU type 0x${b.readUInt32LE(4).toString(16)}, expected 0x${cpu.toString(16)}`);
  } else if (t.os === "win32") {
    if (b.toString("latin1", 0, 2) !== "MZ") fail("not a PE file");
    const pe = b.readUInt32LE(0x3c);
    if (b.toString("latin1", pe, pe + 4) !== "PE\0\0") fail("no PE header");
    const machine = { x64: 0x8664, arm64: 0xaa64 }[t.cpu];
    if (b.readUInt16LE(pe + 4) !== machine) fail(`PE machine 0x${b.readUInt16LE(pe + 4).toString(16)}, expected 0x${machine.toString(16)}`);
  }
}

function findFile(dir, name) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isFile() && entry.name === name) return p;
    if (entry.isDirectory() && entry.name !== "node_modules" && entry.name !== "platforms") {
      const found = findFile(p, name);
      if (found) return found;
    }
  }
  return null;
}

/** Runs npm (npm.cmd through a shell on Windows, where it is a batch file). */
function npm(args, cwd) {
  const win = process.platform === "win32";
  const argv = win ? args.map((a) => (/[\s"]/.test(a) ? `"${a.replace(/"/g, '""')}"` : a)) : args;
  return execFileSync(win ? "npm.cmd" : "npm", argv, { cwd, encoding: "utf8", shell: win });
}

/** Runs npm pack in a staging copy, returns the tarball's path. */
function packStaged(stage, out) {
  fs.mkdirSync(out, { recursive: true });
  const json = npm(["pack", "--json", "--ignore-scripts", "--pack-destination", path.resolve(out)], stage);
  return path.join(path.resolve(out), JSON.parse(json)[0].filename);
}

function withStage(fn) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-stage-"));
  try {
    return fn(stage);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

function packPlatform(target, binaries, out) {
  knownTarget(target);
  const problems = drift();
  if (problems.length) throw new Error(`platform packages out of step (run sync): ${problems.join("; ")}`);
  const binary = findFile(binaries, binaryName(target));
  if (!binary) throw new Error(`no ${binaryName(target)} under ${binaries}`);
  verifyBinary(target, binary);
  return withStage((stage) => {
    fs.copyFileSync(path.join(platformsDir, target, "package.json"), path.join(stage, "package.json"));
    fs.copyFileSync(path.join(platformsDir, target, "README.md"), path.join(stage, "README.md"));
    fs.copyFileSync(binary, path.join(stage, binaryName(target)));
    fs.copyFileSync(licenseFile, path.join(stage, "LICENSE"));
    return packStaged(stage, out);
  });
}

function packMain(out) {
  const problems = drift();
  if (problems.length) throw new Error(`platform packages out of step (run sync): ${problems.join("; ")}`);
  const listed = JSON.parse(npm(["pack", "--dry-run", "--json", "--ignore-scripts"], pkgDir))[0].files.map((f) => f.path);
  return withStage((stage) => {
    for (const file of listed) {
      // no addon (it comes in the platform package), no build tooling: at run time the package
      // needs its JavaScript and the platform table
      if (file.endsWith(".node") || file === "package.json") continue;
      if (file.startsWith("scripts/") && file !== "scripts/targets.js") continue;
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true });
      fs.copyFileSync(path.join(pkgDir, file), path.join(stage, file));
    }
    const main = readJson(mainJsonPath);
    // The published package builds nothing at install: no install hook, so no cargo and no
    // npm "install scripts" warning; its lifecycle scripts all belong to the checkout. Its
    // addon comes in the platform packages, listed right after the dependencies.
    const manifest = {};
    for (const [key, value] of Object.entries(main)) {
      if (key === "scripts") continue;
      manifest[key] = value;
      if (key === "dependencies") manifest.optionalDependencies = optionalDependencies(main);
    }
    if (!manifest.optionalDependencies) manifest.optionalDependencies = optionalDependencies(main);
    writeJson(path.join(stage, "package.json"), manifest);
    fs.copyFileSync(licenseFile, path.join(stage, "LICENSE"));
    return packStaged(stage, out);
  });
}

function main(argv) {
  const [command, ...args] = argv;
  if (command === "check") return check();
  if (command === "sync") return sync();
  if (command === "collect") {
    const cargoTargetDir = option(args, "--cargo-target-dir", process.env.CARGO_TARGET_DIR || path.join(pkgDir, "..", "target"));
    const out = option(args, "--out", pkgDir);
    if (args.length !== 1) throw new Error("collect takes one platform");
    return collect(args[0], cargoTargetDir, out);
  }
  if (command === "pack") {
    const binaries = option(args, "--binaries", pkgDir);
    const out = option(args, "--out", process.cwd());
    const targets = args.length === 1 && args[0] === "all" ? Object.keys(TARGETS) : args;
    if (!targets.length) throw new Error("pack takes platforms, or all");
    for (const target of targets) console.log(packPlatform(target, binaries, out));
    return;
  }
  if (command === "pack-main") {
    console.log(packMain(option(args, "--out", process.cwd())));
    return;
  }
  throw new Error(`usage: node scripts/platforms.js check | sync | collect <platform> | pack <platform...|all> | pack-main (got ${command})`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(`sioadapter: ${err.message}`);
  process.exit(1);
}
