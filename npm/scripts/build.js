#!/usr/bin/env node
"use strict";
// Builds the addon from the Rust sources of the repository this package lives in, and copies
// it next to index.js as sioadapter.<platform>.node (the first place lib/native.js looks).
// `node scripts/build.js --if-missing` does nothing when that file is there.
// `--workspace` builds the whole Cargo workspace (every library and example) in the same cargo
// run, with the features `cargo test --workspace` uses, so that the tests reuse that build
// instead of compiling the dependencies a second time with other features (test/run.sh).

const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const { CARGO_LIB, binaryName, currentTarget } = require("./targets");

const pkgDir = path.join(__dirname, "..");
const repo = path.join(pkgDir, "..");
const ifMissing = process.argv.includes("--if-missing");
const packages = process.argv.includes("--workspace") ? ["--workspace", "--lib", "--examples"] : ["-p", "sioadapter-node"];

const out = path.join(pkgDir, binaryName(currentTarget()));
if (ifMissing && fs.existsSync(out)) process.exit(0);

if (!fs.existsSync(path.join(repo, "bindings", "node", "Cargo.toml"))) {
  console.error(`sioadapter: no prebuilt addon (${path.basename(out)}) and no Rust sources to build it from.`);
  process.exit(1);
}
const cargo = process.env.CARGO || "cargo";
const result = spawnSync(cargo, ["build", "--release", ...packages], { cwd: repo, stdio: "inherit" });
if (result.error) {
  console.error(`sioadapter: could not run cargo (${result.error.message}). Install Rust from https://rustup.rs and retry.`);
  process.exit(1);
}
if (result.status !== 0) process.exit(result.status || 1);

const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, "target");
const libName = CARGO_LIB[process.platform] || CARGO_LIB.linux;
// Copy then rename: a running process that has the old addon mapped keeps its inode intact.
const tmp = `${out}.${process.pid}.tmp`;
fs.copyFileSync(path.join(targetDir, "release", libName), tmp);
fs.renameSync(tmp, out);
console.log(`sioadapter: built ${path.relative(process.cwd(), out)}`);
