// @ts-check
/**
 * The chart of a run (docs/bench.svg): one bar per check whose target is a ratio to its same-run
 * baseline, drawn from the baseline (1×) to the ratio of the medians on a logarithmic axis, with the
 * spread of the ratio over the runs as a whisker and the target as a mark across the bar. Green when
 * the target is met, red when missed. SVG written as text, no dependency.
 */
import { ratioSpread, ratioText, verdict } from './checks.mjs';
import { num } from './stats.mjs';

/** @typedef {import('./checks.mjs').Check} Check */

const WIDTH = 1160;
const LABEL_RIGHT = 500;
const PLOT_LEFT = 515;
const PLOT_RIGHT = 890;
const TEXT_LEFT = 905;
const ROW = 22;
const TOP = 86;
const COLORS = { ok: '#2e7d32', MISSED: '#c62828', 'n/a': '#9e9e9e', '': '#9e9e9e' };

/** @param {string} text */
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** @param {string} text @param {number} max */
const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/**
 * Tick values of a 1-2-5 sequence between `lo` and `hi`.
 * @param {number} lo
 * @param {number} hi
 */
function ticks(lo, hi) {
  /** @type {number[]} */
  const out = [];
  for (let decade = Math.floor(Math.log10(lo)); decade <= Math.ceil(Math.log10(hi)); decade++) {
    for (const step of [1, 2, 5]) {
      const value = step * 10 ** decade;
      if (value >= lo && value <= hi) out.push(value);
    }
  }
  return out;
}

/**
 * The checks the chart draws: a ratio target and a measured ratio.
 * @param {Check[]} checks
 */
export const charted = (checks) => checks.filter((check) => check.target?.ratio && Number.isFinite(check.ratio) && check.ratio > 0);

/**
 * @param {Check[]} checks
 * @param {{ date: Date, machine: string, runs: number, quick: boolean, command: string }} run
 * @returns {string} the SVG document
 */
export function chartSvg(checks, run) {
  const rows = charted(checks);
  /** Every value the axis must hold: ratios, their spreads, targets and the baseline. */
  const extent = [1];
  for (const check of rows) {
    extent.push(check.ratio, /** @type {NonNullable<Check['target']>} */ (check.target).ratio?.bound ?? 1);
    const range = ratioSpread(check);
    if (range && range.min > 0) extent.push(range.min, range.max);
  }
  const lo = Math.min(...extent) / 1.3;
  const hi = Math.max(...extent) * 1.3;
  const x = (/** @type {number} */ ratio) =>
    PLOT_LEFT + ((Math.log(Math.min(hi, Math.max(lo, ratio))) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (PLOT_RIGHT - PLOT_LEFT);

  // Section headings take a row of their own.
  /** @type {({ heading: string } | { check: Check })[]} */
  const lines = [];
  for (const check of rows) {
    const last = lines.at(-1);
    const previous = last && 'check' in last ? last.check.section : last && 'heading' in last ? last.heading : '';
    if (previous !== check.section) lines.push({ heading: check.section });
    lines.push({ check });
  }
  const height = TOP + lines.length * ROW + 56;
  const plotBottom = TOP + lines.length * ROW;
  /** @type {string[]} */
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="11.5">`,
    `<title>unbroken benchmarks: each ratio to its same-run baseline, with its target</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="600">unbroken: each figure as a ratio to its same-run baseline (1×), with its target${run.quick ? ' — QUICK smoke run, not for publication' : ''}</text>`,
    `<text x="16" y="44" fill="#444">${escape(`${run.date.toISOString().slice(0, 10)} · ${run.command} · median of ${run.runs} interleaved run(s); whisker: lowest–highest ratio over the runs; log scale`)}</text>`,
    `<text x="16" y="62" fill="#444">${escape(clip(`machine: ${run.machine}`, 170))}</text>`,
  );
  // Grid and axis labels.
  for (const tick of ticks(lo, hi)) {
    const at = x(tick).toFixed(1);
    out.push(
      `<line x1="${at}" y1="${TOP - 6}" x2="${at}" y2="${plotBottom}" stroke="${tick === 1 ? '#000' : '#e0e0e0'}"${tick === 1 ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${at}" y="${TOP - 10}" text-anchor="middle" fill="#444">${num(tick, tick < 1 ? 1 : 0)}×</text>`,
    );
  }
  out.push(`<text x="${TEXT_LEFT}" y="${TOP - 10}" fill="#444">ratio (lowest–highest) · target · verdict</text>`);
  lines.forEach((line, i) => {
    const y = TOP + i * ROW;
    const middle = y + ROW / 2;
    if ('heading' in line) {
      out.push(`<text x="16" y="${middle + 4}" font-weight="600">${escape(line.heading)}</text>`);
      return;
    }
    const { check } = line;
    const target = /** @type {NonNullable<Check['target']>} */ (check.target);
    const state = verdict(check);
    const color = COLORS[/** @type {keyof typeof COLORS} */ (state)] ?? COLORS[''];
    const from = x(1);
    const to = x(check.ratio);
    out.push(
      `<text x="${LABEL_RIGHT}" y="${middle + 4}" text-anchor="end">${escape(clip(`${check.figure} vs ${check.baselineLabel ?? 'baseline'}`, 80))}</text>`,
      `<rect x="${Math.min(from, to).toFixed(1)}" y="${y + 5}" width="${Math.max(1, Math.abs(to - from)).toFixed(1)}" height="${ROW - 10}" fill="${color}" fill-opacity="0.8"/>`,
    );
    const range = ratioSpread(check);
    if (range && range.min > 0) {
      const [a, b] = [x(range.min).toFixed(1), x(range.max).toFixed(1)];
      out.push(
        `<line x1="${a}" y1="${middle}" x2="${b}" y2="${middle}" stroke="#111"/>`,
        `<line x1="${a}" y1="${middle - 4}" x2="${a}" y2="${middle + 4}" stroke="#111"/>`,
        `<line x1="${b}" y1="${middle - 4}" x2="${b}" y2="${middle + 4}" stroke="#111"/>`,
      );
    }
    if (target.ratio) {
      const at = x(target.ratio.bound).toFixed(1);
      out.push(`<line x1="${at}" y1="${y + 1}" x2="${at}" y2="${y + ROW - 1}" stroke="#1565c0" stroke-width="3"/>`);
    }
    out.push(`<text x="${TEXT_LEFT}" y="${middle + 4}">${escape(`${ratioText(check)} · ${target.text} · ${state}`)}</text>`);
  });
  // Legend.
  const legend = plotBottom + 30;
  out.push(
    `<rect x="16" y="${legend - 10}" width="14" height="10" fill="${COLORS.ok}" fill-opacity="0.8"/><text x="36" y="${legend}">target met</text>`,
    `<rect x="120" y="${legend - 10}" width="14" height="10" fill="${COLORS.MISSED}" fill-opacity="0.8"/><text x="140" y="${legend}">target missed</text>`,
    `<line x1="250" y1="${legend - 12}" x2="250" y2="${legend + 2}" stroke="#1565c0" stroke-width="3"/><text x="258" y="${legend}">target</text>`,
    `<line x1="320" y1="${legend - 12}" x2="320" y2="${legend + 2}" stroke="#000" stroke-dasharray="4 3"/><text x="328" y="${legend}">baseline, measured in the same run (1×)</text>`,
    `<line x1="590" y1="${legend - 5}" x2="620" y2="${legend - 5}" stroke="#111"/><text x="628" y="${legend}">spread over the runs</text>`,
    `<text x="16" y="${legend + 20}" fill="#444">A target “≥ n×” is met by a bar that reaches past its mark to the right; a target “≤ n×”, by a bar that stays left of it.</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}
