// @ts-check
// The demo: one command serves the page and the realtime endpoint on embedded defaults.
//   npm run demo            → http://localhost:8080
//   PORT=3000 npm run demo  → another port; HOST=0.0.0.0 to try it from a phone on your network
//   npm run demo -- --redis [redis://localhost:6379]   (or REDIS_URL=…) → keep messages and sessions
//                           in Redis: run the command twice with other PORTs and both serve one stream
//
// Two servers on loopback:
//   public port  → the network conditions layer (demo/network-conditions.mjs), a proxy whose control
//                  endpoint /__network the page's toggles call; it is never subject to the conditions
//   internal port → the reference server: the page's files, and the realtime endpoint at /realtime
// so everything the page loads and every byte of the realtime connection crosses the proxy.
import { readFile, realpath } from 'node:fs/promises';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { startNetworkConditions } from './network-conditions.mjs';

/** The control endpoint of the network conditions layer. */
export const CONTROL_PATH = '/__network';

/** The demo's settings, for the page to show: `{ heartbeatInterval, defaultHeartbeatInterval, tickInterval }`. */
export const CONFIG_PATH = '/demo-config.json';

/** The reference server's own default heartbeat interval (src/server/server.ts), which the demo shortens. */
const DEFAULT_HEARTBEAT_INTERVAL = 15_000;

const root = new URL('..', import.meta.url);

// The built server, typed from its source; loaded by URL so that type-checking needs no build.
const { createServer, UnbrokenServerError } = /** @type {typeof import('../src/server/index.js')} */ (
  await import(new URL('dist/server.mjs', root).href).catch((error) => {
    throw new Error(`the demo runs the built server: run npm run build first (${error.message})`);
  })
);

/** @type {Record<string, [file: string, type: string]>} */
const FILES = {
  '/': ['demo/index.html', 'text/html; charset=utf-8'],
  '/demo.css': ['demo/demo.css', 'text/css; charset=utf-8'],
  '/demo.js': ['demo/demo.js', 'text/javascript; charset=utf-8'],
  '/unbroken-realtime.iife.min.js': ['dist/unbroken-realtime.iife.min.js', 'text/javascript; charset=utf-8'],
  '/unbroken-realtime.iife.min.js.map': ['dist/unbroken-realtime.iife.min.js.map', 'application/json; charset=utf-8'],
  '/unbroken-realtime.mjs': ['dist/unbroken-realtime.mjs', 'text/javascript; charset=utf-8'],
};

/**
 * @typedef {object} DemoOptions
 * @property {number} [port] public port (the proxy's); 0 picks a free one. Default 8080.
 * @property {string} [host] where the public port listens. Default 127.0.0.1.
 * @property {number} [heartbeatInterval] the server's heartbeat in ms: a dead link is found within
 *   twice that. Default 5000 (the server's own default is 15000), so the page shows a frozen
 *   connection being detected within 10 s. The page states it (from CONFIG_PATH).
 * @property {number} [tickInterval] ms between the numbered ticker's messages. Default 250.
 * @property {string} [redisUrl] keep messages and sessions in this Redis (several demo processes then
 *   serve one stream); the in-memory store when absent.
 */

/**
 * @typedef {object} Demo
 * @property {string} url the page, e.g. http://127.0.0.1:8080/
 * @property {number} port the public port
 * @property {import('./network-conditions.mjs').NetworkConditions} network the conditions layer
 * @property {import('../src/server/index.js').UnbrokenServer} realtime the reference server
 * @property {() => Promise<void>} close stops everything, cutting every connection
 */

/**
 * Starts the demo: the reference server on an internal loopback port, the network conditions layer
 * in front of it on the public one.
 *
 * @param {DemoOptions} [options]
 * @returns {Promise<Demo>}
 */
export async function startDemo({ port = 8080, host = '127.0.0.1', heartbeatInterval = 5_000, tickInterval = 250, redisUrl = undefined } = {}) {
  // With Redis, the store every demo process shares; its own troubles go to the `error` event below.
  const store = redisUrl === undefined ? undefined : await redisStore(redisUrl);
  const httpServer = http.createServer(async (request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://demo').pathname;
    if (pathname === CONFIG_PATH) {
      const config = { heartbeatInterval, defaultHeartbeatInterval: DEFAULT_HEARTBEAT_INTERVAL, tickInterval };
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(config));
      return;
    }
    const file = FILES[pathname];
    if (!file) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const body = await readFile(new URL(file[0], root));
      response.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' }).end(body);
    } catch {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot read ${file[0]}: run npm run build`);
    }
  });
  const sockets = new Set();
  httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const realtime = createServer({ path: '/realtime', heartbeatInterval, ...(store ? { store } : {}) });
  // A store's report (a Redis that went away, came back, is slow) in one line, from the start: the
  // reports made while the store connects come before `ready()` settles. Anything else with its stack.
  realtime.on('error', (error) => {
    if (!(error instanceof UnbrokenServerError && error.code === 'STORE_ERROR')) return console.error('realtime:', error);
    const cause = error.cause instanceof Error && !error.message.includes(error.cause.message) ? ` (${error.cause.message})` : '';
    console.error(`realtime: ${error.message}${cause}`);
  });
  // Redis unreachable: say so and stop, rather than serve a page that cannot connect.
  await realtime.ready().catch(async (error) => {
    await store?.close();
    throw error;
  });
  realtime.attach(httpServer);

  // The classic example: greet each new session, answer each message.
  realtime.on('connection', (session) => {
    session.send('world', { event: 'greeting' }).catch(() => {});
  });
  realtime.on('message', (data, session) => {
    // Bytes are echoed by their length: the echo is JSON.
    const echo = data instanceof Uint8Array ? { bytes: data.byteLength } : data;
    session.send({ echo, reply: 'server: reply' }, { event: 'echo' }).catch(() => {});
  });

  // A numbered ticker: the page counts lost and duplicated messages from these numbers.
  let tick = 0;
  const ticker = setInterval(() => {
    tick += 1;
    realtime.broadcast({ n: tick, at: Date.now() }, { event: 'tick' }).catch(() => {});
  }, tickInterval);

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => resolve(undefined));
  });
  const internal = /** @type {import('node:net').AddressInfo} */ (httpServer.address());

  /** @type {import('./network-conditions.mjs').NetworkConditions} */
  let network;
  try {
    network = await startNetworkConditions({
      target: { host: '127.0.0.1', port: internal.port },
      controlPath: CONTROL_PATH,
      listen: { port, host },
    });
  } catch (error) {
    clearInterval(ticker);
    httpServer.close();
    throw error;
  }

  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let closing;
  return {
    url: `http://${shown.includes(':') ? `[${shown}]` : shown}:${network.port}/`,
    port: network.port,
    network,
    realtime,
    close() {
      closing ??= (async () => {
        clearInterval(ticker);
        await network.close();
        for (const socket of sockets) socket.destroy();
        httpServer.closeAllConnections();
        // Every connection is gone, so this ends sessions and timers without waiting on any client.
        await realtime.close();
        await new Promise((resolve) => httpServer.close(() => resolve(undefined)));
        await store?.close();
      })();
      return closing;
    },
  };
}

/**
 * A Redis store for the demo, from the built `unbroken-realtime/redis` (ioredis is a dev dependency here).
 * @param {string} url
 */
async function redisStore(url) {
  const { RedisStore } = /** @type {typeof import('../src/server/redis/index.js')} */ (await import(new URL('dist/redis.mjs', root).href));
  return new RedisStore({ url });
}

/** The Redis URL asked for: `--redis [url]` or `REDIS_URL`; undefined for the in-memory store. */
function redisUrlOf(/** @type {string[]} */ args) {
  const flag = args.indexOf('--redis');
  if (flag >= 0) {
    const next = args[flag + 1];
    return next !== undefined && !next.startsWith('--') ? next : (process.env.REDIS_URL ?? 'redis://localhost:6379');
  }
  return process.env.REDIS_URL || undefined;
}

/** True when this file is the program (`node demo/server.mjs`), not imported by a test. */
async function isMain() {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(await realpath(entry)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (await isMain()) {
  const host = process.env.HOST ?? '127.0.0.1';
  const redisUrl = redisUrlOf(process.argv.slice(2));
  const demo = await startDemo({ port: Number(process.env.PORT ?? 8080), host, redisUrl }).catch((error) => {
    console.error(`unbroken demo: cannot start: ${error.message}`);
    process.exit(1);
  });
  const url = host === '127.0.0.1' || host === '0.0.0.0' ? demo.url.replace('127.0.0.1', 'localhost') : demo.url;
  console.log(`unbroken demo: ${url}${redisUrl ? ` (store: Redis at ${redisUrl})` : ''}`);
  const shutdown = () => void demo.close().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
