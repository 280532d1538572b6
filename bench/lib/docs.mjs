// @ts-check
/**
 * Regenerates what the documents show of a run, so that one command refreshes them all from one run:
 * docs/bench.svg (chart.mjs), the headline table of README.md and the full report in
 * docs/PERFORMANCE.md. Each document marks its generated part with a pair of HTML comments, e.g.
 *
 *   <!-- bench:readme:start -->
 *   …written by bench/run.mjs, replaced on every run…
 *   <!-- bench:readme:end -->
 *
 * and everything outside the markers is left as it is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ratioText, verdict, withSpread } from './checks.mjs';

/** @typedef {import('./checks.mjs').Check} Check */

/** The files and the name of the marked part in each. */
export const CHART_FILE = 'docs/bench.svg';
export const README_PART = { file: 'README.md', name: 'bench:readme' };
export const PERFORMANCE_PART = { file: 'docs/PERFORMANCE.md', name: 'bench:report' };

/**
 * `text` with what lies between `<!-- name:start -->` and `<!-- name:end -->` replaced by `content`.
 * @param {string} text
 * @param {string} name
 * @param {string} content
 * @param {string} [file] named in the error
 */
export function replaceMarked(text, name, content, file = 'the document') {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to === -1 || to < from || text.indexOf(start, from + 1) !== -1) {
    throw new Error(`${file} must hold one "${start}" … "${end}" pair, in that order`);
  }
  return `${text.slice(0, from + start.length)}\n${content.trim()}\n${text.slice(to)}`;
}

/** @param {string} text */
const cell = (text) => text.replace(/\|/g, '\\|');

/**
 * @typedef {object} RunInfo
 * @property {Date} date
 * @property {string} machine
 * @property {number} runs
 * @property {boolean} quick
 * @property {string} command
 */

/** @param {RunInfo} run */
function provenance(run) {
  return (
    `From \`${run.command}\` on ${run.date.toISOString().slice(0, 10)}${run.quick ? ' (QUICK: a smoke test, not for publication)' : ''}: ` +
    `${run.runs} interleaved run(s) per case, each figure the median over the runs with the lowest and highest in brackets, ` +
    `every unbroken figure beside a baseline measured in the same run. Machine: ${run.machine}. ` +
    'Loopback figures on a shared machine move between runs: re-run `npm run bench` before quoting one.'
  );
}

/**
 * The README's part: provenance, the chart and the table of the headline checks.
 * @param {Check[]} checks
 * @param {RunInfo} run
 */
export function readmePart(checks, run) {
  const rows = checks
    .filter((check) => check.headline)
    .map((check) =>
      [
        `${check.section}: ${check.figure}`,
        Number.isFinite(check.value) ? withSpread(check.value, check.values, check.unit) : 'not measured',
        check.baselineLabel ? `${check.baselineLabel} ${withSpread(check.baseline ?? NaN, check.baselines, check.unit)}` : '—',
        ratioText(check),
        check.target?.text ?? '—',
        verdict(check) || '—',
      ]
        .map(cell)
        .join(' | '),
    );
  return [
    provenance(run),
    '',
    `![Each ratio to its same-run baseline, with its spread over the runs and its target](${CHART_FILE})`,
    '',
    '| figure | unbroken | same-run baseline | ratio | target | verdict |',
    '|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}

/**
 * PERFORMANCE.md's part: provenance, the chart and the whole report as printed.
 * @param {string} report
 * @param {RunInfo} run
 */
export function performancePart(report, run) {
  return [provenance(run), '', `![Each ratio to its same-run baseline, with its spread over the runs and its target](bench.svg)`, '', '```text', report, '```'].join('\n');
}

/**
 * Writes the chart and the marked parts of both documents.
 * @param {RunInfo & { root: URL, checks: Check[], report: string, svg: string }} options
 * @returns {string[]} the files written
 */
export function writeDocs({ root, checks, report, svg, ...run }) {
  const at = (/** @type {string} */ file) => fileURLToPath(new URL(file, root));
  // Both documents are read and checked before anything is written: a missing marker changes nothing.
  const readme = replaceMarked(readFileSync(at(README_PART.file), 'utf8'), README_PART.name, readmePart(checks, run), README_PART.file);
  const performance = replaceMarked(
    readFileSync(at(PERFORMANCE_PART.file), 'utf8'),
    PERFORMANCE_PART.name,
    performancePart(report, run),
    PERFORMANCE_PART.file,
  );
  writeFileSync(at(CHART_FILE), svg);
  writeFileSync(at(README_PART.file), readme);
  writeFileSync(at(PERFORMANCE_PART.file), performance);
  return [CHART_FILE, README_PART.file, PERFORMANCE_PART.file];
}
