"use strict";
// The platforms sioadapter ships a prebuilt addon for, and which one this process runs on.
// One table for the loader (lib/native.js), the build (scripts/build.js), the install hook
// (scripts/install.js) and the release tooling (scripts/platforms.js).
//
// Names follow napi-rs: `<platform>-<arch>[-<abi>]`, the addon file `sioadapter.<name>.node`,
// the package that carries it `sioadapter-<name>`.

const fs = require("fs");

/** name → what npm matches (os, cpu, libc) and what Rust builds (target, library file). */
const TARGETS = {
  "linux-x64-gnu": { os: "linux", cpu: "x64", libc: "glibc", rust: "x86_64-unknown-linux-gnu" },
  "linux-arm64-gnu": { os: "linux", cpu: "arm64", libc: "glibc", rust: "aarch64-unknown-linux-gnu" },
  "linux-x64-musl": { os: "linux", cpu: "x64", libc: "musl", rust: "x86_64-unknown-linux-musl" },
  "linux-arm64-musl": { os: "linux", cpu: "arm64", libc: "musl", rust: "aarch64-unknown-linux-musl" },
  "darwin-x64": { os: "darwin", cpu: "x64", rust: "x86_64-apple-darwin" },
  "darwin-arm64": { os: "darwin", cpu: "arm64", rust: "aarch64-apple-darwin" },
  "win32-x64-msvc": { os: "win32", cpu: "x64", rust: "x86_64-pc-windows-msvc" },
};

/** The file cargo writes for the addon crate (sioadapter-node), per OS. */
const CARGO_LIB = { linux: "libsioadapter_node.so", darwin: "libsioadapter_node.dylib", win32: "sioadapter_node.dll" };

let libcCache;

/**
 * "musl" or "gnu" on Linux, without `process.report` (building a whole diagnostic report is
 * known to stall start-up on some machines). The witnesses @napi-rs/cli's loader and
 * detect-libc use: the text of /usr/bin/ldd first, then the musl loader on disk, and only when
 * both say nothing, `ldd --version` in a child process (musl's prints to stderr, exits 1).
 */
function linuxLibc() {
  if (libcCache) return libcCache;
  libcCache = libcFromLdd() || libcFromLoader() || libcFromChild() || "gnu";
  return libcCache;
}

function libcFromLdd() {
  try {
    const text = fs.readFileSync("/usr/bin/ldd", "latin1");
    if (text.includes("musl")) return "musl";
    if (text.includes("GNU C Library") || text.includes("GLIBC")) return "gnu";
  } catch {
    // no /usr/bin/ldd (distroless, some containers): ask the next witness
  }
  return null;
}

function libcFromLoader() {
  for (const dir of ["/lib", "/usr/lib"]) {
    try {
      if (fs.readdirSync(dir).some((f) => f.startsWith("ld-musl-"))) return "musl";
    } catch {
      // not there
    }
  }
  return null;
}

function libcFromChild() {
  try {
    const r = require("child_process").spawnSync("ldd", ["--version"], { encoding: "utf8", timeout: 5000 });
    const out = `${r.stdout || ""}${r.stderr || ""}`;
    if (out.includes("musl")) return "musl";
    if (/GNU|GLIBC/.test(out)) return "gnu";
  } catch {
    // no ldd at all
  }
  return null;
}

/** This process's platform name, supported or not (e.g. "linux-x64-gnu", "freebsd-x64"). */
function currentTarget() {
  const { platform, arch } = process;
  if (platform === "linux") return `linux-${arch}-${linuxLibc()}`;
  if (platform === "win32") return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

const binaryName = (target) => `sioadapter.${target}.node`;
const packageName = (target) => `sioadapter-${target}`;

module.exports = { TARGETS, CARGO_LIB, currentTarget, linuxLibc, binaryName, packageName };
