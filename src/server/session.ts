/**
 * A session: one client across its connections (docs/PROTOCOL.md §1, §3.3), and the upstream rules
 * of §5 and §8 (sequence numbers, exactly-once processing).
 */
import { ProtocolViolation, type JsonValue, type Payload, type ServerFrame, type TransportName } from '../protocol/index.js';
import type { UpstreamFrame } from './connection.js';
import type { Downlink } from './downlink.js';
import { checkOutgoing } from './encoding.js';
import { checkRoom } from './rooms.js';
import { IdentityExpiry } from './expiry.js';
import type { SessionHub } from './hub.js';
import type { Identity } from './identity.js';
import type { TicketGrant } from './tickets.js';
import type { TokenBucket } from './limits.js';
import type { SendArgument, Sendable } from './sendable.js';
import type { Address } from './store.js';
import { UnbrokenServerError, asServerError } from './errors.js';

/** How many message frames a batch carries (each costs one token of the session's inbound budget). */
export function countMessages(frames: readonly UpstreamFrame[]): number {
  let n = 0;
  for (const frame of frames) if (frame.t === 'msg') n++;
  return n;
}

/** Why a session ended. */
export type SessionEndReason =
  /** The client closed on purpose: a `bye` frame, or WebSocket close code 1000 (§3.3, §9). */
  | 'bye'
  /** No connection for the server's session timeout (§3.3). */
  | 'timeout'
  /** The application called `session.close()`. */
  | 'closed'
  /** The server shut down (§10.2). */
  | 'shutdown'
  /** The application called `server.disconnect()` for it (logout, §3.5). */
  | 'disconnected';

/**
 * A session: one client across its connections (§1). `Outgoing` is what `send()` takes; `Incoming`,
 * which no member uses, is there so that a session is typed as its server: `Session<Incoming,
 * Outgoing>` beside `UnbrokenServer<Incoming, Outgoing>`. `Outgoing` is only taken (`in`): a helper
 * for the sessions of any server takes `Session<unknown, never>`, which sends nothing.
 */
export interface Session<Incoming = Payload, in Outgoing extends Sendable<Outgoing> = Payload> {
  /** The session's name (`sid`); no secret: what resumes a session is its key (§3.4). */
  readonly id: string;
  /**
   * Who the client is: what the server's `authenticate` returned for its latest connection or `auth`
   * frame, or `null` when the server has no `authenticate` (§3.5).
   */
  readonly user: Identity | null;
  /** The transport of the current connection, or `null` while the client is away. */
  readonly transport: TransportName | null;
  /** True while a connection is attached. A session without one lives until the session timeout. */
  readonly connected: boolean;
  /**
   * Sends a message to this session alone. It joins the session's stream in the store, so it reaches
   * the client after a reconnection too, within retention (§6.1) — even when sent while the client is
   * away. Not once the session ended: a session created under its id later is not this one
   * (§3.3.same-id-fresh).
   *
   * @returns the message id, once the store appended it.
   * @throws {UnbrokenTypeError} synchronously: `INVALID_EVENT_NAME` or `INVALID_DATA`.
   * Rejects with {@link UnbrokenServerError} `SERVER_CLOSED` after the server's `close()`, and
   * `SESSION_ENDED` once the session ended.
   */
  send<T = Outgoing>(data: SendArgument<Outgoing, T>, options?: { event?: string }): Promise<string>;
  /** Ends the session now: its connection closes, and `close` is emitted with reason `closed`. */
  close(): void;
  /**
   * Puts the session in `room` (§6.5): every message sent to the room from now until `leave()` is
   * part of its stream — delivered live, or replayed on resume, exactly once and in order with its
   * other messages. Membership survives reconnections and ends with the session. Joining a room the
   * session is in changes nothing; an ended session joins nothing.
   *
   * @returns once the store recorded the membership.
   * @throws {UnbrokenTypeError} synchronously: `INVALID_ROOM` for a name that is empty, longer than
   * 128 characters or holds a control character; `TOO_MANY_ROOMS` past the server's
   * `maxRoomsPerSession`.
   * Rejects with {@link UnbrokenServerError} `STORE_ERROR` when the store failed; the session is then
   * not in the room.
   */
  join(room: string): Promise<void>;
  /**
   * Takes the session out of `room` (§6.5): later messages to the room are not part of its stream;
   * earlier ones still replay on resume. Leaving a room the session is not in changes nothing.
   *
   * @throws {UnbrokenTypeError} synchronously: `INVALID_ROOM` for an invalid name.
   * Rejects with {@link UnbrokenServerError} `STORE_ERROR` when the store failed.
   */
  leave(room: string): Promise<void>;
  /** The rooms the session is in. */
  readonly rooms: ReadonlySet<string>;
}

/** The sessions in one or several rooms: what `server.to()` returns (§6.5). */
export interface RoomTarget<Incoming = Payload, in Outgoing extends Sendable<Outgoing> = Payload> {
  /**
   * Sends one message to every session in any of the rooms, one copy to each even when it is in
   * several of them. It joins the store like any message, so a member that is away gets it on
   * resume. A room nobody is in is no error: nobody receives the message.
   *
   * @returns the message id, once the store appended it.
   * @throws {UnbrokenTypeError} synchronously: `INVALID_EVENT_NAME` or `INVALID_DATA`.
   * Rejects with {@link UnbrokenServerError} `SERVER_CLOSED` after the server's `close()`.
   */
  send<T = Outgoing>(data: SendArgument<Outgoing, T>, options?: { event?: string }): Promise<string>;
  /**
   * The sessions in any of the rooms now, each once, with their `user`. Asynchronous because the
   * store holds membership; with a store shared by several processes, the sessions other processes
   * serve are included.
   */
  sessions(): Promise<Session<Incoming, Outgoing>[]>;
}

/**
 * Events of the server, by name: the arguments each listener receives. `Incoming` and `Outgoing` are
 * the server's (see {@link createServer}).
 */
export type ServerEvents<Incoming = Payload, Outgoing extends Sendable<Outgoing> = Payload> = {
  /** A new session began (not each reconnection of an existing one). */
  connection: [session: Session<Incoming, Outgoing>];
  /**
   * A client message, handed over exactly once (§8). It counts as processed even if a listener throws.
   * Its data is typed `Incoming`, but only the codec checked it: it is a JSON value or bytes.
   */
  message: [data: Incoming, session: Session<Incoming, Outgoing>];
  /** A session ended. */
  close: [session: Session<Incoming, Outgoing>, reason: SessionEndReason];
  /** A session joined a room (§6.5): emitted once the membership took effect. */
  join: [session: Session<Incoming, Outgoing>, room: string];
  /** A session left a room, by `leave()` or because it ended (then before `close`). */
  leave: [session: Session<Incoming, Outgoing>, room: string];
  /** Something failed that no caller could be told about, e.g. a listener threw. */
  error: [error: UnbrokenServerError];
};

/** The server's state of one client: its id, what it processed, its current connection. */
export class ServerSession implements Session {
  readonly id: string;
  /** The session key (§3.4): at least 128 random bits, sent in every `hello` and nowhere else. */
  readonly key: string;
  #user: Identity | null;
  /** Only for an identity with `expiresAt`: most sessions never expire, and an idle one stays small. */
  #expiry: IdentityExpiry<Downlink> | null = null;
  /** Highest client sequence number processed (§8). */
  processed = 0;
  link: Downlink | null = null;
  /** When the last connection went away (session timeout, §3.3). */
  detachedAt: number;
  /** The client address that created the session; its count of sessions includes this one (§12.1). */
  readonly address: string;
  #ended = false;
  /** Where `send()` addresses its messages: made at the first send, then one object for all of them. */
  #address: Address | undefined;
  readonly #hub: SessionHub;
  /** Inbound message budget (§12.1), made on the first message. */
  #inbound: TokenBucket | null = null;
  /**
   * The rooms it is in, as this server knows them; the store holds the positions (§6.5). Made at the
   * first join (or the first read of `rooms`): most sessions join none, and an empty set is not free.
   */
  #rooms: Set<string> | null = null;
  /**
   * With a store shared by several processes (cluster.ts): `owner` when its latest connection
   * attached here, `visitor` when learnt from the store for one request. Always `owner` otherwise.
   */
  residency: 'owner' | 'visitor' = 'owner';
  /** With a store shared by several processes: the mark of this incarnation, when the store keeps one (shared-state.ts). */
  born: string | null = null;
  /** The last act of a copy this process let go, which the next one waits for (`#asCopy`). */
  #copyActs: Promise<unknown> | null = null;
  /** When a request last used it here (a visitor unused for a while is dropped, cluster.ts). */
  lastUsed: number;
  /**
   * Where its stream began: the head when its first connection attached here. A later connection
   * without `last` starts there (§6.4.no-last). `null` when learnt from a shared store; the promise
   * of the head until it settles (see `setOrigin`).
   */
  origin: Promise<string> | string | null = null;

  constructor(id: string, key: string, user: Identity | null, hub: SessionHub, address: string) {
    this.id = id;
    this.key = key;
    this.#hub = hub;
    this.address = address;
    this.detachedAt = this.lastUsed = hub.options.now();
    this.#user = user;
    if (user?.expiresAt !== undefined) this.#expiryOf().set(user.expiresAt);
  }

  /** Takes `start` as its `origin`; once known, the id is kept: a settled promise weighs more than the id it holds. */
  setOrigin(start: Promise<string>): void {
    this.origin = start;
    start.then(
      (id) => {
        if (this.origin === start) this.origin = id;
      },
      // The connection that reads from `start` reports a failure.
      () => undefined,
    );
  }

  #expiryOf(): IdentityExpiry<Downlink> {
    this.#expiry ??= new IdentityExpiry<Downlink>(
      {
        link: () => this.link,
        ask: (link, ms) => link.reply({ t: 'auth', ms }),
        expire: (link) => link.close({ kind: 'error', code: 'UNAUTHORIZED', message: 'the identity expired; authenticate again' }),
      },
      this.#hub.options.now,
    );
    return this.#expiry;
  }

  get user(): Identity | null {
    return this.#user;
  }

  /** True while the identity is past its `expiresAt` with no fresh one adopted (§3.5). */
  get expired(): boolean {
    return this.#expiry?.expired() ?? false;
  }

  /** Takes a fresh identity of the same user: new expiry, `user` updated (§3.5). */
  adopt(user: Identity): void {
    if (this.#ended) return;
    this.#user = user;
    if (this.#expiry || user.expiresAt !== undefined) this.#expiryOf().adopt(user.expiresAt);
  }

  /** Fresh credentials could not be checked now (`AUTH_UNAVAILABLE`): the connection is asked again before expiry (§3.5). */
  uncheckedCredentials(): void {
    if (!this.#ended) this.#expiry?.askAgain();
  }

  /** When `uncheckedCredentials` would have the connection asked again, and when the identity expires; null for no ask. */
  nextAsk(): { at: number; expiresAt: number } | null {
    return this.#ended ? null : (this.#expiry?.nextAsk() ?? null);
  }

  /** This process no longer serves the session (another does): its timers stop; it is not ended. */
  released(): void {
    this.#expiry?.stop();
  }

  /**
   * What a `disconnect()` predicate is asked about for a ticket's session not made yet (§3.5): a
   * session of `hub` that sends, joins and closes nothing.
   */
  static standIn(hub: SessionHub, grant: TicketGrant, address: string): ServerSession {
    const session = new ServerSession(grant.sid ?? '', grant.key ?? '', grant.user, hub, address);
    session.markEnded();
    return session;
  }

  /**
   * The session ended at another process, or this object only stands for one (a session a ticket
   * would make): it takes nothing more — no send, no join — and its `close()` does nothing.
   */
  markEnded(): void {
    this.#ended = true;
    this.#expiry?.stop();
  }

  /** A connection attached: it gets the `auth` request now if one is due (§3.5). */
  attached(): void {
    this.#expiry?.check();
  }

  /** Spends `messages` of the inbound budget; returns the ms the sender should wait (§12.1). */
  takeInbound(messages: number, now: number): number {
    if (messages === 0) return this.inboundWait(now);
    this.#inbound ??= this.#hub.limits.messageBucket();
    return this.#inbound.take(messages, now);
  }

  /** Ms until the inbound budget is out of debt; 0 when it is not. */
  inboundWait(now: number): number {
    return this.#inbound?.wait(now) ?? 0;
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
    const address = (this.#address ??= { kind: 'session', session: this.id });
    const act = (sent: Payload): Promise<string> =>
      this.#ended ? Promise.reject(new UnbrokenServerError('SESSION_ENDED', `cannot send: session ${this.id} ended`)) : this.#hub.append(address, sent, options);
    if (!this.#letGo()) return act(data);
    // Checked and taken now, like every other send: what the caller changes after the call is not sent.
    const text = checkOutgoing(data, options?.event, this.#hub.options.maxBufferedBytes);
    const taken = text === undefined ? new Uint8Array(data as Uint8Array) : (JSON.parse(text) as Payload);
    return this.#asCopy(() => act(taken));
  }

  join(room: string): Promise<void> {
    if (!this.#letGo()) return this.#hub.rooms.join(this, room);
    this.#hub.rooms.checkJoin(this, room);
    return this.#asCopy(() => this.#hub.rooms.join(this, room));
  }

  leave(room: string): Promise<void> {
    if (!this.#letGo()) return this.#hub.rooms.leave(this, room);
    checkRoom(room);
    return this.#asCopy(() => (this.#ended ? Promise.resolve() : this.#hub.rooms.leave(this, room)));
  }

  /** A copy of a session that another process took the connection from, which this one let go. */
  #letGo(): boolean {
    return !this.#ended && this.born !== null && this.#hub.cluster !== null && this.#hub.sessions.get(this.id) !== this;
  }

  /**
   * What a copy this process let go does (send, join, leave) first reads the session's mark in the
   * shared store, in call order: the session may have ended at the other process since and its id
   * been taken by a new one (§3.3.same-id-fresh), and then the copy is ended, and does nothing.
   */
  #asCopy<T>(act: () => Promise<T>): Promise<T> {
    // After the server's close(), what it does is refused as it is (SERVER_CLOSED), with no store read.
    if (!this.#hub.accepting) return act();
    const done = (this.#copyActs ?? Promise.resolve())
      .then(() => this.#hub.cluster!.state.getSession(this.id))
      .then(
        (shared) => {
          if (shared?.born !== this.born) this.markEnded();
          return act();
        },
        (error: unknown) => Promise.reject(asServerError('STORE_ERROR', `session ${this.id}: the store could not be read`, error)),
      );
    this.#copyActs = done.catch(() => undefined);
    return done;
  }

  /** The same live set from the first read on, as the rooms change. */
  get rooms(): ReadonlySet<string> {
    return (this.#rooms ??= new Set());
  }

  /** Whether it is in `room`; makes no set. */
  inRoom(room: string): boolean {
    return this.#rooms?.has(room) ?? false;
  }

  /** How many rooms it is in; makes no set. */
  get roomCount(): number {
    return this.#rooms?.size ?? 0;
  }

  /** A copy of its rooms, to go over while they change. */
  roomList(): string[] {
    return this.#rooms === null ? [] : [...this.#rooms];
  }

  /** Puts `room` in its own view of its rooms (the hub's rooms keep the delivery index). */
  addRoom(room: string): void {
    (this.#rooms ??= new Set()).add(room);
  }

  /** Takes `room` out of its own view of its rooms. */
  removeRoom(room: string): void {
    this.#rooms?.delete(room);
  }

  close(): void {
    this.end('closed');
  }

  /** Ends the session: closes its connection and emits `close` once. */
  end(reason: SessionEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#expiry?.stop();
    this.link?.close({ kind: 'end' });
    this.#hub.sessionEnded(this, reason);
    this.#hub.emit('close', this, reason);
  }

  /**
   * Processes a batch of client frames (§5, §8): each message whose `s` is one more than the highest
   * processed is handed to the application once; lower ones are duplicates; a higher one is a hole,
   * and then nothing of the batch is processed. `reply` receives pongs; `stop` is checked before each
   * frame (a connection that closed meanwhile processes nothing more). `auth` hands fresh credentials
   * to the caller, which checks them without holding up the frames after them (§3.5).
   *
   * @returns whether the batch carried messages (so an ack is due) and whether it ended with `bye`.
   * @throws {ProtocolViolation} for a hole.
   */
  process(
    frames: readonly UpstreamFrame[],
    reply: (frame: ServerFrame) => void,
    stop: () => boolean,
    auth: (credentials: JsonValue | undefined) => void = () => undefined,
  ): { messages: boolean; bye: boolean } {
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
        case 'auth':
          auth(frame.credentials);
          break;
        case 'bye':
          return { messages, bye: true };
      }
    }
    return { messages, bye: false };
  }
}
