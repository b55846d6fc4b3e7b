"use strict";
// Loads the napi addon: the prebuilt file shipped in the package (or built from the repository
// by scripts/build.js), named after the platform like napi-rs names its artifacts.

const path = require("path");
const fs = require("fs");

function platformTriple() {
  const { platform, arch } = process;
  if (platform === "linux") {
    const report = typeof process.report?.getReport === "function" ? process.report.getReport() : null;
    const glibc = report && report.header && report.header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? "gnu" : "musl"}`;
  }
  return `${platform}-${arch}`;
}

const FILE = `sioadapter.${platformTriple()}.node`;

function load() {
  const local = path.join(__dirname, "..", FILE);
  if (fs.existsSync(local)) return require(local);
  const err = new Error(
    `sioadapter: the native addon ${FILE} is missing. Build it with \`npm run build\` in ${path.join(__dirname, "..")} ` +
      "(needs Rust: https://rustup.rs) or install a package that ships it.",
  );
  err.code = "ERR_SIO_NATIVE_MISSING";
  throw err;
}

module.exports = load();
module.exports.FILE = FILE;
/**
 * The facts the Rust core owns (option defaults, limit defaults, error codes, request types,
 * record kinds, reserved events, subscription modes), read once: JS never repeats them.
 */
module.exports.PROTOCOL = module.exports.protocol();
