// @ts-check
/**
 * The checks of each section: every unbroken figure with its same-run baseline and, where there is
 * one, its target. The targets:
 *
 * - WebSocket push in Node ≥ 0.8× a plain `ws` server that batches per tick, and ≥ 2× raw `ws` (one
 *   message per frame); in Chromium ≥ 10× the native WebSocket; ≥ 2× Socket.IO over WebSocket;
 * - the first push to a fresh server process (cold) ≥ 0.6× the sixth on the same connection (warm);
 * - SSE and long-polling push ≥ 2× Socket.IO polling, in Node and in Chromium;
 * - round trip p50 ≤ 1.1× the raw baseline of each transport: raw WebSocket, raw EventSource + POST,
 *   raw long polling + POST;
 * - fan-out to 1,000 clients, delivery p50 and p99 ≤ 1.1× raw `ws`; memory per idle WebSocket ≤ 1.1×;
 * - the `<script>` bundle ≤ 5,120 B gzip (and within the budget `npm test` enforces);
 * - rooms and the Redis store: the targets of their modules.
 * Checks flagged `headline` make the README's table.
 */
import { BUDGET_FILE, GZIP_BUDGET } from '../size.mjs';
import { atLeast, atMost, medianOf, valueAtMost } from './checks.mjs';
import { redisFigures } from './redis.mjs';
import { roomsFigures } from './rooms.mjs';
import { FALLBACKS, RETRY_FLOOR_MS, SCALE_ROWS, metricCase, rowById } from './rows.mjs';
import { runsOf } from './results.mjs';
import { num } from './stats.mjs';
import { BURST_SENDS, FANOUT_CLIENTS, FANOUT_RATE, PUSH_MESSAGES, RTT_STEADY_AFTER } from './workload.mjs';

/** @typedef {import('./checks.mjs').Check} Check */
/** @typedef {import('./checks.mjs').Target} Target */
/** @typedef {import('./results.mjs').Results} Results */
/** @typedef {import('./rows.mjs').Env} Env */

/** The gzip size the `<script>` bundle aims at, in bytes. */
export const GZIP_TARGET = 5120;

/**
 * @param {Results} results
 * @param {Env} env
 * @returns {Check[]}
 */
export function clientChecks(results, env) {
  const { figures, unavailable, failures, fallbacks } = results;
  /** @type {Check[]} */
  const checks = [];
  const section = env === 'node' ? 'Node' : 'Chromium';
  const label = (/** @type {string} */ id) => rowById(id).label[env];
  /**
   * @param {string} row
   * @param {string} metric
   * @param {string} title
   * @param {string} unit
   * @param {string | null} baselineRow
   * @param {Target | null} target
   * @param {{ baselineMetric?: string, baselineLabel?: string, headline?: boolean }} [more]
   */
  const add = (row, metric, title, unit, baselineRow, target, more = {}) => {
    const values = runsOf(results, env, row, metric);
    const value = medianOf(values);
    const baselines = baselineRow ? runsOf(results, env, baselineRow, more.baselineMetric ?? metric) : [];
    const baseline = baselineRow ? medianOf(baselines) : NaN;
    let why =
      unavailable[env]?.[row] !== undefined
        ? `unavailable: ${unavailable[env]?.[row]}`
        : failures[env]?.[row]?.[metricCase(metric)] ?? (Number.isFinite(value) ? undefined : 'not measured');
    if (metric === 'resume' && value < RETRY_FLOOR_MS) {
      why =
        env === 'browser' && row === 'unbroken-lp'
          ? 'below the retry floor, so the client did not reconnect: Chromium itself re-sent the poll whose connection was cut'
          : 'below the retry floor, so the client did not reconnect';
    }
    checks.push({
      section,
      figure: `${title}, ${label(row)}`,
      value,
      values,
      unit,
      ...(baselineRow ? { baselineLabel: more.baselineLabel ?? label(baselineRow), baseline, baselines } : {}),
      ratio: value / baseline,
      target,
      ...(why ? { note: why } : {}),
      ...(more.headline && target ? { headline: true } : {}),
    });
  };
  const measured = figures[env] !== undefined || unavailable[env] !== undefined;
  const node = env === 'node';
  const resumeTarget = valueAtMost(1000 + RETRY_FLOOR_MS, 'ms (1 s + retry floor)');
  /** @param {number} n @returns {Target} */
  const farFewer = (n) => ({ text: `≤ ${num(n / 10, 0)} (N/10)`, met: (value) => value <= n / 10 });
  const headline = { headline: true };

  if (measured) {
    add('unbroken-ws', 'throughput', 'push throughput', 'msg/s', 'ws', atLeast(node ? 2 : 10), headline);
    add('unbroken-ws', 'throughput', 'push throughput', 'msg/s', 'ws-batch', node ? atLeast(0.8) : null, headline);
    add('unbroken-ws', 'throughput', 'push throughput', 'msg/s', 'sio-ws', atLeast(2));
    if (node) {
      add('unbroken-ws', 'pushCold', 'cold push (the first, fresh server)', 'msg/s', 'unbroken-ws', atLeast(0.6), {
        baselineMetric: 'pushWarm',
        baselineLabel: 'warm push (the sixth)',
        headline: true,
      });
      // The cold push beside the baselines' own first push to a fresh process: what a fresh process
      // of a plain server and its client reach, JIT warm-up included.
      add('unbroken-ws', 'pushCold', 'cold push (the first, fresh server)', 'msg/s', 'ws-batch', null, {
        baselineMetric: 'pushCold',
        baselineLabel: 'raw ws, batched per tick, cold',
      });
      add('unbroken-ws', 'pushCold', 'cold push (the first, fresh server)', 'msg/s', 'ws', null, {
        baselineMetric: 'pushCold',
        baselineLabel: 'raw ws, cold',
      });
    }
    add('unbroken-ws', 'rttP50', 'round trip p50', 'ms', 'ws', atMost(1.1), headline);
    add('unbroken-ws', 'rttP99', 'round trip p99', 'ms', 'ws', null);
    // The same connection later, once both sides' code is optimised (workload.mjs): no target of its own.
    add('unbroken-ws', 'rttSteadyP50', `round trip p50, steady (after ${num(RTT_STEADY_AFTER, 0)})`, 'ms', 'ws', null);
    add('unbroken-ws', 'connect', 'connect', 'ms', 'ws', null);
    add('unbroken-ws', 'resume', 'resume', 'ms', 'sse', resumeTarget);

    add('unbroken-sse', 'throughput', 'push throughput', 'msg/s', 'sse', atLeast(1));
    add('unbroken-sse', 'throughput', 'push throughput', 'msg/s', 'sio-polling', atLeast(2), headline);
    add('unbroken-sse', 'rttP50', 'round trip p50', 'ms', 'sse', atMost(1.1), headline);
    add('unbroken-sse', 'rttP99', 'round trip p99', 'ms', 'sse', null);
    add('unbroken-sse', 'connect', 'connect', 'ms', 'sse', null);
    add('unbroken-sse', 'burstPosts', `POSTs for ${num(BURST_SENDS, 0)} sends`, 'POSTs', 'sse', farFewer(BURST_SENDS));
    add('unbroken-sse', 'resume', 'resume', 'ms', 'sse', resumeTarget);

    add('unbroken-lp', 'throughput', 'push throughput', 'msg/s', 'sio-polling', atLeast(2), headline);
    add('unbroken-lp', 'pushRequests', `requests for ${num(PUSH_MESSAGES, 0)} pushed`, 'requests', 'sio-polling', farFewer(PUSH_MESSAGES));
    add('unbroken-lp', 'throughput', 'push throughput', 'msg/s', 'poll', null);
    add('unbroken-lp', 'rttP50', 'round trip p50', 'ms', 'poll', atMost(1.1), headline);
    add('unbroken-lp', 'rttP50', 'round trip p50', 'ms', 'sio-polling', null);
    add('unbroken-lp', 'rttP99', 'round trip p99', 'ms', 'poll', null);
    add('unbroken-lp', 'connect', 'connect', 'ms', 'sio-polling', null);
    add('unbroken-lp', 'burstPosts', `POSTs for ${num(BURST_SENDS, 0)} sends`, 'POSTs', 'sse', farFewer(BURST_SENDS));
    add('unbroken-lp', 'resume', 'resume', 'ms', 'sse', resumeTarget);
  }

  for (const scenario of FALLBACKS) {
    const result = fallbacks[env]?.[scenario.id];
    if (!result) continue;
    const value = medianOf(result.ms);
    const baseline = medianOf(result.baseline);
    const wrong = result.transport.find((transport) => transport !== scenario.to);
    checks.push({
      section,
      figure: `fallback: ${scenario.title}`,
      value,
      values: result.ms,
      unit: 'ms',
      baselineLabel: `${scenario.to} at once`,
      baseline,
      baselines: result.baseline,
      ratio: value / baseline,
      target: valueAtMost(scenario.targetMs, 'ms'),
      ...(result.error
        ? { note: `no fallback: ${result.error}` }
        : wrong
          ? { note: `first message came over ${wrong}, not ${scenario.to}` }
          : {}),
    });
  }
  return checks;
}

/**
 * @param {Results} results
 * @returns {Check[]}
 */
export function scaleChecks(results) {
  const { scale } = results;
  /** @type {Check[]} */
  const checks = [];
  const idle = (/** @type {string} */ row, /** @type {string} */ metric) => scale.idle[row]?.[metric] ?? [];
  const fan = (/** @type {string} */ row, /** @type {string} */ metric) => scale.fanout[row]?.[metric] ?? [];
  const kib = (/** @type {number[]} */ bytes) => bytes.map((b) => b / 1024);
  for (const row of SCALE_ROWS.filter((r) => r.id.startsWith('unbroken'))) {
    const baselineId = /** @type {string} */ (row.baseline);
    const baselineLabel = SCALE_ROWS.find((r) => r.id === baselineId)?.label ?? baselineId;
    const websocket = row.id === 'unbroken-ws';
    const values = kib(idle(row.id, 'rssPerConnection'));
    const baselines = kib(idle(baselineId, 'rssPerConnection'));
    const error = scale.errors[`idle ${row.id}`];
    checks.push({
      section: 'Server',
      figure: `memory per idle connection (${num(medianOf(idle(row.id, 'opened')), 0)} open), ${row.label}`,
      value: medianOf(values),
      values,
      unit: 'KiB RSS',
      baselineLabel,
      baseline: medianOf(baselines),
      baselines,
      ratio: medianOf(values) / medianOf(baselines),
      target: websocket ? atMost(1.1) : null,
      ...(websocket ? { headline: true } : {}),
      ...(error ? { note: error } : {}),
    });
    if (!row.fanout) continue;
    for (const q of ['p50', 'p99']) {
      const fanValues = fan(row.id, q);
      const fanBaselines = fan(baselineId, q);
      const ferror = scale.errors[`fanout ${row.id}`];
      checks.push({
        section: 'Server',
        figure: `fan-out ${FANOUT_RATE} msg/s to ${num(FANOUT_CLIENTS, 0)}: delivery ${q}, ${row.label}`,
        value: medianOf(fanValues),
        values: fanValues,
        unit: 'ms',
        baselineLabel,
        baseline: medianOf(fanBaselines),
        baselines: fanBaselines,
        ratio: medianOf(fanValues) / medianOf(fanBaselines),
        target: websocket ? atMost(1.1) : null,
        ...(websocket ? { headline: true } : {}),
        ...(ferror ? { note: ferror } : {}),
      });
    }
  }
  return checks;
}

/**
 * @param {Results} results
 * @returns {Check[]}
 */
export function roomsChecks(results) {
  if (!results.rooms) return [];
  return roomsFigures(results.rooms).map(({ maxRatio, ...figure }) => ({
    section: 'Rooms',
    ...figure,
    ratio: figure.value / figure.baseline,
    target: maxRatio === undefined ? null : atMost(maxRatio),
    ...(maxRatio === undefined ? {} : { headline: true }),
  }));
}

/**
 * @param {Results} results
 * @returns {Check[]}
 */
export function redisChecks(results) {
  if (!results.redis) return [];
  return redisFigures(results.redis).map(({ minRatio, maxRatio, ...figure }) => ({
    section: 'Redis',
    ...figure,
    ratio: figure.value / figure.baseline,
    target: minRatio !== undefined ? atLeast(minRatio) : maxRatio !== undefined ? atMost(maxRatio) : null,
    ...(minRatio !== undefined || maxRatio !== undefined ? { headline: true } : {}),
  }));
}

/**
 * @param {Results} results
 * @returns {Check[]}
 */
export function sizeChecks(results) {
  const { sizes } = results;
  if (!sizes) return [];
  const iife = sizes.files.find((file) => file.file === BUDGET_FILE);
  const minimal = (/** @type {string} */ library) => sizes.minimal.find((report) => report.library === library);
  const ours = minimal('unbroken');
  const theirs = minimal('socket.io-client');
  const websocketOnly = minimal('unbroken, WebSocket only');
  /** @type {Check[]} */
  const checks = [];
  if (iife) {
    checks.push({
      section: 'Size',
      figure: `${BUDGET_FILE}, gzip -9 (all three transports)`,
      value: iife.gzip,
      unit: 'B',
      ratio: iife.gzip / GZIP_TARGET,
      baselineLabel: 'target',
      baseline: GZIP_TARGET,
      target: { ...atMost(1), text: `≤ ${num(GZIP_TARGET, 0)} B` },
      headline: true,
    });
    checks.push({
      section: 'Size',
      figure: `${BUDGET_FILE}, gzip -9, against the budget \`npm test\` enforces`,
      value: iife.gzip,
      unit: 'B',
      ratio: iife.gzip / GZIP_BUDGET,
      baselineLabel: 'budget',
      baseline: GZIP_BUDGET,
      target: valueAtMost(GZIP_BUDGET, 'B'),
    });
  }
  if (ours && theirs) {
    for (const key of /** @type {const} */ (['gzip', 'brotli'])) {
      checks.push({
        section: 'Size',
        figure: `minimal connect + listen + send, ${key === 'gzip' ? 'gzip -9' : 'brotli'}`,
        value: ours[key],
        unit: 'B',
        baselineLabel: 'socket.io-client',
        baseline: theirs[key],
        ratio: ours[key] / theirs[key],
        target: null,
      });
    }
  }
  if (ours && websocketOnly) {
    checks.push({
      section: 'Size',
      figure: 'minimal connect + listen + send, ESM entry tree-shaken to WebSocket only, gzip -9',
      value: websocketOnly.gzip,
      unit: 'B',
      baselineLabel: 'all three transports',
      baseline: ours.gzip,
      ratio: websocketOnly.gzip / ours.gzip,
      target: null,
    });
  }
  return checks;
}
