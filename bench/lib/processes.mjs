// @ts-check
/**
 * The processes of a benchmark case: a fresh server (bench/lib/server.mjs), a client host (a Node
 * process, bench/lib/node-client.mjs, or a page in Chromium), and the scale clients. Every process
 * started here is tracked and ended by its PID, also when the runner fails.
 */
import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const lib = (/** @type {string} */ file) => fileURLToPath(new URL(file, import.meta.url));

/** Children still running, ended on exit. */
/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
function endAll() {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
}
process.on('exit', endAll);
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(signal, () => {
    endAll();
    process.exit(130);
  });
}

/** How long one IPC request may take. */
const CALL_TIMEOUT_MS = 180_000;

/**
 * Request/response over a child's IPC channel: `{ id, … }` → `{ id, result }` or `{ id, error }`.
 * @param {import('node:child_process').ChildProcess} child
 */
function rpc(child) {
  let next = 0;
  /** @type {Map<number, { resolve: (value: unknown) => void, reject: (error: Error) => void, timer: NodeJS.Timeout }>} */
  const pending = new Map();
  child.on('message', (/** @type {{ id?: number, result?: unknown, error?: string }} */ message) => {
    const call = message.id === undefined ? undefined : pending.get(message.id);
    if (!call || message.id === undefined) return;
    pending.delete(message.id);
    clearTimeout(call.timer);
    if (message.error !== undefined) call.reject(new Error(message.error));
    else call.resolve(message.result);
  });
  child.on('exit', (code, signal) => {
    for (const call of pending.values()) {
      clearTimeout(call.timer);
      call.reject(new Error(`the process exited (${signal ?? code}) before it answered`));
    }
    pending.clear();
  });
  /**
   * @param {Record<string, unknown>} message
   * @returns {Promise<unknown>}
   */
  return (message) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`no answer to ${JSON.stringify(message).slice(0, 80)} within ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      child.send({ ...message, id });
    });
}

/**
 * Ends a child by its PID and waits for it to be gone.
 * @param {import('node:child_process').ChildProcess} child
 */
async function end(child) {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    children.delete(child);
    return;
  }
  const gone = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3_000);
  await gone;
  clearTimeout(timer);
  children.delete(child);
}

/**
 * Starts a fresh server process and waits for its port.
 * @param {string} kind `unbroken`, `ws`, `sse` or `socketio`
 * @param {{ transport?: string, gc?: boolean, store?: string, retention?: number }} [options] `store`: a
 *   `redis://` URL for unbroken's store (default: in memory); `retention`: the store's `maxMessages`
 *   (default: the store's own default)
 */
export async function startServer(kind, options = {}) {
  const args = [kind];
  if (options.transport) args.push(options.transport);
  const child = fork(lib('./server.mjs'), args, {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    execArgv: options.gc ? ['--expose-gc'] : [],
    env: {
      ...process.env,
      UNBROKEN_BENCH_STORE: options.store ?? 'memory',
      ...(options.retention ? { UNBROKEN_BENCH_RETENTION: String(options.retention) } : {}),
    },
  });
  children.add(child);
  const stdout = child.stdout;
  if (!stdout) throw new Error('the server has no stdout');
  const lines = createInterface({ input: stdout });
  const port = await new Promise((resolve, reject) => {
    lines.once('line', (line) => {
      try {
        resolve(/** @type {{ port: number }} */ (JSON.parse(line)).port);
      } catch {
        reject(new Error(`the ${kind} server printed ${line} instead of its port`));
      }
    });
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited (${code}) before printing its port`)));
  });
  // Anything it prints later (errors) is passed on.
  lines.on('line', (line) => console.error(`[${kind} server] ${line}`));
  const call = rpc(child);
  return {
    port: /** @type {number} */ (port),
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    /** Requests and upgrades under the realtime paths so far, by `METHOD /path`. */
    requests: async () => /** @type {{ requests: Record<string, number> }} */ (await call({ cmd: 'stats' })).requests,
    /** Memory after a full GC (start with `gc: true`). */
    memory: async () =>
      /** @type {{ rss: number, heapUsed: number, external: number, arrayBuffers: number, clients: number, sockets: number }} */ (
        await call({ cmd: 'memory' })
      ),
    /** Broadcasts `rate` messages per second for `seconds` to every client. */
    fanout: async (/** @type {number} */ rate, /** @type {number} */ seconds) =>
      /** @type {{ sent: number, cpuPercent: number }} */ (await call({ cmd: 'fanout', rate, seconds })),
    /** Puts `count` of the sessions in `room` (unbroken only). */
    join: async (/** @type {string} */ room, /** @type {number} */ count) =>
      /** @type {{ sids: string[], members: number }} */ (await call({ cmd: 'join', room, count })),
    /** Sends `messages` messages tagged `tag` to `room` (null: everyone), one per turn; resolves once all were handed over. */
    deliver: async (/** @type {string | null} */ room, /** @type {number} */ messages, /** @type {string} */ tag) =>
      /** @type {{ startWall: number, sendMs: number }} */ (await call({ cmd: 'deliver', room, messages, tag })),
    /** Appends `messages` broadcasts and resolves once all are stored (unbroken only). */
    fill: async (/** @type {number} */ messages) => /** @type {{ ms: number }} */ (await call({ cmd: 'fill', messages })),
    /** CPU and wall clock since the last `deliver` began, and how many of its sends failed. */
    usage: async () => /** @type {{ cpuMs: number, wallMs: number, failed: number, firstError: string }} */ (await call({ cmd: 'usage' })),
    stop: () => end(child),
  };
}

/** @typedef {Awaited<ReturnType<typeof startServer>>} BenchServer */

/**
 * A client host: the methods of drivers.mjs's bench, called in another process or in a page.
 * @typedef {{ call(method: string, ...args: unknown[]): Promise<unknown>, stop(): Promise<void>, devtools?(method: string, params?: Record<string, unknown>): Promise<unknown> }} ClientHost
 */

/**
 * Starts a Node process hosting the benchmark clients.
 * @returns {Promise<ClientHost>}
 */
export async function startNodeClient() {
  const child = fork(lib('./node-client.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the Node client exited (${code}) before it was ready`)));
  });
  const call = rpc(child);
  return {
    call: (method, ...args) => call({ method, args }),
    stop: () => end(child),
  };
}

/**
 * Starts a Node process running the scale clients (bench/lib/scale-clients.mjs) and waits until all
 * their connections were tried.
 * @param {{ protocol: string, n: number, concurrency?: number } & ({ url: string } | { urls: string[] })} job `urls`: the
 *   connections are spread over several servers, round robin
 */
export async function startScaleClients(job) {
  const child = fork(lib('./scale-clients.mjs'), [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const ready = /** @type {{ opened: number, failed: number, firstError?: string, ms: number }} */ (
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`the scale clients exited (${code}) before they were ready`)));
    })
  );
  const call = rpc(child);
  return {
    ...ready,
    /** Forgets the latencies so far. */
    reset: () => call({ cmd: 'reset' }),
    /** Delivery latencies of fan-out messages since the last reset. */
    latency: async () =>
      /** @type {{ received: number, p50: number, p99: number, max: number, cpuPercent: number, lost: number, lastLostReason: string }} */ (
        await call({ cmd: 'latency' })
      ),
    /** Waits for `expected` messages tagged `tag`, then `graceMs` more, then says who got how many (scale-clients.mjs). */
    deliveries: async (/** @type {string} */ tag, /** @type {number} */ expected, graceMs = 0) =>
      /** @type {{ total: number, lastAt: number, histogram: Record<string, number>, recipients: string[] | null, lost: number, lastLostReason: string, rss: number }} */ (
        await call({ cmd: 'deliveries', tag, expected, graceMs })
      ),
    stop: () => end(child),
  };
}

/**
 * Runs a one-shot measurement script in a fresh Node process and resolves with the `{ result }` it
 * reports over IPC (`{ error }` rejects).
 * @param {string} file in bench/lib/
 * @param {unknown} job its argument, as JSON
 * @param {string} what how messages name it
 * @returns {Promise<unknown>}
 */
async function runOnce(file, job, what) {
  const child = fork(lib(file), [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  try {
    return await new Promise((resolve, reject) => {
      child.once('message', (/** @type {{ result?: unknown, error?: string }} */ message) =>
        message.result ? resolve(message.result) : reject(new Error(message.error ?? 'no result')),
      );
      child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it reported`)));
    });
  } finally {
    await end(child);
  }
}

/**
 * Runs the store read measurement (bench/lib/store-reads.mjs) in a fresh Node process and resolves
 * with what it reports.
 * @param {import('./store-reads.mjs').StoreReadJob} job
 * @returns {Promise<import('./store-reads.mjs').StoreReadResult>}
 */
export async function runStoreReads(job) {
  return /** @type {import('./store-reads.mjs').StoreReadResult} */ (await runOnce('./store-reads.mjs', job, 'the store reads'));
}

/**
 * Runs the Redis memory measurement (bench/lib/redis-memory.mjs) in a fresh Node process and resolves
 * with what it reports.
 * @param {import('./redis-memory.mjs').RedisMemoryJob} job
 * @returns {Promise<import('./redis-memory.mjs').RedisMemoryResult>}
 */
export async function runRedisMemory(job) {
  return /** @type {import('./redis-memory.mjs').RedisMemoryResult} */ (await runOnce('./redis-memory.mjs', job, 'the Redis memory measurement'));
}

export { CHROMIUM_PATH, launchBrowser } from './browser.mjs';
