/**
 * WebSocket transport (docs/PROTOCOL.md §7.1): `GET P/ws` upgraded by `ws`. Text frames are batches,
 * binary frames are single binary messages (§4.3); the session core does everything else.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData, type Server } from 'ws';
import {
  CloseCode,
  ProtocolViolation,
  QueryParam,
  closeCodeFor,
  decodeBinaryMessage,
  decodeClientBatch,
  encodeBatch,
  type ErrorCode,
  type ErrorFrame,
} from '../../protocol/index.js';
import { CLOSE_GRACE_MS, admitRequest, originAdmitted, originRefusal, queryValue } from '../http.js';
import { toUpstream, type CloseReason, type Connection, type ConnectionHandle, type TextBatch, type TextBytes, type UpstreamFrame } from '../connection.js';
import type { TransportContext } from './context.js';
import { admitByTicket } from './ticket.js';
import { decodeUtf8 } from '../body.js';

/** A listener that does nothing. */
function ignore(): void {}

/** `ws`'s send options for a binary frame, made once. */
const BINARY = { binary: true } as const;
/** Options of a text frame sent as its UTF-8 bytes (a batch the core encoded, `writeTextBytes`). */
const TEXT = { binary: false } as const;

/**
 * Most bytes of pongs a probe may leave unread (§12.buffer): far above what a client's pings take
 * (§7.1.1), far below what a flood of pings from a peer that never reads would pile up.
 */
const PROBE_MAX_BUFFERED = 64 * 1024;

/** How long an upgrade probe may stay open (§7.1.1): long enough for one round trip on a slow link. */
const PROBE_LIFETIME_MS = 30_000;

/**
 * `ws` enforces its own payload limit by closing with 1009 before any frame can be sent. The limit
 * the protocol announces (`hello.max`) is checked here instead, so that a frame over it is answered
 * with an `error` frame first (§7.1); `ws`'s limit stays as a backstop with this much headroom.
 */
function transportLimit(maxMessageSize: number): number {
  return maxMessageSize * 2 + 64 * 1024;
}

/** Sends an `error` frame, then closes with the code the table of §9 gives it (§7.1). */
function refuse(ws: WebSocket, code: ErrorCode, message: string): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  const frame: ErrorFrame = { t: 'error', code, message };
  ws.send(encodeBatch([frame]));
  ws.close(closeCodeFor(code), code);
  // A peer that never answers the close would hold the socket for `ws`'s own 30 s, outside every
  // limit of §12.1 once refused: cut as an admitted connection's close is.
  const cut = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  cut.unref?.();
  ws.once('close', () => clearTimeout(cut));
}

/** Answers an upgrade request with an HTTP error and the error body of §9, and closes the socket. */
function refuseUpgrade(socket: Duplex, status: number, code: ErrorCode, message: string): void {
  const body = JSON.stringify({ code, message });
  socket.on('error', () => undefined);
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** A binary frame from a client: one message (§4.3). */
function decodeBinaryClientMessage(bytes: Buffer): UpstreamFrame {
  // A view of the frame's Buffer, so a Buffer itself, as bytes are on the other transports (`asBuffer`).
  const { header, payload } = decodeBinaryMessage(bytes, 'client');
  return { t: 'msg', s: header.s, data: payload };
}


function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/**
 * The sockets `ws` makes for this server: each knows the connection it carries, so that one set of
 * listeners serves every socket (`ws` calls a listener with its socket as `this`) instead of a set of
 * closures made per socket — an idle connection should weigh little more than its socket.
 */
class SessionSocket extends WebSocket {
  /** The connection once the upgrade was admitted; null for a probe, or before. */
  connection: WebSocketConnection | null = null;
}

/** The connection `socket` carries, if it is one of this server's and was admitted. */
function connectionOf(socket: WebSocket): WebSocketConnection | null {
  return socket instanceof SessionSocket ? socket.connection : null;
}

function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  connectionOf(this)?.received(data, isBinary);
}

function onSocketPong(this: WebSocket): void {
  connectionOf(this)?.answered();
}

function onSocketClose(this: WebSocket, code: number): void {
  connectionOf(this)?.ended(code);
}

class WebSocketConnection implements Connection {
  readonly #ws: SessionSocket;
  readonly #maxMessageSize: number;
  #handle: ConnectionHandle | null = null;
  /** Ping frames sent since the last pong (§7.1). */
  #unanswered = 0;
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  /** Set while reading is paused for the session's inbound rate (§12.1). */
  #pauseTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(ws: SessionSocket, maxMessageSize: number) {
    this.#ws = ws;
    this.#maxMessageSize = maxMessageSize;
  }

  get transport(): 'websocket' {
    return 'websocket';
  }

  bind(handle: ConnectionHandle): void {
    this.#handle = handle;
    this.#ws.connection = this;
    this.#ws.on('message', onSocketMessage);
    this.#ws.on('pong', onSocketPong);
    // `ws` emits 'close' once: a plain listener does, without the wrapper `once` makes.
    this.#ws.on('close', onSocketClose);
  }

  writable(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  write(batch: TextBatch): void {
    // A completion callback only while a replay waits for room (`TextBatch.notify`): made per write
    // then, rather than kept by every connection for the few writes that ask for one.
    if (batch.notify) this.#ws.send(batch.text, (error) => this.#written(error));
    else this.#ws.send(batch.text);
  }

  writeTextBytes(batch: TextBytes): void {
    if (batch.notify) this.#ws.send(batch.bytes, TEXT, (error) => this.#written(error));
    else this.#ws.send(batch.bytes, TEXT);
  }

  writeBinary(frame: Uint8Array, notify?: boolean): void {
    if (notify) this.#ws.send(frame, BINARY, (error) => this.#written(error));
    else this.#ws.send(frame, BINARY);
  }

  bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  pauseReading(ms: number): void {
    if (this.#pauseTimer) clearTimeout(this.#pauseTimer);
    this.#ws.pause();
    this.#pauseTimer = setTimeout(() => {
      this.#pauseTimer = null;
      this.#ws.resume();
    }, ms);
  }

  probe(): void {
    // Pongs are not read while reading is paused (§12.1): the link cannot be judged until it resumes.
    if (this.#pauseTimer) {
      this.#unanswered = 0;
      return;
    }
    if (this.#unanswered >= 2) {
      this.#ws.terminate();
      return;
    }
    this.#unanswered++;
    this.#ws.ping();
  }

  close(reason: CloseReason): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    switch (reason.kind) {
      case 'error':
        refuse(this.#ws, reason.code, reason.message);
        break;
      case 'restart':
        this.#ws.close(CloseCode.ServiceRestart, 'SERVER_RESTART');
        break;
      case 'end':
        this.#ws.close(CloseCode.Normal);
        break;
    }
    this.#graceTimer = setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS);
    this.#graceTimer.unref?.();
  }

  /** A pong arrived: the link is alive (§7.1). */
  answered(): void {
    this.#unanswered = 0;
  }

  /** The socket closed with `code`. */
  ended(code: number): void {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    if (this.#pauseTimer) clearTimeout(this.#pauseTimer);
    const handle = this.#handle;
    if (handle === null) return;
    // §9: close code 1000 from a client ends its session, as a `bye` does.
    if (code === CloseCode.Normal) handle.receive([{ t: 'bye' }]);
    handle.closed();
  }

  /** A frame arrived. */
  received(data: RawData, isBinary: boolean): void {
    const handle = this.#handle;
    if (handle === null) return;
    const bytes = toBuffer(data);
    if (bytes.length > this.#maxMessageSize) {
      handle.abort('MESSAGE_TOO_LARGE', `expects frames of at most ${this.#maxMessageSize} bytes, got ${bytes.length}`);
      return;
    }
    let frames: UpstreamFrame[];
    try {
      frames = isBinary ? [decodeBinaryClientMessage(bytes)] : toUpstream(decodeClientBatch(decodeUtf8(bytes, 'a text frame')));
    } catch (error) {
      handle.abort('PROTOCOL_ERROR', error instanceof ProtocolViolation ? error.message : 'the frame could not be decoded');
      return;
    }
    handle.receive(frames);
  }

  #written(error: Error | undefined): void {
    if (!error) this.#handle?.resume();
  }
}

/**
 * An upgrade probe (§7.1.1): a client on a fallback transport checks that WebSocket works end to end
 * before it moves its session back. It gets no session and no `hello`; each `ping` is answered with a
 * `pong`, anything else is a protocol error.
 */
function answerProbe(ws: WebSocket, maxMessageSize: number): void {
  const lifetime = setTimeout(() => ws.terminate(), PROBE_LIFETIME_MS);
  lifetime.unref?.();
  ws.once('close', () => clearTimeout(lifetime));
  ws.on('message', (data, isBinary) => {
    const bytes = toBuffer(data);
    try {
      if (isBinary || bytes.length > maxMessageSize) throw new ProtocolViolation('a probe expects text batches of ping frames');
      const frames = decodeClientBatch(decodeUtf8(bytes, 'a text frame'));
      const pongs = frames.map((frame) => {
        if (frame.t !== 'ping') throw new ProtocolViolation(`a probe expects ping frames, got ${frame.t}`);
        return { t: 'pong', n: frame.n };
      });
      if (ws.bufferedAmount > PROBE_MAX_BUFFERED) {
        refuse(ws, 'BACKPRESSURE', 'the probe reads its pongs too slowly');
        return;
      }
      ws.send(encodeBatch(pongs));
    } catch (error) {
      refuse(ws, 'PROTOCOL_ERROR', error instanceof ProtocolViolation ? error.message : 'the frame could not be decoded');
    }
  });
}

/** Serves `P/ws` for one server. */
export class WebSocketTransport {
  readonly #context: TransportContext;
  readonly #wss: Server<typeof SessionSocket>;

  constructor(context: TransportContext) {
    this.#context = context;
    this.#wss = new WebSocketServer({
      WebSocket: SessionSocket,
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: transportLimit(context.maxMessageSize),
      // `ws` would close a text frame that is not UTF-8 with 1007 and no `error` frame; the frame is
      // decoded here instead, so it gets PROTOCOL_ERROR like any other malformed frame (§5).
      skipUTF8Validation: true,
    });
  }

  /**
   * Completes the upgrade of a request for `P/ws`. A disallowed Origin is refused here, with `403`
   * before any `101` (§3.2): a page from another site learns nothing, not even that a WebSocket
   * server is there.
   */
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    if (!originAdmitted(request, this.#context.originAllowed)) {
      refuseUpgrade(socket, 403, 'FORBIDDEN', originRefusal(request));
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#accept(ws, request, url));
  }

  close(): void {
    this.#wss.close();
  }

  #accept(ws: SessionSocket, request: http.IncomingMessage, url: URL): void {
    // Failures of the socket end in its 'close' event, which the connection reports. A function made
    // here would keep this call's scope (the request, the URL) alive as long as the socket.
    ws.on('error', ignore);
    const { hub, maxMessageSize } = this.#context;
    // §3.1, §3.2, §10.2: a browser cannot read an HTTP refusal of an upgrade (it would see a network
    // failure and fall back), so accept, then refuse with an `error` frame and the close code of §9.
    const probe = queryValue(url, QueryParam.probe) === '1';
    const admission = admitRequest(this.#context, request, url, probe ? 'probe' : 'connection');
    if (!admission.ok) {
      refuse(ws, admission.code, admission.message);
      return;
    }
    if (probe) {
      // A probe holds a socket like a connection: it counts against the same limits (§12.1).
      const { limits } = this.#context;
      limits.connectionOpened(admission.address);
      ws.once('close', () => limits.connectionClosed(admission.address));
      answerProbe(ws, maxMessageSize);
      return;
    }
    // §3.4: the ticket is the only thing in this URL that names a session; a refused upgrade could
    // not be read by a browser, so it is refused like the checks above, and touches no session.
    // Frames that arrive while a shared store is asked wait unread (cluster.ts).
    ws.pause();
    admitByTicket(
      this.#context,
      url,
      admission.address,
      ({ grant, prepared }) => {
        const connection = new WebSocketConnection(ws, maxMessageSize);
        const handle = hub.connect(
          connection,
          { version: admission.version, ...grant, last: queryValue(url, QueryParam.lastEventId), address: admission.address, request },
          prepared,
        );
        connection.bind(handle);
        ws.resume();
      },
      (code, message) => {
        ws.resume();
        refuse(ws, code, message);
      },
      () => ws.readyState !== WebSocket.OPEN,
    );
  }
}
