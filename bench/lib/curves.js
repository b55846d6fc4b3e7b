'use strict';
// Growth curves: samples per (curve, x, mode) across rounds, summarised as median / min / max
// (lib/stats.js), rendered as a markdown table (modes as rows, x values as columns, ours/official
// ratio rows), as an SVG line chart (lib/svg.js), and described by their trend — computed from
// the medians, never written by hand: the factor from the first to the last point and the slope
// of log(y) against log(x) (1: y grows in proportion to x; 0: y stays flat).

const { summarize } = require('./stats');
const { lineChart } = require('./svg');

/** Slope of the least-squares line through (log x, log y) of `points` ({ x, median }); NaN below 2 usable points. */
function logLogSlope(points) {
  const usable = points.filter((p) => p.x > 0 && p.median > 0);
  if (usable.length < 2) return NaN;
  const xs = usable.map((p) => Math.log(p.x));
  const ys = usable.map((p) => Math.log(p.median));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : NaN;
}

/** Verdicts by log-log slope, from the highest threshold down (the first the slope reaches applies). */
const VERDICTS = [
  [1.25, 'grows faster than linearly'],
  [0.75, 'grows about linearly'],
  [0.15, 'grows sub-linearly'],
  [-0.15, 'stays about flat'],
  [-Infinity, 'falls'],
];

/** The words for a log-log slope. */
function verdictOf(slope) {
  if (!Number.isFinite(slope)) return 'no trend (too few points)';
  return VERDICTS.find(([threshold]) => slope >= threshold)[1];
}

/** The rule verdictOf applies, in words (for the report). */
function verdictRule() {
  return VERDICTS.map(([threshold, words], i) => {
    if (i === 0) return `"${words}" from ${threshold}`;
    const upper = VERDICTS[i - 1][0];
    return threshold === -Infinity ? `"${words}" below ${upper}` : `"${words}" ${threshold} to ${upper}`;
  }).join(', ');
}

class Curves {
  /**
   * `modes`: [{ id, label, vs?, color, dash? }] in display order; `vs` names the mode an ours
   * mode is compared with (its ratio row).
   */
  constructor(modes) {
    this.modes = modes;
    this.curves = new Map();
  }

  /**
   * Declares a curve: `title`, `subtitle` (the settings), `x` = { label, unit (e.g. 'nodes'),
   * log? }, `y` = { label, format (a number's display) }, `file` (the SVG's name), `note`
   * (small print in the chart).
   */
  define(id, spec) {
    this.curves.set(id, { ...spec, samples: new Map() }); // samples: x -> mode id -> values
  }

  add(curveId, x, modeId, value) {
    const curve = this.curves.get(curveId);
    if (!curve) throw new Error(`undefined curve ${curveId}`);
    if (!Number.isFinite(value)) return;
    if (!curve.samples.has(x)) curve.samples.set(x, new Map());
    const byMode = curve.samples.get(x);
    if (!byMode.has(modeId)) byMode.set(modeId, []);
    byMode.get(modeId).push(value);
  }

  /** The x values measured, ascending. */
  xs(curveId) {
    return [...this.curves.get(curveId).samples.keys()].sort((a, b) => a - b);
  }

  /** [{ x, median, min, max, n }] of one mode, ascending x, points without samples left out. */
  points(curveId, modeId) {
    const curve = this.curves.get(curveId);
    return this.xs(curveId)
      .map((x) => ({ x, ...summarize(curve.samples.get(x).get(modeId) || []) }))
      .filter((p) => p.n > 0);
  }

  /** The modes with at least one sample on this curve. */
  measuredModes(curveId) {
    return this.modes.filter((m) => this.points(curveId, m.id).length > 0);
  }

  /** { factor (last / first median), from, to, slope, verdict } of one mode's curve, or null. */
  trend(curveId, modeId) {
    const points = this.points(curveId, modeId);
    if (points.length < 2) return null;
    const first = points[0];
    const last = points[points.length - 1];
    const slope = logLogSlope(points);
    return { factor: first.median > 0 ? last.median / first.median : NaN, from: first.x, to: last.x, slope, verdict: verdictOf(slope) };
  }

  /** "×3.8 from 2 to 8 nodes, slope 0.96", for the table and the trend line. */
  trendText(curveId, t) {
    const { x } = this.curves.get(curveId);
    const fmt = (v) => v.toLocaleString('en-US');
    return `×${t.factor.toFixed(2)} from ${fmt(t.from)} to ${fmt(t.to)} ${x.unit}, log-log slope ${t.slope.toFixed(2)}`;
  }

  /** Markdown table: a row per mode (median (min–max) per x), a ratio row under each ours mode, a trend column. */
  table(curveId) {
    const curve = this.curves.get(curveId);
    const xs = this.xs(curveId);
    const fmt = curve.y.format;
    const header = ['adapter', ...xs.map((x) => `${x.toLocaleString('en-US')} ${curve.x.unit}`), 'trend (last/first, log-log slope)'];
    const rows = [];
    const summaryAt = (modeId, x) => summarize((curve.samples.get(x).get(modeId)) || []);
    for (const mode of this.measuredModes(curveId)) {
      const cells = xs.map((x) => {
        const s = summaryAt(mode.id, x);
        return s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : 'n/a';
      });
      const t = this.trend(curveId, mode.id);
      rows.push([mode.label, ...cells, t ? `${t.verdict}: ${this.trendText(curveId, t)}` : '—']);
      const base = mode.vs && this.modes.find((m) => m.id === mode.vs);
      if (base && this.points(curveId, base.id).length) {
        const ratios = xs.map((x) => {
          const a = summaryAt(mode.id, x);
          const b = summaryAt(base.id, x);
          return a && b && b.median !== 0 ? `**${(a.median / b.median).toFixed(2)}×**` : '—';
        });
        rows.push([`↳ ratio ${mode.short || mode.label} / ${base.short || base.label}`, ...ratios, '']);
      }
    }
    const line = (cells) => `| ${cells.join(' | ')} |`;
    return [line(header), line(header.map((_, i) => (i === 0 || i === header.length - 1 ? '---' : '---:'))), ...rows.map(line)].join('\n');
  }

  /** One sentence per curve, grouping the modes by verdict (computed from the medians). */
  trendLine(curveId) {
    const groups = new Map();
    for (const mode of this.measuredModes(curveId)) {
      const t = this.trend(curveId, mode.id);
      if (!t) continue;
      if (!groups.has(t.verdict)) groups.set(t.verdict, []);
      groups.get(t.verdict).push(`${mode.short || mode.label} (${this.trendText(curveId, t)})`);
    }
    if (groups.size === 0) return 'Trend: fewer than two points measured.';
    const { y, x } = this.curves.get(curveId);
    const parts = [...groups].map(([verdict, modes]) => `**${verdict}**: ${modes.join('; ')}`);
    return `Trend of ${y.label} with the number of ${x.unit} — ${parts.join('. ')}.`;
  }

  /** The curve as an SVG line chart. */
  svg(curveId) {
    const curve = this.curves.get(curveId);
    return lineChart({
      title: curve.title,
      subtitle: curve.subtitle,
      xLabel: curve.x.label,
      yLabel: curve.y.label,
      xLog: Boolean(curve.x.log),
      formatY: curve.y.tick || undefined,
      note: curve.note,
      series: this.measuredModes(curveId).map((mode) => ({
        label: mode.label,
        color: mode.color,
        dash: mode.dash,
        points: this.points(curveId, mode.id).map((p) => ({ x: p.x, y: p.median, lo: p.min, hi: p.max })),
      })),
    });
  }
}

module.exports = { Curves, logLogSlope, verdictOf, verdictRule };
