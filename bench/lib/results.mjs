// @ts-check
/** What one run of bench/run.mjs measured, run by run, and the helpers that record into it. */

/** @typedef {import('./rows.mjs').Env} Env */

/**
 * @typedef {object} Results
 * @property {Record<string, Record<string, Record<string, number[]>>>} figures per env, row and metric:
 *   the value of each run. Metrics: connect, connectCold (ms), throughput (msg/s), pushRequests,
 *   rttP50, rttP99 (ms), rttRequests, burstPosts, burstMs, resume (ms), pushCold and pushWarm (msg/s:
 *   the first push to a fresh server process, and the last of six in a row on that connection)
 * @property {Record<string, Record<string, string>>} unavailable why a row could not run at all in an env (its transport did not connect)
 * @property {Record<string, Record<string, Record<string, string>>>} failures why one metric of a row failed
 * @property {Record<string, Record<string, { ms: number[], baseline: number[], transport: string[], error?: string, baselineError?: string }>>} fallbacks
 * @property {{ idle: Record<string, Record<string, number[]>>, fanout: Record<string, Record<string, number[]>>, errors: Record<string, string> }} scale
 * @property {{ budget: { file: string, gzip: number }, files: import('../size.mjs').SizeReport[], minimal: (import('../size.mjs').SizeReport & { library: string })[], setting: string } | null} sizes
 * @property {import('./rooms.mjs').RoomsResults | null} rooms
 * @property {import('./redis.mjs').RedisResults | null} redis
 */

/** @returns {Results} */
export function createResults() {
  return { figures: {}, unavailable: {}, failures: {}, fallbacks: {}, scale: { idle: {}, fanout: {}, errors: {} }, sizes: null, rooms: null, redis: null };
}

/**
 * @param {Results} results
 * @param {Env} env
 * @param {string} row
 * @param {string} metric
 * @param {number} value
 */
export function record(results, env, row, metric, value) {
  const byRow = (results.figures[env] ??= {});
  const byMetric = (byRow[row] ??= {});
  (byMetric[metric] ??= []).push(value);
}

/**
 * Each run's value of one figure.
 * @param {Results} results
 * @param {Env} env
 * @param {string} row
 * @param {string} metric
 * @returns {number[]}
 */
export const runsOf = (results, env, row, metric) => results.figures[env]?.[row]?.[metric] ?? [];

/**
 * The first reason one metric of a row failed is kept.
 * @param {Results} results
 * @param {Env} env
 * @param {string} row
 * @param {string} metric
 * @param {string} message
 */
export function fail(results, env, row, metric, message) {
  ((results.failures[env] ??= {})[row] ??= {})[metric] ??= message;
}
