// @ts-check
/** Small statistics and formatting helpers of the benchmark tables. */

/**
 * The median of the finite values, or NaN when there are none.
 * @param {readonly number[]} values
 */
export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? /** @type {number} */ (sorted[mid]) : (/** @type {number} */ (sorted[mid - 1]) + /** @type {number} */ (sorted[mid])) / 2;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of the values, nearest rank.
 * @param {readonly number[]} values
 * @param {number} q
 */
export function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return /** @type {number} */ (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]);
}

/**
 * A number for a table: thousands separated, with `digits` decimals below 10 and fewer above.
 * @param {number} value
 * @param {number} [digits]
 */
export function num(value, digits = 2) {
  if (!Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  const decimals = abs >= 1000 ? 0 : abs >= 100 ? Math.min(digits, 0) : abs >= 10 ? Math.min(digits, 1) : digits;
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/**
 * Renders rows as a fixed-width text table; the first row is the header. Columns whose header starts
 * with `>` are right-aligned (the `>` is not printed).
 * @param {readonly (readonly string[])[]} rows
 */
export function table(rows) {
  const header = rows[0] ?? [];
  const right = header.map((cell) => cell.startsWith('>'));
  const cells = rows.map((row, r) => row.map((cell, c) => (r === 0 && right[c] ? cell.slice(1) : cell)));
  const widths = header.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  const line = (/** @type {readonly string[]} */ row) =>
    row
      .map((cell, c) => (right[c] ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const [first = [], ...rest] = cells;
  return [line(first), widths.map((w) => '-'.repeat(w)).join('  '), ...rest.map(line)].join('\n');
}
