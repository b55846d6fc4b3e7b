#!/usr/bin/env node
"use strict";
// Builds the addon from the Rust sources of the repository this package lives in, and copies
// it next to index.js. `node scripts/build.js --if-missing` does nothing when it is there.

const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const pkgDir = path.join(__dirname, "..");
const repo = path.join(pkgDir, "..");
const ifMissing = process.argv.includes("--if-missing");

function targetFile() {
  const { platform, arch } = process;
  const report = platform === "linux" && typeof process.report?.getReport === "function" ? process.report.getReport() : null;
  const abi = platform === "linux" ? (report && report.header.glibcVersionRuntime ? "-gnu" : "-musl") : "";
  return path.join(pkgDir, `sioadapter.${platform}-${arch}${abi}.node`);
}

const out = targetFile();
if (ifMissing && fs.existsSync(out)) process.exit(0);

if (!fs.existsSync(path.join(repo, "bindings", "node", "Cargo.toml"))) {
  console.error(`sioadapter: no prebuilt addon (${path.basename(out)}) and no Rust sources to build it from.`);
  process.exit(1);
}
const cargo = process.env.CARGO || "cargo";
const result = spawnSync(cargo, ["build", "--release", "-p", "sioadapter-node"], { cwd: repo, stdio: "inherit" });
if (result.error) {
  console.error(`sioadapter: could not run cargo (${result.error.message}). Install Rust from https://rustup.rs and retry.`);
  process.exit(1);
}
if (result.status !== 0) process.exit(result.status || 1);

const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, "target");
const libName = { linux: "libsioadapter_node.so", darwin: "libsioadapter_node.dylib", win32: "sioadapter_node.dll" }[process.platform];
// Copy then rename: a running process that has the old addon mapped keeps its inode intact.
const tmp = `${out}.${process.pid}.tmp`;
fs.copyFileSync(path.join(targetDir, "release", libName), tmp);
fs.renameSync(tmp, out);
console.log(`sioadapter: built ${path.relative(process.cwd(), out)}`);
