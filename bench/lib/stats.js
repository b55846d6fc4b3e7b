'use strict';
// Collecting measurements per (metric, adapter kind) across rounds, summarising them as
// median / min / max, and rendering the comparison as a markdown table.

/** Nearest-rank percentile (p in 0..100) of `values`; NaN when empty. */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Median (mean of the middle two for an even count), min, max and count; null when empty. */
function summarize(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length };
}

const integer = (v) => Math.round(v).toLocaleString('en-US');
/** Display formats by unit. */
const FORMATS = {
  'msg/s': integer,
  'µs': (v) => v.toFixed(1),
  ms: (v) => v.toFixed(2),
  '%': (v) => `${(v * 100).toFixed(0)}%`,
  MB: (v) => (v / (1024 * 1024)).toFixed(0),
  count: integer,
};

class Collector {
  constructor(kinds) {
    this.kinds = kinds; // e.g. ['ours', 'official']: column order; the ratio is first / second
    this.metrics = new Map(); // id -> { label, unit, better, values: { kind: [] } }
  }

  /**
   * Declares a metric (rows appear in declaration order). `better` is 'higher' or 'lower';
   * `ratio: false` for counts where a ratio means nothing (e.g. lost messages).
   */
  define(id, label, unit, better, { ratio = true } = {}) {
    const values = Object.fromEntries(this.kinds.map((k) => [k, []]));
    this.metrics.set(id, { label, unit, better, ratio, values });
  }

  add(id, kind, value) {
    const metric = this.metrics.get(id);
    if (!metric) throw new Error(`undefined metric ${id}`);
    if (Number.isFinite(value)) metric.values[kind].push(value);
  }

  /** Markdown table: one row per metric with samples, median (min–max) per kind, and the ratio. */
  table() {
    const [a, b] = this.kinds;
    const header = ['metric', 'unit', 'better', `${a}: median (min–max)`, `${b}: median (min–max)`, `ratio ${a}/${b}`];
    const rows = [];
    for (const m of this.metrics.values()) {
      const fmt = FORMATS[m.unit] || String;
      const cell = (kind) => {
        const s = summarize(m.values[kind]);
        return s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : 'n/a';
      };
      const sa = summarize(m.values[a]);
      const sb = summarize(m.values[b]);
      const ratio = m.ratio && sa && sb && sb.median !== 0 ? `${(sa.median / sb.median).toFixed(2)}×` : '—';
      const unit = m.unit === 'MB' ? 'MiB' : m.unit === '%' ? 'ELU' : m.unit;
      rows.push([m.label, unit, m.better === 'higher' ? '↑' : '↓', cell(a), cell(b), ratio]);
    }
    const line = (cells) => `| ${cells.join(' | ')} |`;
    return [line(header), line(header.map((_, i) => (i >= 3 ? '---:' : '---'))), ...rows.map(line)].join('\n');
  }
}

module.exports = { Collector, percentile, summarize };
