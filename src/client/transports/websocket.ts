import { CloseCode, Endpoint, decodeBinaryMessage } from '../../protocol/index.js';
import { UnbrokenError } from '../errors.js';
import { decodeText, type InboundFrame, type TransportFactory, type WebSocketConstructor } from '../transport.js';

/** Decodes one binary WebSocket frame: a message header and its bytes (PROTOCOL.md §4.3). */
function decodeBinary(data: unknown): InboundFrame[] {
  const { header, payload } = decodeBinaryMessage(new Uint8Array(data as ArrayBuffer), 'server');
  return [{ ...header, b: payload }];
}

/**
 * The WebSocket transport (PROTOCOL.md §7.1): text batches and binary message frames on one socket,
 * both ways.
 */
export const webSocket =
  (WebSocket: WebSocketConstructor): TransportFactory =>
  (url, handlers) => {
    const ws = new WebSocket(url(Endpoint.websocket).replace(/^http/, 'ws'));
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
      let frames: InboundFrame[];
      try {
        frames = typeof data === 'string' ? decodeText(data) : decodeBinary(data);
      } catch (cause) {
        close(CloseCode.ProtocolError);
        handlers.onClose({
          code: CloseCode.ProtocolError,
          error: new UnbrokenError('PROTOCOL_ERROR', (cause as Error).message, cause),
        });
        return;
      }
      handlers.onFrames(frames);
    };
    return {
      binary: true,
      send: (data) => ws.readyState === 1 && ws.send(data),
      close,
    };
  };
