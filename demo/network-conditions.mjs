// A network conditions layer: a real loopback HTTP proxy that sits in front of the reference server
// and breaks the network the way real networks break. The demo puts it between the page and the
// server; the fallback tests use it to force every fallback path (test/helpers/network-proxy.ts).
//
// It works at the HTTP level (node:http parses requests, keep-alive included) and drops to raw TCP
// for WebSocket upgrades, so each request is judged on its own: an SSE stream, a long poll, a POST, an
// upgrade. Nothing in the server knows it is there.
import http from 'node:http';
import net from 'node:net';

/**
 * @typedef {'normal' | 'slow' | 'ws-blocked' | 'ws-hanging' | 'ws-silent' | 'sse-buffered' | 'offline'} Condition
 * - normal: pass everything through.
 * - slow: add latency to every request and chunk, and limit bandwidth.
 * - ws-blocked: answer WebSocket upgrades with 503 (a proxy that refuses them).
 * - ws-hanging: accept WebSocket upgrades and never answer them.
 * - ws-silent: let the upgrade succeed, then pass nothing in either direction.
 * - sse-buffered: hold SSE responses until they end (a buffering proxy).
 * - offline: refuse every connection and cut the open ones.
 */

/** @type {readonly Condition[]} */
export const CONDITIONS = ['normal', 'slow', 'ws-blocked', 'ws-hanging', 'ws-silent', 'sse-buffered', 'offline'];

const SLOW_LATENCY_MS = 400;
const SLOW_BYTES_PER_SECOND = 32 * 1024;

/**
 * @param {{ target: { host?: string, port: number }, controlPath?: string }} options
 *   controlPath: when set, `GET` returns `{ condition }` and `POST` with `{ condition }` or
 *   `{ drop: true }` changes it; these requests are never subject to the conditions.
 */
export async function startNetworkConditions({ target, controlPath }) {
  const targetHost = target.host ?? '127.0.0.1';
  /** @type {Condition} */
  let condition = 'normal';
  /** Every client-side socket, so a condition change or a drop can cut them. */
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  /** Upgraded WebSocket tunnels, whose bytes this proxy pumps itself. */
  /** @type {Set<{ client: net.Socket, upstream: net.Socket, silent: boolean }>} */
  const tunnels = new Set();
  /** @type {Set<() => void>} */
  const listeners = new Set();

  const delay = () => new Promise((resolve) => setTimeout(resolve, condition === 'slow' ? SLOW_LATENCY_MS : 0));

  /**
   * Per destination: when its last chunk leaves, and the chain that keeps its chunks in order.
   * @type {WeakMap<import('node:stream').Writable, { releaseAt: number, chain: Promise<void> }>}
   */
  const pacing = new WeakMap();

  /**
   * Writes a chunk in order behind the ones before it; under `slow`, each chunk leaves after the added
   * latency and no faster than the bandwidth allows.
   */
  function pacedWrite(/** @type {import('node:stream').Writable} */ to, /** @type {Buffer} */ chunk) {
    let state = pacing.get(to);
    if (!state) {
      state = { releaseAt: 0, chain: Promise.resolve() };
      pacing.set(to, state);
    }
    const now = Date.now();
    const releaseAt =
      condition === 'slow'
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

  /** Ends a destination after every chunk queued for it has been written. */
  function pacedEnd(/** @type {import('node:stream').Writable} */ to, /** @type {Buffer | undefined} */ last) {
    const state = pacing.get(to);
    const chain = last ? pacedWrite(to, last) : (state?.chain ?? Promise.resolve());
    void chain.then(() => to.end());
  }

  function isControl(/** @type {string | undefined} */ url) {
    return controlPath !== undefined && (url ?? '').split('?')[0] === controlPath;
  }

  async function handleControl(/** @type {http.IncomingMessage} */ request, /** @type {http.ServerResponse} */ response) {
    if (request.method === 'POST') {
      let body = '';
      for await (const chunk of request) body += chunk;
      /** @type {{ condition?: string, drop?: boolean }} */
      let command = {};
      try {
        command = JSON.parse(body || '{}');
      } catch {
        response.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"expects JSON"}');
        return;
      }
      if (command.condition !== undefined) {
        if (!CONDITIONS.includes(/** @type {Condition} */ (command.condition))) {
          response
            .writeHead(400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: `condition must be one of ${CONDITIONS.join(', ')}` }));
          return;
        }
        setCondition(/** @type {Condition} */ (command.condition));
      }
      if (command.drop) dropConnections(request.socket);
    }
    response
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify({ condition, conditions: CONDITIONS }));
  }

  const server = http.createServer(async (request, response) => {
    if (isControl(request.url)) return void handleControl(request, response);
    if (condition === 'offline') return void request.socket.destroy();
    await delay();
    const upstreamRequest = http.request({
      host: targetHost,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: request.headers,
    });
    upstreamRequest.on('error', () => response.destroy());
    request.on('data', (chunk) => void pacedWrite(upstreamRequest, chunk));
    request.on('end', () => pacedEnd(upstreamRequest, undefined));
    upstreamRequest.on('response', (upstreamResponse) => {
      const isEventStream = String(upstreamResponse.headers['content-type'] ?? '').startsWith('text/event-stream');
      response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
      // A buffering proxy holds the whole body until the upstream response ends.
      const buffered = isEventStream && condition === 'sse-buffered';
      /** @type {Buffer[]} */
      const held = [];
      upstreamResponse.on('data', (chunk) => {
        if (buffered) held.push(chunk);
        else void pacedWrite(response, chunk);
      });
      upstreamResponse.on('end', () => pacedEnd(response, buffered ? Buffer.concat(held) : undefined));
      upstreamResponse.on('error', () => response.destroy());
      response.on('close', () => upstreamResponse.destroy());
    });
  });

  server.on('connection', (socket) => {
    if (condition === 'offline') return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  server.on('upgrade', (request, client, head) => {
    if (condition === 'offline') return void client.destroy();
    if (condition === 'ws-blocked') {
      client.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (condition === 'ws-hanging') return; // held open, never answered: the socket stays in `sockets`
    const upstream = net.connect(target.port, targetHost);
    const tunnel = { client, upstream, silent: condition === 'ws-silent' };
    tunnels.add(tunnel);
    const teardown = () => {
      tunnels.delete(tunnel);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', teardown).on('error', teardown);
    upstream.on('close', teardown).on('error', teardown);
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
    upstream.on('data', (chunk) => {
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
    client.on('data', (chunk) => {
      if (!tunnel.silent) void pacedWrite(upstream, chunk);
    });
  });

  function dropConnections(/** @type {net.Socket | undefined} */ except) {
    for (const tunnel of tunnels) {
      tunnel.client.destroy();
      tunnel.upstream.destroy();
    }
    tunnels.clear();
    for (const socket of sockets) if (socket !== except) socket.destroy();
  }

  /** @param {Condition} next */
  function setCondition(next) {
    const previous = condition;
    condition = next;
    // A change of condition applies to new requests; open connections that the new condition would
    // have refused are cut so the client meets it at once, and ws-silent only silences new tunnels
    // after a drop, like a real middlebox that starts misbehaving on new flows.
    if (next === 'offline' || (previous !== next && next !== 'normal' && next !== 'slow')) dropConnections();
    for (const listener of listeners) listener();
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {net.AddressInfo} */ (server.address());

  return {
    /** The proxy's port on 127.0.0.1. */
    port: address.port,
    /** @param {Condition} next */
    setCondition,
    get condition() {
      return condition;
    },
    /** Cuts every open connection now. */
    dropConnections: () => dropConnections(),
    /** @param {() => void} listener called after each condition change */
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** @param {number} port the server's new port after a restart */
    retarget(port) {
      target = { ...target, port };
    },
    close() {
      dropConnections();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
