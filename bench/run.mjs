// @ts-check
/**
 * `npm run bench`: unbroken against raw WebSocket, raw EventSource and Socket.IO, measured side by
 * side in one run on loopback, in Node (client injected) and in headless Chromium (native WebSocket
 * and EventSource), plus server scale, rooms (bench/lib/rooms.mjs), the Redis store against the
 * in-memory one (bench/lib/redis.mjs) and bundle size. Prints tables to stdout, progress to stderr,
 * writes everything as JSON to bench/results/ and draws the ratios and their targets as an SVG chart.
 *
 *   npm run bench                       builds, then runs everything (about 40 minutes on 2 cores) and
 *                                       regenerates docs/bench.svg and the marked sections of README.md
 *                                       and docs/PERFORMANCE.md (bench/lib/docs.mjs)
 *   node bench/run.mjs --quick          2 runs of each case and smaller scale cases (a smoke test)
 *   node bench/run.mjs --only node,size sections: node, browser, fallback, scale, rooms, redis, size
 *   node bench/run.mjs --runs 7         runs per case (default 5); each figure is the median over runs,
 *                                       printed with the lowest and highest
 *   --docs / --no-docs                  regenerate the documents and the chart, or not (by default
 *                                       only a full run does: every section, not --quick)
 *
 * It exits with status 1 when a rooms case delivered a message to the wrong session, twice or not
 * at all: a wrong count is a fault, not a slow figure.
 *
 * Each case starts a fresh server process (bench/lib/server.mjs) and a fresh client host (a Node
 * process, or a new tab in one Chromium, its origin cleared of stored data), so no case inherits
 * another's heap, JIT state or storage.
 * Runs are interleaved (run 1 of every row, then run 2 …, i.e. A, B, C, A, B, C …) so that drift of
 * the machine hits all rows alike, and a ratio can be taken run by run.
 * Set CHROMIUM_PATH to use another Chromium binary (the tests read the same variable).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { chartSvg } from './lib/chart.mjs';
import { checkJson, checksTable, targetFailures } from './lib/checks.mjs';
import { idleStateNote } from './lib/awake.mjs';
import { pushRate, roundTrips, steadyRoundTrips, warmUpPush } from './lib/client-cases.mjs';
import { writeDocs } from './lib/docs.mjs';
import { runFallbackCases } from './lib/fallback-cases.mjs';
import { machine, machineLine } from './lib/machine.mjs';
import { CHROMIUM_PATH, launchBrowser, startNodeClient, startServer } from './lib/processes.mjs';
import { redisHeadings, redisTables, runRedisCases } from './lib/redis.mjs';
import { REDIS_SERVER } from './lib/redis-server.mjs';
import { createResults, fail, record } from './lib/results.mjs';
import { roomsHeadings, roomsTables, runRoomsCases } from './lib/rooms.mjs';
import { runScaleCases } from './lib/scale-cases.mjs';
import { ROWS, measuresSteadyRtt } from './lib/rows.mjs';
import { median, num, quantile } from './lib/stats.mjs';
import { figuresTable, scaleTables, sizeTable } from './lib/tables.mjs';
import { clientChecks, redisChecks, roomsChecks, scaleChecks, sizeChecks } from './lib/targets.mjs';
import {
  BURST_SENDS,
  COLD_PUSHES,
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
  RTT_STEADY_AFTER,
  RTT_WARMUP,
  pushRetention,
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
const ALL_SECTIONS = ['node', 'browser', 'fallback', 'scale', 'rooms', 'redis', 'size'];
const quick = argv.includes('--quick');
/** Runs per case; figures are medians over them. */
const RUNS = Number(option('--runs') ?? (quick ? QUICK.runs : 5));
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs expects a whole number ≥ 1, got ${option('--runs')}`);
const SECTIONS = new Set((option('--only') ?? ALL_SECTIONS.join(',')).split(','));
const unknownSections = [...SECTIONS].filter((section) => !ALL_SECTIONS.includes(section));
if (unknownSections.length > 0) throw new Error(`--only expects sections among ${ALL_SECTIONS.join(', ')}, got ${unknownSections.join(', ')}`);
const FULL = !quick && ALL_SECTIONS.every((section) => SECTIONS.has(section));
/** Whether this run regenerates docs/bench.svg and the marked sections of README.md and docs/PERFORMANCE.md. */
const DOCS = argv.includes('--docs') || (FULL && !argv.includes('--no-docs'));
const IDLE_N = quick ? QUICK.idleConnections : IDLE_CONNECTIONS;
const FANOUT_S = quick ? QUICK.fanoutSeconds : FANOUT_SECONDS;

/** What a run needs of the build: the server, the Redis store, the ESM client, the `<script>` bundle. */
const DIST_FILES = ['server.mjs', 'redis.mjs', 'unbroken-realtime.mjs', 'unbroken-realtime.iife.min.js'];

/** @param {string} message */
const progress = (message) => process.stderr.write(`${message}\n`);

/** Everything this run measures. */
const results = createResults();
const { figures, unavailable, failures, fallbacks, scale } = results;

// ---------------------------------------------------------------------------------------------
// Cases

/** @typedef {import('./lib/processes.mjs').ClientHost} ClientHost */
/** @typedef {import('./lib/rows.mjs').Env} Env */
/** @typedef {import('./lib/rows.mjs').Row} Row */
/** @typedef {'connect' | 'throughput' | 'cold' | 'rtt' | 'burst' | 'resume'} CaseKind */
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
 * @param {CaseKind} kind
 */
async function runCase(env, browser, row, kind) {
  // The push cases keep what one burst appends (workload.mjs): a long-polling client behind by more
  // than the store retains is told of a gap, not given the messages.
  const pushes = kind === 'throughput' || kind === 'cold';
  const server = await startServer(row.server, {
    ...(row.serverTransport ? { transport: row.serverTransport } : {}),
    ...(pushes ? { retention: pushRetention() } : {}),
  });
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
        record(results, env, row.id, 'connectCold', times[0] ?? NaN);
        record(results, env, row.id, 'connect', median(times.slice(1)));
        break;
      }
      case 'throughput': {
        await open(host, spec);
        await warmUpPush(host);
        const before = await server.requests();
        const rate = await pushRate(host);
        const after = await server.requests();
        record(results, env, row.id, 'throughput', rate);
        if (row.http) record(results, env, row.id, 'pushRequests', requestsBetween(before, after));
        break;
      }
      case 'cold': {
        // The server process is fresh: its first push runs cold code; the sixth in a row, warm.
        await open(host, spec);
        /** @type {number[]} */
        const rates = [];
        for (let i = 0; i < COLD_PUSHES; i++) rates.push(await pushRate(host));
        record(results, env, row.id, 'pushCold', rates[0] ?? NaN);
        record(results, env, row.id, 'pushWarm', rates.at(-1) ?? NaN);
        break;
      }
      case 'rtt': {
        await open(host, spec);
        const before = await server.requests();
        const samples = await roundTrips(host);
        const after = await server.requests();
        record(results, env, row.id, 'rttP50', quantile(samples, 0.5));
        record(results, env, row.id, 'rttP99', quantile(samples, 0.99));
        if (row.http) record(results, env, row.id, 'rttRequests', requestsBetween(before, after));
        if (measuresSteadyRtt(row)) record(results, env, row.id, 'rttSteadyP50', quantile(await steadyRoundTrips(host), 0.5));
        break;
      }
      case 'burst': {
        await open(host, spec);
        const before = await server.requests();
        const { ms } = /** @type {{ ms: number }} */ (await host.call('burst', BURST_SENDS));
        const after = await server.requests();
        record(results, env, row.id, 'burstMs', ms);
        record(results, env, row.id, 'burstPosts', requestsBetween(before, after, (key) => key.startsWith('POST')));
        break;
      }
      case 'resume': {
        await open(host, spec);
        const { ms } = /** @type {{ ms: number }} */ (await host.call('resume', 10_000));
        record(results, env, row.id, 'resume', ms);
        break;
      }
    }
  } finally {
    await host?.stop().catch(() => undefined);
    await server.stop();
  }
}

/**
 * Every client case of one env: connect, throughput, cold and warm push (rows that ask for it, in
 * Node), round trip, burst (HTTP rows), resume (rows that resume), `RUNS` times each, interleaved over
 * rows.
 * @param {Env} env
 * @param {Browser | null} browser
 */
async function runClientCases(env, browser) {
  /** @type {CaseKind[]} */
  const kinds = ['connect', 'throughput', 'cold', 'rtt', 'burst', 'resume'];
  for (let run = 1; run <= RUNS; run++) {
    for (const kind of kinds) {
      for (const row of ROWS) {
        if (unavailable[env]?.[row.id]) continue;
        if (kind === 'burst' && !row.http) continue;
        if (kind === 'resume' && !row.resumes) continue;
        if (kind === 'cold' && (env !== 'node' || !row.coldWarm)) continue;
        if (row.only && !row.only.includes(kind)) continue;
        if (failures[env]?.[row.id]?.[kind]) continue; // failed once: not again
        const started = Date.now();
        try {
          await runCase(env, browser, row, kind);
          progress(`  ${env} run ${run}/${RUNS} ${kind.padEnd(10)} ${row.label[env].padEnd(22)} ${Date.now() - started} ms`);
        } catch (error) {
          const message = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
          if (error instanceof Unavailable) (unavailable[env] ??= {})[row.id] = message;
          else fail(results, env, row.id, kind, message);
          progress(`  ${env} run ${run}/${RUNS} ${kind.padEnd(10)} ${row.label[env].padEnd(22)} ${error instanceof Unavailable ? 'UNAVAILABLE' : 'FAILED'}: ${message}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  // The build under test is copied first: a rebuild during the run (which swaps new files into
  // dist/) then changes nothing. Every process of the run takes it from UNBROKEN_BENCH_DIST.
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
  const host = machine(SECTIONS);
  const command = `node bench/run.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`;
  progress(`unbroken benchmarks: ${command}; ${RUNS} run(s) per case; ${host.cpus} CPUs, ${host.memoryGiB} GiB, Node ${host.node}, ${host.chromium}`);

  if (SECTIONS.has('size')) {
    progress('size: bundling the minimal entries');
    results.sizes = {
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
    await runFallbackCases(results, 'node', null, { runs: RUNS, progress });
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
          await runFallbackCases(results, 'browser', browser, { runs: RUNS, progress });
        }
      } finally {
        await browser.close();
      }
    }
  }
  if (SECTIONS.has('scale')) {
    progress('Server scale');
    await runScaleCases(results, { runs: RUNS, idleConnections: IDLE_N, fanoutSeconds: FANOUT_S, progress });
  }
  if (SECTIONS.has('rooms')) {
    progress('Rooms');
    results.rooms = await runRoomsCases({ runs: RUNS, quick, progress });
  }
  if (SECTIONS.has('redis')) {
    progress(`Redis (${REDIS_SERVER})`);
    results.redis = await runRedisCases({ runs: RUNS, quick, progress });
  }

  const minutes = (Date.now() - started) / 60_000;
  const checks = [
    ...(figures.node || fallbacks.node ? clientChecks(results, 'node') : []),
    ...(figures.browser || fallbacks.browser ? clientChecks(results, 'browser') : []),
    ...(SECTIONS.has('scale') ? scaleChecks(results) : []),
    ...roomsChecks(results),
    ...redisChecks(results),
    ...sizeChecks(results),
  ];
  const { sizes, rooms, redis } = results;
  const date = new Date();
  const machineText = machineLine(host, SECTIONS.has('redis'));

  // The report.
  /** @type {string[]} */
  const out = [];
  out.push(`unbroken benchmarks — ${date.toISOString()}${quick ? ' — QUICK (smoke test, not for publication)' : ''}`);
  out.push(`command: ${command} (after npm run build), ${RUNS} run(s) per case, interleaved, median over runs (lowest–highest), ${num(minutes, 1)} min`);
  out.push(`machine: ${machineText}`);
  // The client and scale cases' workload; the rooms and Redis sections print their own.
  if (['node', 'browser', 'fallback', 'scale'].some((section) => SECTIONS.has(section))) {
    out.push(
      `workload: push ${num(PUSH_MESSAGES, 0)} × ~100 B JSON (after up to ${PUSH_WARMUPS} unmeasured ones, at most ${num(PUSH_WARMUP_MS / 1000, 0)} s of them; unbroken's store retaining ${num(pushRetention(), 0)} messages in the push cases, the default 10,000 in the others); ${num(RTT_ROUND_TRIPS, 0)} sequential ` +
        `send → echo (after ${RTT_WARMUP}; over WebSocket also round trips ${num(RTT_STEADY_AFTER + 1, 0)}–${num(RTT_STEADY_AFTER + RTT_ROUND_TRIPS, 0)} of the same connection, steady); burst of ${num(BURST_SENDS, 0)} sends; connect = median of connections 2–${CONNECTS} ` +
        `to a fresh server; cold/warm = the first and the ${COLD_PUSHES}th of ${COLD_PUSHES} pushes in a row to a fresh server process, none unmeasured; ` +
        `resume = kill the TCP connection → first message sent while away; ${idleStateNote()}; loopback only.`,
    );
  }
  for (const env of /** @type {Env[]} */ (['node', 'browser'])) {
    if (!figures[env] && !unavailable[env] && !fallbacks[env]) continue;
    const title =
      env === 'node'
        ? 'Node: unbroken with ws / eventsource / fetch injected; baselines: ws, eventsource + fetch, socket.io-client'
        : 'Chromium (headless): native WebSocket / EventSource / fetch, dist/unbroken-realtime.iife.min.js, socket.io.min.js';
    out.push('', `== ${title}`, '');
    if (figures[env] || unavailable[env]) out.push(figuresTable(results, env), '');
    const envChecks = checks.filter((check) => check.section === (env === 'node' ? 'Node' : 'Chromium'));
    out.push(checksTable(envChecks), ...targetFailures(envChecks));
  }
  if (SECTIONS.has('scale')) {
    const tables = scaleTables(results);
    out.push('', `== Server scale (one server process; clients: raw protocol speakers in one other Node process)`, '');
    out.push(`idle connections: ${num(IDLE_N, 0)} per row; memory = (RSS or heap+external after − before, after a full GC) / connections`);
    out.push(tables.idle, '');
    out.push(`broadcast fan-out: ${FANOUT_RATE} msg/s for ${FANOUT_S} s to ${num(FANOUT_CLIENTS, 0)} clients; latency = receive − send wall clock`);
    out.push(tables.fanout, '');
    const serverChecks = checks.filter((check) => check.section === 'Server');
    out.push(checksTable(serverChecks), ...targetFailures(serverChecks));
  }
  if (rooms) {
    const tables = roomsTables(rooms);
    const headings = roomsHeadings(rooms);
    out.push('', `== Rooms (one server process per delivery case; one process per store)`, '');
    out.push(headings.delivery, tables.delivery, '');
    out.push(headings.store, tables.store, '');
    const roomChecks = checks.filter((check) => check.section === 'Rooms');
    out.push(checksTable(roomChecks), ...targetFailures(roomChecks));
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
    out.push(checksTable(redisCheckList), ...targetFailures(redisCheckList));
  }
  if (sizes) {
    out.push('', `== Bundle size (minimal entries bundled with: ${sizes.setting})`, '');
    out.push(sizeTable(results), '');
    const sizeCheckList = checks.filter((check) => check.section === 'Size');
    out.push(checksTable(sizeCheckList), ...targetFailures(sizeCheckList));
  }
  const report = out.join('\n');
  console.log(report);

  const dir = new URL('bench/results/', root);
  mkdirSync(dir, { recursive: true });
  const stamp = date.toISOString().replace(/[:.]/g, '-');
  const json = {
    date: date.toISOString(),
    command,
    quick,
    runs: RUNS,
    minutes,
    machine: { ...host, loadAverageAtEnd: os.loadavg() },
    workload: { PUSH_MESSAGES, PUSH_WARMUPS, COLD_PUSHES, PUSH_WARMUP_MS, RTT_ROUND_TRIPS, RTT_WARMUP, RTT_STEADY_AFTER, BURST_SENDS, CONNECTS, IDLE_CONNECTIONS: IDLE_N, FANOUT_CLIENTS, FANOUT_RATE, FANOUT_SECONDS: FANOUT_S },
    figures,
    unavailable,
    failures,
    fallbacks,
    scale,
    rooms,
    redis,
    sizes,
    checks: checks.map(checkJson),
    report,
  };
  for (const name of [`${stamp}.json`, 'latest.json']) writeFileSync(new URL(name, dir), `${JSON.stringify(json, null, 2)}\n`);
  progress(`results: ${fileURLToPath(new URL(`${stamp}.json`, dir))} (and latest.json)`);
  if (DOCS) {
    const svg = chartSvg(checks, { date, machine: machineText, runs: RUNS, quick, command });
    for (const file of writeDocs({ root, checks, report, svg, date, machine: machineText, runs: RUNS, quick, command })) progress(`wrote ${file}`);
  }
  return rooms && rooms.inexact.length > 0 ? 1 : 0;
}

const status = await main();
// Sockets of closed proxies or timers of client libraries must not keep the runner alive.
process.exit(status);
