// @ts-check
/**
 * `npm run chaos`: the hostile-client flood of issue #10 against the built server (dist/server.mjs),
 * with the server in its own process so that its heap and event-loop lag are its own.
 *
 *   1. 20,000 clients, from 1,000 loopback addresses (127.0.x.y), as fast as they go, that each get a
 *      ticket (`POST P/ticket`, §3.4) and make the first poll of a new long-polling connection — a
 *      new session — and never come back;
 *   2. then 20 broadcasts/s of 100 B for 10 s;
 *   3. meanwhile: the server's heap (sampled every 250 ms) and event-loop delay
 *      (`perf_hooks.monitorEventLoopDelay`, 10 ms resolution);
 *   4. then a fresh client's WebSocket `hello` time (ticket included), from an address the flood did
 *      not use;
 *   5. then ten 1 MB batches of nested arrays on one WebSocket: the server's event-loop delay while
 *      it receives and refuses them (frame, UTF-8 and depth check together), and the shortest time
 *      from a batch's send to the server's refusal, which holds the depth check (§4.4) the 20 ms
 *      target is about.
 *
 * Prints one JSON object and a verdict against the targets: heap < 200 MiB, lag < 100 ms, hello <
 * 100 ms, nested payload < 20 ms. Exits 1 when a target is missed. Not part of `vitest run`.
 *
 *   node test/chaos/flood.mjs [--polls 20000] [--addresses 1000] [--seconds 10]
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const dist = new URL('../../dist/', import.meta.url);

/** @param {string} name @param {number} fallback */
function arg(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

// -------------------------------------------------------------------------------------------------
// The server process

async function serve() {
  const { createServer } = await import(new URL('server.mjs', dist).href);
  const httpServer = http.createServer();
  const realtime = createServer().attach(httpServer);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  let heapMax = 0;
  const sampler = setInterval(() => (heapMax = Math.max(heapMax, process.memoryUsage().heapUsed)), 250);
  /** @type {ReturnType<typeof setInterval> | null} */
  let broadcasting = null;
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (httpServer.address());
  process.on('message', (/** @type {{ op: string }} */ message) => {
    switch (message.op) {
      case 'reset':
        lag.reset();
        heapMax = process.memoryUsage().heapUsed;
        process.send?.({ op: 'reset' });
        break;
      case 'broadcast':
        broadcasting = setInterval(() => void realtime.broadcast({ pad: 'x'.repeat(88) }).catch(() => undefined), 50);
        process.send?.({ op: 'broadcast' });
        break;
      case 'stop':
        if (broadcasting) clearInterval(broadcasting);
        process.send?.({ op: 'stop' });
        break;
      case 'report':
        process.send?.({
          op: 'report',
          heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
          heapMaxMiB: heapMax / 2 ** 20,
          lagMaxMs: lag.max / 1e6,
          lagP99Ms: lag.percentile(99) / 1e6,
          stats: realtime.stats(),
        });
        break;
      case 'exit':
        clearInterval(sampler);
        process.exit(0);
    }
  });
  process.send?.({ op: 'ready', port: address.port });
}

// -------------------------------------------------------------------------------------------------
// The driver

/** @param {import('node:child_process').ChildProcess} child @param {string} op */
function ask(child, op) {
  return new Promise((resolve) => {
    /** @param {{ op: string }} message */
    const onMessage = (message) => {
      if (message.op !== op) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ op });
  });
}

/**
 * `POST P/ticket` for a new session from `localAddress` (the address the ticket counts against, and
 * the one the downstream request must come from to be counted where the ticket was).
 * @param {number} port @param {string} localAddress
 * @returns {Promise<{ status: number, ticket?: string }>} status 0 on a network error
 */
function ticketFrom(port, localAddress) {
  return new Promise((resolve) => {
    const headers = { 'Content-Type': 'application/json', 'X-Unbroken': '1' };
    const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/realtime/ticket?v=1', headers, localAddress, agent: false }, (response) => {
      const chunks = /** @type {Buffer[]} */ ([]);
      response.on('data', (chunk) => chunks.push(chunk));
      response.once('end', () => {
        const status = response.statusCode ?? 0;
        resolve(status === 200 ? { status, ticket: JSON.parse(Buffer.concat(chunks).toString('utf8')).ticket } : { status });
      });
    });
    request.once('error', () => resolve({ status: 0 }));
    request.end('{}');
  });
}

/**
 * One client that never comes back, from `localAddress`: a ticket, then the first poll of a new
 * long-polling connection (its own connection id, as a client picks one). Resolves with the poll's
 * status, or `ticket <status>` when no ticket was issued (0 on a network error).
 * @param {number} port @param {string} localAddress @returns {Promise<string>}
 */
async function openOnce(port, localAddress) {
  const { status, ticket } = await ticketFrom(port, localAddress);
  if (ticket === undefined) return `ticket ${status}`;
  return new Promise((resolve) => {
    const headers = { 'X-Unbroken-Connection': randomBytes(16).toString('base64url') };
    const path = `/realtime/poll?v=1&ticket=${ticket}`;
    const request = http.get({ host: '127.0.0.1', port, path, headers, localAddress, agent: false }, (response) => {
      response.resume();
      response.once('end', () => resolve(String(response.statusCode ?? 0)));
    });
    request.once('error', () => resolve('0'));
  });
}

/**
 * A WebSocket URL with a fresh ticket from `localAddress`.
 * @param {number} port @param {string} localAddress @returns {Promise<string>}
 */
async function wsUrl(port, localAddress) {
  const { status, ticket } = await ticketFrom(port, localAddress);
  if (ticket === undefined) throw new Error(`POST /ticket answered ${status} instead of a ticket`);
  return `ws://127.0.0.1:${port}/realtime/ws?v=1&ticket=${ticket}`;
}

/**
 * ms from asking for a ticket to the `hello` of the WebSocket it opens: what a new client waits.
 * @param {number} port @param {string} localAddress @returns {Promise<number>}
 */
async function helloTime(port, localAddress) {
  const started = performance.now();
  const url = await wsUrl(port, localAddress);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress });
    ws.once('message', (data) => {
      const elapsed = performance.now() - started;
      ws.terminate();
      if (!String(data).includes('"hello"')) reject(new Error(`expected a hello, got ${String(data).slice(0, 200)}`));
      else resolve(elapsed);
    });
    ws.once('error', reject);
  });
}

/**
 * Sends ten 1 MB batches of nested arrays, each on a connection of its own; resolves once the server
 * refused the last (it closes), with the shortest time from a batch's send to its refusal: the
 * server's receipt of 1 MB, its UTF-8 and depth checks (§4.4) and the close, measured from outside.
 * @param {number} port
 * @returns {Promise<number>} ms
 */
async function nestedFlood(port) {
  const depth = 500_000;
  const batch = '['.repeat(depth) + ']'.repeat(depth);
  let fastest = Infinity;
  for (let i = 0; i < 10; i++) {
    const url = await wsUrl(port, '127.0.250.1');
    const ms = await new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { localAddress: '127.0.250.1' });
      let sent = 0;
      ws.once('message', (data) => {
        if (!String(data).includes('"hello"')) reject(new Error(`expected a hello, got ${String(data).slice(0, 200)}`));
        else {
          sent = performance.now();
          ws.send(batch);
        }
      });
      ws.once('close', () => resolve(performance.now() - sent));
      ws.once('error', reject);
    });
    fastest = Math.min(fastest, /** @type {number} */ (ms));
  }
  return fastest;
}

async function drive() {
  const polls = arg('polls', 20_000);
  const addresses = arg('addresses', 1_000);
  const seconds = arg('seconds', 10);
  const child = fork(fileURLToPath(import.meta.url), ['server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = /** @type {{ port: number }} */ (await new Promise((resolve) => child.once('message', resolve)));
  const { port } = ready;
  await ask(child, 'reset');

  const floodStart = performance.now();
  const statuses = new Map();
  let next = 0;
  const worker = async () => {
    while (next < polls) {
      const n = next++;
      const address = `127.0.${1 + Math.floor((n % addresses) / 250)}.${1 + ((n % addresses) % 250)}`;
      const status = await openOnce(port, address);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  const floodSeconds = (performance.now() - floodStart) / 1000;
  const afterFlood = await ask(child, 'report');

  // The broadcast phase is measured on its own: the flood's own figures are in afterFlood.
  await ask(child, 'reset');
  await ask(child, 'broadcast');
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const duringBroadcasts = await ask(child, 'report');
  const hello = await helloTime(port, '127.0.200.1');
  await ask(child, 'stop');

  await ask(child, 'reset');
  const depthCheck = await nestedFlood(port);
  const nested = /** @type {{ lagMaxMs: number }} */ (await ask(child, 'report'));
  child.send({ op: 'exit' });

  const figures = {
    polls,
    addresses,
    floodSeconds: Number(floodSeconds.toFixed(2)),
    statuses: Object.fromEntries(statuses),
    afterFlood,
    duringBroadcasts,
    freshHelloMs: Number(hello.toFixed(1)),
    nestedRefusalMs: Number(depthCheck.toFixed(2)),
    nestedFloodLagMaxMs: nested.lagMaxMs,
  };
  console.log(JSON.stringify(figures, null, 2));
  const report = /** @type {{ heapMaxMiB: number, lagMaxMs: number, stats: { sessions: number, connections: number, parkedConnections: number, bufferedBytes: number } }} */ (
    duringBroadcasts
  );
  const opened = statuses.get('200') ?? 0;
  const checks = [
    // Refusals by the limits (429, 503) are answers too; a refused ticket or a failed request is not the flood this measures.
    ['every flood client got a ticket and an answer to its poll', [...statuses.keys()].every((status) => /^[1-5]\d\d$/.test(status))],
    ['a session per admitted first poll, and no more', report.stats.sessions === opened],
    // 20 broadcasts/s: past 64 frames every idle connection has dropped its queue (§12.1.idle-poll).
    ...(seconds * 20 > 64 ? [['every idle connection parked, nothing buffered', report.stats.parkedConnections === report.stats.connections && report.stats.bufferedBytes === 0]] : []),
    ['heap under 200 MiB', Math.max(report.heapMaxMiB, /** @type {{ heapMaxMiB: number }} */ (afterFlood).heapMaxMiB) < 200],
    ['event-loop lag under 100 ms', report.lagMaxMs < 100],
    ['fresh hello under 100 ms', hello < 100],
    ['1 MB nested payload: refused within 20 ms of its send', depthCheck < 20],
  ];
  for (const [name, ok] of checks) console.log(`${ok ? 'ok  ' : 'MISS'} ${name}`);
  process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
}

if (process.argv[2] === 'server') await serve();
else await drive();
