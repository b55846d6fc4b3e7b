#!/usr/bin/env node
"use strict";
// npm's `install` hook for the package as it sits in a checkout of the repository (the folder
// install, `npm install` in npm/). A published package leaves this hook out: its addon comes in
// the prebuilt package for the platform (scripts/platforms.js pack-main drops the hook).
//
//   - the addon is there (sioadapter.<platform>.node next to the package, or the prebuilt
//     package sioadapter-<platform> installed): nothing to do, cargo is not needed;
//   - it is not, the Rust sources are here and cargo runs: build it (scripts/build.js);
//   - otherwise: say so and what to do, and succeed; requiring sioadapter then throws
//     ERR_SIO_NATIVE_MISSING with the same advice.

const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const { TARGETS, currentTarget, binaryName, packageName } = require("./targets");

const pkgDir = path.join(__dirname, "..");
const sources = path.join(pkgDir, "..", "bindings", "node", "Cargo.toml");
const target = currentTarget();
const pkg = packageName(target);

function prebuiltPackage() {
  if (!TARGETS[target]) return null;
  try {
    const manifest = require.resolve(`${pkg}/package.json`, { paths: [pkgDir] });
    const file = path.join(path.dirname(manifest), binaryName(target));
    return fs.existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

function cargoRuns() {
  const r = spawnSync(process.env.CARGO || "cargo", ["--version"], { stdio: "ignore" });
  return !r.error && r.status === 0;
}

if (fs.existsSync(path.join(pkgDir, binaryName(target))) || prebuiltPackage()) process.exit(0);

if (fs.existsSync(sources) && cargoRuns()) {
  const r = spawnSync(process.execPath, [path.join(__dirname, "build.js"), "--if-missing"], { stdio: "inherit" });
  process.exit(r.status === null ? 1 : r.status);
}

const why = fs.existsSync(sources)
  ? "cargo is not on PATH, so it was not built from the Rust sources here: install Rust (https://rustup.rs), then run `npm run build` in " + pkgDir
  : TARGETS[target]
    ? `the prebuilt package ${pkg} is not installed (was --omit=optional used?): install it next to sioadapter`
    : `no prebuilt package is published for ${target}: build from a checkout of the repository (\`cd npm && npm install && npm pack\`, needs Rust) and install that tarball`;
console.warn(`sioadapter: no native addon for ${target}; ${why}.`);
