// @ts-check
/**
 * Sizes of the browser bundles: raw, gzip -9 and brotli q11, measured with node:zlib.
 *
 *   npm run build && node bench/size.mjs          prints a table, exits 1 when over budget
 *   node bench/size.mjs --json                    prints the measurements as JSON
 *
 * GZIP_BUDGET is the one place the size budget lives; test/build/bundle.test.ts enforces it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** Budget for `dist/unbroken.iife.min.js` after gzip -9, in bytes. */
export const GZIP_BUDGET = 8192;

/** The file the budget applies to, relative to the package root. */
export const BUDGET_FILE = 'dist/unbroken.iife.min.js';

/** Files reported, relative to the package root. */
export const FILES = [BUDGET_FILE, 'dist/unbroken.mjs'];

const root = new URL('../', import.meta.url);

/**
 * @typedef {{ file: string, raw: number, gzip: number, brotli: number }} SizeReport
 */

/**
 * Measures one file, given relative to the package root.
 * @param {string} file
 * @returns {SizeReport}
 */
export function measure(file) {
  const bytes = readFileSync(new URL(file, root));
  return {
    file,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }).length,
  };
}

/**
 * One line per file: `dist/unbroken.iife.min.js  raw 5260 B  gzip 2101 B  brotli 1880 B`.
 * @param {SizeReport} report
 * @returns {string}
 */
export function formatReport(report) {
  const cell = (/** @type {string} */ label, /** @type {number} */ n) => `${label} ${String(n).padStart(6)} B`;
  return `${report.file.padEnd(28)}${cell('raw', report.raw)}  ${cell('gzip', report.gzip)}  ${cell('brotli', report.brotli)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const missing = FILES.filter((file) => !existsSync(new URL(file, root)));
  if (missing.length > 0) {
    console.error(`missing ${missing.join(', ')}: run \`npm run build\` first`);
    process.exit(1);
  }
  const reports = FILES.map(measure);
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ budget: { file: BUDGET_FILE, gzip: GZIP_BUDGET }, reports }, null, 2));
  } else {
    for (const report of reports) console.log(formatReport(report));
  }
  const budgeted = reports.find((report) => report.file === BUDGET_FILE);
  if (budgeted) {
    const verdict = budgeted.gzip <= GZIP_BUDGET ? 'within' : 'OVER';
    console.error(`${BUDGET_FILE}: gzip ${budgeted.gzip} B, ${verdict} the budget of ${GZIP_BUDGET} B`);
    if (budgeted.gzip > GZIP_BUDGET) process.exitCode = 1;
  }
}
