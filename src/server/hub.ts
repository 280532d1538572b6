/**
 * Every session of one server and the store subscription that feeds them (docs/PROTOCOL.md §3.3, §6,
 * §10.2, §11). Everything the protocol promises — hello, replay and the seam with live delivery,
 * exactly-once upstream, heartbeats, supersede, timeouts, graceful shutdown — lives in the hub, its
 * sessions (session.ts) and their downlinks (downlink.ts), once for every transport; it knows no
 * socket library.
 */
import type http from 'node:http';
import {
  MAX_DATA_DEPTH,
  nestsDeeperThan,
  bytesToBase64,
  encodeBinaryFrame,
  isValidEventName,
  messageFrameText,
  type GapFrame,
  type HelloFrame,
  type JsonValue,
  type Payload,
  type ServerFrame,
} from '../protocol/index.js';
import type { ConnectParams, Connection, ConnectionHandle, UpstreamFrame } from './connection.js';
import { Downlink, textQueueItem, type QueuedItem } from './downlink.js';
import type { Emitter } from './emitter.js';
import { UnbrokenServerError, UnbrokenTypeError } from './errors.js';
import { authenticateRequest, identityId, type Authenticate } from './identity.js';
import { ServerSession, type ServerEvents, type Session } from './session.js';
import { SECRET_PATTERN, randomToken, sameSecret } from './tickets.js';
import type { MessageStore, StoredMessage } from './store.js';

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
  /** The application's check of fresh credentials in `auth` frames (§3.5); null without one. */
  readonly authenticate: Authenticate | null;
}

/** Fresh credentials waiting for `authenticate` (§3.5). */
interface Reauthentication {
  /** The connection that asked; it is closed when they are refused and it is still the session's. */
  readonly link: Downlink | null;
  readonly request: http.IncomingMessage;
  readonly credentials: JsonValue | undefined;
}

/** Messages per store read while replaying. */
const REPLAY_PAGE = 500;

/**
 * The encodings of one stored message, made once and shared by every connection (broadcast fan-out),
 * each with its byte count, also counted once.
 */
interface Encodings {
  text?: QueuedItem & { readonly kind: 'text' };
  binary?: QueuedItem & { readonly kind: 'binary' };
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
  if (nestsDeeperThan(text, MAX_DATA_DEPTH)) {
    // A client refuses such a batch (§4.4): it would reconnect and be refused again, forever.
    throw new UnbrokenTypeError('INVALID_DATA', `expects data nested at most ${MAX_DATA_DEPTH} levels deep`);
  }
  return text;
}

/** A message frame queued as text, built around data that is already JSON or base64 text (§4.3). */
function textItem(message: StoredMessage, dataText: string, binary = false): QueuedItem & { readonly kind: 'text' } {
  return textQueueItem(messageFrameText(message, dataText, binary), message.id);
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
  /** Per session, the credentials checked after the ones `authenticate` is checking now: one at a time, the latest wins. */
  readonly #reauthenticating = new Map<ServerSession, { next: Reauthentication | undefined }>();
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
    const sid = params.sid !== null && SECRET_PATTERN.test(params.sid) ? params.sid : null;
    const key = sid !== null && params.key !== null && SECRET_PATTERN.test(params.key) ? params.key : null;
    const existing = sid === null ? undefined : this.sessions.get(sid);
    const resumed = existing !== undefined;
    const session = existing ?? new ServerSession(sid ?? randomToken(), key ?? randomToken(), params.user, this);
    const link = new Downlink(session, connection, this, params.request ?? null);
    this.#links.add(link);
    if (!this.accepting) {
      link.close({ kind: 'error', code: 'SERVER_RESTART', message: 'the server is shutting down' });
      return link;
    }
    // §3.4: checked again here, not only when the ticket was issued: the session may have been
    // created meanwhile, by another ticket with the same id and another key.
    if (existing && (key === null || !sameSecret(key, existing.key) || identityId(params.user) !== identityId(existing.user))) {
      link.close({ kind: 'error', code: 'UNAUTHORIZED', message: 'this ticket does not open this session' });
      return link;
    }
    if (!resumed) this.sessions.set(session.id, session);
    else if (params.user !== null) existing.adopt(params.user);
    const previous = session.link;
    session.link = link;
    // §3.5: an identity close to its expiry asks this connection for fresh credentials.
    session.attached();
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
   *
   * A `ping` is answered with its `pong` on the session's downstream connection, not in the POST
   * answer: the client's liveness and round trip must measure the stream its messages come down
   * (§11), and an answer to a POST would keep a frozen stream looking alive.
   *
   * @returns the response frames: the cumulative ack (§8); `null` for an unknown session.
   * @throws {ProtocolViolation} for a hole in the sequence; nothing was processed then.
   */
  upstream(sid: string, frames: readonly UpstreamFrame[], request?: http.IncomingMessage): ServerFrame[] | null {
    const session = this.sessions.get(sid);
    if (!session) return null;
    const link = session.link;
    const { bye } = session.process(
      frames,
      (frame) => link?.reply(frame),
      () => false,
      (credentials) => request && this.reauthenticate(session, { link, request, credentials }),
    );
    const replies: ServerFrame[] = [{ t: 'ack', s: session.processed }];
    if (bye) session.end('bye');
    return replies;
  }

  /**
   * §3.5: checks the fresh credentials of a client `auth` frame with `authenticate` and, for the same
   * user, adopts the identity; otherwise closes the connection that carried them with UNAUTHORIZED.
   * One check per session runs at a time; credentials arriving meanwhile wait, only the latest kept,
   * so a client cannot pile up calls to the application's hook.
   */
  reauthenticate(session: ServerSession, job: Reauthentication): void {
    const authenticate = this.options.authenticate;
    // Without `authenticate` there is nothing to refresh: the frame has no effect.
    if (authenticate === null) return;
    const running = this.#reauthenticating.get(session);
    if (running) {
      running.next = job;
      return;
    }
    const state: { next: Reauthentication | undefined } = { next: undefined };
    this.#reauthenticating.set(session, state);
    void (async () => {
      for (let current: Reauthentication | undefined = job; current; current = state.next, state.next = undefined) {
        const identity = await authenticateRequest(authenticate, current.request, current.credentials, this.options.now);
        if (session.ended) break;
        if (identity !== null && identity.id === identityId(session.user)) session.adopt(identity);
        else if (current.link !== null && session.link === current.link) {
          current.link.close({ kind: 'error', code: 'UNAUTHORIZED', message: 'the fresh credentials were refused' });
        }
      }
      this.#reauthenticating.delete(session);
    })();
  }

  /**
   * Ends every session `predicate` selects (§3.5, logout): each connection is closed with
   * UNAUTHORIZED, the session ends with reason `disconnected`. Returns how many ended.
   */
  disconnect(predicate: (session: Session) => boolean): number {
    let ended = 0;
    for (const session of [...this.sessions.values()]) {
      if (!predicate(session)) continue;
      session.link?.close({ kind: 'error', code: 'UNAUTHORIZED', message: 'the application disconnected this session' });
      session.end('disconnected');
      ended++;
    }
    return ended;
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
  encode(message: StoredMessage, binaryFrames: boolean): QueuedItem {
    let encodings = this.#encodings.get(message);
    if (!encodings) this.#encodings.set(message, (encodings = {}));
    const { data } = message;
    if (data instanceof Uint8Array) {
      if (binaryFrames) {
        encodings.binary ??= { kind: 'binary', frame: encodeBinaryFrame(messageHeader(message), data), id: message.id };
        return encodings.binary;
      }
      return (encodings.text ??= textItem(message, bytesToBase64(data), true));
    }
    return (encodings.text ??= textItem(message, JSON.stringify(data)));
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
    if (appending && appending.data === message.data) this.#encodings.set(message, { text: textItem(message, appending.text) });
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
        key: session.key,
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
