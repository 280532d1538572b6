/**
 * Every session of one server and the store subscription that feeds them (docs/PROTOCOL.md §3.3, §6,
 * §10.2, §11). Everything the protocol promises — hello, replay and the seam with live delivery,
 * exactly-once upstream, heartbeats, supersede, timeouts, graceful shutdown — lives in the hub, its
 * sessions (session.ts) and their downlinks (downlink.ts), once for every transport; it knows no
 * socket library.
 */
import type http from 'node:http';
import type { Payload, ServerFrame } from '../protocol/index.js';
import type { ConnectParams, Connection, ConnectionHandle, ContinueParams, UpstreamFrame } from './connection.js';
import { Downlink } from './downlink.js';
import { EncodingCache, MessageEncodings, checkOutgoing } from './encoding.js';
import type { Emitter } from './emitter.js';
import { UnbrokenServerError, asServerError } from './errors.js';
import { AuthReports, identityId, type Authenticate, type Identity } from './identity.js';
import { Limits, type SessionCreation } from './limits.js';
import { Reauthentications, type Reauthentication } from './reauthentication.js';
import { forgetEarlier, openStream, replayFrom } from './replay.js';
import { ServerSession, countMessages, type RoomTarget, type ServerEvents, type Session, type SessionEndReason } from './session.js';
import { SECRET_PATTERN, issuedBefore, randomToken, sameSecret } from './tickets.js';
import { LiveRooms } from './rooms.js';
import { Links } from './links.js';
import { SessionSweep } from './sweep.js';
import { Cluster, type PreparedSession } from './cluster.js';
import { sharesState } from './shared-state.js';
import type { Address, MessageStore, StoredMessage } from './store.js';

export interface HubOptions {
  readonly store: MessageStore;
  readonly heartbeatInterval: number;
  readonly retry: number;
  readonly maxMessageSize: number;
  readonly sessionTimeout: number;
  readonly shutdownJitter: number;
  readonly maxBufferedBytes: number;
  /** Most rooms one session is in at once (§6.5). @default 100 */
  readonly maxRoomsPerSession?: number;
  /**
   * Most bytes buffered across every connection (§12.1); past it the connections that hold the most
   * are cut with BACKPRESSURE first.
   * @default Infinity
   */
  readonly maxTotalBufferedBytes?: number;
  /** Counts and limits per client address (§12.1). @default no limits */
  readonly limits?: Limits;
  readonly now: () => number;
  readonly random: () => number;
  /** The application's check of fresh credentials in `auth` frames (§3.5); null without one. */
  readonly authenticate: Authenticate | null;
}

/** What the server holds now: for monitoring, and for tests that check every count stays bounded. */
export interface ServerStats {
  /** Live sessions, connected or not. */
  readonly sessions: number;
  /** Downstream connections the transports have not yet reported gone. */
  readonly connections: number;
  /** Long-polling connections whose queue was dropped until their client polls again (§12.1). */
  readonly parkedConnections: number;
  /** Bytes queued or buffered for clients, summed over every connection. */
  readonly bufferedBytes: number;
  /** Client addresses the limits keep counts for. */
  readonly addresses: number;
  /** Bytes of request bodies being read now (§12.1.bodies). */
  readonly bodyBytes: number;
}

const idOf = (stored: StoredMessage): string => stored.id;

/**
 * Every session of one server, and the store subscription that feeds them. The server creates one;
 * tests drive it directly with fake connections.
 */
export class SessionHub {
  readonly sessions = new Map<string, ServerSession>();
  readonly options: HubOptions;
  readonly limits: Limits;
  /** The rooms of this server's sessions (§6.5). */
  readonly rooms: LiveRooms = new LiveRooms(this);
  readonly #emitter: Emitter<ServerEvents>;
  readonly #encodings = new EncodingCache();
  /** Connections whose adapter has not yet reported them closed. */
  readonly #links: Links;
  readonly #reauthentications: Reauthentications;
  /** @internal Reports `authenticate`'s AUTH_UNAVAILABLE errors, a few at most (identity.ts). */
  readonly authReports: AuthReports;
  #unsubscribe: (() => void) | null;
  /** Heartbeats, probes and session timeouts, while the hub holds sessions (sweep.ts). */
  readonly sweep: SessionSweep;
  #state: 'running' | 'closing' | 'closed' = 'running';
  /** The other processes sharing the store, when it shares session state (cluster.ts); else null. */
  readonly cluster: Cluster | null;
  #closing: Promise<void> | null = null;

  constructor(options: HubOptions, emitter: Emitter<ServerEvents>) {
    this.options = options;
    this.limits = options.limits ?? Limits.unlimited(options.now);
    this.#links = new Links(this.limits, options.maxTotalBufferedBytes);
    this.sweep = new SessionSweep(this, () => this.#links.enforce());
    this.#emitter = emitter;
    this.authReports = new AuthReports(options.now, (error) => this.fail(error));
    this.#reauthentications = new Reauthentications(
      options.authenticate,
      options.now,
      (session, user) => this.adopt(session, user),
      (error) => this.authReports.add(error),
      (session) => this.#askAgain(session),
    );
    this.#unsubscribe = options.store.subscribe((message, dataText) => this.#dispatch(message, dataText), {
      membership: (change) => this.rooms.changed(change),
      historyLost: () => this.#historyLost(),
      overrun: () => this.#resumeAll('the server fell behind its store; resume'),
    });
    this.cluster = sharesState(options.store) ? new Cluster(this, options.store) : null;
  }

  /** False once `close()` began: adapters refuse new connections with `SERVER_RESTART`. */
  get accepting(): boolean {
    return this.#state === 'running';
  }

  /**
   * What connecting with a ticket for `sid` would do to the sessions (§3.3): resume one, or create
   * one. A session the server named in a ticket answer (`fresh`, §3.4.one-session) is created as one
   * with a fresh id, not under an id its client kept.
   */
  creation(sid: string | null, fresh = false, held = false): SessionCreation {
    if (sid === null || !SECRET_PATTERN.test(sid)) return 'fresh';
    if (this.sessions.has(sid)) return 'none';
    return fresh ? 'fresh' : held ? 'held' : 'same-id';
  }

  /** A session object of this server (not yet in `sessions`). */
  createSession(id: string, key: string, user: Identity | null, address: string): ServerSession {
    return new ServerSession(id, key, user, this, address);
  }

  /**
   * Attaches a new connection to its session, creating the session when needed (§3.3). With a store
   * shared by several processes the session was found or created there first (`prepared`).
   */
  connect(connection: Connection, params: ConnectParams, prepared?: PreparedSession): ConnectionHandle {
    const sid = params.sid !== null && SECRET_PATTERN.test(params.sid) ? params.sid : null;
    const key = sid !== null && params.key !== null && SECRET_PATTERN.test(params.key) ? params.key : null;
    const existing = prepared ? (prepared.created ? undefined : prepared.session) : sid === null ? undefined : this.sessions.get(sid);
    const resumed = existing !== undefined;
    const address = params.address ?? 'local';
    const session = existing ?? prepared?.session ?? new ServerSession(sid ?? randomToken(), key ?? randomToken(), params.user, this, address);
    const link = new Downlink(session, connection, this, address, params.request ?? null, params.issue ?? null, params.max);
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
    // §3.3.stale: a ticket issued before the one of the session's connection belongs to an attempt its
    // client gave up on (its connect deadline passed while the request was under way, e.g. queued on a
    // busy server); letting it attach would end the connection the client has now.
    if (existing && issuedBefore(params.issue, existing.link?.issue)) {
      link.close({ kind: 'error', code: 'SUPERSEDED', message: 'a newer connection of this session holds it' });
      return link;
    }
    const forgotten = resumed || prepared ? undefined : forgetEarlier(this, link);
    if (forgotten === null) return link;
    if (!resumed) {
      this.sessions.set(session.id, session);
      this.limits.sessionOpened(address);
    } else if (params.user !== null) this.adopt(existing, params.user);
    this.#attach(session, link);
    // §6.4: a stream without `last` starts at the head as of now, when the link is subscribed — so a
    // message the application sends from its 'connection' listener is part of it.
    // A connection to a held session without `last` (its client never read a hello: the attempts of
    // a race, §13.3) starts where the session's stream began, so nothing sent to it meanwhile is lost.
    const origin = resumed ? session.origin : null;
    const start = forgotten
      ? forgotten.then(() => params.last ?? this.options.store.head())
      : params.last !== null ? Promise.resolve(params.last) : origin !== null ? Promise.resolve(origin) : this.options.store.head();
    if (!resumed) session.setOrigin(start);
    // The read is awaited below; a rejection is handled there, not reported as unhandled meanwhile.
    start.catch(() => undefined);
    if (!resumed) this.emit('connection', session);
    void openStream(this, link, params, resumed, start);
    return link;
  }

  /**
   * Continues, on this process, a long-polling connection another process served until now (§7.4,
   * cluster.ts): no new `hello`; the link starts parked at `last`, where the client stands, so the
   * poll it holds reads the stream from the store as a parked link's does (§12.1). `max` is the
   * batch limit its client named when it opened (§4.1.size), as the shared store recorded it.
   */
  continueConnection(connection: Connection, session: ServerSession, params: ContinueParams): ConnectionHandle {
    const { last, address, request, max } = params;
    const link = new Downlink(session, connection, this, address, request, null, max);
    this.#links.add(link);
    link.continueFrom(last);
    this.#attach(session, link);
    return link;
  }

  /** Makes `link` the session's connection; the previous one closes after (§3.3.supersede). */
  #attach(session: ServerSession, link: Downlink): void {
    const previous = session.link;
    session.link = link;
    session.lastUsed = this.options.now();
    // §3.5: an identity close to its expiry asks this connection for fresh credentials.
    session.attached();
    previous?.close({ kind: 'error', code: 'SUPERSEDED', message: 'a newer connection of this session replaced it' });
    this.cluster?.attached(session, link);
    this.sweep.start();
  }

  /**
   * Fresh credentials of `session` could not be checked (§3.5): its connection is asked again — when
   * due, by a frame the process that holds it writes, if they came in a POST to another process.
   */
  #askAgain(session: ServerSession): void {
    if (session.link !== null || this.cluster === null) session.uncheckedCredentials();
    else this.cluster.askAgainLater(session);
  }

  /** The session takes a fresh identity of its user (§3.5); with a shared store every process learns it. */
  adopt(session: ServerSession, user: Identity): void {
    session.adopt(user);
    this.cluster?.adopted(session, user);
  }

  /**
   * This server no longer serves `session`, which lives on in the shared store (another process took
   * its connection, or it was learnt for one request): it leaves `sessions` without ending.
   */
  release(session: ServerSession): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.limits.sessionClosed(session.address);
    this.rooms.released(session);
    session.released();
    if (this.sessions.size === 0) this.sweep.stop();
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
    return session ? this.processUpstream(session, frames, request) : null;
  }

  /** {@link upstream} for a session already found (with a shared store, after `cluster.claim`). */
  processUpstream(session: ServerSession, frames: readonly UpstreamFrame[], request?: http.IncomingMessage): ServerFrame[] {
    const link = session.link;
    session.lastUsed = this.options.now();
    const { messages, bye } = session.process(
      frames,
      (frame) => (this.cluster ? this.cluster.reply(session, frame) : link?.reply(frame)),
      () => false,
      (credentials) => request && this.reauthenticate(session, { link, request, credentials }),
    );
    // §7.3.one-request: the stream says it too, when the batch caused a write to it anyway (an echo),
    // so that the client may send its next batch without waiting for this request's answer.
    if (messages) link?.acknowledgeAlong();
    const replies: ServerFrame[] = [{ t: 'ack', s: session.processed }];
    if (bye) session.end('bye');
    else session.takeInbound(countMessages(frames), this.options.now());
    return replies;
  }

  /**
   * Ms an upstream request of session `sid` waits before its body is read: until the session's
   * inbound budget is out of debt (§12.1). 0 for an unknown session (it is refused later).
   */
  inboundWait(sid: string): number {
    return this.sessions.get(sid)?.inboundWait(this.options.now()) ?? 0;
  }

  /** What the server holds now (see {@link ServerStats}). */
  stats(): ServerStats {
    return { sessions: this.sessions.size, connections: this.#links.size, ...this.#links.load(), addresses: this.limits.addresses, bodyBytes: this.limits.bodyBytes };
  }

  /** Checks the fresh credentials of a client `auth` frame (§3.5, {@link Reauthentications.start}). */
  reauthenticate(session: ServerSession, job: Reauthentication): void {
    this.#reauthentications.start(session, job);
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

  /** The sessions in one or several rooms (`server.to()`, §6.5). */
  to(rooms: string | readonly string[]): RoomTarget {
    return this.rooms.target(rooms);
  }

  /** Appends a message to the store for everyone, one session or the sessions in some rooms. */
  append(to: Address, data: Payload, options?: { event?: string }): Promise<string> {
    const event = options?.event;
    const text = checkOutgoing(data, event, this.options.maxBufferedBytes);
    if (this.#state !== 'running') {
      return Promise.reject(new UnbrokenServerError('SERVER_CLOSED', 'cannot send: the server is closed'));
    }
    const message = event === undefined ? { to, data } : { to, event, data };
    const { store } = this.options;
    try {
      // A store in this process appends at once: the id is known now, and the one promise is the
      // caller's. Either way the store gets the JSON text made here, and hands it back with the
      // message to `#dispatch`, which encodes around it.
      if (store.appendNow) return Promise.resolve(store.appendNow(message, text).id);
      return store.append(message, text).then(idOf, (error: unknown) => Promise.reject(asServerError('STORE_ERROR', 'the store could not append', error)));
    } catch (error) {
      return Promise.reject(asServerError('STORE_ERROR', 'the store could not append', error));
    }
  }

  /**
   * @internal A parked link's client came back (§12.1): replays its stream from `after`, the cursor
   * the client stands at, as a resume would — without a new `hello`, since the connection goes on.
   */
  replay(link: Downlink, after: string): void {
    replayFrom(this, link, after);
  }

  /** Graceful shutdown (§10.2). Resolves once every connection is gone. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** The encodings of a stored message read back from the store (see {@link EncodingCache.of}). */
  encodings(message: StoredMessage): MessageEncodings {
    return this.#encodings.of(message);
  }

  emit<E extends keyof ServerEvents>(event: E, ...args: ServerEvents[E]): void {
    this.#emitter.emit(event, ...args);
  }

  /** Reports a failure on the `error` event, or on the console when nobody listens. */
  fail(error: UnbrokenServerError): void {
    if (this.#emitter.listenerCount('error') > 0) this.#emitter.emit('error', error);
    else console.error(error);
  }

  /** @internal `link` has writes queued: they go out in a microtask. */
  scheduleFlush(link: Downlink): void {
    this.#links.scheduleFlush(link);
  }

  /** @internal the adapter reported a link gone. */
  linkGone(link: Downlink): void {
    this.#links.gone(link);
  }

  /** @internal a session ended. */
  sessionEnded(session: ServerSession, reason: SessionEndReason): void {
    // With a shared store a shutdown leaves the session to the other processes: its client resumes
    // there, in its rooms (§10.2). The end of a copy this process let go already is the end of the
    // session where it is held: that process ends it, and its rooms with it.
    const held = this.sessions.get(session.id) === session;
    if (!held || (this.cluster && reason === 'shutdown')) this.rooms.released(session);
    else this.rooms.ended(session);
    if (this.cluster && reason !== 'shutdown') {
      if (held) this.cluster.ended(session);
      else this.cluster.endedElsewhere(session);
    }
    if (held) {
      this.sessions.delete(session.id);
      this.limits.sessionClosed(session.address);
    }
    if (this.sessions.size === 0) this.sweep.stop();
  }

  /** Every connection closes; its client resumes from its cursor and the store says what it kept. */
  #resumeAll(message: string): void {
    for (const session of this.sessions.values()) session.link?.close({ kind: 'error', code: 'BACKPRESSURE', message });
  }

  /**
   * The store lost its history (§6.2): every connection closes so that its client resumes and is told
   * the gap, and the sessions, whose state went with the history, are released here — their clients
   * come back to sessions created anew under the same ids (§3.3.same-id).
   */
  #historyLost(): void {
    for (const session of [...this.sessions.values()]) {
      session.link?.close({ kind: 'error', code: 'SERVER_RESTART', message: 'the store lost its history; resume' });
      if (this.cluster) this.release(session);
    }
  }

  #dispatch(message: StoredMessage, dataText?: string): void {
    // Encoded once here for every recipient, around the data's JSON text when the store hands it over
    // (the text the send made, or the one a shared store kept). A text with a raw line break is valid
    // JSON but not as `JSON.stringify` makes it, and would cut a carrier's line in two (§7.5): not used.
    const text = dataText !== undefined && !dataText.includes('\n') && !dataText.includes('\r') ? dataText : undefined;
    const encoded = new MessageEncodings(message, text);
    try {
      const { to } = message;
      switch (to.kind) {
        case 'all':
          for (const session of this.sessions.values()) session.link?.push(encoded);
          break;
        case 'session':
          this.sessions.get(to.session)?.link?.push(encoded);
          break;
        case 'rooms':
          for (const session of this.rooms.recipients(to.rooms)) session.link?.push(encoded);
          break;
      }
    } catch (error) {
      this.fail(asServerError('INTERNAL_ERROR', 'a message could not be delivered', error));
    }
    this.#links.scheduleCheck();
  }

  async #shutdown(): Promise<void> {
    this.#state = 'closing';
    this.cluster?.stop();
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    const { random, shutdownJitter } = this.options;
    for (const session of [...this.sessions.values()]) {
      session.link?.shutdown(Math.floor(random() * shutdownJitter));
      session.end('shutdown');
    }
    this.sweep.stop();
    await this.#links.empty();
    this.#state = 'closed';
  }
}
