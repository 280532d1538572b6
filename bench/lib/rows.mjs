// @ts-check
/**
 * What the runner measures side by side: the client rows (unbroken over each transport and its
 * baselines), the fallback scenarios and the server-scale rows.
 */

/** The reconnect delay floor of the servers (unbroken's default `retry`, and the raw SSE server's `retry:`). */
export const RETRY_FLOOR_MS = 1000;

/** @typedef {'node' | 'browser'} Env */
/**
 * @typedef {object} Row
 * @property {string} id
 * @property {Record<Env, string>} label
 * @property {string} server server kind (bench/lib/server.mjs)
 * @property {string} [serverTransport]
 * @property {(url: string) => import('./drivers.mjs').RowSpec} spec
 * @property {boolean} http upstream over HTTP requests (counts POSTs)
 * @property {boolean} resumes replays what was sent while the client was away
 * @property {string[]} [only] the only cases it runs (a reference row)
 * @property {boolean} [coldWarm] runs the cold-and-warm push case (in Node)
 */

/** @type {Row[]} */
export const ROWS = [
  {
    id: 'unbroken-ws',
    label: { node: 'unbroken websocket', browser: 'unbroken websocket' },
    server: 'unbroken',
    spec: (url) => ({ kind: 'unbroken', url, transports: ['websocket'] }),
    http: false,
    resumes: true,
    coldWarm: true,
  },
  {
    id: 'unbroken-sse',
    label: { node: 'unbroken sse', browser: 'unbroken sse' },
    server: 'unbroken',
    spec: (url) => ({ kind: 'unbroken', url, transports: ['sse'] }),
    http: true,
    resumes: true,
  },
  {
    id: 'unbroken-lp',
    label: { node: 'unbroken long-polling', browser: 'unbroken long-polling' },
    server: 'unbroken',
    spec: (url) => ({ kind: 'unbroken', url, transports: ['long-polling'] }),
    http: true,
    resumes: true,
  },
  {
    id: 'ws',
    label: { node: 'raw ws', browser: 'native WebSocket' },
    server: 'ws',
    spec: (url) => ({ kind: 'ws', url }),
    http: false,
    resumes: false,
    // The baselines of the cold push: what a fresh process of a plain server, and of its client, costs.
    coldWarm: true,
  },
  {
    // Not a target baseline: the ceiling of batching, i.e. what a plain server that joins the messages
    // of one tick into one frame achieves over the same socket.
    id: 'ws-batch',
    label: { node: 'raw ws, batched per tick', browser: 'native WS, batched per tick' },
    server: 'ws',
    spec: (url) => ({ kind: 'ws-batch', url }),
    http: false,
    resumes: false,
    only: ['throughput', 'cold'],
    coldWarm: true,
  },
  {
    id: 'sse',
    label: { node: 'raw EventSource', browser: 'native EventSource' },
    server: 'sse',
    spec: (url) => ({ kind: 'sse', url }),
    http: true,
    resumes: true,
  },
  {
    // Plain long polling on the same hand-written server: the raw baseline of unbroken's long polling.
    id: 'poll',
    label: { node: 'raw long polling', browser: 'raw long polling' },
    server: 'sse',
    spec: (url) => ({ kind: 'poll', url }),
    http: true,
    resumes: false,
  },
  {
    id: 'sio-ws',
    label: { node: 'socket.io websocket', browser: 'socket.io websocket' },
    server: 'socketio',
    serverTransport: 'websocket',
    spec: (url) => ({ kind: 'socketio', url, transport: 'websocket' }),
    http: false,
    resumes: false,
  },
  {
    id: 'sio-polling',
    label: { node: 'socket.io polling', browser: 'socket.io polling' },
    server: 'socketio',
    serverTransport: 'polling',
    spec: (url) => ({ kind: 'socketio', url, transport: 'polling' }),
    http: true,
    resumes: false,
  },
];
export const rowById = (/** @type {string} */ id) => /** @type {Row} */ (ROWS.find((row) => row.id === id));

/**
 * Whether a row also measures the steady-state round trip (`RTT_STEADY_AFTER`, workload.mjs): the rows
 * whose upstream is a WebSocket. Over HTTP a round trip takes 0.4–5 ms, and the extra ones would add
 * minutes to every run.
 * @param {Row} row
 */
export const measuresSteadyRtt = (row) => !row.http;

/**
 * The fallback cases: the client with its default transports behind the loopback proxy of
 * demo/network-conditions.mjs, time from construction to the first message. The baseline is the same
 * client through the same proxy, without the condition, told to use the fallback transport at once.
 */
export const FALLBACKS = /** @type {const} */ ([
  { id: 'ws-refused', title: 'WebSocket refused → sse', conditions: ['ws-blocked'], to: 'sse', targetMs: 1000 },
  { id: 'ws-hanging', title: 'WebSocket upgrade hanging → sse', conditions: ['ws-hanging'], to: 'sse', targetMs: 4000 },
  {
    id: 'sse-buffered',
    title: 'WebSocket refused, SSE buffered → long-polling',
    conditions: ['ws-blocked', 'sse-buffered'],
    to: 'long-polling',
    targetMs: 6000,
  },
]);

/** Idle connections and fan-out: server kind, its transport, and the scale clients' protocol. */
export const SCALE_ROWS = [
  { id: 'unbroken-ws', label: 'unbroken websocket', server: 'unbroken', protocol: 'unbroken-ws', baseline: 'ws', fanout: true },
  { id: 'unbroken-sse', label: 'unbroken sse', server: 'unbroken', protocol: 'unbroken-sse', baseline: 'sse', fanout: true },
  { id: 'unbroken-lp', label: 'unbroken long-polling', server: 'unbroken', protocol: 'unbroken-lp', baseline: 'sse', fanout: false },
  { id: 'ws', label: 'raw ws', server: 'ws', protocol: 'ws', baseline: null, fanout: true },
  { id: 'sse', label: 'raw SSE', server: 'sse', protocol: 'sse', baseline: null, fanout: true },
  { id: 'sio-ws', label: 'socket.io websocket', server: 'socketio', transport: 'websocket', protocol: 'socketio-ws', baseline: 'ws', fanout: true },
];

/**
 * The case a metric is measured in.
 * @param {string} metric
 */
export function metricCase(metric) {
  if (metric.startsWith('rtt')) return 'rtt';
  if (metric.startsWith('burst')) return 'burst';
  if (metric === 'pushRequests') return 'throughput';
  if (metric === 'pushCold' || metric === 'pushWarm') return 'cold';
  return metric;
}
