// @ts-check
/**
 * The server of the tabs benchmark (bench/tabs.mjs), in a process of its own so that its memory is
 * its own: the reference server at `/realtime` (dist/server.mjs, default options), the tab page, the
 * client bundle and `/ping`. It listens on 127.0.0.1 at a free port, sends `{ port }` to its parent
 * over IPC, then answers `{ id, command: 'stats' }` with `{ id, result }`: what it holds now, and its
 * memory after a full GC (run it with --expose-gc).
 *
 * It counts, on the http server itself:
 * - `connections`: TCP connections accepted and not yet closed;
 * - `held`: downstream requests in flight, by endpoint: `/sse`, `/poll`, `/carrier`, `/carrier-poll`.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';

const root = new URL('../../', import.meta.url);
const PATH = '/realtime';
/** The downstream endpoints whose requests a browser holds open, by name in the figures. */
const HELD = /** @type {const} */ ({ '/sse': 'sse', '/poll': 'poll', '/carrier': 'carrier', '/carrier-poll': 'carrierPoll' });

/**
 * The tab page: one client on the transport `?t=` names, sharing unless `?share=0`; it keeps on
 * `window.tab` when it first opened (`Date.now()`) and the codes of its errors.
 */
const TAB_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script src="/unbroken-realtime.iife.min.js"></script></head><body><script>
const query = new URLSearchParams(location.search);
window.tab = { openedAt: null, errors: [] };
const client = Unbroken.connect('${PATH}', { transports: [query.get('t')], share: query.get('share') !== '0' });
client.on('open', () => { tab.openedAt ??= Date.now(); });
client.on('error', (error) => tab.errors.push(error.code));
window.client = client;
</script></body></html>`;

const { createServer } = /** @type {typeof import('../../src/server/index.js')} */ (await import(new URL('dist/server.mjs', root).href));
const bundle = await readFile(new URL('dist/unbroken-realtime.iife.min.js', root));

const httpServer = http.createServer((request, response) => {
  const path = new URL(request.url ?? '/', 'http://tabs').pathname;
  if (path === '/tab.html') response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(TAB_PAGE);
  else if (path === '/ping') response.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('pong');
  else if (path === '/unbroken-realtime.iife.min.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
  else response.writeHead(404).end();
});

let connections = 0;
httpServer.on('connection', (socket) => {
  connections++;
  socket.once('close', () => connections--);
});

const realtime = createServer({ path: PATH }).attach(httpServer);
realtime.on('error', () => {});

/** @type {Record<(typeof HELD)[keyof typeof HELD], number>} */
const held = { sse: 0, poll: 0, carrier: 0, carrierPoll: 0 };
// Added after attach(): it sees every request, the realtime ones included, and answers none.
httpServer.on('request', (request, response) => {
  const path = new URL(request.url ?? '/', 'http://tabs').pathname;
  if (!path.startsWith(`${PATH}/`)) return;
  const name = HELD[/** @type {keyof typeof HELD} */ (path.slice(PATH.length))];
  if (name === undefined) return;
  held[name]++;
  response.once('close', () => held[name]--);
});

await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve(undefined)));
const address = /** @type {import('node:net').AddressInfo} */ (httpServer.address());

const gc = /** @type {{ gc?: () => void }} */ (globalThis).gc;

/** What the server holds now, and its memory after a full GC. */
function stats() {
  gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { connections, held: { ...held }, rss, heapUsed, gc: gc !== undefined };
}

process.on('message', (/** @type {{ id: number, command: string }} */ message) => {
  if (message.command === 'stats') process.send?.({ id: message.id, result: stats() });
});
process.on('disconnect', () => process.exit(0));
process.send?.({ port: address.port });
