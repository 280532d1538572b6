/**
 * A raw WebSocket client for the conformance suite: the `ws` package speaking the wire protocol of
 * docs/PROTOCOL.md by hand, with none of the SDK in between.
 *
 * It decodes what the server sends (text batches into frames; binary frames into header + payload,
 * §4.3), records WebSocket ping frames, and captures the close code and reason. Tests await frames
 * with `next()`; to show that the server did NOT send something, they call `sync()`: a protocol
 * `ping` whose `pong` comes back on the same ordered socket, so everything the server sent before
 * answering is already in the log.
 */
import WebSocket, { type RawData } from 'ws';
import {
  decodeBinaryFrame,
  decodeServerBatch,
  encodeBinaryFrame,
  type ServerFrame,
  type ServerMessageFrame,
} from '../../src/protocol/index.js';
import { DEFAULT_DEADLINE, FrameLog, binaryHeaderProblem, type Received } from './raw-frames.js';
import { automaticTicket, httpBaseOf } from './raw-ticket.js';

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export interface RawWsOptions {
  /** The `v` parameter; `null` leaves it out. @default '1' */
  v?: string | null;
  /**
   * The session to resume: it goes in the ticket request with its key (§3.4), never in the URL.
   * Ignored when `ticket` is given.
   */
  sid?: string;
  /** The key presented with `sid`; by default the one its hello gave (or a fresh one). `null`: none. */
  key?: string | null;
  /** `credentials` of the ticket request. */
  credentials?: unknown;
  /**
   * The `ticket` query parameter; `null` leaves it out. By default the client gets a fresh ticket
   * first (none for an upgrade probe, which touches no session, §7.1.1).
   */
  ticket?: string | null;
  last?: string;
  /** Extra query parameters, appended as given. */
  query?: Readonly<Record<string, string>>;
  /** An `Origin` header. */
  origin?: string;
  /** Answer the server's WebSocket pings (the `ws` default, as a browser does). @default true */
  autoPong?: boolean;
  /** A label for failure messages. */
  label?: string;
  /** The loopback address to connect from (e.g. `127.0.0.2`), to act as another client address. */
  localAddress?: string;
}

/** Builds `ws://host:port<path>/ws?…` from the server's WebSocket base (`ws://host:port<path>`). */
export function wsEndpoint(base: string, options: RawWsOptions = {}): string {
  const url = new URL(`${base.replace(/\/$/, '')}/ws`);
  const v = options.v === undefined ? '1' : options.v;
  if (v !== null) url.searchParams.set('v', v);
  if (typeof options.ticket === 'string') url.searchParams.set('ticket', options.ticket);
  if (options.last !== undefined) url.searchParams.set('last', options.last);
  for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
  return url.toString();
}

let nonce = 1_000;

export class RawWs extends FrameLog {
  /** How the server closed the connection, once it did. */
  closeInfo: CloseInfo | undefined;
  /** Times (Date.now()) at which WebSocket ping frames arrived, and the frame count then. */
  readonly wsPings: { at: number; framesBefore: number }[] = [];
  /** WebSocket pong frames received (answers to `wsPing()`), with the frame count then. */
  readonly wsPongs: { framesBefore: number }[] = [];
  /** Errors the `ws` library reported (e.g. the server sent an invalid WebSocket frame). */
  readonly socketErrors: Error[] = [];

  private constructor(
    readonly socket: WebSocket,
    label: string,
  ) {
    super(label);
    socket.on('message', (data: RawData, isBinary: boolean) => this.receive(data, isBinary));
    socket.on('ping', () => {
      this.wsPings.push({ at: Date.now(), framesBefore: this.frames.length });
      this.changed();
    });
    socket.on('pong', () => {
      this.wsPongs.push({ framesBefore: this.frames.length });
      this.changed();
    });
    socket.on('error', (error: Error) => {
      this.socketErrors.push(error);
    });
    socket.on('close', (code: number, reason: Buffer) => {
      this.closeInfo = { code, reason: reason.toString('utf8') };
      this.end();
    });
  }

  /**
   * Opens a connection to `base` (the server's WebSocket base URL, e.g. `ws://127.0.0.1:1234/realtime`)
   * and resolves once the upgrade completed. Rejects when the server refuses the upgrade itself
   * (the protocol wants an `error` frame and a close code instead, §3.1, §3.2).
   */
  static async open(base: string, options: RawWsOptions = {}): Promise<RawWs> {
    let ticket = options.ticket;
    if (ticket === undefined && options.query?.probe !== '1') {
      ticket = await automaticTicket(httpBaseOf(base), {
        ...(options.sid !== undefined ? { sid: options.sid } : {}),
        ...(options.key !== undefined ? { key: options.key } : {}),
        ...(options.origin !== undefined ? { origin: options.origin } : {}),
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        credentials: options.credentials,
      });
    }
    const url = wsEndpoint(base, { ...options, ticket: ticket ?? null });
    const socket = new WebSocket(url, {
      autoPong: options.autoPong ?? true,
      ...(options.origin !== undefined ? { origin: options.origin } : {}),
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
    const client = new RawWs(socket, options.label ?? `ws ${new URL(url).search}`);
    return new Promise<RawWs>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`${url}: the WebSocket upgrade did not complete within ${DEFAULT_DEADLINE} ms`));
      }, DEFAULT_DEADLINE);
      socket.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
      socket.once('unexpected-response', (_request, response) => {
        clearTimeout(timer);
        reject(new Error(`${url}: the server refused the WebSocket upgrade with HTTP ${response.statusCode}`));
        response.resume();
        socket.terminate();
      });
      socket.once('error', (error: Error) => {
        clearTimeout(timer);
        reject(new Error(`${url}: ${error.message}`));
      });
    });
  }

  override describeEnd(): string {
    return this.closeInfo ? `closed with ${this.closeInfo.code} "${this.closeInfo.reason}"` : 'closed';
  }

  private receive(data: RawData, isBinary: boolean): void {
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) {
      let header: unknown;
      let payload: Uint8Array;
      try {
        ({ header, payload } = decodeBinaryFrame(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)));
      } catch (error) {
        this.pushViolation(`binary frame: ${(error as Error).message}`);
        return;
      }
      const problem = binaryHeaderProblem(header);
      if (problem) {
        this.pushViolation(`binary frame: ${problem}`);
        return;
      }
      this.pushBatch([header as ServerMessageFrame], { bytes: Uint8Array.from(payload), raw: Uint8Array.from(buffer) });
      return;
    }
    let frames: ServerFrame[];
    try {
      frames = decodeServerBatch(buffer.toString('utf8'));
    } catch (error) {
      this.pushViolation(`text batch ${JSON.stringify(buffer.toString('utf8').slice(0, 200))}: ${(error as Error).message}`);
      return;
    }
    this.pushBatch(frames);
  }

  /** Sends frames as one text batch. */
  send(frames: readonly object[]): void {
    this.socket.send(JSON.stringify(frames));
  }

  /** Sends any text as one text frame (for malformed batches). */
  sendText(text: string): void {
    this.socket.send(text);
  }

  /** Sends raw bytes as one binary frame. */
  sendBytes(bytes: Uint8Array): void {
    this.socket.send(bytes, { binary: true });
  }

  /** Sends one binary message frame: header (a frame without `d`) + payload (§4.3). */
  sendBinary(header: object, payload: Uint8Array): void {
    this.sendBytes(encodeBinaryFrame(header, payload));
  }

  /**
   * Sends a protocol `ping` and waits for its `pong`. Returns the frames that arrived between the
   * read position and the `pong` (the read position moves past the pong). Frames on one socket
   * are ordered, so whatever the server wrote before answering is in the returned list.
   */
  async sync(): Promise<Received[]> {
    const from = this.position;
    const n = nonce++;
    this.send([{ t: 'ping', n }]);
    const pong = await this.next('pong', (frame) => frame.n === n);
    return this.between(from, pong.index);
  }

  /** Sends a WebSocket-level ping frame (answered by the server's WebSocket library, not the protocol). */
  wsPing(): void {
    this.socket.ping();
  }

  /** Waits for the server's close and returns its code and reason. */
  closed(deadline = DEFAULT_DEADLINE): Promise<CloseInfo> {
    return this.waitFor('the server to close the connection', () => this.closeInfo, deadline, true);
  }

  /** Drops the TCP connection without a close frame: a link lost, not a goodbye. */
  terminate(): void {
    this.socket.terminate();
  }

  /** Closes with a WebSocket close frame. Code 1000 ends the session (§9); use 4000 to only drop. */
  close(code = 4000, reason = ''): void {
    this.socket.close(code, reason);
  }

  /** Stops reading from the socket (public `ws` API: pauses the underlying net.Socket). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Frames of every message received, as `{ id, e, d }` or `{ id, e, bytes }`. */
  messageValues(from = 0): { id: string; e?: string; d?: unknown; bytes?: number[] }[] {
    return this.messages(from).map(({ frame, bytes }) => ({
      id: frame.id,
      ...(frame.e !== undefined ? { e: frame.e } : {}),
      ...(bytes ? { bytes: [...bytes] } : { d: frame.d }),
    }));
  }
}
