"use strict";
// docs/api/node.md, the API reference generated from npm/index.d.ts by test/scripts/api-docs.js
// (TypeDoc + typedoc-plugin-markdown), is up to date: it is regenerated into a temporary file and
// must equal the committed one. And it documents everything: each name npm/index.d.ts exports
// (read with the TypeScript compiler API, so that this cannot pass on an empty page) has its
// heading, and each `@default` of the declarations shows. No Redis, no addon, no network.
// Run: node --test test/api-docs.test.js
const { test } = require("node:test");
const assert = require("node:assert");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const ts = require("typescript");

const script = path.join(__dirname, "scripts", "api-docs.js");
const { ENTRY, TARGET, REGENERATE } = require(script);
const rel = (p) => path.relative(path.join(__dirname, ".."), p);
const STALE = `${rel(TARGET)} is not up to date with ${rel(ENTRY)}: run \`${REGENERATE}\` and commit the result`;

function committed() {
  assert.ok(fs.existsSync(TARGET), `${rel(TARGET)} is missing: run \`${REGENERATE}\``);
  return fs.readFileSync(TARGET, "utf8");
}

/** The names npm/index.d.ts exports (`default` included), as the type checker sees them. */
function exportedNames() {
  const program = ts.createProgram([ENTRY], { noResolve: true, noLib: true, types: [] });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(ENTRY));
  assert.ok(moduleSymbol, `${rel(ENTRY)} is not a module`);
  return checker.getExportsOfModule(moduleSymbol).map((s) => s.getName()).sort();
}

/** The text of the page's item headings (`### name`, `### name()`), Markdown escapes undone. */
function itemHeadings(page) {
  return new Set(
    page
      .split("\n")
      .filter((line) => line.startsWith("### "))
      .map((line) => line.slice(4).replace(/\\(.)/g, "$1").replace(/\(\)$/, "")),
  );
}

test("docs/api/node.md is what the generator makes from npm/index.d.ts", { timeout: 120000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-api-docs-test-"));
  try {
    const out = path.join(dir, "node.md");
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // the script does nothing under `node --test` without arguments
    const r = spawnSync(process.execPath, [script, "--out", out], { encoding: "utf8", env, timeout: 110000 });
    assert.strictEqual(r.status, 0, `${REGENERATE} --out ${out} failed:\n${r.stdout}${r.stderr}${r.error || ""}`);
    const generated = fs.readFileSync(out, "utf8");
    const current = committed();
    if (generated !== current) {
      const a = current.split("\n");
      const b = generated.split("\n");
      let i = 0;
      while (i < Math.max(a.length, b.length) && a[i] === b[i]) i++;
      assert.fail(`${STALE}.\nFirst difference, line ${i + 1}:\n  committed: ${JSON.stringify(a[i] ?? "<end of file>")}\n  generated: ${JSON.stringify(b[i] ?? "<end of file>")}`);
    }
    assert.ok(!/\/(work|tmp|home|Users)\/|[A-Z]:\\/.test(generated), "the page holds an absolute path");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("every name npm/index.d.ts exports has a heading in docs/api/node.md", () => {
  const names = exportedNames();
  // The exports as of this test's writing: a parse that finds nothing must not pass.
  for (const name of ["createAdapter", "createShardedAdapter", "RedisAdapter", "ShardedRedisAdapter", "Emitter", "RedisAdapterOptions", "default"]) {
    assert.ok(names.includes(name), `${name} is not among the exports read from ${rel(ENTRY)}: ${names.join(", ")}`);
  }
  assert.ok(names.length >= 25, `only ${names.length} exports read from ${rel(ENTRY)}: ${names.join(", ")}`);
  const headings = itemHeadings(committed());
  const missing = names.filter((name) => !headings.has(name));
  assert.deepStrictEqual(missing, [], `exported but without a heading in ${rel(TARGET)} (${STALE}?): ${missing.join(", ")}`);
});

test("every @default of npm/index.d.ts shows in docs/api/node.md", () => {
  const source = fs.readFileSync(ENTRY, "utf8");
  const defaults = [...source.matchAll(/@default[ \t]+([^\n]*?)[ \t]*(?:\*\/|\n)/g)].map((m) => m[1]);
  assert.ok(defaults.length >= 10, `only ${defaults.length} @default tags read from ${rel(ENTRY)}`);
  const page = committed();
  const missing = [...new Set(defaults)].filter((value) => !page.includes(`**Default** \`${value}\``));
  assert.deepStrictEqual(missing, [], `@default values not shown as "**Default** \`value\`" in ${rel(TARGET)}`);
});
