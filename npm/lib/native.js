"use strict";
// Loads the napi addon, the way napi-rs packages do. In order:
//   1. `sioadapter.<platform>.node` next to the package: built from the repository by
//      scripts/build.js, or carried by a tarball made with `npm pack` in a checkout;
//   2. the prebuilt package for this platform, `sioadapter-<platform>`: one of the package's
//      optionalDependencies, which npm installs only where its os/cpu/libc match.
// Nothing is built here; when neither is there the error says what to install or build.

const path = require("path");
const fs = require("fs");
const { TARGETS, currentTarget, binaryName, packageName } = require("../scripts/targets");
const { version } = require("../package.json");

const pkgDir = path.join(__dirname, "..");
const TARGET = currentTarget();
const FILE = binaryName(TARGET);
const PACKAGE = packageName(TARGET);

function load() {
  const tried = [];
  const local = path.join(pkgDir, FILE);
  if (fs.existsSync(local)) {
    try {
      return require(local);
    } catch (err) {
      tried.push({ what: local, why: err.message, err });
    }
  } else {
    tried.push({ what: local, why: "not there" });
  }

  if (TARGETS[TARGET]) {
    let manifest = null;
    try {
      manifest = require(`${PACKAGE}/package.json`);
    } catch (err) {
      tried.push({ what: `the package ${PACKAGE}`, why: err.code === "MODULE_NOT_FOUND" ? "not installed" : err.message, err });
    }
    if (manifest && manifest.version !== version) {
      tried.push({ what: `the package ${PACKAGE}`, why: `version ${manifest.version} is installed, sioadapter ${version} needs the same version` });
    } else if (manifest) {
      try {
        return require(PACKAGE);
      } catch (err) {
        tried.push({ what: `the package ${PACKAGE}`, why: err.message, err });
      }
    }
  }
  throw missing(tried);
}

function missing(tried) {
  const lines = [`sioadapter: no native addon loads on this platform (${TARGET}). Tried:`];
  for (const t of tried) lines.push(`  - ${t.what}: ${t.why}`);
  if (fs.existsSync(path.join(pkgDir, "..", "bindings", "node", "Cargo.toml"))) {
    // a checkout of the repository
    lines.push(`Build it from the Rust sources with \`npm run build\` in ${pkgDir} (needs Rust: https://rustup.rs).`);
  } else {
    if (TARGETS[TARGET]) {
      lines.push(
        `The prebuilt addon comes in ${PACKAGE}@${version}, an optional dependency of sioadapter: ` +
          `reinstall without --omit=optional / --no-optional, or add it with \`npm install ${PACKAGE}@${version}\`.`,
      );
    } else {
      lines.push(`No prebuilt package is published for ${TARGET} (there are: ${Object.keys(TARGETS).join(", ")}).`);
    }
    lines.push(
      "Or build it from source (needs Rust: https://rustup.rs): in a checkout of the sioadapter repository, " +
        "`cd npm && npm install && npm pack` makes a tarball that carries the addon for this platform; install that.",
    );
  }
  const err = new Error(lines.join("\n"));
  err.code = "ERR_SIO_NATIVE_MISSING";
  err.target = TARGET;
  err.package = PACKAGE;
  const cause = tried.find((t) => t.err && t.err.code !== "MODULE_NOT_FOUND");
  if (cause) err.cause = cause.err;
  return err;
}

module.exports = load();
module.exports.FILE = FILE;
/**
 * The facts the Rust core owns (option defaults, limit defaults, error codes, request types,
 * record kinds, reserved events, subscription modes), read once: JS never repeats them.
 */
module.exports.PROTOCOL = module.exports.protocol();
