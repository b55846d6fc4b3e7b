'use strict';
// bench/RESULTS.md is written by three scripts: bench.js (the main table, the whole file),
// rooms.js (a section appended after it) and scale.js (the `## Growth curves` section). These
// helpers let one script rewrite its part without dropping another's.

const fs = require('node:fs');

/** The lines of `file` from the heading line `heading` up to the next `## ` heading. */
function sectionBounds(lines, heading) {
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) return null;
  const next = lines.findIndex((l, i) => i > start && /^## /.test(l));
  return { start, end: next < 0 ? lines.length : next };
}

/** The `heading` section of `file` (heading line included), or '' when it has none. */
function readSection(file, heading) {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  const bounds = sectionBounds(lines, heading);
  return bounds ? `${lines.slice(bounds.start, bounds.end).join('\n').replace(/\n*$/, '')}\n` : '';
}

/** Replaces the `heading` section of `file` with `text` (which starts with the heading), or appends it. */
function writeSection(file, heading, text) {
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const lines = old.split('\n');
  const bounds = sectionBounds(lines, heading);
  let updated;
  if (!bounds) {
    updated = `${old.replace(/\n*$/, '')}${old ? '\n\n' : ''}${text}`;
  } else {
    const after = lines.slice(bounds.end).join('\n');
    updated = `${lines.slice(0, bounds.start).join('\n').replace(/\n*$/, '\n\n')}${text.replace(/\n*$/, '\n')}${after ? `\n${after}` : ''}`;
  }
  fs.writeFileSync(file, updated.endsWith('\n') ? updated : `${updated}\n`);
}

module.exports = { readSection, writeSection };
