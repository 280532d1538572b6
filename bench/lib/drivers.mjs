// @ts-check
/**
 * The client side of every benchmark, written once for Node and Chromium: the environment (which
 * WebSocket, EventSource, fetch, unbroken `connect` and socket.io `io` to use) is injected. In Node,
 * bench/lib/node-client.mjs hosts it in its own process; in Chromium, bench/lib/page.mjs does.
 *
 * Every row speaks the same application protocol to its server (bench/lib/workload.mjs): a welcome
 * message on connection, `push` and `kill` commands, and echoes.
 */
import { echoMessage } from './workload.mjs';

/**
 * The part of unbroken's client the benchmarks use.
 * @typedef {object} UnbrokenClientLike
 * @property {(event: 'message', listener: (message: { data: unknown }) => void) => unknown} onMessage
 * @property {(event: 'close', listener: (closed: { error: { code: string, message: string } | null }) => void) => unknown} onClose
 * @property {(event: 'gap', listener: (gap: { reason: string, lastEventId: string, resumeEventId: string }) => void) => unknown} onGap
 * @property {(data: unknown) => Promise<void>} send
 * @property {() => void} close
 * @property {() => string | null} transport
 */
/**
 * The part of a socket.io-client socket the benchmarks use.
 * @typedef {{ on(event: string, listener: (data: unknown) => void): unknown,
 *   emit(event: string, data: unknown): unknown, close(): unknown }} SocketIoLike
 */
/**
 * The part of a WebSocket (DOM or `ws`) the benchmarks use.
 * @typedef {{ onmessage: ((event: { data: unknown }) => void) | null, onerror: (() => void) | null,
 *   onclose: (() => void) | null, send(data: string): void, close(): void }} WebSocketLike
 */
/**
 * The part of an EventSource (DOM or the `eventsource` package) the benchmarks use.
 * @typedef {{ onmessage: ((event: { data: string }) => void) | null, close(): void }} EventSourceLike
 */
/**
 * What the clients are made from, handed over by the host (Node process or page).
 * @typedef {object} BenchEnvironment
 * @property {(url: string, options: Record<string, unknown>) => UnbrokenClientLike} connect unbroken's
 *   `connect`, adapted to {@link UnbrokenClientLike}
 * @property {(url: string, options: Record<string, unknown>) => SocketIoLike} io socket.io-client's `io`
 * @property {new (url: string) => WebSocketLike} WebSocket
 * @property {new (url: string) => EventSourceLike} EventSource
 * @property {typeof fetch} fetch
 * @property {Record<string, unknown>} unbrokenOptions options every unbroken client gets (injected
 *   implementations in Node; nothing in a browser)
 * @property {() => number} now a monotonic clock in ms
 */
/**
 * A row of the tables: which client, over which transport, to which URL.
 * - `unbroken`: our client with `transports` (the default order when omitted), at `url` + `/realtime`;
 * - `ws`: a raw WebSocket, one JSON message per frame; `ws-batch`: the same with a server that sends
 *   every message of one tick in one frame (a JSON array);
 * - `sse`: a raw EventSource downstream, one `fetch` POST per upstream message;
 * - `socketio`: socket.io-client with one transport.
 * @typedef {{ kind: 'unbroken', url: string, transports?: string[] }
 *   | { kind: 'ws' | 'ws-batch', url: string } | { kind: 'sse' | 'poll', url: string }
 *   | { kind: 'socketio', url: string, transport: 'websocket' | 'polling' }} RowSpec
 */
/**
 * One open connection of a row.
 * @typedef {{ send(value: unknown): void, close(): void, transport(): string }} Link
 */

/** How long a connection may take before the row counts as unavailable. */
const OPEN_TIMEOUT_MS = 10_000;
/** How long any single measurement may take before it counts as failed. */
const PHASE_TIMEOUT_MS = 60_000;

/**
 * Sends one upstream message of a hand-written baseline (raw EventSource, raw long polling): one POST
 * per message, as such a client does.
 * @param {BenchEnvironment} env
 * @param {{ url: string }} row
 * @param {string} id
 * @param {unknown} value
 */
function postCommand(env, row, id, value) {
  void env
    .fetch(`${row.url}/raw/cmd?c=${id}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(value) })
    .then((response) => response.arrayBuffer())
    .catch(() => undefined);
}

/**
 * @param {BenchEnvironment} env
 */
export function createBench(env) {
  /** Receives every message of the current connection. */
  let onMessage = (/** @type {unknown} */ _data) => {};
  /** Receives a failure of the current connection that ends it for good. */
  let onFail = (/** @type {string} */ _reason) => {};
  /** @type {Link | null} */
  let link = null;

  /**
   * Opens a connection of `row`; its messages go to `onMessage`.
   * @param {RowSpec} row
   * @returns {Link}
   */
  function openLink(row) {
    const deliver = (/** @type {unknown} */ data) => onMessage(data);
    const fail = (/** @type {string} */ reason) => onFail(reason);
    switch (row.kind) {
      case 'unbroken': {
        /** @type {Record<string, unknown>} */
        const options = { ...env.unbrokenOptions };
        if (row.transports) options.transports = row.transports;
        const client = env.connect(`${row.url}/realtime`, options);
        client.onMessage('message', ({ data }) => deliver(data));
        client.onClose('close', ({ error }) => error && fail(`${error.code}: ${error.message}`));
        // Messages the server could no longer replay: a case that outran the store's retention, which
        // would otherwise surface only as a sequence number out of order.
        client.onGap('gap', ({ reason, lastEventId, resumeEventId }) => fail(`gap (${reason}) after ${lastEventId || 'the start'}, resumed after ${resumeEventId}`));
        return {
          send: (value) => void client.send(value).catch(() => undefined),
          close: () => client.close(),
          transport: () => client.transport() ?? 'none',
        };
      }
      case 'ws':
      case 'ws-batch': {
        const batched = row.kind === 'ws-batch';
        const ws = new env.WebSocket(`${row.url.replace(/^http/, 'ws')}/raw/${batched ? 'batch' : 'ws'}`);
        let closing = false;
        ws.onmessage = batched
          ? (event) => {
              for (const data of /** @type {unknown[]} */ (JSON.parse(String(event.data)))) deliver(data);
            }
          : (event) => deliver(JSON.parse(String(event.data)));
        ws.onerror = () => undefined;
        ws.onclose = () => closing || fail('the WebSocket closed');
        return {
          send: (value) => ws.send(JSON.stringify(value)),
          close: () => {
            closing = true;
            ws.close();
          },
          transport: () => 'websocket',
        };
      }
      case 'sse': {
        const id = Math.random().toString(36).slice(2);
        const source = new env.EventSource(`${row.url}/raw/sse?c=${id}`);
        source.onmessage = (event) => deliver(JSON.parse(event.data));
        return {
          send: (value) => postCommand(env, row, id, value),
          close: () => source.close(),
          transport: () => 'sse',
        };
      }
      case 'poll': {
        // Plain long polling as one would write it by hand: one GET at a time from the last id
        // received, one POST per upstream message.
        const id = Math.random().toString(36).slice(2);
        let after = 0;
        let closed = false;
        const controller = new AbortController();
        const poll = async () => {
          while (!closed) {
            try {
              const response = await env.fetch(`${row.url}/raw/poll?c=${id}&after=${after}`, { signal: controller.signal });
              const entries = /** @type {{ id: number, data: unknown }[]} */ (await response.json());
              for (const entry of entries) {
                after = entry.id;
                deliver(entry.data);
              }
            } catch (error) {
              if (!closed) fail(`the poll failed: ${error instanceof Error ? error.message : String(error)}`);
              return;
            }
          }
        };
        void poll();
        return {
          send: (value) => postCommand(env, row, id, value),
          close: () => {
            closed = true;
            controller.abort();
          },
          transport: () => 'long-polling',
        };
      }
      case 'socketio': {
        const socket = env.io(row.url, { transports: [row.transport], forceNew: true, upgrade: false });
        socket.on('m', deliver);
        return {
          send: (value) => socket.emit('m', value),
          close: () => socket.close(),
          transport: () => row.transport,
        };
      }
    }
  }

  /**
   * Resolves with the first value `check` returns that is not undefined, for each message; rejects
   * after `timeout` ms or when the connection fails for good.
   * @template T
   * @param {(data: Record<string, unknown>) => T | undefined} check
   * @param {number} timeout
   * @param {string} what
   * @returns {Promise<T>}
   */
  function until(check, timeout, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        onMessage = () => {};
        reject(new Error(`timeout: ${what} took over ${timeout} ms`));
      }, timeout);
      onFail = (reason) => {
        clearTimeout(timer);
        reject(new Error(`failed: ${reason}`));
      };
      onMessage = (data) => {
        if (typeof data !== 'object' || data === null) return;
        const result = check(/** @type {Record<string, unknown>} */ (data));
        if (result === undefined) return;
        clearTimeout(timer);
        onMessage = () => {};
        resolve(result);
      };
    });
  }

  /**
   * Opens a connection and waits for its first message (the welcome).
   * @param {RowSpec} row
   * @param {number} [timeout]
   * @returns {Promise<{ ms: number, transport: string }>}
   */
  async function open(row, timeout = OPEN_TIMEOUT_MS) {
    close();
    const start = env.now();
    const welcome = until((data) => (data.welcome === true ? true : undefined), timeout, 'the first message');
    link = openLink(row);
    try {
      await welcome;
    } catch (error) {
      close();
      throw error;
    }
    return { ms: env.now() - start, transport: link.transport() };
  }

  function close() {
    link?.close();
    link = null;
    onMessage = () => {};
    onFail = () => {};
  }

  /** @returns {Link} */
  function current() {
    if (!link) throw new Error('no connection: call open() first');
    return link;
  }

  return {
    open,
    close,

    /**
     * Connect time: `count` connections one after the other, each until its welcome, then closed.
     * @param {RowSpec} row
     * @param {number} count
     * @returns {Promise<number[]>} ms of each
     */
    async connects(row, count) {
      /** @type {number[]} */
      const times = [];
      for (let i = 0; i < count; i++) {
        times.push((await open(row)).ms);
        close();
      }
      return times;
    },

    /**
     * Push throughput: asks for `n` messages and times the command until the last arrives, checking
     * that every one arrived once, in order.
     * @param {number} n
     * @param {number} [timeout] ms; longer for a server whose store is slower than the default allows for
     * @returns {Promise<{ ms: number }>}
     */
    async throughput(n, timeout = PHASE_TIMEOUT_MS) {
      const l = current();
      let next = 0;
      /** @type {string | undefined} */
      let error;
      const done = until(
        (data) => {
          if (typeof data.seq !== 'number') return undefined;
          if (data.seq !== next && error === undefined) error = `expected seq ${next}, got ${data.seq}`;
          next = data.seq + 1;
          return next === n ? true : undefined;
        },
        timeout,
        `receiving ${n} messages`,
      );
      const start = env.now();
      l.send({ cmd: 'push', n });
      await done;
      const ms = env.now() - start;
      if (error) throw new Error(error);
      return { ms };
    },

    /**
     * Round-trip latency: `warmup` then `n` sequential send → echo round trips.
     * @param {number} n
     * @param {number} warmup
     * @returns {Promise<number[]>} ms of each measured round trip
     */
    async rtt(n, warmup) {
      const l = current();
      /** @type {number[]} */
      const samples = [];
      for (let i = 0; i < warmup + n; i++) {
        const echoed = until((data) => (data.echo === i ? true : undefined), PHASE_TIMEOUT_MS, `echo ${i}`);
        const start = env.now();
        l.send(echoMessage(i));
        await echoed;
        if (i >= warmup) samples.push(env.now() - start);
      }
      return samples;
    },

    /**
     * Upstream burst: `n` sends in one synchronous loop, until every echo came back.
     * @param {number} n
     * @returns {Promise<{ ms: number }>}
     */
    async burst(n) {
      const l = current();
      let seen = 0;
      const done = until((data) => (typeof data.echo === 'number' && ++seen === n ? true : undefined), PHASE_TIMEOUT_MS, `${n} echoes`);
      const start = env.now();
      for (let i = 0; i < n; i++) l.send(echoMessage(i));
      await done;
      return { ms: env.now() - start };
    },

    /**
     * Resume: asks the server to cut the connection and to send a message while the client is away;
     * times the command until that message arrives.
     * @param {number} timeout
     * @returns {Promise<{ ms: number, transport: string }>}
     */
    async resume(timeout) {
      const l = current();
      const replayed = until((data) => (data.replayed === true ? true : undefined), timeout, 'the replayed message');
      const start = env.now();
      l.send({ cmd: 'kill' });
      await replayed;
      return { ms: env.now() - start, transport: l.transport() };
    },
  };
}

/** @typedef {ReturnType<typeof createBench>} Bench */
