import { CloseCode, Endpoint, PROTOCOL_VERSION, QueryParam, encodeBatch } from '../../protocol/index.js';
import type { UnbrokenError } from '../errors.js';
import { endpointAt } from '../options.js';
import {
  decodeUnit,
  oversize,
  type InboundFrame,
  type TransportDefinition,
  type TransportFactory,
  type UpgradeProbe,
  type WebSocketConstructor,
  type WebSocketLike,
} from '../transport.js';

/**
 * The WebSocket transport (PROTOCOL.md §7.1): text batches and binary message frames on one socket,
 * both ways.
 */
export const webSocket =
  (WebSocket: WebSocketConstructor): TransportFactory =>
  (url, handlers, context) => {
    const ws = new WebSocket(url(Endpoint.websocket, context.ticket).replace(/^http/, 'ws'));
    let live = true;
    const close = (code: number): void => {
      live = false;
      ws.close(code);
    };
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => live && handlers.onOpen();
    // Errors are followed by close; the listener keeps Node's `ws` from throwing an unhandled 'error'.
    ws.onerror = () => {};
    ws.onclose = ({ code }) => {
      if (live) {
        live = false;
        handlers.onClose({ code });
      }
    };
    ws.onmessage = ({ data }) => {
      if (!live) return;
      const unit = data as string | ArrayBuffer;
      const tooLarge = oversize(unit, context.maxMessageSize);
      if (tooLarge) {
        close(CloseCode.Reconnecting);
        return handlers.onClose(tooLarge);
      }
      let frames: InboundFrame[];
      try {
        frames = decodeUnit(unit);
      } catch (error) {
        close(CloseCode.ProtocolError);
        return handlers.onClose({ code: CloseCode.ProtocolError, error: error as UnbrokenError });
      }
      handlers.onFrames(frames);
    };
    return {
      binary: true,
      send: (data) => ws.readyState === 1 && ws.send(data),
      close,
    };
  };

/** Makes the upgrade probe of a WebSocket implementation. */
export const webSocketProbe =
  (WebSocket: WebSocketConstructor): UpgradeProbe =>
  (base, timeout, timers, done) => {
    const url = endpointAt(base, Endpoint.websocket);
    url.search = `?${QueryParam.version}=${PROTOCOL_VERSION}&${QueryParam.probe}=1`;
    let probe: WebSocketLike | undefined;
    let running = true;
    const stop = (): void => {
      running = false;
      timers.clearTimeout(timer);
      if (probe) probe.onopen = probe.onmessage = probe.onclose = null;
      try {
        probe?.close(CloseCode.Normal);
      } catch {
        // Closing a socket that never opened may throw; it is gone either way.
      }
    };
    const finish = (worked: boolean): void => {
      if (!running) return;
      stop();
      done(worked);
    };
    const timer = timers.setTimeout(() => finish(false), timeout);
    try {
      probe = new WebSocket(url.href.replace(/^http/, 'ws'));
      probe.onerror = () => {};
      probe.onclose = () => finish(false);
      probe.onopen = () => probe?.send(encodeBatch([{ t: 'ping', n: 0 }]));
      probe.onmessage = ({ data }) => {
        let worked = false;
        try {
          worked = decodeUnit(String(data)).some((f) => f.t === 'pong');
        } catch {
          // A garbled answer is a failed probe.
        }
        finish(worked);
      };
    } catch {
      // A synchronous throw (a bad URL, a blocked scheme): the probe failed, reported after this call returns.
      queueMicrotask(() => finish(false));
    }
    return stop;
  };

/**
 * WebSocket (§7.1), first in the default order; the transport a client on a fallback probes and moves
 * back to (§7.1.1). Its ticket request needs fetch too (§3.4).
 */
export const webSocketTransport: TransportDefinition = {
  name: 'websocket',
  make: (env) => env.WebSocket && env.fetch && webSocket(env.WebSocket),
  stalled: 'silent',
  bufferable: false,
  makeProbe: (env) => env.WebSocket && webSocketProbe(env.WebSocket),
};
