// @ts-check
/**
 * Many light clients in one Node process, for the server-scale cases: each speaks its server's wire
 * protocol directly (raw `ws` sockets and raw HTTP requests, no client library), so that the client
 * side costs as little as possible and the server is what is measured.
 *
 *   node bench/lib/scale-clients.mjs '{"protocol":"unbroken-ws","url":"http://127.0.0.1:PORT","n":1000}'
 *
 * protocol: `unbroken-ws`, `unbroken-sse`, `unbroken-lp` (unbroken's protocol v1 over each transport),
 * `ws` (raw WebSocket), `sse` (raw SSE) or `socketio-ws` (Engine.IO v4 / Socket.IO v5 packets over a
 * WebSocket). It opens `n` connections, at most `concurrency` at a time, each counted as open when its
 * first message arrived, then reports `{ ready: true, opened, failed, ms }` over IPC. Every fan-out
 * message (`{ fan, ts }`) it receives adds a delivery latency (wall clock now − ts). IPC requests:
 * `{ cmd: 'reset' }` forgets the latencies so far; `{ cmd: 'latency' }` → `{ received, p50, p99, max,
 * cpuPercent }` since the last reset.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/** @type {{ protocol: string, url: string, n: number, concurrency?: number, expected?: number }} */
const job = JSON.parse(process.argv[2] ?? '{}');
const { protocol, url, n } = job;
const concurrency = job.concurrency ?? 100;
const host = new URL(url);
const wsBase = url.replace(/^http/, 'ws');
const wallNow = () => performance.timeOrigin + performance.now();

/** Delivery latencies in ms, appended as fan-out messages arrive. */
let latencies = new Float64Array(1 << 16);
let received = 0;
/** @param {number} ts */
function record(ts) {
  if (received === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[received++] = wallNow() - ts;
}

/**
 * @param {unknown} data
 * @returns {Record<string, unknown> | null}
 */
const asObject = (data) => (typeof data === 'object' && data !== null && !Array.isArray(data) ? /** @type {Record<string, unknown>} */ (data) : null);

/** @param {unknown} data an application message */
function onApplicationMessage(data) {
  const message = asObject(data);
  if (message && typeof message.ts === 'number' && typeof message.fan === 'number') record(message.ts);
}

/** @param {string} text a batch of unbroken frames */
function onUnbrokenBatch(text) {
  const frames = JSON.parse(text);
  if (!Array.isArray(frames)) return;
  for (const frame of frames) {
    const f = asObject(frame);
    if (f?.t === 'msg') onApplicationMessage(f.d);
  }
}

/** Sockets and requests to keep alive. */
/** @type {unknown[]} */
const held = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/**
 * Splits an SSE stream into the `data` of its events.
 * @param {http.IncomingMessage} response
 * @param {(data: string) => void} onData
 */
function readEvents(response, onData) {
  response.setEncoding('utf8');
  let buffer = '';
  response.on('data', (/** @type {string} */ chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5))
        .join('\n');
      if (data) onData(data);
    }
  });
}

/** Long polls that failed after their connection opened, and why the last one did. */
let lostPolls = 0;
let lastPollError = '';

/**
 * A GET that resolves with the response. (Requests are not kept: an SSE response keeps its socket
 * open by itself, and a long poll is replaced by the next.)
 * @param {string} path
 * @returns {Promise<http.IncomingMessage>}
 */
function get(path) {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: host.hostname, port: host.port, path, agent }, resolve);
    request.on('error', reject);
  });
}

/**
 * @param {http.IncomingMessage} response
 * @returns {Promise<string>}
 */
function body(response) {
  return new Promise((resolve, reject) => {
    response.setEncoding('utf8');
    let text = '';
    response.on('data', (/** @type {string} */ chunk) => (text += chunk));
    response.on('end', () => resolve(text));
    response.on('error', reject);
  });
}

/**
 * Opens one connection; resolves when its first message arrived.
 * @param {number} i
 * @returns {Promise<void>}
 */
function open(i) {
  return new Promise((resolve, reject) => {
    let first = true;
    const arrived = () => {
      if (!first) return;
      first = false;
      resolve();
    };
    switch (protocol) {
      case 'unbroken-ws':
      case 'ws':
      case 'socketio-ws': {
        const path = protocol === 'ws' ? '/raw/ws' : protocol === 'unbroken-ws' ? '/realtime/ws?v=1' : '/socket.io/?EIO=4&transport=websocket';
        const ws = new WebSocket(`${wsBase}${path}`, { perMessageDeflate: false });
        held.push(ws);
        ws.on('error', reject);
        ws.on('message', (raw) => {
          const text = String(raw);
          if (protocol === 'unbroken-ws') {
            onUnbrokenBatch(text);
            arrived();
          } else if (protocol === 'ws') {
            onApplicationMessage(JSON.parse(text));
            arrived();
          } else if (text[0] === '0') {
            ws.send('40'); // Engine.IO open → connect to the main namespace
          } else if (text === '2') {
            ws.send('3'); // Engine.IO ping → pong
          } else if (text.startsWith('40')) {
            arrived();
          } else if (text.startsWith('42')) {
            const packet = JSON.parse(text.slice(2));
            if (Array.isArray(packet)) onApplicationMessage(packet[1]);
          }
        });
        break;
      }
      case 'unbroken-sse':
      case 'sse': {
        const path = protocol === 'sse' ? `/raw/sse?c=scale${i}` : '/realtime/sse?v=1';
        get(path).then((response) => {
          readEvents(response, (data) => {
            if (protocol === 'sse') onApplicationMessage(JSON.parse(data));
            else onUnbrokenBatch(data);
            arrived();
          });
        }, reject);
        break;
      }
      case 'unbroken-lp': {
        // One poll held at a time, all with this connection's id `c`: the first is answered with the
        // hello, each next one carries sid and last (PROTOCOL.md §7.4). A hello on a later poll means
        // the connection was replaced: this client stops rather than loop.
        const c = `scale${i}`;
        /** @type {string | null} */
        let sid = null;
        /** @type {string | null} */
        let last = null;
        const poll = () => {
          const query = sid === null ? '' : `&sid=${encodeURIComponent(sid)}&last=${encodeURIComponent(last ?? '')}`;
          return get(`/realtime/poll?v=1&c=${c}${query}`)
            .then(body)
            .then((text) => {
              const frames = /** @type {unknown[]} */ (JSON.parse(text));
              for (const frame of frames) {
                const f = asObject(frame);
                if (f?.t === 'hello') {
                  if (sid !== null) throw new Error('the long-polling connection was replaced (a second hello)');
                  sid = String(f.sid);
                  last = String(f.cursor);
                } else if (f?.t === 'msg') {
                  last = String(f.id);
                  onApplicationMessage(f.d);
                } else if (f?.t === 'error') {
                  throw new Error(`poll refused: ${JSON.stringify(f)}`);
                }
              }
              arrived();
              void poll().catch((/** @type {unknown} */ error) => {
                lostPolls++;
                lastPollError = error instanceof Error ? error.message : String(error);
              });
            });
        };
        poll().catch(reject);
        break;
      }
      default:
        reject(new Error(`unknown protocol ${protocol}`));
    }
  });
}

const start = performance.now();
/** CPU and wall clock since the last `reset`. */
let cpuMark = process.cpuUsage();
let wallMark = start;
let opened = 0;
let failed = 0;
/** @type {string | undefined} */
let firstError;
let nextIndex = 0;
/** Longest one connection may take to deliver its first message. */
const OPEN_TIMEOUT_MS = 30_000;
async function worker() {
  while (nextIndex < n) {
    const i = nextIndex++;
    try {
      /** @type {NodeJS.Timeout | undefined} */
      let timer;
      await Promise.race([
        open(i),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no first message within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      opened++;
    } catch (error) {
      failed++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
process.send?.({ ready: true, opened, failed, firstError, ms: performance.now() - start });

/** @param {Float64Array} sorted @param {number} q */
const quantile = (sorted, q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);

process.on('message', (/** @type {{ id: number, cmd: string }} */ message) => {
  if (message.cmd === 'latency') {
    const sorted = latencies.slice(0, received).sort();
    const used = process.cpuUsage(cpuMark);
    process.send?.({
      id: message.id,
      result: {
        lostPolls,
        lastPollError,
        received,
        p50: quantile(sorted, 0.5),
        p99: quantile(sorted, 0.99),
        max: sorted[sorted.length - 1] ?? NaN,
        cpuPercent: (100 * (used.user + used.system)) / 1000 / (performance.now() - wallMark),
      },
    });
  } else if (message.cmd === 'reset') {
    received = 0;
    cpuMark = process.cpuUsage();
    wallMark = performance.now();
    process.send?.({ id: message.id, result: { reset: true } });
  }
});
process.on('disconnect', () => process.exit(0));
