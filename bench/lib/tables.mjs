// @ts-check
/** The tables of measured figures the runner prints: client rows, server scale, bundle sizes. */
import { BUDGET_FILE } from '../size.mjs';
import { ROWS, SCALE_ROWS, measuresSteadyRtt, metricCase } from './rows.mjs';
import { runsOf } from './results.mjs';
import { median, num, table } from './stats.mjs';
import { BURST_SENDS, PUSH_MESSAGES, RTT_ROUND_TRIPS } from './workload.mjs';

/** @typedef {import('./results.mjs').Results} Results */
/** @typedef {import('./rows.mjs').Env} Env */

/**
 * The median of each run's values with, over several runs, their lowest and highest: `154,532
 * (140,100–160,020)`.
 * @param {readonly number[]} values
 * @param {number} [digits]
 */
export function withSpreadCell(values, digits = 2) {
  const finite = values.filter(Number.isFinite);
  const middle = num(median(finite), digits);
  if (finite.length < 2) return middle;
  const low = num(Math.min(...finite), digits);
  const high = num(Math.max(...finite), digits);
  return low === high ? middle : `${middle} (${low}–${high})`;
}

/**
 * The client rows of one env, each figure the median over runs with its lowest and highest.
 * @param {Results} results
 * @param {Env} env
 */
export function figuresTable(results, env) {
  const { unavailable, failures } = results;
  /** @type {string[][]} */
  const rows = [
    [
      'row',
      '>connect ms',
      '>push msg/s',
      '>RTT p50 ms',
      '>RTT p99 ms',
      '>RTT p50 steady',
      `>req/${num(PUSH_MESSAGES / 1000, 0)}k push`,
      `>req/${num(RTT_ROUND_TRIPS / 1000, 0)}k RTT`,
      `>POSTs/${num(BURST_SENDS / 1000, 0)}k sends`,
      '>resume ms',
    ],
  ];
  for (const row of ROWS) {
    const why = unavailable[env]?.[row.id];
    if (why) {
      rows.push([row.label[env], `unavailable: ${why}`, '', '', '', '', '', '', '', '']);
      continue;
    }
    const cell = (/** @type {string} */ metric, digits = 2) => {
      if (row.only && !row.only.includes(metricCase(metric))) return '';
      const failed = failures[env]?.[row.id]?.[metricCase(metric)];
      if (failed) return 'failed';
      return withSpreadCell(runsOf(results, env, row.id, metric), digits);
    };
    rows.push([
      row.label[env],
      cell('connect'),
      cell('throughput', 0),
      cell('rttP50', 3),
      cell('rttP99', 3),
      measuresSteadyRtt(row) ? cell('rttSteadyP50', 3) : '',
      row.http ? cell('pushRequests', 0) : '',
      row.http ? cell('rttRequests', 0) : '',
      row.http ? cell('burstPosts', 0) : '',
      row.resumes ? cell('resume', 0) : '',
    ]);
  }
  return table(rows);
}

/**
 * The idle-connection and fan-out tables of the server-scale rows.
 * @param {Results} results
 */
export function scaleTables(results) {
  const { scale } = results;
  const idle = (/** @type {string} */ row, /** @type {string} */ metric, scaleBy = 1, digits = 2) =>
    withSpreadCell((scale.idle[row]?.[metric] ?? []).map((v) => v / scaleBy), digits);
  const fan = (/** @type {string} */ row, /** @type {string} */ metric, scaleBy = 1, digits = 2) =>
    withSpreadCell((scale.fanout[row]?.[metric] ?? []).map((v) => v * scaleBy), digits);
  /** @type {string[][]} */
  const idleRows = [['server (one process)', '>open', '>connect all ms', '>RSS KiB/conn', '>heap KiB/conn']];
  /** @type {string[][]} */
  const fanRows = [['server (one process)', '>p50 ms', '>p99 ms', '>max ms', '>delivered', '>server CPU %', '>clients CPU %']];
  for (const row of SCALE_ROWS) {
    const idleError = scale.errors[`idle ${row.id}`];
    idleRows.push(
      idleError && !scale.idle[row.id]
        ? [row.label, `failed: ${idleError}`, '', '', '']
        : [
            row.label,
            idle(row.id, 'opened', 1, 0),
            idle(row.id, 'connectAllMs', 1, 0),
            idle(row.id, 'rssPerConnection', 1024, 1),
            idle(row.id, 'heapPerConnection', 1024, 1),
          ],
    );
    if (!row.fanout) continue;
    const fanError = scale.errors[`fanout ${row.id}`];
    fanRows.push(
      fanError && !scale.fanout[row.id]
        ? [row.label, `failed: ${fanError}`, '', '', '', '', '']
        : [
            row.label,
            fan(row.id, 'p50'),
            fan(row.id, 'p99'),
            fan(row.id, 'max'),
            `${fan(row.id, 'delivered', 100, 1)} %`,
            fan(row.id, 'serverCpu', 1, 0),
            fan(row.id, 'clientCpu', 1, 0),
          ],
    );
  }
  return { idle: table(idleRows), fanout: table(fanRows) };
}

/**
 * The bundle sizes.
 * @param {Results} results
 */
export function sizeTable(results) {
  const { sizes } = results;
  if (!sizes) return '';
  /** @type {string[][]} */
  const rows = [['bundle', '>raw B', '>gzip -9 B', '>brotli B']];
  for (const report of sizes.files) {
    const what = report.file === BUDGET_FILE ? ' (minified <script> bundle)' : ' (readable ESM, not minified)';
    rows.push([`${report.file}${what}`, num(report.raw, 0), num(report.gzip, 0), num(report.brotli, 0)]);
  }
  for (const report of sizes.minimal) {
    rows.push([`minimal connect+listen+send: ${report.library}`, num(report.raw, 0), num(report.gzip, 0), num(report.brotli, 0)]);
  }
  return table(rows);
}
