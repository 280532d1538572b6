// @ts-check
// A network conditions layer: a real loopback HTTP proxy that sits in front of the reference server
// and breaks the network the way real networks break. The demo puts it between the page and the
// server; the fallback tests use it to force every fallback path.
//
// It works at the HTTP level (node:http parses requests, keep-alive included) and drops to raw TCP
// for WebSocket upgrades, so each request is judged on its own: an SSE stream, a long poll, a POST, an
// upgrade. Nothing in the server knows it is there.
import http from 'node:http';
import net from 'node:net';

/**
 * @typedef {'normal' | 'slow' | 'ws-blocked' | 'ws-hanging' | 'ws-silent' | 'sse-buffered' | 'sse-proxy-buffered' | 'offline'} Condition
 * - normal: pass everything through (no other condition active).
 * - slow: add latency to every request and chunk, and limit bandwidth.
 * - ws-blocked: answer WebSocket upgrades with 503 (a proxy that refuses them).
 * - ws-hanging: accept WebSocket upgrades and never answer them.
 * - ws-silent: let the upgrade succeed, then pass nothing in either direction.
 * - sse-buffered: hold SSE responses until they end (a buffering proxy).
 * - sse-proxy-buffered: buffer SSE responses as nginx does with `proxy_buffering on` and the
 *   `X-Accel-Buffering` header ignored: bytes pass on only when PROXY_BUFFER_BYTES are held, or when
 *   the response ends. A busy stream opens and flows, in bursts, each event late by up to the time
 *   it takes to fill the buffer.
 * - offline: refuse every connection and cut the open ones.
 *
 * Conditions combine (e.g. `ws-blocked` with `sse-buffered`, `slow` with anything); of the three
 * WebSocket conditions, the first of blocked, hanging, silent wins.
 */

/** @type {readonly Condition[]} */
export const CONDITIONS = ['normal', 'slow', 'ws-blocked', 'ws-hanging', 'ws-silent', 'sse-buffered', 'sse-proxy-buffered', 'offline'];

/** The buffer of `sse-proxy-buffered`: nginx's `proxy_buffer_size` is one page (4 or 8 KB); 8 KB here. */
export const PROXY_BUFFER_BYTES = 8 * 1024;

const SLOW_LATENCY_MS = 400;
const SLOW_BYTES_PER_SECOND = 32 * 1024;

/** @param {unknown} value */
const isCondition = (value) => CONDITIONS.includes(/** @type {Condition} */ (value));

/**
 * @typedef {object} NetworkConditions
 * @property {number} port the proxy's port
 * @property {(next: Condition) => void} setCondition makes `next` the only active condition (`normal`: none)
 * @property {(next: readonly Condition[]) => void} setConditions makes exactly these active (`normal` is ignored)
 * @property {Condition} condition the condition switched on last among the active ones, or `normal`
 * @property {Condition[]} active every active condition, in the order they were switched on; empty when normal
 * @property {() => void} dropConnections cuts every open connection now
 * @property {() => void} freezeConnections makes every open connection pass nothing from now on,
 *   without closing it — later requests on the same connection included: a link that died silently
 *   (a NAT or middlebox that forgot the flow). New connections pass.
 * @property {(listener: () => void) => () => void} onChange calls `listener` after each change of conditions
 * @property {(port: number) => void} retarget points the proxy at the server's new port after a restart
 * @property {() => Promise<void>} close
 */

/**
 * Starts the proxy on 127.0.0.1 (or `listen.host`), at a free port unless `listen.port` is given.
 *
 * @param {{ target: { host?: string, port: number }, controlPath?: string, listen?: { port?: number, host?: string } }} options
 *   controlPath: when set, requests to it are never subject to the conditions: `GET` returns
 *   `{ condition, active, conditions }`; `POST` with `{ condition }` (one condition), `{ active: [...] }`
 *   (several), `{ drop: true }` or `{ freeze: true }` changes them and returns the same. It answers
 *   any origin (CORS), so a page served elsewhere on loopback can drive it too.
 * @returns {Promise<NetworkConditions>}
 */
export async function startNetworkConditions({ target, controlPath, listen = {} }) {
  const targetHost = target.host ?? '127.0.0.1';
  /** Active conditions, in the order they were switched on. @type {Set<Condition>} */
  let active = new Set();
  /** @param {Condition} name */
  const is = (name) => active.has(name);
  /** Every client-side socket, so a condition change or a drop can cut them. @type {Set<net.Socket>} */
  const sockets = new Set();
  /** Sockets serving a control request right now: never cut, or the answer could not be written. @type {Set<net.Socket>} */
  const controlSockets = new Set();
  /** Upgraded WebSocket tunnels, whose bytes this proxy pumps itself. @type {Set<{ client: import('node:stream').Duplex, upstream: net.Socket, silent: boolean }>} */
  const tunnels = new Set();
  /** Proxied HTTP exchanges in flight; a frozen one passes nothing more and never ends. @type {Set<{ frozen: boolean }>} */
  const exchanges = new Set();
  /** Client-side connections frozen for good: a request that arrives on one is never answered. @type {WeakSet<net.Socket>} */
  const frozenSockets = new WeakSet();
  /** @type {Set<() => void>} */
  const listeners = new Set();

  const delay = () => new Promise((resolve) => setTimeout(resolve, is('slow') ? SLOW_LATENCY_MS : 0));

  /**
   * Per destination: when its last chunk leaves, and the chain that keeps its chunks in order.
   * @type {WeakMap<import('node:stream').Writable, { releaseAt: number, chain: Promise<void> }>}
   */
  const pacing = new WeakMap();

  /**
   * Writes a chunk in order behind the ones before it; under `slow`, each chunk leaves after the added
   * latency and no faster than the bandwidth allows.
   * @param {import('node:stream').Writable} to
   * @param {Buffer} chunk
   */
  function pacedWrite(to, chunk) {
    let state = pacing.get(to);
    if (!state) {
      state = { releaseAt: 0, chain: Promise.resolve() };
      pacing.set(to, state);
    }
    const now = Date.now();
    const releaseAt = is('slow')
      ? Math.max(now + SLOW_LATENCY_MS, state.releaseAt) + (chunk.length / SLOW_BYTES_PER_SECOND) * 1000
      : Math.max(now, state.releaseAt);
    state.releaseAt = releaseAt;
    state.chain = state.chain
      .then(() => (releaseAt > Date.now() ? new Promise((resolve) => setTimeout(resolve, releaseAt - Date.now())) : undefined))
      .then(() => {
        if (!to.destroyed && !to.writableEnded) to.write(chunk);
      });
    return state.chain;
  }

  /**
   * Ends a destination after every chunk queued for it has been written.
   * @param {import('node:stream').Writable} to
   * @param {Buffer | undefined} last
   */
  function pacedEnd(to, last) {
    const state = pacing.get(to);
    const chain = last ? pacedWrite(to, last) : (state?.chain ?? Promise.resolve());
    void chain.then(() => to.end());
  }

  /** @param {string | undefined} url */
  function isControl(url) {
    return controlPath !== undefined && (url ?? '').split('?')[0] === controlPath;
  }

  function describe() {
    return { condition: current(), active: [...active], conditions: CONDITIONS };
  }

  /**
   * A control exchange closes its connection: a page's realtime requests share the browser's
   * connection pool with its control requests, and a connection the page reused after a control
   * answer would be spared by freezeConnections() and dropConnections(), which never touch a control
   * connection.
   */
  const CONTROL_CONNECTION = { connection: 'close' };

  /** @param {http.ServerResponse} response @param {number} status @param {unknown} body */
  function answer(response, status, body) {
    response
      .writeHead(status, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'access-control-allow-origin': '*',
        ...CONTROL_CONNECTION,
      })
      .end(JSON.stringify(body));
  }

  /** @param {http.IncomingMessage} request @param {http.ServerResponse} response */
  async function handleControl(request, response) {
    const socket = request.socket;
    controlSockets.add(socket);
    response.on('close', () => controlSockets.delete(socket));
    if (request.method === 'OPTIONS') {
      response
        .writeHead(204, {
          'access-control-allow-origin': '*',
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'content-type',
          'access-control-max-age': '600',
          ...CONTROL_CONNECTION,
        })
        .end();
      return;
    }
    if (request.method === 'POST') {
      let body = '';
      for await (const chunk of request) body += chunk;
      /** @type {{ condition?: unknown, active?: unknown, drop?: unknown, freeze?: unknown }} */
      let command;
      try {
        command = JSON.parse(body || '{}');
      } catch {
        return answer(response, 400, { error: 'expects a JSON body' });
      }
      if (command.condition !== undefined && !isCondition(command.condition)) {
        return answer(response, 400, { error: `condition must be one of ${CONDITIONS.join(', ')}, got ${JSON.stringify(command.condition)}` });
      }
      if (command.active !== undefined && !(Array.isArray(command.active) && command.active.every(isCondition))) {
        return answer(response, 400, { error: `active must be an array of ${CONDITIONS.join(', ')}, got ${JSON.stringify(command.active)}` });
      }
      if (command.condition !== undefined) setCondition(/** @type {Condition} */ (command.condition));
      if (command.active !== undefined) setConditions(/** @type {Condition[]} */ (command.active));
      if (command.freeze === true) freezeConnections();
      if (command.drop === true) dropConnections();
    }
    answer(response, 200, describe());
  }

  const server = http.createServer(async (request, response) => {
    if (isControl(request.url)) return void handleControl(request, response);
    // Offline is decided per request rather than per connection, so the control endpoint keeps working.
    if (is('offline')) return void request.socket.destroy();
    // A dead flow: whatever the browser sends on it (the next long poll, a POST) goes nowhere.
    if (frozenSockets.has(request.socket)) return void request.resume();
    await delay();
    const upstreamRequest = http.request({
      host: targetHost,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: request.headers,
    });
    const exchange = { frozen: false };
    exchanges.add(exchange);
    response.on('close', () => exchanges.delete(exchange));
    // A frozen exchange passes nothing, not even the server's side failing.
    const broken = () => void (exchange.frozen || response.destroy());
    upstreamRequest.on('error', broken);
    request.on('data', (chunk) => void (exchange.frozen || pacedWrite(upstreamRequest, chunk)));
    request.on('end', () => pacedEnd(upstreamRequest, undefined));
    upstreamRequest.on('response', (upstreamResponse) => {
      const isEventStream = String(upstreamResponse.headers['content-type'] ?? '').startsWith('text/event-stream');
      response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
      // A buffering proxy holds the whole body until the upstream response ends.
      const buffered = isEventStream && is('sse-buffered');
      // Such a proxy passes the response head at once and holds the body: the stream opens, and
      // then no event arrives (what the client calls `buffered`).
      if (buffered) response.flushHeaders();
      // A proxy that buffers by size holds bytes until its buffer is full, then passes the buffer on.
      const proxyBuffered = isEventStream && !buffered && is('sse-proxy-buffered');
      if (proxyBuffered) response.flushHeaders();
      /** @type {Buffer[]} */
      const held = [];
      let heldBytes = 0;
      upstreamResponse.on('data', (chunk) => {
        if (exchange.frozen) return;
        if (buffered) held.push(chunk);
        else if (proxyBuffered) {
          held.push(chunk);
          heldBytes += chunk.length;
          if (heldBytes >= PROXY_BUFFER_BYTES) {
            void pacedWrite(response, Buffer.concat(held));
            held.length = 0;
            heldBytes = 0;
          }
        } else void pacedWrite(response, chunk);
      });
      upstreamResponse.on('end', () => {
        if (!exchange.frozen) pacedEnd(response, buffered || proxyBuffered ? Buffer.concat(held) : undefined);
      });
      upstreamResponse.on('error', broken);
      response.on('close', () => upstreamResponse.destroy());
    });
  });

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  server.on('upgrade', (request, client, head) => {
    if (is('offline')) return void client.destroy();
    if (is('ws-blocked')) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (is('ws-hanging')) return; // held open, never answered: the socket stays in `sockets`
    const upstream = net.connect(target.port, targetHost);
    const tunnel = { client, upstream, silent: is('ws-silent') };
    tunnels.add(tunnel);
    const teardown = () => {
      tunnels.delete(tunnel);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', teardown).on('error', teardown);
    // A silent tunnel passes nothing, not even the server closing it: the browser's side stays open
    // until the browser gives up on it.
    const upstreamGone = () => (tunnel.silent ? upstream.destroy() : teardown());
    upstream.on('close', upstreamGone).on('error', upstreamGone);
    upstream.on('connect', () => {
      let requestHead = `${request.method} ${request.url} HTTP/1.1\r\n`;
      for (let i = 0; i < request.rawHeaders.length; i += 2) {
        requestHead += `${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}\r\n`;
      }
      upstream.write(`${requestHead}\r\n`);
      if (head.length > 0) upstream.write(head);
    });
    // Downstream: the 101 response head always passes; after it, a silent tunnel passes nothing.
    let responseHeadDone = false;
    let pending = Buffer.alloc(0);
    upstream.on('data', (/** @type {Buffer} */ chunk) => {
      if (!responseHeadDone) {
        pending = Buffer.concat([pending, chunk]);
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        responseHeadDone = true;
        void pacedWrite(client, pending.subarray(0, end + 4));
        chunk = pending.subarray(end + 4);
        if (chunk.length === 0) return;
      }
      if (!tunnel.silent) void pacedWrite(client, chunk);
    });
    client.on('data', (/** @type {Buffer} */ chunk) => {
      if (!tunnel.silent) void pacedWrite(upstream, chunk);
    });
  });

  function dropConnections() {
    for (const tunnel of tunnels) {
      tunnel.client.destroy();
      tunnel.upstream.destroy();
    }
    tunnels.clear();
    for (const socket of sockets) if (!controlSockets.has(socket)) socket.destroy();
  }

  function freezeConnections() {
    for (const tunnel of tunnels) tunnel.silent = true;
    for (const exchange of exchanges) exchange.frozen = true;
    for (const socket of sockets) if (!controlSockets.has(socket)) frozenSockets.add(socket);
  }

  /** @returns {Condition} */
  function current() {
    let last = /** @type {Condition} */ ('normal');
    for (const name of active) last = name;
    return last;
  }

  /** @param {readonly Condition[]} next */
  function setConditions(next) {
    const previous = active;
    active = new Set(next.filter((name) => name !== 'normal'));
    // A change of condition applies to new requests; when a condition that refuses or breaks things
    // comes on, open connections are cut so the client meets it at once. ws-silent therefore only
    // silences new tunnels, like a real middlebox that starts misbehaving on new flows. Lifting a
    // condition cuts nothing: the client finds its way back by itself.
    if ([...active].some((name) => name !== 'slow' && !previous.has(name))) dropConnections();
    for (const listener of listeners) listener();
  }

  /** @param {Condition} next */
  function setCondition(next) {
    setConditions([next]);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, listen.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
  const address = /** @type {net.AddressInfo} */ (server.address());

  return {
    port: address.port,
    setCondition,
    setConditions,
    get condition() {
      return current();
    },
    get active() {
      return [...active];
    },
    dropConnections,
    freezeConnections,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    retarget(port) {
      target = { ...target, port };
    },
    close() {
      active = new Set();
      controlSockets.clear();
      dropConnections();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
