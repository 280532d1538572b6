/**
 * One server process of the cluster harness (cluster.ts): the built server (dist/server.mjs) on a
 * loopback port, with behaviour a test can drive and observe.
 *
 * Configured by environment variables:
 * - UNBROKEN_NODE_NAME: the name it reports (default `node-<pid>`).
 * - UNBROKEN_PORT: the port on 127.0.0.1 (default 0, a free one; a restarted process reuses its port).
 * - UNBROKEN_SERVER_OPTIONS: a JSON object of createServer() options (numbers and strings).
 * - UNBROKEN_STORE_URL: `memory` (default) or `redis://…`, for a store every process shares.
 *
 * Once listening it prints one JSON line on stdout: {"event":"listening","name","pid","port"}.
 *
 * What it does:
 * - every client message is echoed to its session as event `echo`: {echo, node, pid};
 * - GET /node answers {name, pid, port}, so a request through a proxy shows which process served it;
 * - POST /control/broadcast?from=F&count=N broadcasts messages F…F+N-1 as event `numbered`:
 *   {n, node, pid, at (ms since the epoch, when it was handed to the server)};
 * - GET /control/addresses answers the client addresses `clientAddress` returned (at most 100).
 *
 * It exits when its stdin closes (the test process is gone), gracefully on SIGTERM and SIGINT.
 */
import http from 'node:http';
import { createServer, MemoryStore } from '../../dist/server.mjs';

const name = process.env.UNBROKEN_NODE_NAME || `node-${process.pid}`;
const requestedPort = Number(process.env.UNBROKEN_PORT || 0);
const serverOptions = JSON.parse(process.env.UNBROKEN_SERVER_OPTIONS || '{}');
const storeUrl = process.env.UNBROKEN_STORE_URL || 'memory';

/** Bounds what one control request may ask for. */
const MAX_BROADCAST = 10_000;
const MAX_ADDRESSES = 100;

async function openStore(url) {
  if (url === 'memory') return new MemoryStore();
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    // The Redis store is its own entry point, so that ioredis is loaded only by those who use it.
    const { RedisStore } = await import('../../dist/redis.mjs');
    return new RedisStore({ url });
  }
  throw new Error(`UNBROKEN_STORE_URL must be "memory" or a redis:// URL, got ${JSON.stringify(url)}`);
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

realtime = createServer({ ...serverOptions, store: await openStore(storeUrl), clientAddress }).attach(httpServer);
realtime.on('message', (data, session) => {
  session.send({ echo: data, node: name, pid: process.pid }, { event: 'echo' }).catch((error) => console.error(`[${name}] echo: ${error}`));
});
realtime.on('error', (error) => console.error(`[${name}] ${error.code}: ${error.message}`));

await new Promise((resolve, reject) => {
  httpServer.once('error', reject);
  httpServer.listen(requestedPort, '127.0.0.1', resolve);
});
port = httpServer.address().port;
console.log(JSON.stringify({ event: 'listening', name, pid: process.pid, port }));

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
