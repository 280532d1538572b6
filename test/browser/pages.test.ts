/**
 * The built client in plain pages, served on loopback next to the reference server: the IIFE through
 * a `<script>` tag, the ESM build through `<script type="module">`, and a page without a native
 * EventSource — bare (the client goes straight to long polling) and with `event-source-polyfill`
 * passed as the EventSource option (the client uses SSE through it).
 */
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../helpers/start-server.js';
import { launchChromium } from './chromium.js';

const root = new URL('../../', import.meta.url);

/**
 * Runs in each page: connects, waits for the greeting, sends and waits for its acknowledgement and
 * echo, measures a round trip, and reports what happened — or, after 10 s, rejects saying how far it got.
 */
const PROBE = `
window.probe = (Unbroken, options) => {
  const errors = [];
  const transports = [];
  const client = Unbroken.connect('/realtime', { connectTimeout: 3000, ...options });
  client.on('error', (error) => errors.push(error.code));
  client.on('transport', (event) => transports.push(event));
  const greeting = new Promise((resolve) => client.once('message:greeting', ({ data }) => resolve(data)));
  const echo = new Promise((resolve) => client.once('message:echo', ({ data }) => resolve(data)));
  const work = (async () => {
    const [greeted, , echoed] = await Promise.all([greeting, client.send({ hello: 'page' }), echo]);
    const rtt = await client.ping();
    const result = { exports: Object.keys(Unbroken).sort(), greeting: greeted, echo: echoed, rtt, transport: client.transport, transports, errors };
    client.close();
    return result;
  })();
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('no greeting, ack and echo within 10 s: state ' + client.state + ', errors ' + errors.join(', '))), 10000),
  );
  return Promise.race([work, timeout]);
};
`;

const page = (head: string, body: string): string =>
  `<!doctype html><html><head><meta charset="utf-8"><title>probe</title><link rel="icon" href="data:,">${head}</head><body>${body}</body></html>`;

const PAGES: Record<string, string> = {
  '/iife.html': page(
    '<script src="/probe.js"></script><script src="/unbroken-realtime.iife.min.js"></script>',
    '<script>window.outcome = probe(Unbroken, {});</script>',
  ),
  '/esm.html': page(
    '<script src="/probe.js"></script>',
    `<script type="module">import * as Unbroken from '/unbroken-realtime.mjs'; window.outcome = probe(Unbroken, {});</script>`,
  ),
  // A browser without EventSource: the client skips SSE without trying it.
  '/no-event-source.html': page(
    '<script>delete window.EventSource;</script><script src="/probe.js"></script><script src="/unbroken-realtime.iife.min.js"></script>',
    `<script>window.outcome = probe(Unbroken, { transports: ['sse', 'long-polling'] });</script>`,
  ),
  '/polyfill.html': page(
    '<script>delete window.EventSource;</script><script src="/event-source-polyfill.js"></script>' +
      '<script src="/probe.js"></script><script src="/unbroken-realtime.iife.min.js"></script>',
    `<script>window.outcome = probe(Unbroken, { transports: ['sse', 'long-polling'], EventSource: EventSourcePolyfill });</script>`,
  ),
};

const FILES: Record<string, string> = {
  '/unbroken-realtime.iife.min.js': 'dist/unbroken-realtime.iife.min.js',
  '/unbroken-realtime.mjs': 'dist/unbroken-realtime.mjs',
  '/event-source-polyfill.js': 'node_modules/event-source-polyfill/src/eventsource.min.js',
};

async function serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://pages').pathname;
  const html = PAGES[path];
  const file = FILES[path];
  if (html !== undefined) response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  else if (path === '/probe.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(PROBE);
  else if (file !== undefined) {
    response.writeHead(200, { 'content-type': 'text/javascript' }).end(await readFile(new URL(file, root)));
  } else response.writeHead(404).end();
}

interface Outcome {
  exports: string[];
  greeting: unknown;
  echo: unknown;
  rtt: number;
  transport: string;
  transports: { transport: string; previous: string | null; reason: string }[];
  errors: string[];
}

describe('the built client in a page', () => {
  let browser: Browser;
  let server: StartedServer;
  let origin: string;

  beforeAll(async () => {
    browser = await launchChromium();
    server = await startServer({ httpHandler: (request, response) => void serve(request, response) });
    server.server.on('connection', (session) => void session.send('world', { event: 'greeting' }));
    server.server.on('message', (data, session) => {
      void session.send({ echo: data instanceof Uint8Array ? { bytes: data.byteLength } : data }, { event: 'echo' });
    });
    origin = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Opens a page and returns what its probe reported; fails on any uncaught page error. */
  async function probe(path: string): Promise<{ outcome: Outcome; globals: Record<string, string> }> {
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (error) => errors.push(error.message));
      await tab.goto(origin + path);
      await tab.waitForFunction(() => 'outcome' in window);
      const outcome = await tab.evaluate(() => (window as unknown as { outcome: Promise<Outcome> }).outcome);
      const globals = await tab.evaluate(() => {
        const names = ['EventSource', 'NativeEventSource', 'EventSourcePolyfill', 'WebSocket'];
        const page = window as unknown as Record<string, unknown>;
        return Object.fromEntries(names.map((name) => [name, typeof page[name]]));
      });
      expect(errors).toEqual([]);
      return { outcome, globals };
    } finally {
      await context.close();
    }
  }

  const expectations = { greeting: 'world', echo: { echo: { hello: 'page' } }, errors: [] };

  it('works as the IIFE through a <script> tag, exposing the global Unbroken', async () => {
    const { outcome } = await probe('/iife.html');
    expect(outcome).toMatchObject({ ...expectations, transport: 'websocket' });
    expect(outcome.exports).toEqual(expect.arrayContaining(['Client', 'UnbrokenError', 'connect', 'isUnbrokenError']));
    expect(outcome.rtt).toBeGreaterThanOrEqual(0);
  });

  it('works as the ESM build through <script type="module">', async () => {
    const { outcome } = await probe('/esm.html');
    expect(outcome).toMatchObject({ ...expectations, transport: 'websocket' });
    expect(outcome.exports).toEqual(expect.arrayContaining(['Client', 'UnbrokenError', 'connect', 'isUnbrokenError']));
  });

  it('goes straight to long polling when the page has no EventSource', async () => {
    const { outcome, globals } = await probe('/no-event-source.html');
    expect(globals.EventSource).toBe('undefined');
    expect(outcome).toMatchObject({ ...expectations, transport: 'long-polling' });
    // SSE was never tried: the first transport is long polling, and nothing failed on the way.
    expect(outcome.transports).toEqual([{ transport: 'long-polling', previous: null, reason: 'initial' }]);
  });

  it('uses SSE through event-source-polyfill passed as the EventSource option', async () => {
    const { outcome, globals } = await probe('/polyfill.html');
    // No native EventSource was left: the polyfill stands in for it.
    expect(globals.NativeEventSource).toBe('undefined');
    expect(globals.EventSourcePolyfill).toBe('function');
    expect(outcome).toMatchObject({ ...expectations, transport: 'sse' });
    expect(outcome.transports).toEqual([{ transport: 'sse', previous: null, reason: 'initial' }]);
  });
});
