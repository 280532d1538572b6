/**
 * One server process of the cluster harness (cluster.ts): the built server (dist/server.mjs) on a
 * loopback port, with behaviour a test can drive and observe.
 *
 * Configured by environment variables:
 * - UNBROKEN_NODE_NAME: the name it reports (default `node-<pid>`).
 * - UNBROKEN_PORT: the port on 127.0.0.1 (default 0, a free one; a restarted process reuses its port).
 * - UNBROKEN_SERVER_OPTIONS: a JSON object of createServer() options (numbers and strings).
 * - UNBROKEN_STORE_URL: `memory` (default) or `redis://…`, for a store every process shares.
 * - UNBROKEN_STORE_OPTIONS: a JSON object of RedisStore options (e.g. connectTimeout), with a redis:// URL.
 *
 * It reports on stdout, one JSON object a line, each with `event`, `node` (its name) and `pid`:
 * - {"event":"listening","port"} once it serves. With a Redis store it awaits `store.ready()` first:
 *   when Redis cannot be reached it prints {"event":"error","source":"store",code,message}, says why
 *   on stderr and exits with status 1, rather than listen and leave every request hanging;
 * - {"event":"connection","session"} for each session it created;
 * - {"event":"message","session","data"} for each client message handed to it, written to the
 *   pipe before the message is echoed, so that the line survives a SIGKILL that comes right after;
 * - {"event":"error","source":"server"|"store",code,message} for each report on the server's `error`
 *   event, and each report of the store's `onError`, which is what a stalled or lost Redis says;
 * - {"event":"history-lost"} each time the store tells it the history was lost (a Redis restarted
 *   without its data, §6.2), once the server closed its connections for that.
 *
 * What it does:
 * - every client message is echoed to its session as event `echo`: {echo, node, pid};
 * - GET /node answers {name, pid, port}, so a request through a proxy shows which process served it;
 * - POST /control/broadcast?from=F&count=N broadcasts messages F…F+N-1 as event `numbered`:
 *   {n, node, pid, at (ms since the epoch, when it was handed to the server)};
 * - GET /control/addresses answers the client addresses `clientAddress` returned (at most 100);
 * - POST /control/crash-after-claim makes the process kill itself (SIGKILL) as soon as the store has
 *   marked the next batch of client messages processed (`advance`, with a shared store), before the
 *   server hands any of them over: a crash at the worst moment, on demand.
 *
 * It exits when its stdin closes (the test process is gone), gracefully on SIGTERM and SIGINT.
 */
import { writeSync } from 'node:fs';
import http from 'node:http';
import { createServer, MemoryStore } from '../../dist/server.mjs';

const name = process.env.UNBROKEN_NODE_NAME || `node-${process.pid}`;
const requestedPort = Number(process.env.UNBROKEN_PORT || 0);
const serverOptions = JSON.parse(process.env.UNBROKEN_SERVER_OPTIONS || '{}');
const storeUrl = process.env.UNBROKEN_STORE_URL || 'memory';
const storeOptions = JSON.parse(process.env.UNBROKEN_STORE_OPTIONS || '{}');

/** Bounds what one control request may ask for. */
const MAX_BROADCAST = 10_000;
const MAX_ADDRESSES = 100;

async function openStore(url) {
  if (url === 'memory') return new MemoryStore();
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    // The Redis store is its own entry point, so that ioredis is loaded only by those who use it.
    const { RedisStore } = await import('../../dist/redis.mjs');
    return new RedisStore({ ...storeOptions, url });
  }
  throw new Error(`UNBROKEN_STORE_URL must be "memory" or a redis:// URL, got ${JSON.stringify(url)}`);
}

/**
 * Prints one report for the harness (see above), into the pipe before it returns: `console.log`
 * keeps in memory what a full pipe does not take at once, and a SIGKILL loses that. Every line on
 * stdout goes through here, so none is cut by another. A full pipe is waited for (EAGAIN): the
 * harness reads it all the time.
 */
function report(event, fields) {
  const line = Buffer.from(`${JSON.stringify({ event, node: name, pid: process.pid, ...fields })}\n`);
  for (let written = 0; written < line.length; ) {
    try {
      written += writeSync(1, line, written);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
    }
  }
}

function reportError(source, error) {
  report('error', { source, code: error.code ?? null, message: error.message });
  console.error(`[${name}] ${source} ${error.code ?? error.name}: ${error.message}`);
}

const addresses = new Set();

/**
 * The address nginx appended to X-Forwarded-For (the last entry): earlier entries come from the
 * client and prove nothing. Without the header (a request not through the proxy), the socket's.
 */
function clientAddress(request) {
  const forwarded = request.headers['x-forwarded-for'];
  const last = typeof forwarded === 'string' ? forwarded.split(',').at(-1)?.trim() : undefined;
  const address = last || request.socket.remoteAddress || 'unknown';
  if (addresses.size < MAX_ADDRESSES) addresses.add(address);
  return address;
}

function json(response, status, body) {
  response.writeHead(status, { 'Content-Type': 'application/json', 'X-Unbroken-Node': name }).end(JSON.stringify(body));
}

function boundedInteger(value, min, max) {
  const number = Number(value);
  return Number.isSafeInteger(number) && number >= min && number <= max ? number : undefined;
}

let port = requestedPort;
let realtime;
let crashAfterClaim = false;

async function handle(request, response) {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method === 'GET' && url.pathname === '/node') {
    json(response, 200, { name, pid: process.pid, port });
  } else if (request.method === 'POST' && url.pathname === '/control/broadcast') {
    const from = boundedInteger(url.searchParams.get('from') ?? '1', 0, Number.MAX_SAFE_INTEGER - MAX_BROADCAST);
    const count = boundedInteger(url.searchParams.get('count'), 1, MAX_BROADCAST);
    if (from === undefined || count === undefined) return json(response, 400, { error: `expects from ≥ 0 and 1 ≤ count ≤ ${MAX_BROADCAST}` });
    // One after the other: the store gives them consecutive ids in this order.
    for (let n = from; n < from + count; n++) {
      await realtime.broadcast({ n, node: name, pid: process.pid, at: Date.now() }, { event: 'numbered' });
    }
    json(response, 200, { from, count });
  } else if (request.method === 'GET' && url.pathname === '/control/addresses') {
    json(response, 200, [...addresses]);
  } else if (request.method === 'POST' && url.pathname === '/control/crash-after-claim') {
    crashAfterClaim = true;
    json(response, 200, { armed: true });
  } else {
    json(response, 404, { error: 'not found' });
  }
}

const httpServer = http.createServer((request, response) => {
  handle(request, response).catch((error) => {
    console.error(`[${name}] ${error.stack ?? error}`);
    if (!response.headersSent) json(response, 500, { error: String(error) });
  });
});

const store = await openStore(storeUrl);
store.onError?.((error) => reportError('store', error));
if (typeof store.advance === 'function') {
  const advance = store.advance.bind(store);
  store.advance = async (...args) => {
    const before = await advance(...args);
    if (crashAfterClaim) process.kill(process.pid, 'SIGKILL');
    return before;
  };
}
try {
  await store.ready?.();
} catch (error) {
  reportError('store', error);
  console.error(`[${name}] cannot start: ${error.message}`);
  // The store goes on trying to connect until closed: exit rather than wait for it.
  process.exit(1);
}

realtime = createServer({ ...serverOptions, store, clientAddress }).attach(httpServer);
realtime.on('connection', (session) => report('connection', { session: session.id }));
realtime.on('message', (data, session) => {
  report('message', { session: session.id, data });
  session.send({ echo: data, node: name, pid: process.pid }, { event: 'echo' }).catch((error) => console.error(`[${name}] echo: ${error}`));
});
realtime.on('error', (error) => reportError('server', error));
// Subscribed after the server's own subscription, so reported once the server closed its connections
// for the lost history (§6.2): from then on nothing of this process closes one for it.
store.subscribe(() => undefined, { historyLost: () => report('history-lost', {}) });

await new Promise((resolve, reject) => {
  httpServer.once('error', reject);
  httpServer.listen(requestedPort, '127.0.0.1', resolve);
});
port = httpServer.address().port;
report('listening', { name, port });

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // Should a client hold the graceful close up, exit anyway: the harness waits for this process.
  setTimeout(() => process.exit(0), 5_000).unref();
  httpServer.close();
  await realtime.close();
  httpServer.closeAllConnections();
  await realtime.store.close?.();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop).on('error', stop).resume();
