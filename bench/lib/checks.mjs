// @ts-check
/**
 * Checks: each unbroken figure beside its same-run baseline, the ratio of their medians, the spread of
 * that ratio over the runs, and its target. Shared by every section of bench/run.mjs, the chart
 * (chart.mjs) and the documents it regenerates (docs.mjs).
 */
import { median, num, table } from './stats.mjs';

/**
 * @typedef {object} Target
 * @property {string} text
 * @property {(value: number, ratio: number) => boolean} met
 * @property {(value: number, ratio: number) => number} [missedBy] how many times too slow, large or small a missed figure is
 * @property {{ bound: number, at: 'least' | 'most' }} [ratio] the bound on the ratio, for targets relative to the baseline
 */
/**
 * @typedef {object} Check
 * @property {string} section
 * @property {string} figure
 * @property {number} value median over runs
 * @property {number[]} [values] each run's value
 * @property {string} unit
 * @property {string} [baselineLabel]
 * @property {number} [baseline] median over runs
 * @property {number[]} [baselines] each run's baseline
 * @property {number} ratio value / baseline
 * @property {Target | null} target
 * @property {string} [note] why there is no value, or what to know about it
 * @property {boolean} [headline] shown in the README's table
 */

/**
 * At least `x` times the baseline.
 * @param {number} x
 * @param {string} [of]
 * @returns {Target}
 */
export const atLeast = (x, of = '') => ({
  text: `≥ ${x}×${of ? ` ${of}` : ''}`,
  met: (_v, r) => r >= x,
  missedBy: (_v, r) => x / r,
  ratio: { bound: x, at: 'least' },
});

/**
 * At most `x` times the baseline.
 * @param {number} x
 * @param {string} [of]
 * @returns {Target}
 */
export const atMost = (x, of = '') => ({
  text: `≤ ${x}×${of ? ` ${of}` : ''}`,
  met: (_v, r) => r <= x,
  missedBy: (_v, r) => r / x,
  ratio: { bound: x, at: 'most' },
});

/**
 * At most `v` in the figure's own unit.
 * @param {number} v
 * @param {string} unit
 * @returns {Target}
 */
export const valueAtMost = (v, unit) => ({ text: `≤ ${num(v, 0)} ${unit}`, met: (value) => value <= v, missedBy: (value) => value / v });

/**
 * The lowest and highest of the finite values, or null when there are fewer than two.
 * @param {readonly number[] | undefined} values
 * @returns {{ min: number, max: number } | null}
 */
export function spread(values) {
  const finite = (values ?? []).filter(Number.isFinite);
  if (finite.length < 2) return null;
  return { min: Math.min(...finite), max: Math.max(...finite) };
}

/**
 * The spread of a check's ratio over its runs: run by run when value and baseline were measured in
 * the same runs (the runs are interleaved, so run i of both met the same moment of the machine),
 * otherwise the widest the two spreads allow.
 * @param {Check} check
 * @returns {{ min: number, max: number } | null}
 */
export function ratioSpread(check) {
  const values = check.values ?? [];
  const baselines = check.baselines ?? (check.baseline === undefined ? [] : [check.baseline]);
  if (values.length >= 2 && values.length === baselines.length) return spread(values.map((v, i) => v / /** @type {number} */ (baselines[i])));
  const v = spread(values) ?? (Number.isFinite(check.value) ? { min: check.value, max: check.value } : null);
  const b = spread(baselines) ?? (Number.isFinite(check.baseline) ? { min: /** @type {number} */ (check.baseline), max: /** @type {number} */ (check.baseline) } : null);
  if (!v || !b || (v.min === v.max && b.min === b.max)) return null;
  return { min: v.min / b.max, max: v.max / b.min };
}

/**
 * `ok`, `MISSED`, `n/a` (not measured) or '' (no target).
 * @param {Check} check
 */
export function verdict(check) {
  if (!check.target) return '';
  if (!Number.isFinite(check.value) || (check.target.ratio && !Number.isFinite(check.ratio))) return 'n/a';
  return check.target.met(check.value, check.ratio) ? 'ok' : 'MISSED';
}

/** @param {string} unit */
const digitsOf = (unit) => (unit === 'msg/s' || unit === 'B' || unit.startsWith('POST') || unit.startsWith('request') ? 0 : 2);

/**
 * @param {number} value
 * @param {string} unit
 */
export function withUnit(value, unit) {
  if (!Number.isFinite(value)) return '—';
  return `${num(value, digitsOf(unit))} ${unit}`;
}

/**
 * A value with its unit and, over several runs, its spread: `154,532 msg/s (140,100–160,020)`.
 * @param {number} value
 * @param {readonly number[] | undefined} values
 * @param {string} unit
 */
export function withSpread(value, values, unit) {
  const range = spread(values);
  const digits = digitsOf(unit);
  const [low, high] = range ? [num(range.min, digits), num(range.max, digits)] : ['', ''];
  return low !== high ? `${withUnit(value, unit)} (${low}–${high})` : withUnit(value, unit);
}

/**
 * A ratio with its spread over runs: `1.09× (0.98–1.20)`.
 * @param {Check} check
 */
export function ratioText(check) {
  if (!Number.isFinite(check.ratio)) return '—';
  const range = ratioSpread(check);
  const [low, high] = range ? [num(range.min, 2), num(range.max, 2)] : ['', ''];
  return `${num(check.ratio, 2)}×${low !== high ? ` (${low}–${high})` : ''}`;
}

/**
 * The checks as a table; a figure with a note gets a numbered mark, and the notes follow the table.
 * @param {Check[]} checks
 */
export function checksTable(checks) {
  /** @type {string[][]} */
  const rows = [['figure', '>unbroken (lowest–highest)', 'same-run baseline', '>ratio (lowest–highest)', 'target', 'verdict']];
  /** @type {string[]} */
  const notes = [];
  for (const check of checks) {
    let mark = '';
    if (check.note) {
      notes.push(`[${notes.length + 1}] ${check.figure}: ${check.note}`);
      mark = ` [${notes.length}]`;
    }
    rows.push([
      check.figure,
      Number.isFinite(check.value) ? withSpread(check.value, check.values, check.unit) : 'not measured',
      check.baselineLabel ? `${check.baselineLabel} ${withSpread(check.baseline ?? NaN, check.baselines, check.unit)}` : '',
      ratioText(check),
      check.target?.text ?? '—',
      `${verdict(check)}${mark}`.trim(),
    ]);
  }
  return [table(rows), ...notes].join('\n');
}

/**
 * A line per target missed, saying by how much, so that a miss stands out below its table.
 * @param {Check[]} checks
 */
export function targetFailures(checks) {
  /** @type {string[]} */
  const lines = [];
  for (const check of checks) {
    if (verdict(check) !== 'MISSED') continue;
    const target = /** @type {Target} */ (check.target);
    const by = target.missedBy?.(check.value, check.ratio);
    lines.push(
      `TARGET FAILED — ${check.figure}: ${withUnit(check.value, check.unit)} against ${check.baselineLabel ?? 'its baseline'} ` +
        `${withUnit(check.baseline ?? NaN, check.unit)}, ${num(check.ratio, 3)}× (target ${target.text})` +
        (by === undefined ? '' : `: missed by a factor of ${num(by, 1)}`),
    );
  }
  return lines;
}

/**
 * The median of each run's values (NaN when there are none), for checks built from run lists.
 * @param {readonly number[] | undefined} values
 */
export const medianOf = (values) => median(values ?? []);

/**
 * A check's JSON form: the target as its text and whether it was met.
 * @param {Check} check
 */
export function checkJson(check) {
  const range = ratioSpread(check);
  return { ...check, target: check.target?.text ?? null, met: check.target ? verdict(check) === 'ok' : null, ratioSpread: range };
}
