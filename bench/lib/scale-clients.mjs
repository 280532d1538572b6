// @ts-check
/**
 * Many light clients in one Node process, for the server-scale cases: each speaks its server's wire
 * protocol directly (raw `ws` sockets and raw HTTP requests, no client library), so that the client
 * side costs as little as possible and the server is what is measured.
 *
 *   node bench/lib/scale-clients.mjs '{"protocol":"unbroken-ws","url":"http://127.0.0.1:PORT","n":1000}'
 *
 * protocol: `unbroken-ws`, `unbroken-sse`, `unbroken-lp` (unbroken's protocol v1 over each transport,
 * each connection with its own ticket, §3.4), `ws` (raw WebSocket), `sse` (raw SSE) or `socketio-ws`
 * (Engine.IO v4 / Socket.IO v5 packets over a WebSocket). It opens `n` connections, at most
 * `concurrency` at a time, spread over `addresses` loopback addresses (127.0.x.y), each counted as open
 * when its first message arrived (for unbroken: its `hello`; an `error` frame fails it), then reports
 * `{ ready: true, opened, failed, ms }` over IPC. With `urls` (a list) instead of `url`, connection `i`
 * goes to `urls[i % urls.length]`: the clients of several server processes, in one client process.
 *
 * Every fan-out message (`{ fan, ts }`) it receives adds a delivery latency (wall clock now − ts).
 * Every message with a `tag` (`{ tag, … }`) is counted per connection, so that a case can check who got
 * what. IPC requests: `{ cmd: 'reset' }` forgets the latencies so far; `{ cmd: 'latency' }` →
 * `{ received, p50, p99, max, cpuPercent }` since the last reset; `{ cmd: 'deliveries', tag, expected,
 * graceMs }` waits until `expected` messages with that tag arrived (or none arrived for a while), then
 * `graceMs` longer for any extra, and answers with the counts (see {@link deliveries}).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { CLIENT_ADDRESSES } from './workload.mjs';

/** @type {{ protocol: string, url?: string, urls?: string[], n: number, concurrency?: number, addresses?: number }} */
const job = JSON.parse(process.argv[2] ?? '{}');
const { protocol, n } = job;
const concurrency = job.concurrency ?? 100;
const addresses = job.addresses ?? CLIENT_ADDRESSES;
/** The servers the connections are spread over, round robin. */
const servers = (job.urls ?? [job.url ?? '']).map((url) => ({ host: new URL(url), wsBase: url.replace(/^http/, 'ws') }));
/** @typedef {(typeof servers)[number]} Server */
const wallNow = () => performance.timeOrigin + performance.now();

/**
 * The loopback address connection `i` comes from: 127.0.1.1, 127.0.1.2 … (250 per third octet), as
 * many as `addresses`. Linux routes all of 127/8 to the loopback interface.
 * @param {number} i
 */
function localAddress(i) {
  const k = i % addresses;
  return `127.0.${1 + Math.floor(k / 250)}.${1 + (k % 250)}`;
}

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

/**
 * Tagged messages per connection: for each tag, how many connection `i` received, and when the last
 * one (of any connection) arrived.
 * @type {Map<string, { counts: Uint32Array, total: number, lastAt: number }>}
 */
const tagged = new Map();
/** The session id of each connection (unbroken only), from its `hello`. @type {(string | undefined)[]} */
const sessionIds = [];

/**
 * @param {unknown} data an application message
 * @param {number} i the connection it came on
 */
function onApplicationMessage(data, i) {
  const message = asObject(data);
  if (!message) return;
  if (typeof message.ts === 'number' && typeof message.fan === 'number') record(message.ts);
  if (typeof message.tag === 'string') {
    let tag = tagged.get(message.tag);
    if (!tag) tagged.set(message.tag, (tag = { counts: new Uint32Array(n), total: 0, lastAt: 0 }));
    tag.counts[i] = (tag.counts[i] ?? 0) + 1;
    tag.total++;
    tag.lastAt = wallNow();
  }
}

/**
 * Handles one batch of unbroken frames of connection `i`.
 * @param {string} text
 * @param {number} i
 * @param {() => void} opened called on the `hello`
 * @throws {Error} on an `error` frame (a refusal, or the connection is being closed)
 */
function onUnbrokenBatch(text, i, opened) {
  const frames = JSON.parse(text);
  if (!Array.isArray(frames)) return;
  for (const frame of frames) {
    const f = asObject(frame);
    if (f?.t === 'msg') onApplicationMessage(f.d, i);
    else if (f?.t === 'hello') {
      sessionIds[i] = String(f.sid);
      opened();
    } else if (f?.t === 'error') throw new Error(`${String(f.code)}: ${String(f.message)}`);
  }
}

/**
 * `POST P/ticket` for a new session (§3.4), from the connection's own address: the ticket and the
 * session it opens count against that address. A connection of its own (`agent: false`), which closes
 * after the answer, so that no idle socket is left behind in the memory figures.
 * @param {Server} server
 * @param {string} address
 * @returns {Promise<string>}
 */
function ticket(server, address) {
  const { host } = server;
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/json', 'X-Unbroken': '1' };
    const request = http.request(
      { host: host.hostname, port: host.port, method: 'POST', path: '/realtime/ticket?v=1', headers, localAddress: address, agent: false },
      (response) => {
        body(response).then((text) => {
          if (response.statusCode === 200) resolve(String(JSON.parse(text).ticket));
          else reject(new Error(`POST /realtime/ticket answered ${response.statusCode}: ${text.slice(0, 200)}`));
        }, reject);
      },
    );
    request.on('error', reject);
    request.end('{}');
  });
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

/**
 * A GET that resolves with the response. (Requests are not kept: an SSE response keeps its socket
 * open by itself, and a long poll is replaced by the next.)
 * @param {Server} server
 * @param {string} path
 * @param {string} address the local address to send from
 * @param {Record<string, string>} [headers]
 * @returns {Promise<http.IncomingMessage>}
 */
function get(server, path, address, headers = {}) {
  const { host } = server;
  return new Promise((resolve, reject) => {
    const request = http.get({ host: host.hostname, port: host.port, path, headers, agent, localAddress: address }, resolve);
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

/** Connections that closed or failed after they opened, and why the last one did. */
let lost = 0;
let lastLostReason = '';
/** @param {unknown} reason */
function lose(reason) {
  lost++;
  lastLostReason = reason instanceof Error ? reason.message : String(reason);
}

/**
 * Opens one connection; resolves when its first message arrived (for unbroken, its `hello`).
 * @param {number} i
 * @returns {Promise<void>}
 */
function open(i) {
  const address = localAddress(i);
  const server = /** @type {Server} */ (servers[i % servers.length]);
  return new Promise((resolve, reject) => {
    let first = true;
    const arrived = () => {
      if (!first) return;
      first = false;
      resolve();
    };
    /** Before the first message a failure fails the opening; after it, the connection counts as lost. */
    const failure = (/** @type {unknown} */ error) => (first ? reject(error) : lose(error));
    switch (protocol) {
      case 'unbroken-ws':
      case 'ws':
      case 'socketio-ws': {
        const url = (/** @type {string} */ path) => {
          const ws = new WebSocket(`${server.wsBase}${path}`, { perMessageDeflate: false, localAddress: address });
          held.push(ws);
          ws.on('error', failure);
          ws.on('close', (code) => !first && lose(`closed with ${code}`));
          return ws;
        };
        if (protocol === 'unbroken-ws') {
          ticket(server, address).then((t) => {
            const ws = url(`/realtime/ws?v=1&ticket=${t}`);
            ws.on('message', (raw) => {
              try {
                onUnbrokenBatch(String(raw), i, arrived);
              } catch (error) {
                failure(error);
              }
            });
          }, reject);
          break;
        }
        const ws = url(protocol === 'ws' ? '/raw/ws' : '/socket.io/?EIO=4&transport=websocket');
        ws.on('message', (raw) => {
          const text = String(raw);
          if (protocol === 'ws') {
            onApplicationMessage(JSON.parse(text), i);
            arrived();
          } else if (text[0] === '0') {
            ws.send('40'); // Engine.IO open → connect to the main namespace
          } else if (text === '2') {
            ws.send('3'); // Engine.IO ping → pong
          } else if (text.startsWith('40')) {
            arrived();
          } else if (text.startsWith('42')) {
            const packet = JSON.parse(text.slice(2));
            if (Array.isArray(packet)) onApplicationMessage(packet[1], i);
          }
        });
        break;
      }
      case 'unbroken-sse':
      case 'sse': {
        const path = protocol === 'sse' ? Promise.resolve(`/raw/sse?c=scale${i}`) : ticket(server, address).then((t) => `/realtime/sse?v=1&ticket=${t}`);
        path
          .then((p) => get(server, p, address))
          .then((response) => {
            response.on('close', () => !first && lose('the event stream ended'));
            readEvents(response, (data) => {
              if (protocol === 'sse') {
                onApplicationMessage(JSON.parse(data), i);
                arrived();
                return;
              }
              try {
                onUnbrokenBatch(data, i, arrived);
              } catch (error) {
                failure(error);
              }
            });
          })
          .catch(reject);
        break;
      }
      case 'unbroken-lp': {
        // One poll held at a time, all with this connection's id `c` in X-Unbroken-Connection: the
        // first carries the ticket and is answered with the hello, each next one carries the cursor
        // the answers left it at (PROTOCOL.md §7.4). A hello on a later poll means the connection was
        // replaced: this client stops rather than loop.
        const headers = { 'X-Unbroken-Connection': randomBytes(16).toString('base64url') };
        /** @type {string | null} */
        let last = null;
        /** @param {string} query */
        const poll = (query) =>
          get(server, `/realtime/poll?v=1&${query}`, address, headers)
            .then(body)
            .then((text) => {
              const frames = /** @type {unknown[]} */ (JSON.parse(text));
              for (const frame of frames) {
                const f = asObject(frame);
                if (f?.t === 'hello') {
                  if (last !== null) throw new Error('the long-polling connection was replaced (a second hello)');
                  sessionIds[i] = String(f.sid);
                  last = String(f.cursor);
                } else if (f?.t === 'msg') {
                  last = String(f.id);
                  onApplicationMessage(f.d, i);
                } else if (f?.t === 'error') {
                  throw new Error(`poll refused: ${JSON.stringify(f)}`);
                }
              }
              arrived();
              void poll(`last=${encodeURIComponent(last ?? '')}`).catch(lose);
            });
        ticket(server, address)
          .then((t) => poll(`ticket=${t}`))
          .catch(reject);
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

/** How long `deliveries` waits without a new tagged message before it answers with what arrived. */
const STALL_MS = 5_000;
/**
 * Waits until `expected` messages tagged `tag` arrived, or none arrived for {@link STALL_MS}; then
 * listens `graceMs` longer, so that a message too many is counted too. Answers with the total,
 * when the last one arrived (wall clock), how many connections got how many (`{ "20": 10000 }`: every
 * connection got 20), the session ids of the connections that got any (unbroken, up to 1,000 of
 * them; null past that), and this process's RSS.
 * @param {string} tag
 * @param {number} expected
 * @param {number} graceMs
 */
async function deliveries(tag, expected, graceMs) {
  let seen = -1;
  let seenAt = performance.now();
  for (;;) {
    const total = tagged.get(tag)?.total ?? 0;
    if (total >= expected) break;
    if (total !== seen) {
      seen = total;
      seenAt = performance.now();
    } else if (performance.now() - seenAt > STALL_MS) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (graceMs > 0) await new Promise((resolve) => setTimeout(resolve, graceMs));
  const entry = tagged.get(tag);
  /** @type {Record<string, number>} */
  const histogram = {};
  /** @type {string[] | null} */
  let recipients = [];
  for (let i = 0; i < n; i++) {
    const count = entry?.counts[i] ?? 0;
    histogram[count] = (histogram[count] ?? 0) + 1;
    if (count === 0 || recipients === null) continue;
    recipients.push(sessionIds[i] ?? `#${i}`);
    if (recipients.length > 1000) recipients = null;
  }
  return { total: entry?.total ?? 0, lastAt: entry?.lastAt ?? NaN, histogram, recipients, lost, lastLostReason, rss: process.memoryUsage().rss };
}

process.on('message', (/** @type {{ id: number, cmd: string, tag?: string, expected?: number, graceMs?: number }} */ message) => {
  if (message.cmd === 'latency') {
    const sorted = latencies.slice(0, received).sort();
    const used = process.cpuUsage(cpuMark);
    process.send?.({
      id: message.id,
      result: {
        lost,
        lastLostReason,
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
  } else if (message.cmd === 'deliveries') {
    void deliveries(String(message.tag), message.expected ?? 0, message.graceMs ?? 0).then((result) => process.send?.({ id: message.id, result }));
  }
});
process.on('disconnect', () => process.exit(0));
