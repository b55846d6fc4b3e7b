'use strict';
// The C library as users get it: installed into a prefix by bindings/c/install.sh (from the
// release build test/run.sh made), once per test process, removed when it exits. Programs are
// compiled with the installed pkg-config file's flags only and run with the prefix's lib/ on the
// loader path (they need libsioadapter.so.<major>, the SONAME).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
let installed;

/** `{ prefix, libDir, flags }`: the installed library and its `pkg-config --cflags --libs`. */
function cLibrary() {
  if (installed) return installed;
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'sioadapter-prefix-'));
  process.on('exit', () => fs.rmSync(prefix, { recursive: true, force: true }));
  execFileSync('bash', [path.join(root, 'bindings', 'c', 'install.sh'), '--prefix', prefix, '--no-build'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const libDir = path.join(prefix, 'lib');
  const env = { ...process.env, PKG_CONFIG_PATH: path.join(libDir, 'pkgconfig') };
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'sioadapter'], { env, encoding: 'utf8' }).trim().split(/\s+/);
  installed = { prefix, libDir, flags };
  return installed;
}

module.exports = { cLibrary };
