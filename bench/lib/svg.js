'use strict';
// A line chart as a self-contained SVG string, hand-written (no dependency): a title, axes with
// tick labels and titles, a linear or log-scale x axis, a linear y axis from 0, one polyline per
// series with markers and min–max whiskers, and a legend on the right. Used by bench/scale.js.

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

/** Text safe inside SVG markup. */
function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A round step (1, 2, 2.5 or 5 × a power of ten) splitting [0, max] into about `count` intervals. */
function niceStep(max, count = 5) {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const factor of [1, 2, 2.5, 5, 10]) if (factor * magnitude >= raw) return factor * magnitude;
  return 10 * magnitude;
}

/** Default tick label: integers with thousands separators, else up to 2 significant decimals. */
function defaultFormat(value) {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Number(value.toPrecision(3)).toLocaleString('en-US', { maximumFractionDigits: 3 });
}

/** Maps data x to pixels over [left, right], linearly or by log10, with a little padding. */
function xScale(values, left, right, log) {
  const f = log ? Math.log10 : (v) => v;
  const lo = f(Math.min(...values));
  const hi = f(Math.max(...values));
  const span = hi - lo || 1;
  const pad = span * 0.05;
  return (v) => left + ((f(v) - (lo - pad)) / (span + 2 * pad)) * (right - left);
}

/**
 * The chart (`title`, `subtitle` under it). `series`: [{ label, color, dash?, points: [{ x, y, lo?, hi? }] }] (points with a
 * non-finite y are skipped); `xLog`: log10 x axis; x ticks are the data's x values;
 * `formatX` / `formatY`: tick labels; `note`: a line of small print under the x axis title.
 */
function lineChart({ title, subtitle = '', xLabel, yLabel, series, xLog = false, formatX = defaultFormat, formatY = defaultFormat, note = '', width = 800, height = 440 }) {
  const m = { left: 76, right: 270, top: subtitle ? 62 : 50, bottom: note ? 74 : 58 };
  const plot = { x0: m.left, x1: width - m.right, y0: height - m.bottom, y1: m.top };
  const drawn = series.map((s) => ({ ...s, points: s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x) }));
  const points = drawn.flatMap((s) => s.points);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  if (subtitle) out.push(`<text x="${width / 2}" y="42" text-anchor="middle" fill="#444">${escapeXml(subtitle)}</text>`);
  if (points.length === 0) {
    out.push(`<text x="${(plot.x0 + plot.x1) / 2}" y="${height / 2}" text-anchor="middle">no data</text></svg>`);
    return `${out.join('\n')}\n`;
  }

  const xs = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  const X = xScale(xs, plot.x0, plot.x1, xLog);
  const yMaxData = Math.max(...points.map((p) => Math.max(p.y, Number.isFinite(p.hi) ? p.hi : p.y)));
  const step = niceStep(yMaxData * 1.05);
  const yMax = Math.max(step, Math.ceil((yMaxData * 1.05) / step) * step);
  const Y = (v) => plot.y0 - (v / yMax) * (plot.y0 - plot.y1);
  const r1 = (v) => v.toFixed(1);

  // Grid, ticks and tick labels.
  for (let v = 0; v <= yMax + step / 1e6; v += step) {
    out.push(`<line x1="${plot.x0}" x2="${plot.x1}" y1="${r1(Y(v))}" y2="${r1(Y(v))}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${plot.x0 - 8}" y="${r1(Y(v) + 4)}" text-anchor="end" fill="#333">${escapeXml(formatY(v))}</text>`);
  }
  for (const v of xs) {
    out.push(`<line x1="${r1(X(v))}" x2="${r1(X(v))}" y1="${plot.y0}" y2="${plot.y0 + 5}" stroke="#333"/>`);
    out.push(`<line x1="${r1(X(v))}" x2="${r1(X(v))}" y1="${plot.y0}" y2="${plot.y1}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${r1(X(v))}" y="${plot.y0 + 19}" text-anchor="middle" fill="#333">${escapeXml(formatX(v))}</text>`);
  }
  // Axes and their titles.
  out.push(`<line x1="${plot.x0}" x2="${plot.x1}" y1="${plot.y0}" y2="${plot.y0}" stroke="#333"/>`);
  out.push(`<line x1="${plot.x0}" x2="${plot.x0}" y1="${plot.y0}" y2="${plot.y1}" stroke="#333"/>`);
  out.push(`<text x="${(plot.x0 + plot.x1) / 2}" y="${plot.y0 + 40}" text-anchor="middle">${escapeXml(xLabel)}${xLog ? ' (log scale)' : ''}</text>`);
  const yMid = (plot.y0 + plot.y1) / 2;
  out.push(`<text x="18" y="${yMid}" text-anchor="middle" transform="rotate(-90 18 ${yMid})">${escapeXml(yLabel)}</text>`);
  if (note) out.push(`<text x="${(plot.x0 + plot.x1) / 2}" y="${plot.y0 + 58}" text-anchor="middle" font-size="10" fill="#666">${escapeXml(note)}</text>`);

  // Series: whiskers (min–max), the median line, markers; then the legend entry.
  drawn.forEach((s, i) => {
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    for (const p of s.points) {
      if (!Number.isFinite(p.lo) || !Number.isFinite(p.hi) || p.hi <= p.lo) continue;
      const x = r1(X(p.x));
      out.push(`<path d="M${x} ${r1(Y(p.lo))}V${r1(Y(p.hi))}M${r1(X(p.x) - 3)} ${r1(Y(p.lo))}h6M${r1(X(p.x) - 3)} ${r1(Y(p.hi))}h6" stroke="${s.color}" stroke-opacity="0.6"/>`);
    }
    if (s.points.length > 1) {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${s.points.map((p) => `${r1(X(p.x))},${r1(Y(p.y))}`).join(' ')}"/>`);
    }
    for (const p of s.points) out.push(`<circle cx="${r1(X(p.x))}" cy="${r1(Y(p.y))}" r="3" fill="${s.color}"/>`);
    const ly = plot.y1 + 8 + i * 22;
    const lx = plot.x1 + 20;
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<circle cx="${lx + 14}" cy="${ly}" r="3" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 36}" y="${ly + 4}">${escapeXml(s.label)}</text>`);
  });
  const legendBottom = plot.y1 + 8 + drawn.length * 22;
  out.push(`<text x="${plot.x1 + 20}" y="${legendBottom + 6}" font-size="10" fill="#666">median of the rounds; whiskers: min–max</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { lineChart, niceStep, escapeXml };
