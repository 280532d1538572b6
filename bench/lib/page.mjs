// @ts-check
/**
 * Hosts the benchmark clients (bench/lib/drivers.mjs) in a page, with what a browser has built in:
 * the native WebSocket, EventSource and fetch, the `<script>` bundle of unbroken (global `Unbroken`)
 * and socket.io-client's browser bundle (global `io`). The runner calls `window.bench.<method>()`.
 */
import { createBench } from './drivers.mjs';

/**
 * @typedef {{ on(event: string, listener: (payload: never) => void): () => void,
 *   send(data: unknown): Promise<void>, close(): void, readonly transport: string | null }} PageClient
 */
const page = /** @type {{ Unbroken: { connect(url: string, options: Record<string, unknown>): PageClient },
 *   io(url: string, options: Record<string, unknown>): import('./drivers.mjs').SocketIoLike, bench?: unknown }} */ (
  /** @type {unknown} */ (globalThis)
);

/** @type {import('./drivers.mjs').BenchEnvironment} */
const env = {
  connect: (url, options) => {
    const client = page.Unbroken.connect(url, options);
    return {
      onMessage: (event, listener) => client.on(event, listener),
      onClose: (event, listener) => client.on(event, listener),
      onGap: (event, listener) => client.on(event, listener),
      send: (data) => client.send(data),
      close: () => client.close(),
      transport: () => client.transport,
    };
  },
  io: (url, options) => page.io(url, options),
  WebSocket: /** @type {import('./drivers.mjs').BenchEnvironment['WebSocket']} */ (/** @type {unknown} */ (WebSocket)),
  EventSource: /** @type {import('./drivers.mjs').BenchEnvironment['EventSource']} */ (/** @type {unknown} */ (EventSource)),
  fetch: globalThis.fetch.bind(globalThis),
  unbrokenOptions: {},
  now: () => performance.now(),
};

page.bench = createBench(env);
