// @ts-check
/**
 * Hosts the benchmark clients (bench/lib/drivers.mjs) in a Node process of their own, with the
 * implementations a Node application injects: `ws` as WebSocket, the `eventsource` package as
 * EventSource, Node's fetch, and the built unbroken client (dist/unbroken-realtime.mjs). The runner calls its
 * methods over IPC: `{ id, method, args }` → `{ id, result }` or `{ id, error }`.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { EventSource } from 'eventsource';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { createBench } from './drivers.mjs';

// The built client, as a user gets it: the runner's snapshot of dist/ (UNBROKEN_BENCH_DIST), else
// dist/ itself. Typed from its source so that type-checking needs no build.
const dist = process.env.UNBROKEN_BENCH_DIST ? pathToFileURL(`${process.env.UNBROKEN_BENCH_DIST}/`) : new URL('../../dist/', import.meta.url);
const { connect } = /** @type {typeof import('../../src/client/index.js')} */ (await import(new URL('unbroken-realtime.mjs', dist).href));

/** @type {import('./drivers.mjs').BenchEnvironment} */
const env = {
  connect: (url, options) => {
    const client = connect(url, options);
    return {
      onMessage: (event, listener) => client.on(event, listener),
      onClose: (event, listener) => client.on(event, listener),
      onGap: (event, listener) => client.on(event, listener),
      send: (data) => client.send(/** @type {import('../../src/client/index.js').Sendable} */ (data)),
      close: () => client.close(),
      transport: () => client.transport,
    };
  },
  io: (url, options) => io(url, options),
  WebSocket: /** @type {import('./drivers.mjs').BenchEnvironment['WebSocket']} */ (/** @type {unknown} */ (WebSocket)),
  EventSource: /** @type {import('./drivers.mjs').BenchEnvironment['EventSource']} */ (/** @type {unknown} */ (EventSource)),
  fetch: globalThis.fetch,
  unbrokenOptions: { WebSocket, EventSource, fetch: globalThis.fetch },
  now: () => performance.now(),
};

const bench = createBench(env);
/** @type {Record<string, (...args: never[]) => unknown>} */
const methods = bench;

process.on('message', async (/** @type {{ id: number, method: string, args: never[] }} */ message) => {
  try {
    const method = methods[message.method];
    if (!method) throw new Error(`unknown method ${message.method}`);
    process.send?.({ id: message.id, result: await method(...message.args) });
  } catch (error) {
    process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
