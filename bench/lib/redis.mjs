// @ts-check
/**
 * The `redis` section of `npm run bench`: what keeping the messages in Redis (`RedisStore`,
 * dist/redis.mjs) costs, each figure against a baseline measured in the same run.
 *
 * - Push and round trip: one server process on `RedisStore` against one on `MemoryStore` (the same
 *   retention on both: {@link pushRetention} for the push, the default 10,000
 *   messages for the round trip), the Node client of the client rows over WebSocket, measured as those
 *   rows are (client-cases.mjs). During the measured push on Redis, `INFO commandstats` and `INFO cpu` of
 *   the redis-server tell where Redis spent its time.
 * - Fan-out: 1,000 raw WebSocket clients (scale-clients.mjs) in one other process and a broadcast at a
 *   fixed rate from one server process, delivery latency from the wall clock (as the server-scale
 *   fan-out): one process on `MemoryStore`, one on `RedisStore`, and three on one `RedisStore` with the
 *   clients spread evenly over them. The sender is the first of the three; the others hear of each
 *   message only through Redis (their blocking reader), as every process does of another's messages.
 * - Memory: what one retained message of ~100 B of JSON costs Redis, per kind of address
 *   (redis-memory.mjs).
 *
 * Every case starts a redis-server of its own (redis-server.mjs, no persistence) and fresh server
 * processes, so no case inherits another's keys or heap. Runs are interleaved (run 1 of every case,
 * then run 2 …); figures are medians over runs, with the lowest and highest run beside them.
 */
import { performance } from 'node:perf_hooks';
import { idleStateNote } from './awake.mjs';
import { pushRate, roundTrips, warmUpPush } from './client-cases.mjs';
import { runRedisMemory, startNodeClient, startScaleClients, startServer } from './processes.mjs';
import { startRedisServer } from './redis-server.mjs';
import { median, num, quantile, table } from './stats.mjs';
import {
  CLIENT_ADDRESSES,
  FANOUT_CLIENTS,
  FANOUT_RATE,
  FANOUT_SECONDS,
  PUSH_MESSAGES,
  PUSH_WARMUPS,
  PUSH_WARMUP_MS,
  QUICK,
  REDIS,
  RTT_ROUND_TRIPS,
  RTT_WARMUP,
  pushRetention,
} from './workload.mjs';

/** @typedef {'memory' | 'redis'} StoreKind */
/** @typedef {'memory-1' | 'redis-1' | 'redis-n'} FanoutCase */
/** @typedef {import('./redis-memory.mjs').MemoryAddress} MemoryAddress */
/**
 * One Redis command's share of the measured push (`INFO commandstats`; a command a script runs is
 * counted on its own, and its time is inside the script's too).
 * @typedef {{ name: string, calls: number, usecPerCall: number, usec: number }} CommandStat
 */
/**
 * @typedef {object} PushRun
 * @property {number} rate msg/s
 * @property {number} [redisCpuPercent] user + system of the redis-server over the measured push, % of one core
 * @property {CommandStat[]} [commands] the commands Redis spent the most time on, most first
 */
/** @typedef {{ p50: number, p99: number }} RttRun */
/**
 * @typedef {object} FanoutRun
 * @property {number} p50
 * @property {number} p99
 * @property {number} max
 * @property {number} delivered share of sent × clients
 * @property {number} senderCpu % of one core, the sending process
 * @property {number} clientsCpu % of one core, the clients' process
 * @property {number} lost connections that closed during the run
 * @property {string} lostReason why the last of them did
 */
/**
 * @typedef {object} RedisWorkload
 * @property {number} pushMessages
 * @property {number} pushTimeoutMs
 * @property {number} fanoutClients
 * @property {number} fanoutRate
 * @property {number} fanoutSeconds
 * @property {number} processes of the multi-process fan-out
 * @property {number} fillMessages broadcasts stored before the round-trip and fan-out cases begin
 * @property {number} memoryMessages per memory case
 */
/**
 * @typedef {object} RedisResults
 * @property {RedisWorkload} workload
 * @property {Record<StoreKind, PushRun[]>} push
 * @property {Record<StoreKind, RttRun[]>} rtt
 * @property {Record<FanoutCase, FanoutRun[]>} fanout
 * @property {Record<MemoryAddress, import('./redis-memory.mjs').RedisMemoryResult[]>} memory
 * @property {Record<string, string>} errors by case (`push redis`, `fanout redis-n`, `memory room` …)
 */

const STORES = /** @type {const} */ (['memory', 'redis']);
const FANOUT_CASES = /** @type {const} */ (['memory-1', 'redis-1', 'redis-n']);
const ADDRESSES = /** @type {const} */ (['all', 'session', 'room', 'rooms']);
/** The client rows' WebSocket row (run.mjs `unbroken-ws`). */
const SPEC = (/** @type {string} */ url) => ({ kind: 'unbroken', url, transports: ['websocket'] });
/** Commands of the measured push listed in the report. */
const TOP_COMMANDS = 6;

const STORE_LABEL = { memory: 'MemoryStore', redis: 'RedisStore' };
/** @param {RedisWorkload} w @param {FanoutCase} kind */
const fanoutLabel = (w, kind) =>
  kind === 'memory-1' ? 'one process, MemoryStore' : kind === 'redis-1' ? 'one process, RedisStore' : `${w.processes} processes, one RedisStore`;
const ADDRESS_LABEL = {
  all: 'everyone (broadcast)',
  session: 'one session',
  room: 'one room',
  rooms: `${REDIS.roomsPerMessage} rooms each`,
};

/**
 * The workload of a full run, or of `--quick` (shorter pushes, fewer messages for memory).
 * @param {boolean} quick
 * @returns {RedisWorkload}
 */
export function redisWorkload(quick) {
  return {
    pushMessages: quick ? QUICK.redisPushMessages : PUSH_MESSAGES,
    pushTimeoutMs: REDIS.pushTimeoutMs,
    fanoutClients: FANOUT_CLIENTS,
    fanoutRate: FANOUT_RATE,
    fanoutSeconds: quick ? QUICK.fanoutSeconds : FANOUT_SECONDS,
    processes: REDIS.processes,
    fillMessages: quick ? QUICK.redisFillMessages : REDIS.fillMessages,
    memoryMessages: quick ? QUICK.redisMemoryMessages : REDIS.memoryMessages,
  };
}

/**
 * Longest the fan-out waits past the last send for every delivery: a message later than that counts
 * as lost. (Latencies beyond a second are already far past any target; this only tells late from lost.)
 */
const STRAGGLER_MS = 10_000;

/** Short pause, so a case starts from a quiet machine. */
const settle = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` with a fresh redis-server for a Redis case (null for a memory one), and ends the server
 * after it.
 * @template T
 * @param {StoreKind} store
 * @param {(redis: import('./redis-server.mjs').BenchRedis | null) => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function withRedis(store, fn) {
  const redis = store === 'redis' ? await startRedisServer() : null;
  try {
    return await fn(redis);
  } finally {
    await redis?.stop();
  }
}

/**
 * Starts one unbroken server process on `store` (with `retention` messages when given, else the
 * default), appends `fill` broadcasts, then starts a Node client host with one open WebSocket
 * connection to it; runs `fn`, then ends both.
 * @template T
 * @param {StoreKind} store
 * @param {{ fill?: number, retention?: number }} options
 * @param {(host: import('./processes.mjs').ClientHost, redis: import('./redis-server.mjs').BenchRedis | null) => Promise<T>} fn
 * @returns {Promise<T>}
 */
function withClient(store, { fill = 0, retention }, fn) {
  return withRedis(store, async (redis) => {
    const server = await startServer('unbroken', { ...(redis ? { store: redis.url } : {}), ...(retention ? { retention } : {}) });
    /** @type {import('./processes.mjs').ClientHost | null} */
    let host = null;
    try {
      if (fill > 0) await server.fill(fill);
      host = await startNodeClient();
      await host.call('open', SPEC(server.url));
      return await fn(host, redis);
    } finally {
      await host?.stop().catch(() => undefined);
      await server.stop();
    }
  });
}

/**
 * The redis-server's CPU time so far, in ms (user + system).
 * @param {import('./redis-server.mjs').BenchRedis} redis
 */
async function redisCpuMs(redis) {
  const cpu = await redis.info('cpu');
  return (Number(cpu.used_cpu_user) + Number(cpu.used_cpu_sys)) * 1000;
}

/**
 * `INFO commandstats` as a list, most time first.
 * @param {import('./redis-server.mjs').BenchRedis} redis
 * @returns {Promise<CommandStat[]>}
 */
async function commandStats(redis) {
  /** @type {CommandStat[]} */
  const stats = [];
  for (const [key, value] of Object.entries(await redis.info('commandstats'))) {
    const calls = Number(/calls=(\d+)/.exec(value)?.[1]);
    const usec = Number(/usec=(\d+)/.exec(value)?.[1]);
    if (!key.startsWith('cmdstat_') || !Number.isFinite(calls) || !Number.isFinite(usec)) continue;
    stats.push({ name: key.slice('cmdstat_'.length), calls, usec, usecPerCall: calls > 0 ? usec / calls : NaN });
  }
  return stats.sort((a, b) => b.usec - a.usec);
}

/**
 * One push run on a fresh server (its warm-up fills the store).
 * @param {StoreKind} store
 * @param {RedisWorkload} w
 * @returns {Promise<PushRun>}
 */
function pushRun(store, w) {
  return withClient(store, { retention: pushRetention(w.pushMessages) }, async (host, redis) => {
    await warmUpPush(host, w.pushMessages, w.pushTimeoutMs);
    if (!redis) return { rate: await pushRate(host, w.pushMessages, w.pushTimeoutMs) };
    await redis.resetStats();
    const cpuBefore = await redisCpuMs(redis);
    const started = performance.now();
    const rate = await pushRate(host, w.pushMessages, w.pushTimeoutMs);
    const wallMs = performance.now() - started;
    const redisCpuPercent = (100 * ((await redisCpuMs(redis)) - cpuBefore)) / wallMs;
    const commands = (await commandStats(redis)).filter((stat) => !stat.name.startsWith('config') && stat.name !== 'info');
    return { rate, redisCpuPercent, commands: commands.slice(0, TOP_COMMANDS) };
  });
}

/**
 * One round-trip run on a fresh server, its store filled first.
 * @param {StoreKind} store
 * @param {RedisWorkload} w
 * @returns {Promise<RttRun>}
 */
function rttRun(store, w) {
  return withClient(store, { fill: w.fillMessages }, async (host) => {
    const samples = await roundTrips(host);
    return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
  });
}

/**
 * One fan-out run: fresh server processes (one, or `w.processes` on one Redis), the store filled, the
 * clients spread over them, a broadcast from the first.
 * @param {FanoutCase} kind
 * @param {RedisWorkload} w
 * @returns {Promise<FanoutRun>}
 */
function fanoutRun(kind, w) {
  const store = kind === 'memory-1' ? 'memory' : 'redis';
  const processes = kind === 'redis-n' ? w.processes : 1;
  return withRedis(store, async (redis) => {
    const starting = await Promise.allSettled(Array.from({ length: processes }, () => startServer('unbroken', redis ? { store: redis.url } : {})));
    const servers = starting.flatMap((started) => (started.status === 'fulfilled' ? [started.value] : []));
    /** @type {Awaited<ReturnType<typeof startScaleClients>> | null} */
    let clients = null;
    try {
      const failed = starting.find((started) => started.status === 'rejected');
      if (failed) throw failed.reason;
      const sender = /** @type {(typeof servers)[number]} */ (servers[0]);
      await sender.fill(w.fillMessages);
      clients = await startScaleClients({ protocol: 'unbroken-ws', urls: servers.map((server) => server.url), n: w.fanoutClients, concurrency: 100 });
      if (clients.failed > 0) throw new Error(`${clients.failed} of ${w.fanoutClients} connections failed: ${clients.firstError}`);
      await settle(200);
      await clients.reset();
      const sent = await sender.fanout(w.fanoutRate, w.fanoutSeconds);
      const expected = sent.sent * clients.opened;
      const deadline = Date.now() + STRAGGLER_MS;
      let latency = await clients.latency();
      while (latency.received < expected && Date.now() < deadline) {
        await settle(250);
        latency = await clients.latency();
      }
      return {
        p50: latency.p50,
        p99: latency.p99,
        max: latency.max,
        delivered: latency.received / expected,
        senderCpu: sent.cpuPercent,
        clientsCpu: latency.cpuPercent,
        lost: latency.lost,
        lostReason: latency.lastLostReason,
      };
    } finally {
      await clients?.stop();
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
}

/**
 * Runs every Redis case `runs` times, interleaved.
 * @param {{ runs: number, quick: boolean, progress: (line: string) => void }} options
 * @returns {Promise<RedisResults>}
 */
export async function runRedisCases({ runs, quick, progress }) {
  const w = redisWorkload(quick);
  /** @type {RedisResults} */
  const results = {
    workload: w,
    push: { memory: [], redis: [] },
    rtt: { memory: [], redis: [] },
    fanout: { 'memory-1': [], 'redis-1': [], 'redis-n': [] },
    memory: { all: [], session: [], room: [], rooms: [] },
    errors: {},
  };
  /**
   * Runs one case unless it failed before (a failure is kept, not retried).
   * @param {string} key
   * @param {string} label
   * @param {number} run
   * @param {() => Promise<string>} once resolves with what to print
   */
  const attempt = async (key, label, run, once) => {
    if (results.errors[key]) return;
    const started = Date.now();
    try {
      const line = await once();
      progress(`  redis run ${run}/${runs} ${label.padEnd(37)} ${line} (${num((Date.now() - started) / 1000, 1)} s)`);
    } catch (error) {
      results.errors[key] = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
      progress(`  redis run ${run}/${runs} ${label.padEnd(37)} FAILED: ${results.errors[key]}`);
    }
  };
  for (let run = 1; run <= runs; run++) {
    for (const store of STORES) {
      await attempt(`push ${store}`, `push, ${STORE_LABEL[store]}`, run, async () => {
        const result = await pushRun(store, w);
        results.push[store].push(result);
        const top = result.commands?.[0];
        const redis = result.redisCpuPercent === undefined ? '' : `; Redis CPU ${num(result.redisCpuPercent, 0)} %${top ? `, ${top.name} ${num(top.usecPerCall, 0)} µs/call` : ''}`;
        return `${num(result.rate, 0)} msg/s${redis}`;
      });
    }
    for (const store of STORES) {
      await attempt(`rtt ${store}`, `round trip, ${STORE_LABEL[store]}`, run, async () => {
        const result = await rttRun(store, w);
        results.rtt[store].push(result);
        return `p50 ${num(result.p50, 3)} ms, p99 ${num(result.p99, 3)} ms`;
      });
    }
    for (const kind of FANOUT_CASES) {
      await attempt(`fanout ${kind}`, `fan-out, ${fanoutLabel(w, kind)}`, run, async () => {
        const result = await fanoutRun(kind, w);
        results.fanout[kind].push(result);
        const lost = result.lost > 0 ? `, ${result.lost} connections lost (${result.lostReason})` : '';
        return `p50 ${num(result.p50)} ms, p99 ${num(result.p99)} ms, ${num(100 * result.delivered, 1)} % delivered${lost}`;
      });
    }
    for (const address of ADDRESSES) {
      await attempt(`memory ${address}`, `memory, to ${ADDRESS_LABEL[address]}`, run, async () => {
        const result = await withRedis('redis', (redis) => runRedisMemory({ url: /** @type {NonNullable<typeof redis>} */ (redis).url, address, messages: w.memoryMessages }));
        results.memory[address].push(result);
        return `${num(result.usedPerMessage, 0)} B/message used_memory (feed ${num(result.feedPerMessage, 0)} B, index ${num(result.indexPerMessage, 0)} B)`;
      });
    }
  }
  return results;
}

/**
 * A median with the lowest and highest run: `1.23 (1.20–1.31)`; just the value for one run.
 * @param {number[]} values
 * @param {number} [digits]
 */
function spread(values, digits = 2) {
  if (values.length === 0) return '—';
  const m = num(median(values), digits);
  return values.length === 1 ? m : `${m} (${num(Math.min(...values), digits)}–${num(Math.max(...values), digits)})`;
}

/**
 * The median run's value of `metric`.
 * @template {Record<string, unknown>} R
 * @param {R[]} runs
 * @param {(run: R) => number} metric
 */
const med = (runs, metric) => median(runs.map(metric));

/**
 * What Redis spent the measured push on, from the run whose rate is the median (or the lower middle
 * one): a line per command.
 * @param {PushRun[]} runs
 */
function pushProfile(runs) {
  const sorted = [...runs].sort((a, b) => a.rate - b.rate);
  const run = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!run?.commands?.length) return '';
  const total = run.commands.find((stat) => stat.name === 'evalsha')?.usec ?? NaN;
  /** @type {string[][]} */
  const rows = [['Redis command', '>calls', '>µs/call', '>ms in all', '>share of EVALSHA time']];
  for (const stat of run.commands) {
    rows.push([
      stat.name,
      num(stat.calls, 0),
      num(stat.usecPerCall, 1),
      num(stat.usec / 1000, 0),
      stat.name === 'evalsha' ? '' : Number.isFinite(total) ? `${num((100 * stat.usec) / total, 1)} %` : '',
    ]);
  }
  return (
    `where Redis spent the measured push on RedisStore (INFO commandstats of the run with the median rate, ${num(run.rate, 0)} msg/s; ` +
    `Redis CPU ${num(run.redisCpuPercent ?? NaN, 0)} % of one core; the appends of one event-loop turn go in one EVALSHA per 128, and the commands its script runs are counted on their own too)\n` +
    table(rows)
  );
}

/**
 * The median share delivered, and the lowest run's when a run fell short: a lost message must show.
 * @param {FanoutRun[]} runs
 */
function delivered(runs) {
  const lowest = Math.min(...runs.map((run) => run.delivered));
  const text = `${num(100 * med(runs, (run) => run.delivered), 1)} %`;
  return lowest < 1 ? `${text} (lowest ${num(100 * lowest, 1)} %)` : text;
}

/**
 * The section's tables.
 * @param {RedisResults} results
 */
export function redisTables(results) {
  const w = results.workload;
  const failed = (/** @type {string} */ key) => results.errors[key];
  /** @type {string[][]} */
  const client = [['store (one server process)', '>push msg/s', '>RTT p50 ms', '>RTT p99 ms']];
  for (const store of STORES) {
    const push = results.push[store];
    const rtt = results.rtt[store];
    client.push([
      STORE_LABEL[store],
      failed(`push ${store}`) ? `FAILED: ${failed(`push ${store}`)}` : spread(push.map((run) => run.rate), 0),
      failed(`rtt ${store}`) ? `FAILED: ${failed(`rtt ${store}`)}` : spread(rtt.map((run) => run.p50), 3),
      failed(`rtt ${store}`) ? '' : spread(rtt.map((run) => run.p99), 3),
    ]);
  }
  /** @type {string[][]} */
  const fanout = [['server', '>p50 ms', '>p99 ms', '>max ms', '>delivered', '>sender CPU %', '>clients CPU %']];
  for (const kind of FANOUT_CASES) {
    const runs = results.fanout[kind];
    const error = failed(`fanout ${kind}`);
    if (error && runs.length === 0) {
      fanout.push([fanoutLabel(w, kind), `FAILED: ${error}`, '', '', '', '', '']);
      continue;
    }
    fanout.push([
      fanoutLabel(w, kind),
      spread(runs.map((run) => run.p50)),
      spread(runs.map((run) => run.p99)),
      num(med(runs, (run) => run.max)),
      delivered(runs),
      num(med(runs, (run) => run.senderCpu), 0),
      num(med(runs, (run) => run.clientsCpu), 0),
    ]);
  }
  /** @type {string[][]} */
  const memory = [['messages to', '>JSON B/message', '>used_memory B/message', '>feed B/message', '>index B/message', '>appends/s']];
  for (const address of ADDRESSES) {
    const runs = results.memory[address];
    const error = failed(`memory ${address}`);
    if (error && runs.length === 0) {
      memory.push([ADDRESS_LABEL[address], `FAILED: ${error}`, '', '', '', '']);
      continue;
    }
    memory.push([
      ADDRESS_LABEL[address],
      num(med(runs, (run) => run.jsonBytes), 0),
      spread(runs.map((run) => run.usedPerMessage), 0),
      num(med(runs, (run) => run.feedPerMessage), 0),
      num(med(runs, (run) => run.indexPerMessage), 0),
      num(med(runs, (run) => (run.messages / run.appendMs) * 1000), 0),
    ]);
  }
  return { client: table(client), profile: pushProfile(results.push.redis), fanout: table(fanout), memory: table(memory) };
}

/**
 * The section's lines of text above its tables.
 * @param {RedisResults} results
 */
export function redisHeadings(results) {
  const w = results.workload;
  return {
    client:
      `push and round trip: one server process on each store (retention: ${num(pushRetention(w.pushMessages), 0)} messages for the push, ` +
      `the default 10,000 for the round trip; 5 min), a redis-server of its own per case, ` +
      `the Node client over WebSocket; push ${num(w.pushMessages, 0)} × ~100 B JSON (after up to ${PUSH_WARMUPS} unmeasured ones, at most ` +
      `${num(PUSH_WARMUP_MS / 1000, 0)} s of them); ${num(RTT_ROUND_TRIPS, 0)} sequential send → echo (after ${RTT_WARMUP}), once ` +
      `${num(w.fillMessages, 0)} broadcasts were stored; ${idleStateNote()}; median (lowest–highest) over runs`,
    fanout:
      `broadcast fan-out: ${w.fanoutRate} msg/s for ${w.fanoutSeconds} s from one server process to ${num(w.fanoutClients, 0)} clients ` +
      `(raw protocol clients on WebSocket in one other process, from ${num(CLIENT_ADDRESSES, 0)} loopback addresses), spread evenly over ` +
      `the processes, once ${num(w.fillMessages, 0)} broadcasts were stored; with ${w.processes} processes the others hear of each message ` +
      `only through Redis; latency = receive − send wall clock`,
    memory:
      `Redis memory per retained message: an empty redis-server per case, RedisStore with retention above what is appended, ` +
      `${num(w.memoryMessages, 0)} messages of ~100 B JSON appended (100 in flight) after 200 unmeasured ones; used_memory from INFO memory ` +
      `(after − before) / messages; feed and index from MEMORY USAGE of those keys`,
  };
}

/**
 * The figures the claims rest on, against their same-run baselines, with the ratio each must reach
 * (`minRatio`) or stay within (`maxRatio`), none where there is no claim:
 * - push throughput on Redis at least half the in-memory store's: Redis may cost, but not an order of
 *   magnitude;
 * - the fan-out's p99 over several processes on one Redis within 2× one process's on Redis: a message
 *   reaching the other processes through Redis must not add more than the store itself does.
 * @param {RedisResults} results
 * @returns {{ figure: string, value: number, unit: string, baselineLabel: string, baseline: number, values?: number[], baselines?: number[], minRatio?: number, maxRatio?: number, note?: string }[]}
 */
export function redisFigures(results) {
  const w = results.workload;
  const why = (/** @type {string[]} */ ...keys) => {
    const message = keys.map((key) => results.errors[key]).find((error) => error !== undefined);
    return message === undefined ? {} : { note: message };
  };
  const rate = (/** @type {StoreKind} */ store) => med(results.push[store], (run) => run.rate);
  const rtt = (/** @type {StoreKind} */ store, /** @type {'p50' | 'p99'} */ q) => med(results.rtt[store], (run) => run[q]);
  const fan = (/** @type {FanoutCase} */ kind, /** @type {'p50' | 'p99'} */ q) => med(results.fanout[kind], (run) => run[q]);
  /** A note when any run missed deliveries: they are a fault, whatever the latency. */
  const fanLost = (/** @type {FanoutCase} */ kind) => {
    const short = results.fanout[kind].flatMap((run, i) =>
      run.delivered < 1 ? [`run ${i + 1} delivered ${num(100 * run.delivered, 2)} %${run.lost > 0 ? ` (${run.lost} connections lost: ${run.lostReason})` : ''}`] : [],
    );
    return short.length > 0 ? { note: `${short.join('; ')} within ${STRAGGLER_MS / 1000} s of the last send` } : {};
  };
  const figures = [
    {
      figure: 'push throughput, one process, RedisStore',
      value: rate('redis'),
      values: results.push.redis.map((run) => run.rate),
      baselines: results.push.memory.map((run) => run.rate),
      unit: 'msg/s',
      baselineLabel: 'MemoryStore',
      baseline: rate('memory'),
      minRatio: 0.5,
      ...why('push redis', 'push memory'),
    },
    ...(/** @type {const} */ (['p50', 'p99'])).map((q) => ({
      figure: `round trip ${q}, one process, RedisStore`,
      value: rtt('redis', q),
      values: results.rtt.redis.map((run) => run[q]),
      baselines: results.rtt.memory.map((run) => run[q]),
      unit: 'ms',
      baselineLabel: 'MemoryStore',
      baseline: rtt('memory', q),
      ...why('rtt redis', 'rtt memory'),
    })),
    ...(/** @type {const} */ (['p50', 'p99'])).map((q) => ({
      figure: `fan-out ${w.fanoutRate} msg/s to ${num(w.fanoutClients, 0)}: delivery ${q}, one process, RedisStore`,
      value: fan('redis-1', q),
      values: results.fanout['redis-1'].map((run) => run[q]),
      baselines: results.fanout['memory-1'].map((run) => run[q]),
      unit: 'ms',
      baselineLabel: 'MemoryStore',
      baseline: fan('memory-1', q),
      ...why('fanout redis-1', 'fanout memory-1'),
      ...fanLost('redis-1'),
    })),
    ...(/** @type {const} */ (['p50', 'p99'])).map((q) => ({
      figure: `fan-out ${w.fanoutRate} msg/s to ${num(w.fanoutClients, 0)}: delivery ${q}, ${w.processes} processes on one Redis`,
      value: fan('redis-n', q),
      values: results.fanout['redis-n'].map((run) => run[q]),
      baselines: results.fanout['redis-1'].map((run) => run[q]),
      unit: 'ms',
      baselineLabel: 'one process',
      baseline: fan('redis-1', q),
      ...(q === 'p99' ? { maxRatio: 2 } : {}),
      ...why('fanout redis-n', 'fanout redis-1'),
      ...fanLost('redis-n'),
    })),
    ...ADDRESSES.map((address) => ({
      figure: `Redis memory per retained message to ${ADDRESS_LABEL[address]}`,
      value: med(results.memory[address], (run) => run.usedPerMessage),
      values: results.memory[address].map((run) => run.usedPerMessage),
      unit: 'B',
      baselineLabel: 'its JSON',
      baseline: med(results.memory[address], (run) => run.jsonBytes),
      ...why(`memory ${address}`),
    })),
  ];
  return figures;
}
