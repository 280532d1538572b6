// @ts-check
/**
 * `npm run bench`: unbroken against raw WebSocket, raw EventSource and Socket.IO, measured side by
 * side in one run on loopback, in Node (client injected) and in headless Chromium (native WebSocket
 * and EventSource), plus server scale, rooms (bench/lib/rooms.mjs), the Redis store against the
 * in-memory one (bench/lib/redis.mjs) and bundle size. Prints tables to stdout, progress to stderr,
 * and writes everything as JSON to bench/results/.
 *
 *   npm run bench                       builds, then runs everything (about 25 minutes on 2 cores)
 *   node bench/run.mjs --quick          one run of each case and smaller scale cases (a smoke test)
 *   node bench/run.mjs --only node,size sections: node, browser, fallback, scale, rooms, redis, size
 *   node bench/run.mjs --runs 5         runs per case (default 3); figures are medians over runs
 *
 * It exits with status 1 when a rooms case delivered a message to the wrong session, twice or not
 * at all: a wrong count is a fault, not a slow figure.
 *
 * Each case starts a fresh server process (bench/lib/server.mjs) and a fresh client host (a Node
 * process, or a new browser context in one Chromium), so no case inherits another's heap or JIT state.
 * Runs are interleaved (run 1 of every row, then run 2 …) so that a noisy moment hits all rows alike.
 * Set CHROMIUM_PATH to use another Chromium binary (the tests read the same variable).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { startNetworkConditions } from '../demo/network-conditions.mjs';
import { pushRate, roundTrips, warmUpPush } from './lib/client-cases.mjs';
import { CHROMIUM_PATH, launchBrowser, startNodeClient, startScaleClients, startServer } from './lib/processes.mjs';
import { redisFigures, redisHeadings, redisTables, runRedisCases } from './lib/redis.mjs';
import { REDIS_SERVER } from './lib/redis-server.mjs';
import { roomsFigures, roomsHeadings, roomsTables, runRoomsCases } from './lib/rooms.mjs';
import { median, num, quantile, table } from './lib/stats.mjs';
import {
  BURST_SENDS,
  CONNECTS,
  FANOUT_CLIENTS,
  FANOUT_RATE,
  FANOUT_SECONDS,
  IDLE_CONNECTIONS,
  PUSH_MESSAGES,
  PUSH_WARMUPS,
  PUSH_WARMUP_MS,
  QUICK,
  RTT_ROUND_TRIPS,
  RTT_WARMUP,
} from './lib/workload.mjs';
import { BUDGET_FILE, GZIP_BUDGET, MINIFY_SETTING, measureBytes, measureMinimal } from './size.mjs';

const root = new URL('../', import.meta.url);

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
/** @param {string} name */
const option = (name) => {
  const index = argv.indexOf(name);
  return index === -1 ? undefined : argv[index + 1];
};
const quick = argv.includes('--quick');
const RUNS = Number(option('--runs') ?? (quick ? QUICK.runs : 3));
const SECTIONS = new Set((option('--only') ?? 'node,browser,fallback,scale,rooms,redis,size').split(','));
const IDLE_N = quick ? QUICK.idleConnections : IDLE_CONNECTIONS;
const FANOUT_S = quick ? QUICK.fanoutSeconds : FANOUT_SECONDS;
/** The reconnect delay floor of the servers (unbroken's default `retry`, and the raw SSE server's `retry:`). */
const RETRY_FLOOR_MS = 1000;

/** What a run needs of the build: the server, the Redis store, the ESM client, the `<script>` bundle. */
const DIST_FILES = ['server.mjs', 'redis.mjs', 'unbroken-realtime.mjs', 'unbroken-realtime.iife.min.js'];

/** @param {string} message */
const progress = (message) => process.stderr.write(`${message}\n`);

// ---------------------------------------------------------------------------------------------
// Rows

/** @typedef {'node' | 'browser'} Env */
/**
 * @typedef {object} Row
 * @property {string} id
 * @property {Record<Env, string>} label
 * @property {string} server server kind (bench/lib/server.mjs)
 * @property {string} [serverTransport]
 * @property {(url: string) => import('./lib/drivers.mjs').RowSpec} spec
 * @property {boolean} http upstream over HTTP requests (counts POSTs)
 * @property {boolean} resumes replays what was sent while the client was away
 * @property {string[]} [only] the only cases it runs (a reference row)
 */

/** @type {Row[]} */
const ROWS = [
  {
    id: 'unbroken-ws',
    label: { node: 'unbroken websocket', browser: 'unbroken websocket' },
    server: 'unbroken',
    spec: (url) => ({ kind: 'unbroken', url, transports: ['websocket'] }),
    http: false,
    resumes: true,
  },
  {
    id: 'unbroken-sse',
    label: { node: 'unbroken sse', browser: 'unbroken sse' },
    server: 'unbroken',
    spec: (url) => ({ kind: 'unbroken', url, transports: ['sse'] }),
    http: true,
    resumes: true,
  },
  {
    id: 'unbroken-lp',
    label: { node: 'unbroken long-polling', browser: 'unbroken long-polling' },
    server: 'unbroken',
    spec: (url) => ({ kind: 'unbroken', url, transports: ['long-polling'] }),
    http: true,
    resumes: true,
  },
  {
    id: 'ws',
    label: { node: 'raw ws', browser: 'native WebSocket' },
    server: 'ws',
    spec: (url) => ({ kind: 'ws', url }),
    http: false,
    resumes: false,
  },
  {
    // Not a target baseline: the ceiling of batching, i.e. what a plain server that joins the messages
    // of one tick into one frame achieves over the same socket.
    id: 'ws-batch',
    label: { node: 'raw ws, batched per tick', browser: 'native WS, batched per tick' },
    server: 'ws',
    spec: (url) => ({ kind: 'ws-batch', url }),
    http: false,
    resumes: false,
    only: ['throughput'],
  },
  {
    id: 'sse',
    label: { node: 'raw EventSource', browser: 'native EventSource' },
    server: 'sse',
    spec: (url) => ({ kind: 'sse', url }),
    http: true,
    resumes: true,
  },
  {
    id: 'sio-ws',
    label: { node: 'socket.io websocket', browser: 'socket.io websocket' },
    server: 'socketio',
    serverTransport: 'websocket',
    spec: (url) => ({ kind: 'socketio', url, transport: 'websocket' }),
    http: false,
    resumes: false,
  },
  {
    id: 'sio-polling',
    label: { node: 'socket.io polling', browser: 'socket.io polling' },
    server: 'socketio',
    serverTransport: 'polling',
    spec: (url) => ({ kind: 'socketio', url, transport: 'polling' }),
    http: true,
    resumes: false,
  },
];
const rowById = (/** @type {string} */ id) => /** @type {Row} */ (ROWS.find((row) => row.id === id));

// ---------------------------------------------------------------------------------------------
// Results

/**
 * Per env, row and metric: the value of each run. Metrics: connect, connectCold (ms), throughput
 * (msg/s), pushRequests, rttP50, rttP99 (ms), rttRequests, burstPosts, burstMs, resume (ms).
 * @type {Record<string, Record<string, Record<string, number[]>>>}
 */
const figures = {};
/** Why a row could not run at all in an env (its transport did not connect). @type {Record<string, Record<string, string>>} */
const unavailable = {};
/** Why one metric of a row failed. @type {Record<string, Record<string, Record<string, string>>>} */
const failures = {};
/** @type {Record<string, Record<string, { ms: number[], baseline: number[], transport: string[], error?: string, baselineError?: string }>>} */
const fallbacks = {};
/** @type {{ idle: Record<string, Record<string, number[]>>, fanout: Record<string, Record<string, number[]>>, errors: Record<string, string> }} */
const scale = { idle: {}, fanout: {}, errors: {} };
/** @type {{ budget: { file: string, gzip: number }, files: import('./size.mjs').SizeReport[], minimal: (import('./size.mjs').SizeReport & { library: string })[], setting: string } | null} */
let sizes = null;
/** @type {import('./lib/rooms.mjs').RoomsResults | null} */
let rooms = null;
/** @type {import('./lib/redis.mjs').RedisResults | null} */
let redis = null;

/**
 * @param {Env} env
 * @param {string} row
 * @param {string} metric
 * @param {number} value
 */
function record(env, row, metric, value) {
  const byRow = (figures[env] ??= {});
  const byMetric = (byRow[row] ??= {});
  (byMetric[metric] ??= []).push(value);
}

/**
 * The median over runs of one figure.
 * @param {Env} env
 * @param {string} row
 * @param {string} metric
 */
const figure = (env, row, metric) => median(figures[env]?.[row]?.[metric] ?? []);

/**
 * @param {Env} env
 * @param {string} row
 * @param {string} metric
 * @param {string} message
 */
function fail(env, row, metric, message) {
  ((failures[env] ??= {})[row] ??= {})[metric] ??= message;
}

// ---------------------------------------------------------------------------------------------
// Cases

/** @typedef {import('./lib/processes.mjs').ClientHost} ClientHost */
/** @typedef {Awaited<ReturnType<typeof launchBrowser>>} Browser */

/** A row whose transport did not connect. */
class Unavailable extends Error {}

/**
 * Opens a connection on the host, turning a failure into {@link Unavailable}.
 * @param {ClientHost} host
 * @param {import('./lib/drivers.mjs').RowSpec} spec
 */
async function open(host, spec) {
  try {
    return /** @type {{ ms: number, transport: string }} */ (await host.call('open', spec));
  } catch (error) {
    throw new Unavailable(error instanceof Error ? error.message.split('\n')[0] : String(error));
  }
}

/**
 * HTTP requests between two snapshots of a server's counters (upgrades excluded).
 * @param {Record<string, number>} before
 * @param {Record<string, number>} after
 * @param {(key: string) => boolean} [which]
 */
function requestsBetween(before, after, which = (key) => !key.startsWith('UPGRADE')) {
  let total = 0;
  for (const [key, value] of Object.entries(after)) if (which(key)) total += value - (before[key] ?? 0);
  return total;
}

/**
 * Runs one case of one row: a fresh server, a fresh client host, one measurement.
 * @param {Env} env
 * @param {Browser | null} browser
 * @param {Row} row
 * @param {'connect' | 'throughput' | 'rtt' | 'burst' | 'resume'} kind
 */
async function runCase(env, browser, row, kind) {
  const server = await startServer(row.server, row.serverTransport ? { transport: row.serverTransport } : {});
  /** @type {ClientHost | null} */
  let host = null;
  try {
    host = env === 'node' ? await startNodeClient() : await /** @type {Browser} */ (browser).open(server.url);
    const spec = row.spec(server.url);
    switch (kind) {
      case 'connect': {
        let times;
        try {
          times = /** @type {number[]} */ (await host.call('connects', spec, CONNECTS));
        } catch (error) {
          throw new Unavailable(error instanceof Error ? error.message.split('\n')[0] : String(error));
        }
        record(env, row.id, 'connectCold', times[0] ?? NaN);
        record(env, row.id, 'connect', median(times.slice(1)));
        break;
      }
      case 'throughput': {
        await open(host, spec);
        await warmUpPush(host);
        const before = await server.requests();
        const rate = await pushRate(host);
        const after = await server.requests();
        record(env, row.id, 'throughput', rate);
        if (row.http) record(env, row.id, 'pushRequests', requestsBetween(before, after));
        break;
      }
      case 'rtt': {
        await open(host, spec);
        const before = await server.requests();
        const samples = await roundTrips(host);
        const after = await server.requests();
        record(env, row.id, 'rttP50', quantile(samples, 0.5));
        record(env, row.id, 'rttP99', quantile(samples, 0.99));
        if (row.http) record(env, row.id, 'rttRequests', requestsBetween(before, after));
        break;
      }
      case 'burst': {
        await open(host, spec);
        const before = await server.requests();
        const { ms } = /** @type {{ ms: number }} */ (await host.call('burst', BURST_SENDS));
        const after = await server.requests();
        record(env, row.id, 'burstMs', ms);
        record(env, row.id, 'burstPosts', requestsBetween(before, after, (key) => key.startsWith('POST')));
        break;
      }
      case 'resume': {
        await open(host, spec);
        const { ms } = /** @type {{ ms: number }} */ (await host.call('resume', 10_000));
        record(env, row.id, 'resume', ms);
        break;
      }
    }
  } finally {
    await host?.stop().catch(() => undefined);
    await server.stop();
  }
}

/**
 * Every client case of one env: connect, throughput, round trip, burst (HTTP rows), resume (rows that
 * resume), `RUNS` times each, interleaved over rows.
 * @param {Env} env
 * @param {Browser | null} browser
 */
async function runClientCases(env, browser) {
  /** @type {('connect' | 'throughput' | 'rtt' | 'burst' | 'resume')[]} */
  const kinds = ['connect', 'throughput', 'rtt', 'burst', 'resume'];
  for (let run = 1; run <= RUNS; run++) {
    for (const kind of kinds) {
      for (const row of ROWS) {
        if (unavailable[env]?.[row.id]) continue;
        if (kind === 'burst' && !row.http) continue;
        if (kind === 'resume' && !row.resumes) continue;
        if (row.only && !row.only.includes(kind)) continue;
        if (failures[env]?.[row.id]?.[kind]) continue; // failed once: not again
        const started = Date.now();
        try {
          await runCase(env, browser, row, kind);
          progress(`  ${env} run ${run}/${RUNS} ${kind.padEnd(10)} ${row.label[env].padEnd(22)} ${Date.now() - started} ms`);
        } catch (error) {
          const message = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
          if (error instanceof Unavailable) (unavailable[env] ??= {})[row.id] = message;
          else fail(env, row.id, kind, message);
          progress(`  ${env} run ${run}/${RUNS} ${kind.padEnd(10)} ${row.label[env].padEnd(22)} ${error instanceof Unavailable ? 'UNAVAILABLE' : 'FAILED'}: ${message}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fallback

/**
 * The fallback cases: the client with its default transports behind the loopback proxy of
 * demo/network-conditions.mjs, time from construction to the first message. The baseline is the same
 * client through the same proxy, without the condition, told to use the fallback transport at once.
 */
const FALLBACKS = /** @type {const} */ ([
  { id: 'ws-refused', title: 'WebSocket refused → sse', conditions: ['ws-blocked'], to: 'sse', targetMs: 1000 },
  { id: 'ws-hanging', title: 'WebSocket upgrade hanging → sse', conditions: ['ws-hanging'], to: 'sse', targetMs: 4000 },
  {
    id: 'sse-buffered',
    title: 'WebSocket refused, SSE buffered → long-polling',
    conditions: ['ws-blocked', 'sse-buffered'],
    to: 'long-polling',
    targetMs: 6000,
  },
]);
/** Longest a fallback may take before it counts as not happening. */
const FALLBACK_TIMEOUT_MS = 15_000;

/**
 * Starts the proxy in front of `port` with `conditions` active. With a proxy that takes one condition
 * at a time, two proxies are chained.
 * @param {number} port
 * @param {readonly string[]} conditions
 */
async function startProxy(port, conditions) {
  /** @type {Awaited<ReturnType<typeof startNetworkConditions>>[]} */
  const proxies = [];
  /** @typedef {import('../demo/network-conditions.mjs').Condition} Condition */
  const first = await startNetworkConditions({ target: { port } });
  proxies.push(first);
  if (conditions.length > 1 && typeof first.setConditions === 'function') {
    first.setConditions(/** @type {Condition[]} */ ([...conditions]));
  } else {
    let front = first;
    for (const [i, condition] of conditions.entries()) {
      if (i > 0) {
        front = await startNetworkConditions({ target: { port: front.port } });
        proxies.push(front);
      }
      front.setCondition(/** @type {Condition} */ (condition));
    }
  }
  const front = /** @type {(typeof proxies)[number]} */ (proxies[proxies.length - 1]);
  return {
    url: `http://127.0.0.1:${front.port}`,
    close: () => Promise.all(proxies.map((proxy) => proxy.close())),
  };
}

/**
 * @param {Env} env
 * @param {Browser | null} browser
 */
async function runFallbackCases(env, browser) {
  const results = (fallbacks[env] ??= {});
  for (let run = 1; run <= RUNS; run++) {
    for (const scenario of FALLBACKS) {
      const result = (results[scenario.id] ??= { ms: [], baseline: [], transport: [] });
      if (result.error && result.baselineError) continue;
      for (const baseline of [false, true]) {
        if (baseline ? result.baselineError : result.error) continue;
        const server = await startServer('unbroken');
        const proxy = await startProxy(server.port, baseline ? [] : scenario.conditions);
        /** @type {ClientHost | null} */
        let host = null;
        const started = Date.now();
        try {
          host = env === 'node' ? await startNodeClient() : await /** @type {Browser} */ (browser).open(proxy.url);
          /** @type {import('./lib/drivers.mjs').RowSpec} */
          const spec = baseline ? { kind: 'unbroken', url: proxy.url, transports: [scenario.to] } : { kind: 'unbroken', url: proxy.url };
          const opened = /** @type {{ ms: number, transport: string }} */ (await host.call('open', spec, FALLBACK_TIMEOUT_MS));
          if (baseline) result.baseline.push(opened.ms);
          else {
            result.ms.push(opened.ms);
            result.transport.push(opened.transport);
          }
          progress(`  ${env} run ${run}/${RUNS} fallback   ${scenario.id}${baseline ? ' (baseline)' : ''}: ${num(opened.ms)} ms over ${opened.transport} (${Date.now() - started} ms)`);
        } catch (error) {
          const message = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
          if (baseline) result.baselineError = message;
          else result.error = message;
          progress(`  ${env} run ${run}/${RUNS} fallback   ${scenario.id}${baseline ? ' (baseline)' : ''}: FAILED ${message}`);
        } finally {
          await host?.stop().catch(() => undefined);
          await proxy.close();
          await server.stop();
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server scale

/** Idle connections and fan-out: server kind, its transport, and the scale clients' protocol. */
const SCALE_ROWS = [
  { id: 'unbroken-ws', label: 'unbroken websocket', server: 'unbroken', protocol: 'unbroken-ws', baseline: 'ws', fanout: true },
  { id: 'unbroken-sse', label: 'unbroken sse', server: 'unbroken', protocol: 'unbroken-sse', baseline: 'sse', fanout: true },
  { id: 'unbroken-lp', label: 'unbroken long-polling', server: 'unbroken', protocol: 'unbroken-lp', baseline: 'sse', fanout: false },
  { id: 'ws', label: 'raw ws', server: 'ws', protocol: 'ws', baseline: null, fanout: true },
  { id: 'sse', label: 'raw SSE', server: 'sse', protocol: 'sse', baseline: null, fanout: true },
  { id: 'sio-ws', label: 'socket.io websocket', server: 'socketio', transport: 'websocket', protocol: 'socketio-ws', baseline: 'ws', fanout: true },
];

/**
 * @param {Record<string, Record<string, number[]>>} into
 * @param {string} row
 * @param {Record<string, number>} values
 */
function recordScale(into, row, values) {
  const byMetric = (into[row] ??= {});
  for (const [metric, value] of Object.entries(values)) (byMetric[metric] ??= []).push(value);
}

/** Short pause, so a case starts from a quiet machine. */
const settle = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function runScaleCases() {
  for (let run = 1; run <= RUNS; run++) {
    for (const row of SCALE_ROWS) {
      if (scale.errors[`idle ${row.id}`]) continue;
      const server = await startServer(row.server, { gc: true, ...(row.transport ? { transport: row.transport } : {}) });
      /** @type {Awaited<ReturnType<typeof startScaleClients>> | null} */
      let clients = null;
      try {
        const before = await server.memory();
        clients = await startScaleClients({ protocol: row.protocol, url: server.url, n: IDLE_N, concurrency: 100 });
        if (clients.failed > 0) throw new Error(`${clients.failed} of ${IDLE_N} connections failed: ${clients.firstError}`);
        await settle(500);
        const after = await server.memory();
        recordScale(scale.idle, row.id, {
          opened: clients.opened,
          connectAllMs: clients.ms,
          rssPerConnection: (after.rss - before.rss) / clients.opened,
          heapPerConnection: (after.heapUsed + after.external - before.heapUsed - before.external) / clients.opened,
        });
        progress(
          `  scale run ${run}/${RUNS} idle       ${row.label.padEnd(22)} ${clients.opened} open in ${num(clients.ms, 0)} ms, ` +
            `RSS ${num((after.rss - before.rss) / clients.opened / 1024, 1)} KiB/conn`,
        );
      } catch (error) {
        scale.errors[`idle ${row.id}`] = error instanceof Error ? error.message : String(error);
        progress(`  scale run ${run}/${RUNS} idle       ${row.label.padEnd(22)} FAILED: ${scale.errors[`idle ${row.id}`]}`);
      } finally {
        await clients?.stop();
        await server.stop();
      }
      await settle(200);
    }
    for (const row of SCALE_ROWS.filter((r) => r.fanout)) {
      if (scale.errors[`fanout ${row.id}`]) continue;
      const server = await startServer(row.server, row.transport ? { transport: row.transport } : {});
      /** @type {Awaited<ReturnType<typeof startScaleClients>> | null} */
      let clients = null;
      try {
        clients = await startScaleClients({ protocol: row.protocol, url: server.url, n: FANOUT_CLIENTS, concurrency: 100 });
        if (clients.failed > 0) throw new Error(`${clients.failed} of ${FANOUT_CLIENTS} connections failed: ${clients.firstError}`);
        await settle(200);
        await clients.reset();
        const sent = await server.fanout(FANOUT_RATE, FANOUT_S);
        await settle(500); // stragglers
        const latency = await clients.latency();
        recordScale(scale.fanout, row.id, {
          p50: latency.p50,
          p99: latency.p99,
          max: latency.max,
          delivered: latency.received / (sent.sent * clients.opened),
          serverCpu: sent.cpuPercent,
          clientCpu: latency.cpuPercent,
        });
        progress(
          `  scale run ${run}/${RUNS} fan-out    ${row.label.padEnd(22)} p50 ${num(latency.p50)} ms p99 ${num(latency.p99)} ms, ` +
            `${latency.received}/${sent.sent * clients.opened} delivered, server CPU ${num(sent.cpuPercent, 0)} %`,
        );
      } catch (error) {
        scale.errors[`fanout ${row.id}`] = error instanceof Error ? error.message : String(error);
        progress(`  scale run ${run}/${RUNS} fan-out    ${row.label.padEnd(22)} FAILED: ${scale.errors[`fanout ${row.id}`]}`);
      } finally {
        await clients?.stop();
        await server.stop();
      }
      await settle(200);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks: each unbroken figure with its same-run baseline, ratio and target

/**
 * @typedef {object} Target
 * @property {string} text
 * @property {(value: number, ratio: number) => boolean} met
 * @property {(value: number, ratio: number) => number} [missedBy] how many times too slow, large or small a missed figure is
 */
/**
 * @typedef {object} Check
 * @property {string} section
 * @property {string} figure
 * @property {number} value
 * @property {string} unit
 * @property {string} [baselineLabel]
 * @property {number} [baseline]
 * @property {number} ratio
 * @property {Target | null} target
 * @property {string} [note] why there is no value
 */

/** @param {number} x */
const atLeast = (x, of = '') => ({
  text: `≥ ${x}×${of ? ` ${of}` : ''}`,
  met: (/** @type {number} */ _v, /** @type {number} */ r) => r >= x,
  missedBy: (/** @type {number} */ _v, /** @type {number} */ r) => x / r,
});
/** @param {number} x */
const atMost = (x, of = '') => ({
  text: `≤ ${x}×${of ? ` ${of}` : ''}`,
  met: (/** @type {number} */ _v, /** @type {number} */ r) => r <= x,
  missedBy: (/** @type {number} */ _v, /** @type {number} */ r) => r / x,
});
/** @param {number} v @param {string} unit */
const valueAtMost = (v, unit) => ({ text: `≤ ${num(v, 0)} ${unit}`, met: (/** @type {number} */ value) => value <= v });

/**
 * @param {Env} env
 * @returns {Check[]}
 */
function clientChecks(env) {
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
   * @param {string} [baselineMetric]
   */
  const add = (row, metric, title, unit, baselineRow, target, baselineMetric = metric) => {
    const value = figure(env, row, metric);
    const baseline = baselineRow ? figure(env, baselineRow, baselineMetric) : NaN;
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
      unit,
      ...(baselineRow ? { baselineLabel: label(baselineRow), baseline } : {}),
      ratio: value / baseline,
      target,
      ...(why ? { note: why } : {}),
    });
  };
  const measured = figures[env] !== undefined || unavailable[env] !== undefined;
  const wsTarget = env === 'browser' ? 10 : 2;
  const resumeTarget = valueAtMost(1000 + RETRY_FLOOR_MS, 'ms (1 s + retry floor)');
  const farFewer = (/** @type {number} */ n) => ({ text: `≤ ${num(n / 10, 0)} (N/10)`, met: (/** @type {number} */ value) => value <= n / 10 });

  if (measured) {
    add('unbroken-ws', 'throughput', 'push throughput', 'msg/s', 'ws', atLeast(wsTarget));
    add('unbroken-ws', 'throughput', 'push throughput', 'msg/s', 'sio-ws', atLeast(2));
    add('unbroken-ws', 'throughput', 'push throughput', 'msg/s', 'ws-batch', null);
    add('unbroken-ws', 'rttP50', 'round trip p50', 'ms', 'ws', atMost(1.1));
    add('unbroken-ws', 'rttP99', 'round trip p99', 'ms', 'ws', null);
    add('unbroken-ws', 'connect', 'connect', 'ms', 'ws', null);
    add('unbroken-ws', 'resume', 'resume', 'ms', 'sse', resumeTarget);

    add('unbroken-sse', 'throughput', 'push throughput', 'msg/s', 'sse', atLeast(1));
    add('unbroken-sse', 'throughput', 'push throughput', 'msg/s', 'sio-polling', atLeast(2));
    add('unbroken-sse', 'rttP50', 'round trip p50', 'ms', 'sse', null);
    add('unbroken-sse', 'rttP99', 'round trip p99', 'ms', 'sse', null);
    add('unbroken-sse', 'connect', 'connect', 'ms', 'sse', null);
    add('unbroken-sse', 'burstPosts', `POSTs for ${num(BURST_SENDS, 0)} sends`, 'POSTs', 'sse', farFewer(BURST_SENDS));
    add('unbroken-sse', 'resume', 'resume', 'ms', 'sse', resumeTarget);

    add('unbroken-lp', 'throughput', 'push throughput', 'msg/s', 'sio-polling', atLeast(2));
    add('unbroken-lp', 'pushRequests', `requests for ${num(PUSH_MESSAGES, 0)} pushed`, 'requests', 'sio-polling', farFewer(PUSH_MESSAGES));
    add('unbroken-lp', 'rttP50', 'round trip p50', 'ms', 'sio-polling', null);
    add('unbroken-lp', 'rttP99', 'round trip p99', 'ms', 'sio-polling', null);
    add('unbroken-lp', 'connect', 'connect', 'ms', 'sio-polling', null);
    add('unbroken-lp', 'burstPosts', `POSTs for ${num(BURST_SENDS, 0)} sends`, 'POSTs', 'sse', farFewer(BURST_SENDS));
    add('unbroken-lp', 'resume', 'resume', 'ms', 'sse', resumeTarget);
  }

  for (const scenario of FALLBACKS) {
    const result = fallbacks[env]?.[scenario.id];
    if (!result) continue;
    const value = median(result.ms);
    const baseline = median(result.baseline);
    const wrong = result.transport.find((transport) => transport !== scenario.to);
    checks.push({
      section,
      figure: `fallback: ${scenario.title}`,
      value,
      unit: 'ms',
      baselineLabel: `${scenario.to} at once`,
      baseline,
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

/** The case a metric is measured in. @param {string} metric */
function metricCase(metric) {
  if (metric.startsWith('rtt')) return 'rtt';
  if (metric.startsWith('burst')) return 'burst';
  if (metric === 'pushRequests') return 'throughput';
  return metric;
}

/** @returns {Check[]} */
function scaleChecks() {
  /** @type {Check[]} */
  const checks = [];
  const idle = (/** @type {string} */ row, /** @type {string} */ metric) => median(scale.idle[row]?.[metric] ?? []);
  const fan = (/** @type {string} */ row, /** @type {string} */ metric) => median(scale.fanout[row]?.[metric] ?? []);
  for (const row of SCALE_ROWS.filter((r) => r.id.startsWith('unbroken'))) {
    const baseline = /** @type {string} */ (row.baseline);
    const baselineLabel = SCALE_ROWS.find((r) => r.id === baseline)?.label ?? baseline;
    const value = idle(row.id, 'rssPerConnection') / 1024;
    const error = scale.errors[`idle ${row.id}`];
    checks.push({
      section: 'Server',
      figure: `memory per idle connection (${num(idle(row.id, 'opened'), 0)} open), ${row.label}`,
      value,
      unit: 'KiB RSS',
      baselineLabel,
      baseline: idle(baseline, 'rssPerConnection') / 1024,
      ratio: value / (idle(baseline, 'rssPerConnection') / 1024),
      target: null,
      ...(error ? { note: error } : {}),
    });
    if (!row.fanout) continue;
    for (const q of ['p50', 'p99']) {
      const v = fan(row.id, q);
      const ferror = scale.errors[`fanout ${row.id}`];
      checks.push({
        section: 'Server',
        figure: `fan-out ${FANOUT_RATE} msg/s to ${num(FANOUT_CLIENTS, 0)}: delivery ${q}, ${row.label}`,
        value: v,
        unit: 'ms',
        baselineLabel,
        baseline: fan(baseline, q),
        ratio: v / fan(baseline, q),
        target: null,
        ...(ferror ? { note: ferror } : {}),
      });
    }
  }
  return checks;
}

/** @returns {Check[]} */
function roomsChecks() {
  if (!rooms) return [];
  return roomsFigures(rooms).map(({ maxRatio, ...figure }) => ({
    section: 'Rooms',
    ...figure,
    ratio: figure.value / figure.baseline,
    target: maxRatio === undefined ? null : atMost(maxRatio),
  }));
}

/** @returns {Check[]} */
function redisChecks() {
  if (!redis) return [];
  return redisFigures(redis).map(({ minRatio, maxRatio, ...figure }) => ({
    section: 'Redis',
    ...figure,
    ratio: figure.value / figure.baseline,
    target: minRatio !== undefined ? atLeast(minRatio) : maxRatio !== undefined ? atMost(maxRatio) : null,
  }));
}

/**
 * A line per target missed, saying by how much, so that a miss stands out below its table.
 * @param {Check[]} checks
 */
function targetFailures(checks) {
  /** @type {string[]} */
  const lines = [];
  for (const check of checks) {
    const target = check.target;
    if (!target || !Number.isFinite(check.ratio) || target.met(check.value, check.ratio)) continue;
    const by = target.missedBy?.(check.value, check.ratio);
    lines.push(
      `TARGET FAILED — ${check.figure}: ${withUnit(check.value, check.unit)} against ${check.baselineLabel ?? 'its baseline'} ` +
        `${withUnit(check.baseline ?? NaN, check.unit)}, ${num(check.ratio, 3)}× (target ${target.text})` +
        (by === undefined ? '' : `: missed by a factor of ${num(by, 1)}`),
    );
  }
  return lines;
}

/** @returns {Check[]} */
function sizeChecks() {
  if (!sizes) return [];
  const iife = sizes.files.find((file) => file.file === BUDGET_FILE);
  const ours = sizes.minimal.find((report) => report.library === 'unbroken');
  const theirs = sizes.minimal.find((report) => report.library === 'socket.io-client');
  /** @type {Check[]} */
  const checks = [];
  if (iife) {
    checks.push({
      section: 'Size',
      figure: `${BUDGET_FILE}, gzip -9 (all three transports)`,
      value: iife.gzip,
      unit: 'B',
      ratio: iife.gzip / GZIP_BUDGET,
      baselineLabel: 'budget',
      baseline: GZIP_BUDGET,
      target: valueAtMost(GZIP_BUDGET, 'B (aim 5,120)'),
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
  return checks;
}

// ---------------------------------------------------------------------------------------------
// Output

/** @param {number} value @param {string} unit */
function withUnit(value, unit) {
  if (!Number.isFinite(value)) return '—';
  const digits = unit === 'msg/s' || unit === 'B' || unit.startsWith('POST') || unit.startsWith('request') ? 0 : 2;
  return `${num(value, digits)} ${unit}`;
}

/**
 * The checks as a table; a figure with a note gets a numbered mark, and the notes follow the table.
 * @param {Check[]} checks
 */
function checksTable(checks) {
  /** @type {string[][]} */
  const rows = [['figure', '>unbroken', 'same-run baseline', '>ratio', 'target', 'verdict']];
  /** @type {string[]} */
  const notes = [];
  for (const check of checks) {
    const measured = Number.isFinite(check.value);
    const relative = check.target?.text.includes('×') ?? false;
    const verdict = !check.target
      ? ''
      : !measured || (relative && !Number.isFinite(check.ratio))
        ? 'n/a'
        : check.target.met(check.value, check.ratio)
          ? 'ok'
          : 'MISSED';
    let mark = '';
    if (check.note) {
      notes.push(`[${notes.length + 1}] ${check.figure}: ${check.note}`);
      mark = ` [${notes.length}]`;
    }
    rows.push([
      check.figure,
      measured ? withUnit(check.value, check.unit) : 'not measured',
      check.baselineLabel ? `${check.baselineLabel} ${withUnit(check.baseline ?? NaN, check.unit)}` : '',
      Number.isFinite(check.ratio) ? `${num(check.ratio, 2)}×` : '—',
      check.target?.text ?? '—',
      `${verdict}${mark}`.trim(),
    ]);
  }
  return [table(rows), ...notes].join('\n');
}

/** @param {Env} env */
function figuresTable(env) {
  /** @type {string[][]} */
  const rows = [
    [
      'row',
      '>connect ms',
      '>push msg/s',
      '>RTT p50 ms',
      '>RTT p99 ms',
      `>req/${num(PUSH_MESSAGES / 1000, 0)}k push`,
      `>req/${num(RTT_ROUND_TRIPS / 1000, 0)}k RTT`,
      `>POSTs/${num(BURST_SENDS / 1000, 0)}k sends`,
      '>resume ms',
    ],
  ];
  for (const row of ROWS) {
    const why = unavailable[env]?.[row.id];
    if (why) {
      rows.push([row.label[env], `unavailable: ${why}`, '', '', '', '', '', '', '']);
      continue;
    }
    const cell = (/** @type {string} */ metric, digits = 2) => {
      if (row.only && !row.only.includes(metricCase(metric))) return '';
      const failed = failures[env]?.[row.id]?.[metricCase(metric)];
      if (failed) return 'failed';
      return num(figure(env, row.id, metric), digits);
    };
    rows.push([
      row.label[env],
      cell('connect'),
      cell('throughput', 0),
      cell('rttP50', 3),
      cell('rttP99', 3),
      row.http ? cell('pushRequests', 0) : '',
      row.http ? cell('rttRequests', 0) : '',
      row.http ? cell('burstPosts', 0) : '',
      row.resumes ? cell('resume', 0) : '',
    ]);
  }
  return table(rows);
}

function scaleTables() {
  const idle = (/** @type {string} */ row, /** @type {string} */ metric) => median(scale.idle[row]?.[metric] ?? []);
  const fan = (/** @type {string} */ row, /** @type {string} */ metric) => median(scale.fanout[row]?.[metric] ?? []);
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
            num(idle(row.id, 'opened'), 0),
            num(idle(row.id, 'connectAllMs'), 0),
            num(idle(row.id, 'rssPerConnection') / 1024, 1),
            num(idle(row.id, 'heapPerConnection') / 1024, 1),
          ],
    );
    if (!row.fanout) continue;
    const fanError = scale.errors[`fanout ${row.id}`];
    fanRows.push(
      fanError && !scale.fanout[row.id]
        ? [row.label, `failed: ${fanError}`, '', '', '', '', '']
        : [
            row.label,
            num(fan(row.id, 'p50')),
            num(fan(row.id, 'p99')),
            num(fan(row.id, 'max')),
            `${num(100 * fan(row.id, 'delivered'), 1)} %`,
            num(fan(row.id, 'serverCpu'), 0),
            num(fan(row.id, 'clientCpu'), 0),
          ],
    );
  }
  return { idle: table(idleRows), fanout: table(fanRows) };
}

function sizeTable() {
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

// ---------------------------------------------------------------------------------------------
// Machine

function machine() {
  let openFiles = 'unknown';
  try {
    openFiles = readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)?.[1] ?? 'unknown';
  } catch {}
  let chromium = 'not run';
  if (SECTIONS.has('browser') || SECTIONS.has('fallback')) {
    try {
      chromium = execFileSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      chromium = `not found at ${CHROMIUM_PATH}`;
    }
  }
  let redisServer = 'not run';
  if (SECTIONS.has('redis')) {
    try {
      // `Redis server v=7.0.15 sha=… malloc=jemalloc-5.3.0 bits=64 build=…`: the version and the allocator matter here.
      const version = execFileSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
      redisServer = `Redis ${/v=(\S+)/.exec(version)?.[1] ?? '?'} (${/malloc=(\S+)/.exec(version)?.[1] ?? '?'})`;
    } catch {
      redisServer = `not found at ${REDIS_SERVER}`;
    }
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    chromium,
    redisServer,
    openFilesLimit: openFiles,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  // The build under test is copied first: a rebuild during the run (which empties dist/) then
  // changes nothing. Every process of the run takes it from UNBROKEN_BENCH_DIST.
  const snapshot = new URL('bench/results/dist-snapshot/', root);
  rmSync(snapshot, { recursive: true, force: true });
  mkdirSync(snapshot, { recursive: true });
  for (const file of DIST_FILES) {
    if (!existsSync(new URL(`dist/${file}`, root))) throw new Error(`dist/${file} is missing: run \`npm run build\` first (\`npm run bench\` does)`);
    copyFileSync(new URL(`dist/${file}`, root), new URL(file, snapshot));
  }
  const distDir = fileURLToPath(snapshot).replace(/\/$/, '');
  process.env.UNBROKEN_BENCH_DIST = distDir;
  const started = Date.now();
  const host = machine();
  const command = `node bench/run.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`;
  progress(`unbroken benchmarks: ${command}; ${RUNS} run(s) per case; ${host.cpus} CPUs, ${host.memoryGiB} GiB, Node ${host.node}, ${host.chromium}`);

  if (SECTIONS.has('size')) {
    progress('size: bundling the minimal entries');
    sizes = {
      budget: { file: BUDGET_FILE, gzip: GZIP_BUDGET },
      files: ['unbroken-realtime.iife.min.js', 'unbroken-realtime.mjs'].map((file) => measureBytes(`dist/${file}`, readFileSync(new URL(file, snapshot)))),
      minimal: await measureMinimal(distDir),
      setting: MINIFY_SETTING,
    };
  }
  if (SECTIONS.has('node')) {
    progress('Node: client cases');
    await runClientCases('node', null);
  }
  if (SECTIONS.has('fallback')) {
    progress('Node: fallback cases');
    await runFallbackCases('node', null);
  }
  if (SECTIONS.has('browser') || (SECTIONS.has('fallback') && !host.chromium.startsWith('not'))) {
    /** @type {Browser | null} */
    let browser = null;
    try {
      browser = await launchBrowser();
    } catch (error) {
      progress(`Chromium: cannot launch ${CHROMIUM_PATH}: ${error instanceof Error ? error.message.split('\n')[0] : error}`);
    }
    if (browser) {
      try {
        if (SECTIONS.has('browser')) {
          progress('Chromium: client cases');
          await runClientCases('browser', browser);
        }
        if (SECTIONS.has('fallback')) {
          progress('Chromium: fallback cases');
          await runFallbackCases('browser', browser);
        }
      } finally {
        await browser.close();
      }
    }
  }
  if (SECTIONS.has('scale')) {
    progress('Server scale');
    await runScaleCases();
  }
  if (SECTIONS.has('rooms')) {
    progress('Rooms');
    rooms = await runRoomsCases({ runs: RUNS, quick, progress });
  }
  if (SECTIONS.has('redis')) {
    progress(`Redis (${REDIS_SERVER})`);
    redis = await runRedisCases({ runs: RUNS, quick, progress });
  }

  const minutes = (Date.now() - started) / 60_000;
  const checks = [
    ...(figures.node || fallbacks.node ? clientChecks('node') : []),
    ...(figures.browser || fallbacks.browser ? clientChecks('browser') : []),
    ...(SECTIONS.has('scale') ? scaleChecks() : []),
    ...roomsChecks(),
    ...redisChecks(),
    ...sizeChecks(),
  ];

  // The report.
  /** @type {string[]} */
  const out = [];
  out.push(`unbroken benchmarks — ${new Date().toISOString()}${quick ? ' — QUICK (smoke test, not for publication)' : ''}`);
  out.push(`command: ${command} (after npm run build), ${RUNS} run(s) per case, median over runs, ${num(minutes, 1)} min`);
  out.push(
    `machine: ${host.cpus} CPUs (${host.cpuModel}), ${host.memoryGiB} GiB, ${host.os}, Node ${host.node}, ${host.chromium}, ` +
      (SECTIONS.has('redis') ? `${host.redisServer}, ` : '') +
      `open files limit ${host.openFilesLimit}, load average at start ${host.loadAverageAtStart.join(' ')}, at end ${os
        .loadavg()
        .map((x) => num(x, 2))
        .join(' ')}`,
  );
  // The client and scale cases' workload; the rooms and Redis sections print their own.
  if (['node', 'browser', 'fallback', 'scale'].some((section) => SECTIONS.has(section))) {
    out.push(
      `workload: push ${num(PUSH_MESSAGES, 0)} × ~100 B JSON (after up to ${PUSH_WARMUPS} unmeasured ones, at most ${num(PUSH_WARMUP_MS / 1000, 0)} s of them); ${num(RTT_ROUND_TRIPS, 0)} sequential ` +
        `send → echo (after ${RTT_WARMUP}); burst of ${num(BURST_SENDS, 0)} sends; connect = median of connections 2–${CONNECTS} ` +
        `to a fresh server; resume = kill the TCP connection → first message sent while away; loopback only.`,
    );
  }
  for (const env of /** @type {Env[]} */ (['node', 'browser'])) {
    if (!figures[env] && !unavailable[env] && !fallbacks[env]) continue;
    const title =
      env === 'node'
        ? 'Node: unbroken with ws / eventsource / fetch injected; baselines: ws, eventsource + fetch, socket.io-client'
        : 'Chromium (headless): native WebSocket / EventSource / fetch, dist/unbroken-realtime.iife.min.js, socket.io.min.js';
    out.push('', `== ${title}`, '');
    if (figures[env] || unavailable[env]) out.push(figuresTable(env), '');
    out.push(checksTable(checks.filter((check) => check.section === (env === 'node' ? 'Node' : 'Chromium'))));
  }
  if (SECTIONS.has('scale')) {
    const tables = scaleTables();
    out.push('', `== Server scale (one server process; clients: raw protocol speakers in one other Node process)`, '');
    out.push(`idle connections: ${num(IDLE_N, 0)} per row; memory = (RSS or heap+external after − before, after a full GC) / connections`);
    out.push(tables.idle, '');
    out.push(`broadcast fan-out: ${FANOUT_RATE} msg/s for ${FANOUT_S} s to ${num(FANOUT_CLIENTS, 0)} clients; latency = receive − send wall clock`);
    out.push(tables.fanout, '');
    out.push(checksTable(checks.filter((check) => check.section === 'Server')));
  }
  if (rooms) {
    const tables = roomsTables(rooms);
    const headings = roomsHeadings(rooms);
    out.push('', `== Rooms (one server process per delivery case; one process per store)`, '');
    out.push(headings.delivery, tables.delivery, '');
    out.push(headings.store, tables.store, '');
    out.push(checksTable(checks.filter((check) => check.section === 'Rooms')));
    for (const failure of rooms.inexact) out.push(`DELIVERY CHECK FAILED — ${failure}`);
  }
  if (redis) {
    const tables = redisTables(redis);
    const headings = redisHeadings(redis);
    const redisCheckList = checks.filter((check) => check.section === 'Redis');
    out.push('', `== Redis (RedisStore from dist/redis.mjs against MemoryStore; ${host.redisServer}, no persistence, one per case)`, '');
    out.push(headings.client, tables.client, '');
    if (tables.profile) out.push(tables.profile, '');
    out.push(headings.fanout, tables.fanout, '');
    out.push(headings.memory, tables.memory, '');
    out.push(checksTable(redisCheckList));
    out.push(...targetFailures(redisCheckList));
  }
  if (sizes) {
    out.push('', `== Bundle size (minimal entries bundled with: ${sizes.setting})`, '');
    out.push(sizeTable(), '');
    out.push(checksTable(checks.filter((check) => check.section === 'Size')));
  }
  const report = out.join('\n');
  console.log(report);

  const dir = new URL('bench/results/', root);
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const json = {
    date: new Date().toISOString(),
    command,
    quick,
    runs: RUNS,
    minutes,
    machine: { ...host, loadAverageAtEnd: os.loadavg() },
    workload: { PUSH_MESSAGES, PUSH_WARMUPS, PUSH_WARMUP_MS, RTT_ROUND_TRIPS, RTT_WARMUP, BURST_SENDS, CONNECTS, IDLE_CONNECTIONS: IDLE_N, FANOUT_CLIENTS, FANOUT_RATE, FANOUT_SECONDS: FANOUT_S },
    figures,
    unavailable,
    failures,
    fallbacks,
    scale,
    rooms,
    redis,
    sizes,
    checks: checks.map((check) => ({ ...check, target: check.target?.text ?? null, met: check.target ? check.target.met(check.value, check.ratio) : null })),
    report,
  };
  for (const name of [`${stamp}.json`, 'latest.json']) writeFileSync(new URL(name, dir), `${JSON.stringify(json, null, 2)}\n`);
  progress(`results: ${fileURLToPath(new URL(`${stamp}.json`, dir))} (and latest.json)`);
  return rooms && rooms.inexact.length > 0 ? 1 : 0;
}

const status = await main();
// Sockets of closed proxies or timers of client libraries must not keep the runner alive.
process.exit(status);
