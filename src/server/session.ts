/**
 * The transport-agnostic session core (docs/PROTOCOL.md §3.3, §4, §6, §8, §10.2, §11, §12).
 *
 * It knows no socket library. A transport adapter implements {@link Connection} for one link and hands
 * it to {@link SessionHub.connect}, which returns the {@link ConnectionHandle} the adapter reports
 * through. Everything the protocol promises — hello, replay and the seam with live delivery, batching,
 * exactly-once upstream, heartbeats, supersede, timeouts, the buffer bound, graceful shutdown — lives
 * here once, for every transport.
 */
import { randomBytes } from 'node:crypto';
import {
  ProtocolViolation,
  base64ToBytes,
  bytesToBase64,
  encodeBinaryFrame,
  isValidEventName,
  joinEncoded,
  messageFrameText,
  type ClientFrame,
  type ErrorCode,
  type GapFrame,
  type HelloFrame,
  type Payload,
  type ServerFrame,
  type TransportName,
} from '../protocol/index.js';
import type { Emitter } from './emitter.js';
import { UnbrokenServerError, UnbrokenTypeError } from './errors.js';
import type { MessageStore, StoredMessage } from './store.js';


/** Why a session ended. */
export type SessionEndReason =
  /** The client closed on purpose: a `bye` frame, or WebSocket close code 1000 (§3.3, §9). */
  | 'bye'
  /** No connection for the server's session timeout (§3.3). */
  | 'timeout'
  /** The application called `session.close()`. */
  | 'closed'
  /** The server shut down (§10.2). */
  | 'shutdown';

/** A session: one client across its connections (§1). */
export interface Session {
  /** The id the client presents on every connection (`sid`). */
  readonly id: string;
  /** The transport of the current connection, or `null` while the client is away. */
  readonly transport: TransportName | null;
  /** True while a connection is attached. A session without one lives until the session timeout. */
  readonly connected: boolean;
  /**
   * Sends a message to this session alone. It joins the session's stream in the store, so it reaches
   * the client after a reconnection too, within retention (§6.1) — even when sent while the client is
   * away, or after the session ended should the client come back with the same id.
   *
   * @returns the message id, once the store appended it.
   * @throws {UnbrokenTypeError} synchronously: `INVALID_EVENT_NAME` or `INVALID_DATA`.
   * Rejects with {@link UnbrokenServerError} `SERVER_CLOSED` after the server's `close()`.
   */
  send(data: Payload, options?: { event?: string }): Promise<string>;
  /** Ends the session now: its connection closes, and `close` is emitted with reason `closed`. */
  close(): void;
}

/** Events of the server, by name: the arguments each listener receives. */
export type ServerEvents = {
  /** A new session began (not each reconnection of an existing one). */
  connection: [session: Session];
  /** A client message, handed over exactly once (§8). It counts as processed even if a listener throws. */
  message: [data: Payload, session: Session];
  /** A session ended. */
  close: [session: Session, reason: SessionEndReason];
  /** Something failed that no caller could be told about, e.g. a listener threw. */
  error: [error: Error];
};

// ---------------------------------------------------------------------------------------------
// The contract between the core and a transport adapter

/** One downstream text batch: a JSON array of frames (§4.1). */
export interface TextBatch {
  readonly text: string;
  /** The id of the last message in the batch, if it has messages (SSE writes it as `id:`, §7.2). */
  readonly lastMessageId?: string;
}

/** How the core ends a connection. */
export type CloseReason =
  /** Tell the client why (an `error` frame then the close code, or the HTTP status and error body). */
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string }
  /** Shutdown: a `reconnect` frame was already written; close with `SERVER_RESTART` (§10.2). */
  | { readonly kind: 'restart' }
  /** The session ended; close normally. */
  | { readonly kind: 'end' };

/** One transport-level link of a session, implemented by each transport adapter. */
export interface Connection {
  readonly transport: TransportName;
  /**
   * Whether a write can go out now. Streams are always writable; long polling only while it holds a
   * poll, and one write answers it. The core keeps frames queued until the adapter calls `resume()`.
   */
  writable(): boolean;
  write(batch: TextBatch): void;
  /** Writes one binary message frame (§4.3). Adapters without binary frames omit it: bytes then travel as base64. */
  writeBinary?(frame: Uint8Array): void;
  /** Bytes written but not yet handed to the network. */
  bufferedBytes(): number;
  /**
   * Called about every heartbeat interval: the adapter's liveness check (WebSocket ping frames, a long
   * poll that stopped coming, §7.1, §11). A connection it finds dead it ends, then reports `closed()`.
   */
  probe?(): void;
  /** Ends the link as `reason` says. The adapter calls the handle's `closed()` once the link is gone. */
  close(reason: CloseReason): void;
}

/** A client frame ready to process: binary data already decoded to bytes. */
export type UpstreamFrame =
  | { readonly t: 'msg'; readonly s: number; readonly data: Payload }
  | { readonly t: 'ping'; readonly n: number }
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

/** What a connecting client asked for (§3). */
export interface ConnectParams {
  /** The negotiated protocol version. */
  readonly version: number;
  readonly sid: string | null;
  /** The client's cursor; for SSE already resolved against `Last-Event-ID` (§7.2). */
  readonly last: string | null;
}

/** Decodes what a client batch carries into frames ready to process. Throws {@link ProtocolViolation}. */
export function toUpstream(frames: readonly ClientFrame[]): UpstreamFrame[] {
  return frames.map((frame): UpstreamFrame => {
    switch (frame.t) {
      case 'msg':
        return { t: 'msg', s: frame.s, data: frame.b === undefined ? (frame.d ?? null) : base64ToBytes(frame.b) };
      case 'ping':
        return { t: 'ping', n: frame.n };
      case 'bye':
        return { t: 'bye' };
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The hub: every session of one server

export interface HubOptions {
  readonly store: MessageStore;
  readonly heartbeatInterval: number;
  readonly retry: number;
  readonly maxMessageSize: number;
  readonly sessionTimeout: number;
  readonly shutdownJitter: number;
  readonly maxBufferedBytes: number;
  readonly now: () => number;
  readonly random: () => number;
}

/** Messages per store read while replaying. */
const REPLAY_PAGE = 500;
/** A batch is split before it grows past this many characters (§4.1: never past the receiver's limit). */
export const MAX_BATCH_CHARS = 256 * 1024;
/** `sid` as §3.3 defines a well-formed one. */
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** A message or control frame waiting in a connection's queue, encoded for that connection. */
export type Outgoing =
  | { readonly kind: 'text'; readonly text: string; readonly id?: string }
  | { readonly kind: 'binary'; readonly frame: Uint8Array; readonly id: string };

/** The encodings of one stored message, made once and shared by every connection (broadcast fan-out). */
interface Encodings {
  text?: string;
  binary?: Uint8Array;
}

/**
 * Checks that `data` can be sent and returns its JSON text (undefined for bytes). The text is kept
 * for the message's encoding, so a message is serialised once, however many sessions it reaches.
 */
function encodeData(data: Payload): string | undefined {
  if (data instanceof Uint8Array) return undefined;
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) {
    throw new UnbrokenTypeError('INVALID_DATA', 'expects data to be JSON-serialisable or a Uint8Array/Buffer, got another binary type');
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (error) {
    throw new UnbrokenTypeError('INVALID_DATA', `expects data to be JSON-serialisable: ${String(error)}`, { cause: error });
  }
  if (text === undefined) {
    throw new UnbrokenTypeError('INVALID_DATA', `expects data to be JSON-serialisable or a Uint8Array/Buffer, got ${typeof data}`);
  }
  return text;
}

/** A message frame's text, built around data that is already JSON text (no second serialisation). */
function messageText(message: StoredMessage, dataText: string): string {
  return messageFrameText(message, dataText);
}

function messageHeader(message: StoredMessage): { t: 'msg'; id: string; e?: string } {
  return message.event === undefined ? { t: 'msg', id: message.id } : { t: 'msg', id: message.id, e: message.event };
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * Every session of one server, and the store subscription that feeds them. The server creates one;
 * tests drive it directly with fake connections.
 */
export class SessionHub {
  readonly sessions = new Map<string, ServerSession>();
  readonly options: HubOptions;
  readonly #emitter: Emitter<ServerEvents>;
  readonly #encodings = new WeakMap<StoredMessage, Encodings>();
  /**
   * The data of the message being appended and its JSON text. A store that notifies subscribers
   * during `append` (the in-memory one) lets the encoding reuse the text; equal data means equal
   * text, so a mismatch can never give a message another's encoding.
   */
  #appending: { readonly data: Payload; readonly text: string } | undefined;
  /** Connections whose adapter has not yet reported them closed. */
  readonly #links = new Set<Downlink>();
  #unsubscribe: (() => void) | null;
  #sweep: ReturnType<typeof setInterval> | null = null;
  #state: 'running' | 'closing' | 'closed' = 'running';
  #closing: Promise<void> | null = null;
  #linksGone: (() => void) | null = null;

  constructor(options: HubOptions, emitter: Emitter<ServerEvents>) {
    this.options = options;
    this.#emitter = emitter;
    this.#unsubscribe = options.store.subscribe((message) => this.#dispatch(message));
  }

  /** False once `close()` began: adapters refuse new connections with `SERVER_RESTART`. */
  get accepting(): boolean {
    return this.#state === 'running';
  }

  /**
   * How often the sweep runs: an eighth of the shorter of `hb` and the session timeout (a link idle
   * for `hb` minus one sweep gets an `hb` frame, so none waits longer than `hb`), at least 5 ms.
   */
  get sweepInterval(): number {
    return Math.max(5, Math.floor(Math.min(this.options.heartbeatInterval, this.options.sessionTimeout) / 8));
  }

  /** Attaches a new connection to its session, creating the session when needed (§3.3). */
  connect(connection: Connection, params: ConnectParams): ConnectionHandle {
    const sid = params.sid !== null && SESSION_ID_PATTERN.test(params.sid) ? params.sid : null;
    const existing = sid === null ? undefined : this.sessions.get(sid);
    const resumed = existing !== undefined;
    const session = existing ?? new ServerSession(sid ?? randomBytes(16).toString('base64url'), this);
    const link = new Downlink(session, connection, this);
    this.#links.add(link);
    if (!this.accepting) {
      link.close({ kind: 'error', code: 'SERVER_RESTART', message: 'the server is shutting down' });
      return link;
    }
    if (!resumed) this.sessions.set(session.id, session);
    const previous = session.link;
    session.link = link;
    // §3.3: the previous connection closes after the new one is attached.
    previous?.close({ kind: 'error', code: 'SUPERSEDED', message: 'a newer connection of this session replaced it' });
    this.#startSweep();
    // §6.4: a stream without `last` starts at the head as of now, when the link is subscribed — so a
    // message the application sends from its 'connection' listener is part of it.
    const start = params.last === null ? this.options.store.head() : Promise.resolve(params.last);
    // The read is awaited below; a rejection is handled there, not reported as unhandled meanwhile.
    start.catch(() => undefined);
    if (!resumed) this.emit('connection', session);
    void this.#open(link, params, resumed, start);
    return link;
  }

  /**
   * Processes an upstream batch that arrived over HTTP (`POST P/send`, §7.3).
   * @returns the response frame: one cumulative ack, always (a batch is never empty, §7.3); `null` for
   * an unknown session. Pongs go down the session's stream, queued like any frame (§5): only the
   * stream can prove the stream works, so a POST answer never carries one.
   * @throws {ProtocolViolation} for a hole in the sequence; nothing was processed then.
   */
  upstream(sid: string, frames: readonly UpstreamFrame[]): ServerFrame[] | null {
    const session = this.sessions.get(sid);
    if (!session) return null;
    // Read once: the link that is current when the batch arrives answers its pings.
    const link = session.link;
    const { bye } = session.process(frames, (frame) => link?.enqueueReply(frame), () => false);
    const replies: ServerFrame[] = [{ t: 'ack', s: session.processed }];
    if (bye) session.end('bye');
    return replies;
  }

  /** Appends a message to the store for one session (`to`) or everyone (`null`). */
  append(to: string | null, data: Payload, options?: { event?: string }): Promise<string> {
    const event = options?.event;
    if (event !== undefined && (typeof event !== 'string' || !isValidEventName(event))) {
      throw new UnbrokenTypeError(
        'INVALID_EVENT_NAME',
        `expects an event name of 1–128 characters without CR, LF or NUL, got ${JSON.stringify(event)}`,
      );
    }
    const text = encodeData(data);
    if (this.#state !== 'running') {
      return Promise.reject(new UnbrokenServerError('SERVER_CLOSED', 'cannot send: the server is closed'));
    }
    const message = event === undefined ? { to, data } : { to, event, data };
    this.#appending = text === undefined ? undefined : { data, text };
    try {
      return this.options.store.append(message).then((stored) => stored.id);
    } finally {
      this.#appending = undefined;
    }
  }

  /** Graceful shutdown (§10.2). Resolves once every connection is gone. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Encodes a stored message for a connection, once per message and kind. */
  encode(message: StoredMessage, binaryFrames: boolean): Outgoing {
    let encodings = this.#encodings.get(message);
    if (!encodings) this.#encodings.set(message, (encodings = {}));
    const { data } = message;
    if (data instanceof Uint8Array) {
      if (binaryFrames) {
        encodings.binary ??= encodeBinaryFrame(messageHeader(message), data);
        return { kind: 'binary', frame: encodings.binary, id: message.id };
      }
      encodings.text ??= messageFrameText(message, bytesToBase64(data), true);
    } else {
      encodings.text ??= messageText(message, JSON.stringify(data));
    }
    return { kind: 'text', text: encodings.text, id: message.id };
  }

  emit<E extends keyof ServerEvents>(event: E, ...args: ServerEvents[E]): void {
    this.#emitter.emit(event, ...args);
  }

  /** Reports a failure on the `error` event, or on the console when nobody listens. */
  fail(error: Error): void {
    if (this.#emitter.listenerCount('error') > 0) this.#emitter.emit('error', error);
    else console.error(error);
  }

  /** @internal the adapter reported a link gone. */
  linkGone(link: Downlink): void {
    this.#links.delete(link);
    if (this.#links.size === 0) this.#linksGone?.();
  }

  /** @internal a session ended. */
  sessionEnded(session: ServerSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    if (this.sessions.size === 0) this.#stopSweep();
  }

  #dispatch(message: StoredMessage): void {
    const appending = this.#appending;
    if (appending && appending.data === message.data) this.#encodings.set(message, { text: messageText(message, appending.text) });
    try {
      if (message.to === null) {
        for (const session of this.sessions.values()) session.link?.push(message);
      } else {
        this.sessions.get(message.to)?.link?.push(message);
      }
    } catch (error) {
      this.fail(toError(error));
    }
  }

  async #open(link: Downlink, params: ConnectParams, resumed: boolean, start: Promise<string>): Promise<void> {
    const { store } = this.options;
    const session = link.session;
    try {
      // The link is already subscribed (it is the session's link): live messages wait in its seam
      // buffer while the store is read.
      let after = await start;
      if (link.isClosed) return;
      let mark = link.seamLength;
      let page = await store.read(session.id, after, REPLAY_PAGE);
      if (link.isClosed) return;
      const hello: HelloFrame = {
        t: 'hello',
        v: params.version,
        sid: session.id,
        resumed,
        ack: session.processed,
        hb: this.options.heartbeatInterval,
        retry: this.options.retry,
        max: this.options.maxMessageSize,
        cursor: page.cursor,
      };
      const gap: GapFrame | undefined = page.gap && { t: 'gap', reason: page.gap, after, cursor: page.cursor };
      link.open(hello, gap);
      after = page.cursor;
      let lastReplayed: string | undefined;
      for (;;) {
        for (const message of page.messages) {
          if (link.pressure() > link.lowWater) await link.room();
          if (link.isClosed) return;
          link.enqueueMessage(message);
          lastReplayed = after = message.id;
        }
        if (!page.more && link.settle(lastReplayed, mark)) return;
        mark = link.seamLength;
        page = await store.read(session.id, after, REPLAY_PAGE);
        if (link.isClosed) return;
        if (page.gap) {
          // Retention overtook this replay. The client resumes and is told the gap in its hello.
          link.close({ kind: 'error', code: 'BACKPRESSURE', message: 'the stream moved past this replay; resume' });
          return;
        }
      }
    } catch (error) {
      this.fail(new UnbrokenServerError('STORE_ERROR', `reading the stream of session ${session.id} failed`, { cause: error }));
      link.close({ kind: 'error', code: 'INTERNAL_ERROR', message: 'the server could not read the stream' });
    }
  }

  async #shutdown(): Promise<void> {
    this.#state = 'closing';
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    const { random, shutdownJitter } = this.options;
    for (const session of [...this.sessions.values()]) {
      session.link?.shutdown(Math.floor(random() * shutdownJitter));
      session.end('shutdown');
    }
    this.#stopSweep();
    if (this.#links.size > 0) await new Promise<void>((resolve) => (this.#linksGone = resolve));
    this.#state = 'closed';
  }

  #startSweep(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => this.#runSweep(), this.sweepInterval);
    this.#sweep.unref?.();
  }

  #stopSweep(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  /** One pass over every session: heartbeats, liveness probes, session timeouts (§3.3, §7.1, §11). */
  #runSweep(): void {
    const now = this.options.now();
    for (const session of [...this.sessions.values()]) {
      if (session.link) session.link.tick(now);
      else if (now - session.detachedAt >= this.options.sessionTimeout) session.end('timeout');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A session

/** The server's state of one client: its id, what it processed, its current connection. */
export class ServerSession implements Session {
  readonly id: string;
  /** Highest client sequence number processed (§8). */
  processed = 0;
  link: Downlink | null = null;
  /** When the last connection went away (session timeout, §3.3). */
  detachedAt: number;
  #ended = false;
  readonly #hub: SessionHub;

  constructor(id: string, hub: SessionHub) {
    this.id = id;
    this.#hub = hub;
    this.detachedAt = hub.options.now();
  }

  get transport(): TransportName | null {
    return this.link?.connection.transport ?? null;
  }

  get connected(): boolean {
    return this.link !== null;
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(data: Payload, options?: { event?: string }): Promise<string> {
    return this.#hub.append(this.id, data, options);
  }

  close(): void {
    this.end('closed');
  }

  /** Ends the session: closes its connection and emits `close` once. */
  end(reason: SessionEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.link?.close({ kind: 'end' });
    this.#hub.sessionEnded(this);
    this.#hub.emit('close', this, reason);
  }

  /**
   * Processes a batch of client frames (§5, §8): each message whose `s` is one more than the highest
   * processed is handed to the application once; lower ones are duplicates; a higher one is a hole,
   * and then nothing of the batch is processed. `reply` receives pongs; `stop` is checked before each
   * frame (a connection that closed meanwhile processes nothing more).
   *
   * @returns whether the batch carried messages (so an ack is due) and whether it ended with `bye`.
   * @throws {ProtocolViolation} for a hole.
   */
  process(frames: readonly UpstreamFrame[], reply: (frame: ServerFrame) => void, stop: () => boolean): { messages: boolean; bye: boolean } {
    let expected = this.processed;
    for (const frame of frames) {
      if (frame.t !== 'msg') continue;
      if (frame.s > expected + 1) {
        throw new ProtocolViolation(`message s=${frame.s}: expects s ≤ ${expected + 1} (a hole in the sequence)`);
      }
      if (frame.s === expected + 1) expected++;
    }
    let messages = false;
    for (const frame of frames) {
      if (this.#ended || stop()) break;
      switch (frame.t) {
        case 'msg':
          messages = true;
          if (frame.s === this.processed + 1) {
            // Processed before the listeners run: a listener that throws still counts as processed.
            this.processed = frame.s;
            this.#hub.emit('message', frame.data, this);
          }
          break;
        case 'ping':
          reply({ t: 'pong', n: frame.n });
          break;
        case 'bye':
          return { messages, bye: true };
      }
    }
    return { messages, bye: false };
  }
}

// ---------------------------------------------------------------------------------------------
// One connection of a session: its queue, the replay seam and its timers' timestamps

export class Downlink implements ConnectionHandle {
  readonly session: ServerSession;
  readonly connection: Connection;
  readonly #hub: SessionHub;
  readonly #binaryFrames: boolean;
  /** opening: before hello · replaying: hello queued, seam buffer active · live · closed */
  #state: 'opening' | 'replaying' | 'live' | 'closed' = 'opening';
  #queue: Outgoing[] = [];
  #queueBytes = 0;
  /** Live messages that arrived while the store was read (§6.3: the live/replay seam). */
  #seam: StoredMessage[] = [];
  #seamBytes = 0;
  #cursor: string | null = null;
  /** Highest ack this link told its client (hello.ack included). */
  #acked = 0;
  #flushScheduled = false;
  #idleSince: number;
  #probedAt: number;
  #roomWaiter: (() => void) | null = null;
  #gone = false;

  constructor(session: ServerSession, connection: Connection, hub: SessionHub) {
    this.session = session;
    this.connection = connection;
    this.#hub = hub;
    this.#binaryFrames = connection.writeBinary !== undefined;
    this.#idleSince = this.#probedAt = hub.options.now();
  }

  get cursor(): string | null {
    return this.#cursor;
  }

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  get seamLength(): number {
    return this.#seam.length;
  }

  /** Replay waits for room below this many buffered bytes. */
  get lowWater(): number {
    return this.#hub.options.maxBufferedBytes / 2;
  }

  /** Bytes this connection holds: queued, in the seam buffer, and in the link's own buffer. */
  pressure(): number {
    return this.#queueBytes + this.#seamBytes + this.connection.bufferedBytes();
  }

  // -- ConnectionHandle -------------------------------------------------------------------------

  receive(frames: readonly UpstreamFrame[]): void {
    if (this.#state === 'closed') return; // §8: nothing is processed after the close frame
    let result: { messages: boolean; bye: boolean };
    try {
      result = this.session.process(frames, (frame) => this.#enqueueFrame(frame), () => this.#state === 'closed');
    } catch (error) {
      const message = error instanceof ProtocolViolation ? error.message : 'the batch could not be processed';
      this.close({ kind: 'error', code: 'PROTOCOL_ERROR', message });
      return;
    }
    // §8: after every batch with messages, duplicates included, an ack of the highest processed.
    if (result.messages) this.#enqueueAck(true);
    if (result.bye) this.session.end('bye');
  }

  abort(code: ErrorCode, message: string): void {
    this.close({ kind: 'error', code, message });
  }

  resume(): void {
    if (this.#state === 'closed') return;
    this.#idleSince = this.#hub.options.now();
    this.flush();
    this.#wakeIfRoom();
  }

  closed(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#detach();
    this.#hub.linkGone(this);
  }

  // -- used by the hub --------------------------------------------------------------------------

  /** A stored message of this session's stream was appended. */
  push(message: StoredMessage): void {
    if (this.#state === 'closed') return;
    if (this.#state !== 'live') {
      this.#seam.push(message);
      this.#seamBytes += this.#size(this.#hub.encode(message, this.#binaryFrames));
      this.#checkBound();
      return;
    }
    this.enqueueMessage(message);
  }

  /** The hello (and gap) go first, ahead of anything queued meanwhile (§4, §6.3). */
  open(hello: HelloFrame, gap: GapFrame | undefined): void {
    const first: Outgoing[] = [{ kind: 'text', text: JSON.stringify(hello) }];
    if (gap) first.push({ kind: 'text', text: JSON.stringify(gap) });
    for (const item of first) this.#queueBytes += this.#size(item);
    this.#queue.unshift(...first);
    this.#cursor = hello.cursor;
    this.#acked = Math.max(this.#acked, hello.ack);
    this.#state = 'replaying';
    this.#scheduleFlush();
  }

  enqueueMessage(message: StoredMessage): void {
    let item: Outgoing;
    try {
      item = this.#hub.encode(message, this.#binaryFrames);
    } catch (error) {
      // Only data changed by the application after it was sent can fail here.
      this.#hub.fail(new UnbrokenServerError('ENCODE_ERROR', `message ${message.id} could not be encoded`, { cause: error }));
      return;
    }
    this.#enqueue(item);
  }

  /**
   * Ends the replay if the seam can be placed (§6.3). Every message of the stream that the last read
   * could see was returned by it, so: a buffered message up to the last replayed one is a repeat, and
   * one that was buffered before the last read began but not returned lies at or before where the
   * stream continues. Messages buffered while that read ran, with nothing replayed, cannot be placed:
   * returns false and the caller reads once more.
   */
  settle(lastReplayed: string | undefined, mark: number): boolean {
    if (this.#state === 'closed') return true;
    let keep: StoredMessage[];
    if (lastReplayed !== undefined) {
      const index = this.#seam.findIndex((message) => message.id === lastReplayed);
      // Not found: the last replayed message was appended before this link subscribed, so every
      // buffered one came after it.
      keep = index >= 0 ? this.#seam.slice(index + 1) : this.#seam;
    } else {
      keep = this.#seam.slice(mark);
      if (keep.length > 0) {
        this.#seam = keep;
        this.#seamBytes = this.#sizeOf(keep);
        return false;
      }
    }
    this.#seam = [];
    this.#seamBytes = 0;
    this.#state = 'live';
    for (const message of keep) this.enqueueMessage(message);
    return true;
  }

  /** Resolves once the link holds at most `lowWater` bytes, or closed. */
  room(): Promise<void> {
    this.flush();
    if (this.#state === 'closed' || this.pressure() <= this.lowWater) return Promise.resolve();
    return new Promise((resolve) => {
      this.#roomWaiter = resolve;
    });
  }

  /** Sweep: heartbeat when idle, liveness probe every `hb` (§7.1, §11). */
  tick(now: number): void {
    if (this.#state === 'closed') return;
    const { heartbeatInterval } = this.#hub.options;
    const due = heartbeatInterval - this.#hub.sweepInterval;
    if (
      this.#state !== 'opening' &&
      this.#queue.length === 0 &&
      this.connection.writable() &&
      now - this.#idleSince >= due
    ) {
      this.#enqueueFrame({ t: 'hb' });
      this.flush();
    }
    if (now - this.#probedAt >= due) {
      this.#probedAt = now;
      this.connection.probe?.();
    }
  }

  /** §10.2: a reconnect notice, everything processed acknowledged (acks are queued already), close. */
  shutdown(ms: number): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'opening') {
      this.close({ kind: 'error', code: 'SERVER_RESTART', message: 'the server is shutting down' });
      return;
    }
    this.#enqueueAck();
    this.#enqueueFrame({ t: 'reconnect', ms });
    this.close({ kind: 'restart' });
  }

  /**
   * Closes the link. What is queued goes out first, with an ack of everything the session processed
   * (§8: a server acknowledges what it processed before closing) — except when the close is about
   * the buffer bound itself.
   */
  close(reason: CloseReason): void {
    if (this.#state === 'closed') return;
    if (!(reason.kind === 'error' && reason.code === 'BACKPRESSURE')) {
      this.#enqueueAck();
      this.flush();
      if (this.isClosed) return; // the flush hit the buffer bound and closed already
    }
    this.#end(reason);
  }

  /** Writes what is queued, in as few batches as the size limit allows. */
  flush(): void {
    if (this.#state === 'opening' || this.#state === 'closed') return;
    let index = 0;
    const queue = this.#queue;
    let wrote = false;
    while (index < queue.length && this.connection.writable()) {
      const item = queue[index]!;
      if (item.kind === 'binary') {
        this.connection.writeBinary!(item.frame);
        this.#queueBytes -= item.frame.length;
        this.#cursor = item.id;
        index++;
        wrote = true;
        if (this.isClosed) return; // the adapter reported the link gone during the write
        continue;
      }
      const parts: string[] = [];
      let chars = 2;
      let lastMessageId: string | undefined;
      while (index < queue.length) {
        const next = queue[index]!;
        if (next.kind !== 'text' || (parts.length > 0 && chars + next.text.length + 1 > MAX_BATCH_CHARS)) break;
        parts.push(next.text);
        chars += next.text.length + 1;
        this.#queueBytes -= next.text.length;
        if (next.id !== undefined) lastMessageId = next.id;
        index++;
      }
      if (lastMessageId !== undefined) this.#cursor = lastMessageId;
      this.connection.write(lastMessageId === undefined ? { text: joinEncoded(parts) } : { text: joinEncoded(parts), lastMessageId });
      wrote = true;
      if (this.isClosed) return; // the adapter reported the link gone during the write
    }
    if (index > 0) queue.splice(0, index);
    if (wrote) this.#idleSince = this.#hub.options.now();
    this.#checkBound();
  }

  // -- internals --------------------------------------------------------------------------------

  /** Queues a cumulative ack; unless `always`, only when this link has not told its client as much. */
  #enqueueAck(always = false): void {
    const s = this.session.processed;
    if (this.#state === 'closed' || (!always && (s <= this.#acked || this.#state === 'opening'))) return;
    this.#acked = s;
    this.#enqueueFrame({ t: 'ack', s });
  }

  /**
   * Queues the answer to a frame that came over HTTP upstream (a `pong`, §5): it goes down this
   * connection behind what is queued already, like any frame.
   */
  enqueueReply(frame: ServerFrame): void {
    this.#enqueueFrame(frame);
  }

  #enqueueFrame(frame: ServerFrame): void {
    if (this.#state === 'closed') return;
    this.#enqueue({ kind: 'text', text: JSON.stringify(frame) });
  }

  #enqueue(item: Outgoing): void {
    if (this.#state === 'closed') return;
    this.#queue.push(item);
    this.#queueBytes += this.#size(item);
    if (!this.#checkBound()) this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // A microtask, never a timer: a batch holds what one tick produced, and nothing waits (§4.1).
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.flush();
      this.#wakeIfRoom();
    });
  }

  /** §12: closes with BACKPRESSURE when the link holds more than the bound. Returns true if it closed. */
  #checkBound(): boolean {
    if (this.#state === 'closed') return true;
    if (this.pressure() <= this.#hub.options.maxBufferedBytes) return false;
    this.close({ kind: 'error', code: 'BACKPRESSURE', message: 'the client read too slowly; resume to get the rest' });
    return true;
  }

  #wakeIfRoom(): void {
    if (this.#roomWaiter && (this.#state === 'closed' || this.pressure() <= this.lowWater)) {
      const wake = this.#roomWaiter;
      this.#roomWaiter = null;
      wake();
    }
  }

  #end(reason: CloseReason): void {
    this.#state = 'closed';
    this.#queue = [];
    this.#queueBytes = 0;
    this.#seam = [];
    this.#seamBytes = 0;
    this.#detach();
    this.#wakeIfRoom();
    this.connection.close(reason);
  }

  #detach(): void {
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#queue = [];
      this.#queueBytes = 0;
      this.#seam = [];
      this.#seamBytes = 0;
      this.#wakeIfRoom();
    }
    if (this.session.link === this) {
      this.session.link = null;
      this.session.detachedAt = this.#hub.options.now();
    }
  }

  #size(item: Outgoing): number {
    return item.kind === 'text' ? item.text.length : item.frame.length;
  }

  #sizeOf(messages: readonly StoredMessage[]): number {
    let bytes = 0;
    for (const message of messages) bytes += this.#size(this.#hub.encode(message, this.#binaryFrames));
    return bytes;
  }
}
