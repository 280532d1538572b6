/**
 * The contract between the session core and a transport adapter (docs/PROTOCOL.md §7): an adapter
 * implements {@link Connection} for one link and hands it to `SessionHub.connect()`, which returns the
 * {@link ConnectionHandle} the adapter reports through. Adapters import this module and the hub's
 * public methods, nothing else of the core.
 */
import type http from 'node:http';
import { base64ToBytes, type ClientFrame, type ErrorCode, type JsonValue, type Payload, type TransportName } from '../protocol/index.js';
import type { Identity } from './identity.js';
import type { Session } from './session.js';
import type { TicketIssue } from './tickets.js';

/** One downstream text batch: a JSON array of frames (§4.1). */
export interface TextBatch {
  readonly text: string;
  /** The id of the last message in the batch, if it has messages (SSE writes it as `id:`, §7.2). */
  readonly lastMessageId?: string;
  /**
   * Set while a replay runs, which may wait for the link's buffer to drain (§6.3): the adapter calls
   * the handle's `resume()` once this write left its buffer, unless it reports drains otherwise.
   * Live writes leave it unset, so a stream pays no completion callback per frame: the core reads
   * `bufferedBytes()` at each write instead.
   */
  readonly notify?: boolean;
}

/** A text batch as its UTF-8 bytes (`Connection.writeTextBytes`); the rest as in {@link TextBatch}. */
export interface TextBytes extends Omit<TextBatch, 'text'> {
  readonly bytes: Uint8Array;
}

/** How the core ends a connection. */
export type CloseReason =
  /** Tell the client why (an `error` frame then the close code, or the HTTP status and error body). */
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string }
  /**
   * Shutdown: the `ack` and `reconnect` frames were queued and written if the link could take them
   * (`written`); close with `SERVER_RESTART` (§10.2). `notice` is that batch, for a link that could
   * not write it now (long polling without a held poll) to give the client's next request.
   */
  | { readonly kind: 'restart'; readonly notice: string; readonly written: boolean }
  /** The session ended; close normally. */
  | { readonly kind: 'end' };

/** One transport-level link of a session, implemented by each transport adapter. */
export interface Connection {
  readonly transport: TransportName;
  /**
   * True when a write answers a request and another write waits for the next one (long polling, a
   * polled carrier). The core then writes once a turn ends, never as soon as a batch is full: the rest
   * of the turn would find the connection unwritable and park the link (§12.1).
   */
  readonly polled?: boolean;
  /**
   * Whether a write can go out now. Streams are always writable; long polling only while it holds a
   * poll, and one write answers it. The core keeps frames queued until the adapter calls `resume()`.
   */
  writable(): boolean;
  write(batch: TextBatch): void;
  /**
   * Writes one binary message frame (§4.3), `notify` as for a text batch. Adapters without binary
   * frames omit it: bytes then travel as base64.
   */
  writeBinary?(frame: Uint8Array, notify?: boolean): void;
  /**
   * Writes a text batch of several frames given as its UTF-8 bytes. An adapter that has it gets every
   * batch of more than one frame so: the core encodes the frames into one buffer instead of joining
   * them into a string that the socket or the response then counts and encodes again.
   */
  writeTextBytes?(batch: TextBytes): void;
  /** Bytes written but not yet handed to the network. */
  bufferedBytes(): number;
  /**
   * Called about every heartbeat interval: the adapter's liveness check (WebSocket ping frames, a long
   * poll that stopped coming, §7.1, §11). A connection it finds dead it ends, then reports `closed()`.
   */
  probe?(): void;
  /**
   * Stops reading what the client sends for `ms` (§12.1: a session past its inbound rate is slowed,
   * not refused). Adapters whose upstream is a separate request (SSE, long polling) omit it: their
   * upstream requests wait instead.
   */
  pauseReading?(ms: number): void;
  /** Ends the link as `reason` says. The adapter calls the handle's `closed()` once the link is gone. */
  close(reason: CloseReason): void;
}

/** A client frame ready to process: binary data already decoded to bytes. */
export type UpstreamFrame =
  | { readonly t: 'msg'; readonly s: number; readonly data: Payload }
  | { readonly t: 'ping'; readonly n: number }
  | { readonly t: 'auth'; readonly credentials: JsonValue | undefined }
  | { readonly t: 'bye' };

/** What the core gives an adapter for one connection: the adapter reports what happens to the link. */
export interface ConnectionHandle {
  readonly session: Session;
  /**
   * Where the client's stream stands after everything written so far: `hello.cursor`, then the id of
   * each message written. `null` until the hello was written.
   */
  readonly cursor: string | null;
  /** Frames that arrived on this connection (WebSocket). Throws nothing: a violation closes the link. */
  receive(frames: readonly UpstreamFrame[]): void;
  /**
   * The adapter found the client at fault (a batch that does not decode, a frame over the limit):
   * what was processed is acknowledged, then the link closes with `code` (§5, §12).
   */
  abort(code: ErrorCode, message: string): void;
  /** The link can take writes again: its buffer drained, or a new poll arrived. */
  resume(): void;
  /** The link is gone (closed by either side, or failed). Idempotent. */
  closed(): void;
}

/** What a connecting client asked for (§3), as its ticket granted it (§3.4). */
export interface ConnectParams {
  /** The negotiated protocol version. */
  readonly version: number;
  /** The session to resume, or to create with this id; `null` for a fresh one. */
  readonly sid: string | null;
  /**
   * The key presented with `sid`: a held session is resumed only when it matches (§3.4), a session
   * created with `sid` gets it. `null` with no key: a held session is refused.
   */
  readonly key: string | null;
  /** The identity `authenticate` returned for this connection, `null` without `authenticate` (§3.5). */
  readonly user: Identity | null;
  /** The request that opened the connection: `authenticate` gets it for `auth` frames on a WebSocket (§3.5). */
  readonly request?: http.IncomingMessage;
  /** The client's cursor; for SSE already resolved against `Last-Event-ID` (§7.2). */
  readonly last: string | null;
  /** The client address the connection (and a session it creates) counts against (§12.1). @default 'local' */
  readonly address?: string;
  /** The place of the ticket that admitted it among those its server issued (§3.3.stale). */
  readonly issue?: TicketIssue;
  /** The largest batch its client reads, in bytes (§4.1.size); absent: the server's own bound. */
  readonly max?: number;
}

/** A long-polling connection another process served until now, continued at this one (§3.6.continue). */
export interface ContinueParams {
  /** Where its client stands: the `last` of the poll. */
  readonly last: string;
  /** The client address the connection counts against (§12.1). */
  readonly address: string;
  /** The poll that continues it. */
  readonly request: http.IncomingMessage;
  /** The largest batch its client reads, as the shared store recorded it (§4.1.size). */
  readonly max?: number;
}

/** Decodes what a client batch carries into frames ready to process. Throws {@link ProtocolViolation}. */
export function toUpstream(frames: readonly ClientFrame[]): UpstreamFrame[] {
  // Built by `push`, not `map`: the array keeps one elements kind before and after V8 optimises
  // this, so the code it is handed to is not deoptimised by the change (see `decodeBatch`).
  const upstream: UpstreamFrame[] = [];
  for (const frame of frames) upstream.push(upstreamFrame(frame));
  return upstream;
}

/**
 * Bytes as a `Buffer` (a `Uint8Array`), without a copy: what a binary WebSocket message gives the
 * application, so that its `message` listener gets the same type whichever transport the client
 * fell back to (`String(data)` decodes a Buffer, and lists the numbers of a plain Uint8Array).
 */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function upstreamFrame(frame: ClientFrame): UpstreamFrame {
  switch (frame.t) {
    case 'msg':
      return { t: 'msg', s: frame.s, data: frame.b === undefined ? (frame.d ?? null) : asBuffer(base64ToBytes(frame.b)) };
    case 'ping':
      return { t: 'ping', n: frame.n };
    case 'auth':
      return { t: 'auth', credentials: frame.c };
    case 'bye':
      return { t: 'bye' };
  }
}
