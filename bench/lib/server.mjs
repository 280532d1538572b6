// @ts-check
/**
 * One benchmark server, run in its own process by the runner (bench/lib/processes.mjs):
 *
 *   node bench/lib/server.mjs <kind> [socket.io transport]
 *
 * kind: `unbroken` (the reference server, dist/server.mjs), `ws` (a raw `ws` server: one JSON message
 * per frame at `/raw/ws`, every message of a tick in one frame at `/raw/batch`), `sse` (a plain hand-written SSE server with one POST per upstream message, which also answers plain
 * long polls at `/raw/poll` from the same per-client log) or
 * `socketio` (socket.io with one transport: `websocket` or `polling`). It listens on 127.0.0.1 at a
 * free port and prints `{"port":…}` as its first line of stdout. Every kind also serves the benchmark
 * page and the client bundles, so a page talks to its server on the same origin.
 *
 * It speaks the application protocol of bench/lib/workload.mjs, counts the HTTP requests and upgrades
 * under its realtime paths, and answers the runner's IPC requests: `stats`, `memory` (after a full
 * GC when run with --expose-gc), `fanout` (broadcast to every client at a fixed rate), and for the
 * rooms cases (unbroken only) `join` (put some of the sessions in a room), `deliver` (send messages
 * to the room or to everyone, one per event-loop turn) and `usage` (the CPU spent since `deliver`
 * began), and for the Redis cases (unbroken only) `fill` (append broadcasts until the store is as full
 * as a running one's).
 *
 * The unbroken server keeps its messages in a `MemoryStore`, or, when `UNBROKEN_BENCH_STORE` is a
 * `redis://` URL, in a `RedisStore` (dist/redis.mjs) there, with the same retention: the stores' default
 * (10,000 messages), or `UNBROKEN_BENCH_RETENTION` messages when set. Several server processes given
 * the same URL share one store, as a deployment behind a load balancer does.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { WebSocketServer } from 'ws';
import { KILL_REPLAY_DELAY_MS, payload } from './workload.mjs';

const root = new URL('../../', import.meta.url);
/** The build under test: the runner's snapshot of dist/ (UNBROKEN_BENCH_DIST), else dist/ itself. */
const dist = process.env.UNBROKEN_BENCH_DIST ? pathToFileURL(`${process.env.UNBROKEN_BENCH_DIST}/`) : new URL('dist/', root);
const kind = process.argv[2] ?? 'unbroken';
const socketIoTransport = process.argv[3] === 'polling' ? 'polling' : 'websocket';

/**
 * The limits of unbroken's server (§12.1) that the cases would otherwise measure instead of the server:
 * - `maxBufferedBytes`: the push case hands PUSH_MESSAGES messages (about 3 MB of frames) to one
 *   connection in one synchronous loop; past the default 1 MiB the server cuts that client with
 *   BACKPRESSURE mid-push and it resumes after the oldest message retention kept, so the push rows
 *   would fail. 8 MiB holds one whole push.
 * - `messagesPerSecond`: the round-trip case sends RTT_WARMUP + RTT_ROUND_TRIPS messages (workload.mjs)
 *   as fast as the echoes return and the burst case BURST_SENDS at once; at the default 200 per second
 *   per session the server paces them (about 5 ms each past the first second's worth), so the
 *   round-trip rows would show that pace, not a latency.
 * No other case comes near either limit.
 */
const BENCH_LIMITS = { maxBufferedBytes: 8 * 1024 * 1024, messagesPerSecond: 1_000_000 };

/** Static files: the benchmark page and what it loads. */
/** @type {Record<string, [URL, string]>} */
const STATIC = {
  '/bench/page.html': [new URL('bench/lib/page.html', root), 'text/html; charset=utf-8'],
  '/bench/lib/page.mjs': [new URL('bench/lib/page.mjs', root), 'text/javascript; charset=utf-8'],
  '/bench/lib/drivers.mjs': [new URL('bench/lib/drivers.mjs', root), 'text/javascript; charset=utf-8'],
  '/bench/lib/workload.mjs': [new URL('bench/lib/workload.mjs', root), 'text/javascript; charset=utf-8'],
  '/dist/unbroken-realtime.iife.min.js': [new URL('unbroken-realtime.iife.min.js', dist), 'text/javascript; charset=utf-8'],
  '/vendor/socket.io.min.js': [new URL('node_modules/socket.io-client/dist/socket.io.min.js', root), 'text/javascript; charset=utf-8'],
};

/** @type {http.RequestListener} */
function serveStatic(request, response) {
  void sendStatic(request, response);
}

/**
 * @param {http.IncomingMessage} request
 * @param {http.ServerResponse} response
 */
async function sendStatic(request, response) {
  const file = STATIC[new URL(request.url ?? '/', 'http://x').pathname];
  if (!file) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  try {
    const body = await readFile(file[0]);
    response
      .writeHead(200, {
        'content-type': file[1],
        'cache-control': 'no-store',
        // Cross-origin isolation gives the page's performance.now() 5 µs resolution instead of 100 µs.
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      })
      .end(body);
  } catch {
    response.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot read ${file[0].pathname}`);
  }
}

const httpServer = http.createServer({ noDelay: true }, serveStatic);

/** Every TCP connection, so that `kill` can cut them. */
/** @type {Set<import('node:net').Socket>} */
const sockets = new Set();
httpServer.on('connection', (socket) => {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
});
function killConnections() {
  for (const socket of sockets) socket.destroy();
}

/** Requests and upgrades under the realtime paths, by `METHOD /path`. */
/** @type {Record<string, number>} */
const requests = {};
const REALTIME = /^\/(realtime|raw|socket\.io)\//;
/** @param {string} key */
const count = (key) => void (requests[key] = (requests[key] ?? 0) + 1);
/** @param {http.IncomingMessage} request */
function countRequest(request) {
  const path = new URL(request.url ?? '/', 'http://x').pathname;
  if (REALTIME.test(path)) count(`${request.method} ${path}`);
}

/** Wall-clock ms with sub-ms resolution, comparable across processes of this machine. */
const wallNow = () => performance.timeOrigin + performance.now();

/**
 * @param {unknown} data
 * @returns {Record<string, unknown> | null}
 */
const asObject = (data) => (typeof data === 'object' && data !== null && !Array.isArray(data) ? /** @type {Record<string, unknown>} */ (data) : null);

/**
 * The application protocol of workload.mjs, for one client: `send` reaches it now or (for kinds that
 * resume) later.
 * @param {unknown} data
 * @param {(value: unknown) => void} send
 */
function handle(data, send) {
  const command = asObject(data);
  if (!command) return;
  if (command.cmd === 'push' && typeof command.n === 'number') {
    for (let i = 0; i < command.n; i++) send(payload(i));
  } else if (command.cmd === 'kill') {
    killConnections();
    setTimeout(() => send({ replayed: true }), KILL_REPLAY_DELAY_MS);
  } else if (typeof command.echo === 'number') {
    send(command);
  }
}

/** Sends one fan-out message to every client; set up by each kind. */
let broadcast = (/** @type {Record<string, unknown>} */ _message) => {};
/** Clients connected now; set up by each kind. */
let clientCount = () => 0;
/**
 * The rooms cases: puts `count` of the sessions, evenly spread over the order they connected in, in
 * `room`; resolves with their ids and how many members the server then reports. Unbroken only.
 * @type {(room: string, count: number) => Promise<{ sids: string[], members: number }>}
 */
let joinRoom = () => Promise.reject(new Error(`the ${kind} server has no rooms`));
/**
 * Sends one message to the sessions in `room`, or to everyone when `room` is null. Unbroken only.
 * @type {(room: string | null, message: Record<string, unknown>) => Promise<unknown>}
 */
let sendTo = () => Promise.reject(new Error(`the ${kind} server has no rooms`));

if (kind === 'unbroken') {
  // The built server, as a user gets it; typed from its source so that type-checking needs no build.
  const { createServer, MemoryStore } = /** @type {typeof import('../../src/server/index.js')} */ (await import(new URL('server.mjs', dist).href));
  const storeUrl = process.env.UNBROKEN_BENCH_STORE ?? 'memory';
  const retention = process.env.UNBROKEN_BENCH_RETENTION ? { maxMessages: Number(process.env.UNBROKEN_BENCH_RETENTION) } : {};
  /** @type {import('../../src/server/index.js').MessageStore | undefined} */
  let store;
  if (storeUrl.startsWith('redis://')) {
    const { RedisStore } = /** @type {typeof import('../../src/server/redis/index.js')} */ (await import(new URL('redis.mjs', dist).href));
    const redis = new RedisStore({ url: storeUrl, ...retention });
    redis.onError((error) => console.error(`redis store (server ${process.pid}): ${error.message}`));
    // Before listening: the first connection must not wait for Redis, nor fail on it.
    await redis.ready();
    store = redis;
  } else if (storeUrl !== 'memory') {
    throw new Error(`UNBROKEN_BENCH_STORE must be "memory" or a redis:// URL, got ${JSON.stringify(storeUrl)}`);
  } else if (retention.maxMessages) {
    store = new MemoryStore(retention);
  }
  const realtime = createServer({ path: '/realtime', ...BENCH_LIMITS, ...(store ? { store } : {}) }).attach(httpServer);
  realtime.on('connection', (session) => void session.send({ welcome: true }).catch(() => undefined));
  realtime.on('message', (data, session) =>
    handle(data, (value) => void session.send(/** @type {import('../../src/server/index.js').Payload} */ (value)).catch(() => undefined)),
  );
  realtime.on('error', (error) => console.error('unbroken server:', error));
  broadcast = (message) =>
    void realtime.broadcast(/** @type {import('../../src/server/index.js').Payload} */ (message)).catch(() => undefined);
  clientCount = () => realtime.sessions.size;
  joinRoom = async (room, count) => {
    const sessions = [...realtime.sessions.values()];
    const step = sessions.length / count;
    const chosen = Array.from({ length: Math.min(count, sessions.length) }, (_, i) => /** @type {(typeof sessions)[number]} */ (sessions[Math.floor(i * step)]));
    await Promise.all(chosen.map((session) => session.join(room)));
    return { sids: chosen.map((session) => session.id), members: (await realtime.to(room).sessions()).length };
  };
  sendTo = (room, message) => {
    const data = /** @type {import('../../src/server/index.js').Payload} */ (message);
    return room === null ? realtime.broadcast(data) : realtime.to(room).send(data);
  };
} else if (kind === 'ws') {
  // `/raw/ws`: one JSON message per frame. `/raw/batch`: what a plain batching server does, every
  // message of one tick joined into one frame holding a JSON array (the ceiling batching reaches).
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const batching = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  httpServer.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    const target = path === '/raw/ws' ? wss : path === '/raw/batch' ? batching : null;
    if (target) target.handleUpgrade(request, socket, head, (ws) => target.emit('connection', ws, request));
    else socket.destroy();
  });
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    const send = (/** @type {unknown} */ value) => ws.send(JSON.stringify(value));
    send({ welcome: true });
    ws.on('message', (raw) => handle(JSON.parse(String(raw)), send));
  });
  batching.on('connection', (ws) => {
    ws.on('error', () => undefined);
    /** @type {string[]} */
    let queue = [];
    const send = (/** @type {unknown} */ value) => {
      if (queue.push(JSON.stringify(value)) > 1) return;
      queueMicrotask(() => {
        const batch = `[${queue.join(',')}]`;
        queue = [];
        ws.send(batch);
      });
    };
    send({ welcome: true });
    ws.on('message', (raw) => handle(JSON.parse(String(raw)), send));
  });
  broadcast = (message) => {
    const text = JSON.stringify(message);
    for (const ws of wss.clients) ws.send(text);
  };
  clientCount = () => wss.clients.size + batching.clients.size;
} else if (kind === 'sse') {
  /**
   * A plain SSE server, as one would write it by hand: one event per message with an id, `retry:` on
   * connect, replay after `Last-Event-ID` from a per-client log. The same log answers plain long polls
   * (`GET /raw/poll?c=…&after=<id>`): every entry after `after` at once as a JSON array, or, when there
   * is none, the first one sent while the poll waits.
   * @type {Map<string, { response: http.ServerResponse | null, poll: http.ServerResponse | null, log: { id: number, text: string }[], next: number }>}
   */
  const clients = new Map();
  /** @param {string} c */
  const client = (c) => {
    let state = clients.get(c);
    if (!state) clients.set(c, (state = { response: null, poll: null, log: [], next: 1 }));
    return state;
  };
  /** @param {string} c @param {unknown} value */
  const send = (c, value) => {
    const state = client(c);
    const entry = { id: state.next++, text: JSON.stringify(value) };
    state.log.push(entry);
    state.response?.write(`id: ${entry.id}\ndata: ${entry.text}\n\n`);
    if (state.poll) {
      answerPoll(state.poll, [entry]);
      state.poll = null;
    }
  };
  /** @param {http.ServerResponse} response @param {{ id: number, text: string }[]} entries */
  const answerPoll = (response, entries) => {
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
    response.end(`[${entries.map((entry) => `{"id":${entry.id},"data":${entry.text}}`).join(',')}]`);
  };
  httpServer.removeAllListeners('request');
  httpServer.on('request', (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const c = url.searchParams.get('c') ?? '';
    if (url.pathname === '/raw/sse' && request.method === 'GET') {
      const state = client(c);
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      response.write('retry: 1000\n\n');
      state.response = response;
      response.once('close', () => {
        if (state.response === response) state.response = null;
      });
      const last = Number(request.headers['last-event-id']);
      if (Number.isInteger(last) && last > 0) {
        for (const entry of state.log) if (entry.id > last) response.write(`id: ${entry.id}\ndata: ${entry.text}\n\n`);
      } else {
        send(c, { welcome: true });
      }
    } else if (url.pathname === '/raw/poll' && request.method === 'GET') {
      const state = client(c);
      const after = Number(url.searchParams.get('after') ?? 0);
      if (after === 0 && state.log.length === 0) send(c, { welcome: true });
      const waiting = state.log.filter((entry) => entry.id > after);
      if (waiting.length > 0) answerPoll(response, waiting);
      else {
        state.poll = response;
        response.once('close', () => {
          if (state.poll === response) state.poll = null;
        });
      }
    } else if (url.pathname === '/raw/cmd' && request.method === 'POST') {
      /** @type {Buffer[]} */
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        response.writeHead(204).end();
        handle(JSON.parse(Buffer.concat(chunks).toString('utf8')), (value) => send(c, value));
      });
    } else {
      serveStatic(request, response);
    }
  });
  broadcast = (message) => {
    for (const c of clients.keys()) send(c, message);
  };
  clientCount = () => [...clients.values()].filter((state) => state.response).length;
} else if (kind === 'socketio') {
  const { Server } = await import('socket.io');
  const io = new Server(httpServer, { transports: [socketIoTransport], serveClient: false });
  io.on('connection', (socket) => {
    socket.emit('m', { welcome: true });
    socket.on('m', (data) => handle(data, (value) => socket.emit('m', value)));
  });
  broadcast = (message) => io.emit('m', message);
  clientCount = () => io.engine.clientsCount;
} else {
  throw new Error(`unknown server kind ${kind}`);
}

// Counted before anything else handles the request (unbroken and socket.io take over `request`).
httpServer.prependListener('request', countRequest);
httpServer.prependListener('upgrade', (request) => {
  const path = new URL(request.url ?? '/', 'http://x').pathname;
  if (REALTIME.test(path)) count(`UPGRADE ${path}`);
});

/**
 * Broadcasts `rate` messages per second for `seconds`, each stamped with the wall clock when sent,
 * on a schedule that does not drift. Resolves with what was sent and the CPU it took.
 * @param {number} rate
 * @param {number} seconds
 */
function fanout(rate, seconds) {
  const total = rate * seconds;
  const interval = 1000 / rate;
  const cpu = process.cpuUsage();
  const start = performance.now();
  return new Promise((resolve) => {
    let n = 0;
    const tick = () => {
      broadcast({ fan: n, ts: wallNow(), body: 'unbroken-benchmark-payload-unbroken-benchmark-payload-unbroken' });
      n++;
      if (n === total) {
        const used = process.cpuUsage(cpu);
        const wall = performance.now() - start;
        resolve({ sent: n, cpuPercent: (100 * (used.user + used.system)) / 1000 / wall });
        return;
      }
      setTimeout(tick, Math.max(0, start + n * interval - performance.now()));
    };
    tick();
  });
}

/** Where the current `deliver` began: CPU and wall clock, and how many of its sends failed. */
let deliveryMark = { cpu: process.cpuUsage(), startWall: 0, failed: 0, firstError: '' };

/**
 * Sends `messages` messages `{ tag, seq, body }` (about 100 bytes) to `room`, or to everyone when it is
 * null, one per event-loop turn (each recipient gets each as a frame of its own, as when a room's
 * messages arrive one by one). Marks the CPU and wall clock at the first send for `usage`; resolves
 * once the last was handed to the server (not yet delivered).
 * @param {string | null} room
 * @param {number} messages
 * @param {string} tag
 */
function deliver(room, messages, tag) {
  const mark = { cpu: process.cpuUsage(), startWall: wallNow(), failed: 0, firstError: '' };
  deliveryMark = mark;
  const failed = (/** @type {unknown} */ error) => {
    mark.failed++;
    mark.firstError ||= error instanceof Error ? error.message : String(error);
  };
  return new Promise((resolve) => {
    let seq = 0;
    const next = () => {
      try {
        sendTo(room, { tag, ...payload(seq) }).catch(failed);
      } catch (error) {
        failed(error);
      }
      if (++seq < messages) setImmediate(next);
      else resolve({ startWall: mark.startWall, sendMs: wallNow() - mark.startWall });
    };
    next();
  });
}

/** Broadcasts in flight at once while filling the store. */
const FILL_IN_FLIGHT = 100;

/**
 * Appends `messages` broadcasts of about 100 bytes and resolves once the store holds them all (unbroken
 * only): brings a fresh store to where a running deployment's stands, at its retention, before the
 * clients of a case connect.
 * @param {number} messages
 */
async function fill(messages) {
  const started = wallNow();
  let next = 0;
  const worker = async () => {
    while (next < messages) await sendTo(null, { fill: true, ...payload(next++) });
  };
  await Promise.all(Array.from({ length: Math.min(FILL_IN_FLIGHT, messages) }, worker));
  return { ms: wallNow() - started };
}

/** CPU (user + system) and wall clock since the current `deliver` began, and its failed sends. */
function usage() {
  const used = process.cpuUsage(deliveryMark.cpu);
  return { cpuMs: (used.user + used.system) / 1000, wallMs: wallNow() - deliveryMark.startWall, failed: deliveryMark.failed, firstError: deliveryMark.firstError };
}

/** Heap and RSS after a full collection (when --expose-gc allows one). */
function memory() {
  const gc = /** @type {(() => void) | undefined} */ (globalThis.gc);
  if (gc) {
    gc();
    gc();
  }
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers, clients: clientCount(), sockets: sockets.size };
}

process.on('message', async (/** @type {{ id: number, cmd: string, rate?: number, seconds?: number, room?: string | null, count?: number, messages?: number, tag?: string }} */ message) => {
  /** @type {unknown} */
  let result;
  switch (message.cmd) {
    case 'join':
      try {
        result = await joinRoom(String(message.room), message.count ?? 0);
      } catch (error) {
        process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) });
        return;
      }
      break;
    case 'deliver':
      result = await deliver(message.room ?? null, message.messages ?? 0, String(message.tag));
      break;
    case 'usage':
      result = usage();
      break;
    case 'fill':
      try {
        result = await fill(message.messages ?? 0);
      } catch (error) {
        process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) });
        return;
      }
      break;
    case 'stats':
      result = { requests: { ...requests } };
      break;
    case 'memory':
      result = memory();
      break;
    case 'fanout':
      result = await fanout(message.rate ?? 100, message.seconds ?? 5);
      break;
    default:
      result = { error: `unknown command ${message.cmd}` };
  }
  process.send?.({ id: message.id, result });
});

httpServer.listen(0, '127.0.0.1', () => {
  const address = httpServer.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.on('disconnect', () => process.exit(0));
