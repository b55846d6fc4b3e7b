#!/usr/bin/env node
"use strict";
// Generates docs/api/node.md, the API reference of the npm package, from its types
// (npm/index.d.ts and their JSDoc): TypeDoc with typedoc-plugin-markdown, both devDependencies
// of test/ (`cd test && npm ci` first), rendered as one Markdown page.
//
//   node test/scripts/api-docs.js              writes docs/api/node.md
//   node test/scripts/api-docs.js --check      exits 1 when docs/api/node.md is not up to date
//   node test/scripts/api-docs.js --out FILE   writes FILE instead
//
// The page is deterministic: no date, no version, no source links, no absolute path, members
// sorted by kind then name; the types it cannot see through (socket.io-adapter's, Node.js's)
// always resolve to test/node_modules, whatever npm/node_modules holds and wherever it runs
// from, and no typedoc.json / tsconfig.json / package.json of the current directory is read.
// test/api-docs.test.js regenerates it and compares.
//
// Run as a test file (`node --test test/` on Node 20 runs every .js file under test/) with no
// argument, it does nothing: api-docs.test.js is the test.

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const testDir = path.join(__dirname, "..");
const repo = path.join(testDir, "..");
const ENTRY = path.join(repo, "npm", "index.d.ts");
const TARGET = path.join(repo, "docs", "api", "node.md");
const REGENERATE = "node test/scripts/api-docs.js";

const TITLE = "sioadapter: Node.js API reference";
const NOTICE = [
  `Generated from the package's TypeScript declarations, [\`npm/index.d.ts\`](../../npm/index.d.ts), by`,
  `\`${REGENERATE}\` (TypeDoc with typedoc-plugin-markdown): do not edit by hand, edit the`,
  "declarations' JSDoc and run it again. Usage, options in context and the rest: [README](../../README.md).",
  "Members marked \"sioadapter:\" are this package's additions to the official API.",
].join("\n");

/** Resolves a package (and optionally a file of it) from test/node_modules. */
function fromTest(request) {
  try {
    return require.resolve(request, { paths: [testDir] });
  } catch (err) {
    err.message = `${request} is not installed in test/ (run \`cd test && npm ci\`): ${err.message}`;
    throw err;
  }
}

/** TypeDoc's options: everything explicit, nothing read from files or the environment. */
function typedocOptions(outDir) {
  const socketIoAdapter = path.dirname(fromTest("socket.io-adapter/package.json"));
  const typesNode = path.dirname(fromTest("@types/node/package.json"));
  return {
    entryPoints: [ENTRY],
    plugin: [fromTest("typedoc-plugin-markdown")],
    out: outDir,
    name: TITLE,
    readme: "none",
    includeVersion: false,
    disableSources: true,
    excludeExternals: true,
    excludePrivate: true,
    sort: ["kind", "instance-first", "alphabetical-ignoring-documents"],
    lang: "en",
    logLevel: "Warn",
    treatWarningsAsErrors: true,
    skipErrorChecking: true,
    compilerOptions: {
      strict: true,
      skipLibCheck: true,
      target: "es2022",
      lib: ["es2022"],
      module: "nodenext",
      moduleResolution: "nodenext",
      types: ["node"],
      typeRoots: [path.dirname(typesNode)],
      paths: { "socket.io-adapter": [socketIoAdapter] },
    },
    // typedoc-plugin-markdown: one page (the only module, as the entry file), tables for
    // parameters and properties, signatures as TypeScript code blocks with their types.
    router: "module",
    entryFileName: "index.md",
    hidePageHeader: true,
    hideBreadcrumbs: true,
    useCodeBlocks: true,
    expandParameters: true,
    parametersFormat: "table",
    interfacePropertiesFormat: "table",
    classPropertiesFormat: "table",
    typeAliasPropertiesFormat: "table",
    propertyMembersFormat: "table",
    typeDeclarationFormat: "table",
    tableColumnSettings: { hideSources: true, leftAlignHeaders: true },
  };
}

/** The page TypeDoc makes, after the fixed notice under its title, without trailing spaces. */
function finish(markdown) {
  const lines = markdown.replace(/\r\n/g, "\n").split("\n").map((line) => line.replace(/[ \t]+$/, ""));
  if (lines[0] !== `# ${TITLE}`) throw new Error(`unexpected first line of TypeDoc's page: ${JSON.stringify(lines[0])}`);
  return `${[lines[0], "", NOTICE, ...lines.slice(1)].join("\n").replace(/\n+$/, "")}\n`;
}

/** Runs TypeDoc on npm/index.d.ts in a temporary directory and returns the page. */
async function render() {
  const typedoc = await import(pathToFileURL(fromTest("typedoc")).href);
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "sioadapter-api-docs-"));
  try {
    // No option readers: typedoc.json, tsconfig.json and package.json are not looked for.
    const app = await typedoc.Application.bootstrapWithPlugins(typedocOptions(outDir), []);
    const project = await app.convert();
    if (!project || app.logger.hasErrors() || app.logger.hasWarnings()) throw new Error("TypeDoc could not convert npm/index.d.ts (see above)");
    await app.generateOutputs(project);
    if (app.logger.hasErrors() || app.logger.hasWarnings()) throw new Error("TypeDoc could not render the page (see above)");
    const files = fs.readdirSync(outDir, { recursive: true }).filter((f) => fs.statSync(path.join(outDir, f)).isFile());
    if (files.length !== 1 || files[0] !== "index.md") throw new Error(`TypeDoc made ${files.join(", ")}, expected one index.md`);
    return finish(fs.readFileSync(path.join(outDir, "index.md"), "utf8"));
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}

/** The first line where `a` and `b` differ, for a short message. */
function firstDifference(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) return `line ${i + 1}:\n  committed: ${JSON.stringify(x[i] ?? "<end of file>")}\n  generated: ${JSON.stringify(y[i] ?? "<end of file>")}`;
  }
  return "no difference";
}

async function main(args) {
  let check = false;
  let out = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--check") check = true;
    else if (args[i] === "--out" && i + 1 < args.length) out = path.resolve(args[++i]);
    else {
      console.error(`usage: ${REGENERATE} [--check] [--out FILE]`);
      return 2;
    }
  }
  const target = out || TARGET;
  const page = await render();
  if (check) {
    const committed = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
    if (committed === page) return 0;
    console.error(`${path.relative(process.cwd(), target) || target} is not up to date with npm/index.d.ts: run \`${REGENERATE}\`.\n${firstDifference(committed, page)}`);
    return 1;
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, page);
  console.log(`wrote ${path.relative(process.cwd(), target) || target}`);
  return 0;
}

module.exports = { render, ENTRY, TARGET, REGENERATE };

// Under `node --test` with no argument (see the header) it does nothing.
if (require.main === module && !(process.env.NODE_TEST_CONTEXT && process.argv.length === 2)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err.stack || err);
      process.exitCode = 1;
    },
  );
}
