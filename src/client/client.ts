/**
 * The client core: an explicit state machine (docs/PROTOCOL.md §13.1) whose states hold what they
 * own — an {@link Attempt} while connecting or open, the timer of the next attempt while waiting, the
 * error once closed. Each attempt owns its link and timers and releases them in one `dispose()`;
 * handlers of an attempt that is no longer current do nothing.
 */
import {
  CloseCode,
  Endpoint,
  SUPPORTED_VERSIONS,
  closeCodeFor,
  codeForClose,
  encodeBatch,
  serverCode,
  type HelloFrame,
} from '../protocol/index.js';
import { Attempt } from './attempt.js';
import { StateMachine } from './client-state.js';
import { Emitter, type Listener } from './emitter.js';
import { UnbrokenError } from './errors.js';
import {
  type ClientEvents,
  type ConnectionState,
  type Sendable,
  type SendArgument,
  type StateCause,
  type UnbrokenMessage,
} from './events.js';
import { Liveness } from './liveness.js';
import { Moves } from './moves.js';
import { endpointBase, endpointUrl, resolveOptions, type BaseClientOptions, type ResolvedOptions } from './options.js';
import { Outbox } from './outbox.js';
import { watchPage } from './page-lifecycle.js';
import { backoff, classify, heartbeatOf, nextStart, serverDelay } from './reconnect-policy.js';
import { Race, howFailed } from './race.js';
import { credentialsOf, requestTicket, type SessionName } from './ticket.js';
import type { InboundFrame, LinkContext, TransportFactory, TransportName } from './transport.js';
export { TRANSITIONS, type ConnectionState, type StateCause } from './events.js';
import { TransportSelector, fallbackRoute, noTransport, pick, type Route } from './transport-selector.js';

/** Close code of a link the client drops to reconnect: anything but 1000, which ends the session (§9). */
const DROP = CloseCode.Reconnecting;

/** What ends a connection whose server said it restarts (§10.2), however its stream then ends. */
const restart = (): UnbrokenError => new UnbrokenError('SERVER_RESTART', 'the server asked to reconnect');

/**
 * A real-time connection that stays unbroken: it reconnects with backoff, resumes the stream where
 * it left off, and resends unacknowledged messages. It uses the transports it is given, and no
 * other: an application bundled with only `webSocketTransport` ships none of the HTTP transports'
 * code. {@link Client} (made by {@link connect}) is this with all three, named in its options.
 *
 * @typeParam Incoming - the data of the messages the application receives (not checked at run time)
 * @typeParam Outgoing - what `send()` accepts: JSON values or bytes, or a narrower type of them
 * @example new BaseClient('/realtime', { transports: [webSocketTransport] })
 */
export class BaseClient<Incoming = unknown, Outgoing extends Sendable<Outgoing> = Sendable> {
  readonly #events = new Emitter<ClientEvents<Incoming>>();
  readonly #options: ResolvedOptions;
  readonly #url: string;
  readonly #outbox: Outbox;
  readonly #selector: TransportSelector;
  readonly #stopWatching: () => void;
  readonly #state = new StateMachine((event) => this.#events.emit('state', event));
  /** Consecutive failed attempts. */
  #failures = 0;
  /** Reconnect delay floor (`hello.retry`, `retry` frames). */
  #floor = 0;
  readonly #liveness: Liveness;
  readonly #moves: Moves;
  readonly #race: Race;
  #transport: TransportName | null = null;
  /** Session id and key of the last hello: the key goes only in ticket bodies and headers (§3.4). */
  #session: SessionName | null = null;
  #cursor: string | null = null;
  #flushing = false;

  /** Starts connecting to the endpoint at `url`, as {@link connect} does, on `options.transports`. */
  constructor(url: string, options: BaseClientOptions) {
    this.#options = resolveOptions(options);
    this.#url = endpointBase(url);
    const { transports, storage, rememberFor, clock, outboxLimit, pageLifecycle } = this.#options;
    this.#outbox = new Outbox(outboxLimit);
    this.#selector = new TransportSelector(transports, storage, this.#url, rememberFor, clock.now());
    this.#liveness = new Liveness(clock, (error) => this.#fail(error));
    this.#moves = new Moves({
      options: this.#options,
      url: this.#url,
      selector: this.#selector,
      liveness: this.#liveness,
      isOpen: (a) => this.#state.openAttempt() === a,
      moveTo: (a, route, cause) => this.#moveTo(a, route, cause),
      scheduled: (event) => this.#events.emit('schedule', event),
    });
    this.#race = new Race({
      options: this.#options,
      selector: this.#selector,
      state: this.#state,
      begin: (a, make, session) => this.#begin(a, make, session),
      dropped: (error) => this.#events.emit('error', error),
    });
    this.#stopWatching = pageLifecycle ? watchPage(() => this.#wake()) : () => {};
    // Starts in a microtask, so listeners added right after `connect()` hear everything.
    queueMicrotask(() => this.#start());
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state.kind;
  }

  /** The transport of the last connection that opened, or `null` before the first. */
  get transport(): TransportName | null {
    return this.#transport;
  }

  /**
   * On SSE or long polling with the tabs of this origin sharing one connection (PROTOCOL.md §7.5):
   * `holder` when this tab holds it, `follower` when another tab does; `null` on a connection of its
   * own (WebSocket, `share: false`, no Web Locks) and while not open.
   */
  get sharing(): 'holder' | 'follower' | null {
    return this.#state.openAttempt()?.link?.sharing?.() ?? null;
  }

  /** The cursor: the id of the last message delivered, or where the stream starts (PROTOCOL.md §6.4). */
  get lastEventId(): string | null {
    return this.#cursor;
  }

  /** The session id from the last `hello`, or `null` before the first. */
  get sessionId(): string | null {
    return this.#session?.sid ?? null;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents<Incoming>>(event: K, listener: Listener<ClientEvents<Incoming>[K]>): () => void {
    return this.#events.on(event, listener);
  }

  /** Removes a listener added with {@link BaseClient.on}. */
  off<K extends keyof ClientEvents<Incoming>>(event: K, listener: Listener<ClientEvents<Incoming>[K]>): void {
    this.#events.off(event, listener);
  }

  /** Adds a listener for the next event only; returns the function that removes it. */
  once<K extends keyof ClientEvents<Incoming>>(event: K, listener: Listener<ClientEvents<Incoming>[K]>): () => void {
    return this.#events.once(event, listener);
  }

  /**
   * Sends a message: a JSON value, or bytes (`Uint8Array`, any `ArrayBufferView`, `ArrayBuffer`).
   * Messages sent in one tick go out together; messages sent while not open wait in the outbox.
   *
   * @returns a promise that resolves when the server acknowledged the message, and rejects with
   * `OUTBOX_FULL`, `MESSAGE_TOO_LARGE`, `INVALID_DATA` or `CLIENT_CLOSED` (PROTOCOL.md §13.2). A
   * message rejected with `CLIENT_CLOSED` may have been processed without its acknowledgement arriving.
   */
  send<T = Outgoing>(data: SendArgument<Outgoing, T>): Promise<void> {
    if (this.#state.kind === 'closed') return Promise.reject(new UnbrokenError('CLIENT_CLOSED', 'the client is closed'));
    this.#flushSoon();
    return this.#outbox.add(data);
  }

  /**
   * Measures the round trip to the server with a `ping` frame, through the stream: the `pong` comes
   * back on the connection messages arrive on, on every transport (PROTOCOL.md §5). When the clock
   * shows the liveness deadline passed (timers of a background tab run late), the link is failed
   * first, as its timer would have.
   *
   * @returns the round-trip time in ms; rejects with `CLIENT_CLOSED` when closed, `TRANSPORT_ERROR`
   * when not open, or the error that broke the link before the `pong` arrived.
   */
  ping(): Promise<number> {
    const a = this.#state.openAttempt();
    if (a && this.#liveness.failIfDead(a)) {
      const start = this.#options.clock.now();
      return new Promise((resolve, reject) => this.#liveness.sendPing(a, (at) => resolve(at - start), reject));
    }
    const { kind } = this.#state;
    return Promise.reject(new UnbrokenError(kind === 'closed' ? 'CLIENT_CLOSED' : 'TRANSPORT_ERROR', `the client is ${this.state}`));
  }

  /**
   * Closes the client for good: tells the server the session is over (`bye`), closes the link with
   * 1000 and rejects unacknowledged messages with `CLIENT_CLOSED`. Does nothing when closed.
   */
  close(): void {
    if (this.#state.kind === 'closed') return;
    this.#state.attempt()?.link?.send(encodeBatch([{ t: 'bye' }]));
    this.#end(null, 'close-called');
  }

  // -- queries: they answer and change nothing --------------------------------------------------

  /** The http(s) URL of an endpoint, with the query of PROTOCOL.md §3 as of now, and `ticket` when given. */
  readonly #endpoint = (endpoint: string, ticket?: string): string => endpointUrl(this.#url, endpoint, this.#cursor, ticket);

  // -- state changes ----------------------------------------------------------------------------

  /**
   * Starts an attempt, after the failure the state holds if any, on the transport the route picks: its ticket
   * first (§3.4), then its link. Keeps the state's kind (connecting or reconnecting).
   */
  #start(): void {
    const state = this.#state.current;
    if (state.kind === 'closed' || state.kind === 'open') return;
    const after = 'timer' in state ? state.after : undefined;
    const { transports, clock } = this.#options;
    const env = this.#options.environment();
    const found = pick(this.#selector.route, this.#selector.available(env));
    if (!found) return this.#fail(noTransport(transports));
    const a = new Attempt(found.name, found.bufferable, clock, after);
    this.#state.enter({ kind: state.kind, attempt: a }, null);
    this.#begin(a, found.make, this.#session);
  }

  /** Starts attempt `a` (the client's, or a rival, §13.3): its connect deadline, its ticket for `session`, then its link. */
  #begin(a: Attempt, make: TransportFactory, session: SessionName | null): void {
    const { connectTimeout, clock, auth, maxMessageSize } = this.#options;
    const live = (): boolean => this.#state.holds(a);
    a.schedule('connect', () => this.#failAttempt(a, new UnbrokenError('CONNECT_TIMEOUT', `no hello within ${connectTimeout} ms`)), connectTimeout);
    const fetch = this.#options.environment().fetch!;
    requestTicket(fetch, this.#endpoint(Endpoint.ticket), auth, () => (a.authThrew = true), session, a.requests.signal, clock.now, maxMessageSize).then(
      (ticket) => {
        if (!live()) return;
        this.#link(a, make, { ticket: ticket.ticket, maxMessageSize, clock });
        if (live()) this.#race.arm(a, ticket, session);
      },
      (error: UnbrokenError) => live() && this.#failAttempt(a, error),
    );
  }

  /** Makes the link of `a` with its ticket. */
  #link(a: Attempt, make: TransportFactory, context: LinkContext): void {
    const { clock } = this.#options;
    const live = (): boolean => this.#state.holds(a);
    a.ticketAt = clock.now();
    try {
      a.link = make(this.#endpoint, {
        onOpen: () => {
          if (live()) a.linkUpAt = clock.now();
        },
        onFrames: (frames) => {
          if (live()) this.#onStream(a, frames);
        },
        // An answer to a POST: its acknowledgement only, never a sign of the stream's life (§11).
        onReply: (ack) => {
          if (live()) this.#outbox.ack(ack.s);
        },
        onClose: ({ code, error, skipTo, handover }) => {
          if (!live()) return;
          if (skipTo !== undefined) this.#skipTo(skipTo);
          // After the server's notice (§10.2) the end of any transport's stream is the restart it
          // announced, with the delay it gave — also when the tabs' carrier ended with it (§7.5).
          if (a.reconnectAt !== undefined) error = restart();
          // The tab holding the shared connection went away: no fault of the network, so at once.
          else if (handover) a.reconnectAt = clock.now();
          this.#failAttempt(a, error ?? new UnbrokenError(codeForClose(code) ?? 'TRANSPORT_ERROR', `closed with ${code}`));
        },
      }, context);
    } catch (cause) {
      this.#failAttempt(a, new UnbrokenError('TRANSPORT_ERROR', String(cause), cause));
    }
  }

  /** A batch of the server's stream: the only thing that moves the liveness deadline (§11). */
  #onStream(a: Attempt, frames: InboundFrame[]): void {
    a.lastStreamByteAt = this.#options.clock.now();
    for (const f of frames) {
      // A listener may have closed the client, or the attempt failed on an earlier frame.
      if (!this.#state.holds(a)) return;
      // One hello, first; only an error (a refusal, §3.1) may come without one.
      if (f.t === 'hello' ? a.opened : !a.opened && f.t !== 'error') {
        return this.#failAttempt(a, new UnbrokenError('PROTOCOL_ERROR', `expects one hello, first; got ${f.t}`));
      }
      switch (f.t) {
        case 'hello':
          this.#onHello(a, f);
          break;
        case 'msg':
          a.streamCheck?.sawMessage();
          // A message whose id is the cursor was delivered already (§6.4).
          if (f.id !== this.#cursor) {
            this.#cursor = f.id;
            const message: UnbrokenMessage<Incoming> = { data: (f.b ?? f.d) as Incoming, id: f.id, event: f.e };
            this.#events.emit('message', message);
            if (f.e !== undefined) this.#events.emit(`message:${f.e}`, message);
          }
          break;
        case 'gap':
          this.#cursor = f.cursor;
          this.#events.emit('gap', { reason: f.reason, lastEventId: f.after, resumeEventId: f.cursor });
          break;
        case 'ack':
          // An ack on the stream came after the batches it covers were processed (§7.3.one-request).
          if (this.#outbox.ack(f.s)) a.link?.settled?.();
          break;
        case 'retry':
          this.#floor = serverDelay(f.ms);
          break;
        case 'reconnect': {
          // Not a failure: reconnect after exactly `ms` (§10.2), when the server closed or at the latest then.
          const ms = serverDelay(f.ms);
          a.reconnectAt = a.lastStreamByteAt + ms;
          a.schedule('reconnect', () => this.#fail(restart()), ms);
          break;
        }
        case 'auth':
          // Fresh credentials on the link of `a`, after what it sent before (§3.5). When `auth` fails
          // (its token service blinked), the link goes on while the identity lasts: reported, no more.
          credentialsOf(this.#options.auth).then(
            (c) => this.#state.openAttempt() === a && a.link?.send(encodeBatch([c === undefined ? { t: 'auth' } : { t: 'auth', c }])),
            (error: UnbrokenError) => this.#state.attempt() === a && this.#events.emit('error', error),
          );
          break;
        case 'pong':
          this.#liveness.pong(f.n, a.lastStreamByteAt);
          break;
        case 'error':
          // Only codes a server signals count; anything else is the server failing (§9).
          this.#failAttempt(a, new UnbrokenError(serverCode(f.code) ?? 'INTERNAL_ERROR', f.message));
        // 'hb' needs nothing: its arrival was the point.
      }
    }
  }

  #onHello(a: Attempt, f: HelloFrame): void {
    if (!SUPPORTED_VERSIONS.includes(f.v)) {
      return this.#failAttempt(a, new UnbrokenError('PROTOCOL_ERROR', `expects hello.v among ${SUPPORTED_VERSIONS.join(', ')}, got ${f.v}`));
    }
    // The first `hello` of a race wins: the other attempt is closed before anything else (§13.3).
    if (!this.#race.settle(a)) return;
    const now = this.#options.clock.now();
    a.cancel('connect');
    a.cancel('race');
    a.helloAt = now;
    const previous = this.#transport;
    this.#transport = a.name;
    this.#selector.connected(a.name, now);
    this.#session = { sid: f.sid, key: f.key };
    this.#floor = serverDelay(f.retry);
    this.#liveness.heartbeat = heartbeatOf(f.hb);
    this.#cursor = f.cursor;
    this.#outbox.hello(f.ack, f.resumed, f.max, a.link?.binary === true);
    this.#liveness.watch(a);
    this.#flushSoon();
    this.#state.enter({ kind: 'open', attempt: a }, 'connected');
    if (previous !== a.name && this.#state.attempt() === a) {
      this.#events.emit('transport', { transport: a.name, previous, reason: this.#selector.route.reason });
    }
    if (this.#state.attempt() === a) this.#events.emit('open', { transport: a.name, sessionId: f.sid, resumed: f.resumed });
    // Last: a listener above may have closed the client or dropped this attempt.
    if (this.#state.attempt() !== a) return;
    this.#moves.scheduleProbe(a);
    if (a.bufferable) this.#moves.checkStream(a);
  }

  /**
   * Moves the cursor past the messages of a unit too large to read (§13.5), so the next connection
   * resumes after them, and says which with a `gap` event.
   */
  #skipTo(id: string): void {
    const cursor = this.#cursor;
    if (id === cursor) return;
    this.#cursor = id;
    this.#events.emit('gap', { reason: 'too-large', lastEventId: cursor ?? '', resumeEventId: id });
  }

  /** Writes what the outbox holds in a microtask: every send of this tick goes out together (§4.1). */
  #flushSoon(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => {
      this.#flushing = false;
      const a = this.#state.openAttempt();
      if (a && this.#liveness.failIfDead(a)) for (const unit of this.#outbox.take()) a.link?.send(unit);
    });
  }

  /** Fails attempt `a`: only `a` while it races another (the other carries on), else the connection. */
  #failAttempt(a: Attempt, error: UnbrokenError): void {
    if (!this.#race.drop(a, error)) this.#fail(error);
  }

  /**
   * Ends the current attempt after a failure, then: closes for good when fatal; tries the next
   * transport at once when this one could not connect (§13.3); otherwise reconnects with backoff.
   */
  #fail(error: UnbrokenError): void {
    const a = this.#state.attempt();
    const { code } = error;
    const now = this.#options.clock.now();
    const closeCode = closeCodeFor(code);
    this.#release(closeCode >= DROP ? closeCode : DROP, error);
    this.#events.emit('error', error);
    if (this.#state.kind === 'closed') return;
    const verdict = classify(code, { opened: a?.opened === true, linked: a?.ticketAt !== undefined, after: a?.after, authThrew: a?.authThrew });
    if (verdict === 'fatal') return this.#end(error, code);
    const fallback = (): Route | null =>
      a ? fallbackRoute(a.name, this.#selector.leftReason(a.name, howFailed(a, code)), this.#selector.available(this.#options.environment())) : null;
    const delay = nextStart(code, verdict, a, now, this.#options, fallback, (route) => this.#selector.follow(route), () => (this.#failures = 0));
    const wait = delay ?? backoff(this.#failures++, this.#floor, this.#options, this.#options.random);
    const timer = this.#options.clock.setTimeout(() => this.#start(), Math.min(wait, 2 ** 31 - 1));
    // Moving on to the next transport at once is still the same (re)connection, not a new state.
    const kind = delay === 0 && verdict === 'fallback' && this.#state.kind === 'connecting' ? 'connecting' : 'reconnecting';
    // After an `auth` that threw, the last code the server sent still says what the next attempt follows.
    this.#state.enter({ kind, timer, after: a?.authThrew ? a.after : code }, code);
    // After the state change, so a listener that shows a countdown sees the state it belongs to; a
    // state listener may have closed the client.
    if (this.state !== 'closed') this.#events.emit('schedule', { kind: 'reconnect', delay: wait, at: now + wait });
  }

  /**
   * Leaves the open attempt `a` for `route` at once, without a failure: after a successful upgrade
   * probe, or when its stream was found held back (§13.3). The session carries over.
   */
  #moveTo(a: Attempt, route: Route, cause: 'upgrade' | 'buffered'): void {
    this.#selector.follow(route);
    this.#release(DROP, new UnbrokenError('TRANSPORT_ERROR', `the client moved to ${route.name}`));
    this.#state.enter({ kind: 'reconnecting', timer: undefined }, cause);
    this.#start();
  }

  /**
   * The page came back (online, visible, restored): a link that claims to be open is checked with a
   * ping at once and dropped if nothing answers within the connect deadline; a pending reconnection
   * starts now.
   */
  #wake(): void {
    const state = this.#state.current;
    if (state.kind === 'reconnecting' && 'timer' in state) {
      this.#options.clock.clearTimeout(state.timer);
      return this.#start();
    }
    const a = this.#state.openAttempt();
    if (a && this.#liveness.failIfDead(a)) this.#liveness.checkAwake(a, this.#options.connectTimeout);
  }

  /** Releases the current attempt (its link closed with `code`) and rejects its pings with `error`. */
  #release(code: number, error: UnbrokenError): void {
    this.#state.rival()?.dispose(code);
    this.#state.attempt()?.dispose(code);
    this.#liveness.rejectPings(error);
  }

  #end(error: UnbrokenError | null, cause: StateCause): void {
    const closed = new UnbrokenError('CLIENT_CLOSED', 'the client closed', error ?? undefined);
    const state = this.#state.current;
    if ('timer' in state) this.#options.clock.clearTimeout(state.timer);
    this.#stopWatching();
    this.#release(CloseCode.Normal, closed);
    this.#outbox.fail(closed);
    this.#state.enter({ kind: 'closed', error }, cause);
    this.#events.emit('close', { error });
  }
}
