/**
 * The client: an explicit state machine (docs/PROTOCOL.md §13.1) over a series of connection
 * attempts. Each attempt has an id and owns its link and timers; handlers of an attempt that is no
 * longer current do nothing, and one `#drop()` releases everything an attempt holds.
 */
import {
  CloseCode,
  Endpoint,
  PROTOCOL_VERSION,
  QueryParam,
  closeCodeFor,
  codeForClose,
  encodeBatch,
  serverCode,
  type ErrorCode,
  type GapReason,
  type HelloFrame,
} from '../protocol/index.js';
import { Emitter, type Listener } from './emitter.js';
import { UnbrokenError } from './errors.js';
import { Outbox } from './outbox.js';
import { backoff, classify } from './reconnect-policy.js';
import { watchPage } from './page-lifecycle.js';
import {
  decodeText,
  type EventSourceConstructor,
  type FetchLike,
  type InboundFrame,
  type Transport,
  type TransportName,
  type WebSocketConstructor,
  type WebSocketLike,
} from './transport.js';
import { DEFAULT_TRANSPORTS, STALLED, availableTransports, checkTransports, type AvailableTransport } from './transport-selector.js';

/** The state of a client (PROTOCOL.md §13.1). `closed` is final. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/**
 * Why the state changed: `connected` (a `hello` arrived), `close-called` (the application called
 * `close()`), `upgrade` (the client moves its session back to WebSocket after a successful probe),
 * or the code of the failure.
 */
export type StateCause = 'connected' | 'close-called' | 'upgrade' | ErrorCode;

/**
 * Why the transport in use was chosen (PROTOCOL.md §13.3): `initial` (the first of the list worked),
 * `remembered` (it worked last time for this endpoint), or why the one before it was left —
 * `refused` (it failed or was refused before its `hello`), `timeout` (its link never came up in
 * time), `silent` (a WebSocket opened and then passed nothing), `buffered` (an SSE response opened
 * but a proxy held its events back), `upgrade` (a WebSocket probe succeeded while on a fallback).
 */
export type TransportChangeReason = 'initial' | 'remembered' | 'refused' | 'timeout' | 'silent' | 'buffered' | 'upgrade';

/** Where a client remembers the transport that worked, e.g. `localStorage`. */
export interface TransportMemory {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * The legal moves of the state machine, as data (PROTOCOL.md §13.1): `TRANSITIONS[from]` lists the
 * states `from` may go to. Any other move is a bug and throws.
 */
export const TRANSITIONS: { readonly [S in ConnectionState]: readonly ConnectionState[] } = {
  connecting: ['open', 'reconnecting', 'closed'],
  open: ['reconnecting', 'closed'],
  reconnecting: ['open', 'closed'],
  closed: [],
};

/** Time source and timers of a client. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

// Looks the globals up at call time, so fake timers installed after the client was made still apply.
const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};

/** Options of {@link connect}. */
export interface ClientOptions {
  /**
   * Transports to try, in order (PROTOCOL.md §13.3). An unknown name throws at once; a transport that
   * cannot run here (e.g. no WebSocket implementation) is skipped.
   * @default ['websocket', 'sse', 'long-polling']
   */
  transports?: TransportName[];
  /**
   * The WebSocket implementation. In Node, pass the `ws` package's default export.
   * @default globalThis.WebSocket, looked up when each attempt starts
   */
  WebSocket?: WebSocketConstructor | undefined;
  /**
   * The EventSource implementation, for the `sse` transport.
   * @default globalThis.EventSource, looked up when each attempt starts
   */
  EventSource?: EventSourceConstructor | undefined;
  /**
   * The fetch implementation, for the HTTP transports.
   * @default globalThis.fetch, looked up when each attempt starts
   */
  fetch?: FetchLike | undefined;
  /**
   * Initial reconnect delay in ms: the jitter range after the first failed attempt, doubling after
   * each further one (PROTOCOL.md §10.1). Added to the server's floor (`hello.retry`).
   * @default 500
   */
  reconnectDelay?: number;
  /**
   * Cap of the jitter range, in ms.
   * @default 30000
   */
  maxReconnectDelay?: number;
  /**
   * Ms a connection must stay open before the failed-attempt counter resets, so a server that accepts
   * and drops at once cannot drive the client into a fast loop.
   * @default 5000
   */
  minUptime?: number;
  /**
   * Ms from the start of an attempt to its `hello`; later, the attempt fails with `CONNECT_TIMEOUT`.
   * @default 3000
   */
  connectTimeout?: number;
  /**
   * Most messages the outbox holds unacknowledged; `send()` beyond it rejects with `OUTBOX_FULL`.
   * @default 10000
   */
  outboxLimit?: number;
  /**
   * Ms between WebSocket probes while on a fallback transport; doubles after each failed probe, up to
   * 16 times this. A probe is a session-less round trip (PROTOCOL.md §7.1.1); after one succeeds the
   * client moves its session back to WebSocket. 0 turns probing off.
   * @default 30000
   */
  upgradeInterval?: number;
  /**
   * Where to remember, per endpoint, the transport that worked, so the next page load starts there
   * instead of paying the fallback delay again. `null` remembers nothing.
   * @default globalThis.localStorage, when usable
   */
  storage?: TransportMemory | null;
  /**
   * Ms a remembered transport stays valid.
   * @default 86400000 (one day)
   */
  rememberFor?: number;
  /**
   * In a page, check the link at once when the network comes back (`online`), the tab becomes
   * visible or the page is restored from the back/forward cache, instead of waiting for the
   * heartbeat deadline.
   * @default true
   */
  pageLifecycle?: boolean;
  /**
   * Time source and timers.
   * @default Date.now, setTimeout and clearTimeout of globalThis, looked up at each call
   */
  clock?: Clock;
  /**
   * Source of randomness for the backoff jitter, in [0, 1).
   * @default Math.random
   */
  random?: () => number;
}

/** A message of the stream, as the application receives it. */
export interface UnbrokenMessage<T = unknown> {
  /** The parsed JSON data, or the bytes (`Uint8Array`) of a binary message. */
  data: T;
  /** The message id; the client's {@link Client.lastEventId} after this message. */
  id: string;
  /** The event name, when the server gave one. */
  event: string | undefined;
}

/** Payload of the `state` event. */
export interface StateEvent {
  from: ConnectionState;
  to: ConnectionState;
  cause: StateCause;
}

/** Payload of the `open` event. */
export interface OpenEvent {
  transport: TransportName;
  sessionId: string;
  /** True when the server still had the session: nothing was lost upstream. */
  resumed: boolean;
}

/** Payload of the `close` event. */
export interface ClosedEvent {
  /** The fatal error that closed the client, or `null` when `close()` was called. */
  error: UnbrokenError | null;
}

/** Payload of the `transport` event. */
export interface TransportEvent {
  transport: TransportName;
  previous: TransportName | null;
  reason: TransportChangeReason;
}

/** Payload of the `gap` event: the messages after `lastEventId` up to and including `resumeEventId` are lost. */
export interface GapEvent {
  reason: GapReason;
  /** The cursor the client presented. */
  lastEventId: string;
  /** The stream continues after this id. */
  resumeEventId: string;
}

/** Payload of the `schedule` event: the client set a timer for its next step. */
export interface ScheduleEvent {
  /** `reconnect`: the next connection attempt; `upgrade-probe`: the next WebSocket probe while on a fallback transport. */
  kind: 'reconnect' | 'upgrade-probe';
  /** Ms from now. */
  delay: number;
  /** When it fires, on the client's clock (`clock.now()`, Date.now by default). */
  at: number;
}

/** Events of a {@link Client}, by name, with their payloads. */
export interface ClientEvents<T = unknown> {
  /** Every message of the stream, once, in order. */
  message: UnbrokenMessage<T>;
  /** Messages with the event name after the colon, e.g. `message:chat`; after `message`. */
  [name: `message:${string}`]: UnbrokenMessage<T>;
  /** Every state change. */
  state: StateEvent;
  /** A connection opened: a `hello` arrived. */
  open: OpenEvent;
  /** The client closed for good. */
  close: ClosedEvent;
  /** The transport in use differs from the one before. */
  transport: TransportEvent;
  /** The server could not replay everything after the cursor; emitted before any later message. */
  gap: GapEvent;
  /** A connection failed or broke the protocol; emitted before the state change it causes. */
  error: UnbrokenError;
  /** The client set a timer for its next connection attempt or WebSocket probe, e.g. to show a countdown. */
  schedule: ScheduleEvent;
}

/** One connection attempt. */
interface Attempt {
  readonly id: number;
  readonly name: TransportName;
  t?: Transport;
  /** The link came up. */
  up?: true;
  /** When the `hello` arrived. */
  o?: number;
  /** When anything last arrived. */
  l: number;
  /** When to reconnect, after a `reconnect` notice. */
  w?: number;
  /** Timers: connect deadline, liveness deadline, reconnect notice, upgrade probe, wake check. */
  c?: unknown;
  h?: unknown;
  r?: unknown;
  u?: unknown;
  k?: unknown;
  /** Stops the upgrade probe in flight. */
  p?: () => void;
}

type PendingPing = [settle: (now: number) => void, reject: (error: UnbrokenError) => void];

/** Close code of a link the client drops to reconnect: anything but 1000, which ends the session (§9). */
const DROP = CloseCode.Reconnecting;

/**
 * A real-time connection that stays unbroken: it reconnects with backoff, resumes the stream where
 * it left off, and resends unacknowledged messages. Made by {@link connect}.
 *
 * @typeParam T - the type of message data the application expects (not checked at run time)
 */
export class Client<T = unknown> {
  #events = new Emitter<ClientEvents<T>>();
  #options;
  #url: string;
  #outbox: Outbox;
  #state: ConnectionState = 'connecting';
  /** The current attempt, if any. */
  #attempt: Attempt | undefined;
  /** Id of the last attempt. */
  #attempts = 0;
  /** Consecutive failed attempts. */
  #failures = 0;
  /** Reconnect delay floor (`hello.retry`, `retry` frames). */
  #floor = 0;
  #hb = 0;
  /** Timer of the wait before the next attempt. */
  #wait: unknown;
  #why: TransportChangeReason = 'initial';
  /** The transport the next attempt uses; `null`: the first available of the list. */
  #route: TransportName | null = null;
  /** Delay of the next upgrade probe. */
  #probeDelay: number;
  #memory: TransportMemory | null;
  #stopWatching: () => void;
  #transport: TransportName | null = null;
  #sessionId: string | null = null;
  #cursor: string | null = null;
  #pings = new Map<number, PendingPing>();
  #pingId = 0;
  #flushing = false;

  /** Same as {@link connect}. */
  constructor(url: string, options: ClientOptions = {}) {
    const {
      transports = DEFAULT_TRANSPORTS,
      reconnectDelay = 500,
      maxReconnectDelay = 30_000,
      minUptime = 5_000,
      connectTimeout = 3_000,
      outboxLimit = 10_000,
      upgradeInterval = 30_000,
      rememberFor = 86_400_000,
      pageLifecycle = true,
      clock = systemClock,
      random = Math.random,
    } = options;
    checkTransports(transports);
    let base: URL | undefined;
    try {
      base = new URL(url, globalThis.location?.href);
    } catch {}
    if (!base || !/^(http|ws)s?:$/.test(base.protocol)) {
      throw new TypeError(`unbroken: expects an http(s) URL, or a path in a page, got ${url}`);
    }
    base.protocol = base.protocol.replace('ws', 'http');
    this.#url = base.href;
    this.#options = {
      transports,
      reconnectDelay,
      maxReconnectDelay,
      minUptime,
      connectTimeout,
      upgradeInterval,
      rememberFor,
      clock,
      random,
      env: options,
    };
    this.#outbox = new Outbox(outboxLimit);
    this.#probeDelay = upgradeInterval;
    this.#memory = options.storage === undefined ? defaultMemory() : options.storage;
    try {
      const remembered = JSON.parse(this.#memory?.getItem(this.#memoryKey()) ?? 'null') as { name?: TransportName; until?: number } | null;
      if (remembered?.name && transports.includes(remembered.name) && (remembered.until ?? 0) > clock.now()) {
        this.#route = remembered.name;
        this.#why = 'remembered';
      }
    } catch {
      // Unreadable memory is no memory.
    }
    this.#stopWatching = pageLifecycle ? watchPage(() => this.#wake()) : () => {};
    // Starts in a microtask, so listeners added right after `connect()` hear everything.
    queueMicrotask(() => this.#start());
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The transport of the last connection that opened, or `null` before the first. */
  get transport(): TransportName | null {
    return this.#transport;
  }

  /** The cursor: the id of the last message delivered, or where the stream starts (PROTOCOL.md §6.4). */
  get lastEventId(): string | null {
    return this.#cursor;
  }

  /** The session id from the last `hello`, or `null` before the first. */
  get sessionId(): string | null {
    return this.#sessionId;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents<T>>(event: K, listener: Listener<ClientEvents<T>[K]>): () => void {
    return this.#events.on(event, listener);
  }

  /** Removes a listener added with {@link Client.on}. */
  off<K extends keyof ClientEvents<T>>(event: K, listener: Listener<ClientEvents<T>[K]>): void {
    this.#events.off(event, listener);
  }

  /** Adds a listener for the next event only; returns the function that removes it. */
  once<K extends keyof ClientEvents<T>>(event: K, listener: Listener<ClientEvents<T>[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /**
   * Sends a message: a JSON value, or bytes (`Uint8Array`, any `ArrayBufferView`, `ArrayBuffer`).
   * Messages sent in one tick go out together; messages sent while not open wait in the outbox.
   *
   * @returns a promise that resolves when the server acknowledged the message, and rejects with
   * `OUTBOX_FULL`, `MESSAGE_TOO_LARGE`, `INVALID_DATA` or `CLIENT_CLOSED` (PROTOCOL.md §13.2). A
   * message rejected with `CLIENT_CLOSED` may have been processed without its acknowledgement arriving.
   */
  send(data: unknown): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new UnbrokenError('CLIENT_CLOSED', 'the client is closed'));
    this.#flushSoon();
    return this.#outbox.add(data);
  }

  /**
   * Measures the round trip to the server with a `ping` frame.
   *
   * @returns the round-trip time in ms; rejects with `CLIENT_CLOSED` when closed, `TRANSPORT_ERROR`
   * when not open, or the error that broke the link before the `pong` arrived.
   */
  ping(): Promise<number> {
    const a = this.#attempt;
    if (this.#state === 'open' && a && this.#left(a) > 0) {
      const n = ++this.#pingId;
      const start = this.#options.clock.now();
      return new Promise((resolve, reject) => {
        this.#pings.set(n, [(now) => resolve(now - start), reject]);
        a.t?.send(encodeBatch([{ t: 'ping', n }]));
      });
    }
    return Promise.reject(
      new UnbrokenError(this.#state === 'closed' ? 'CLIENT_CLOSED' : 'TRANSPORT_ERROR', `the client is ${this.#state}`),
    );
  }

  /**
   * Closes the client for good: tells the server the session is over (`bye`), closes the link with
   * 1000 and rejects unacknowledged messages with `CLIENT_CLOSED`. Does nothing when closed.
   */
  close(): void {
    if (this.#state !== 'closed') {
      this.#attempt?.t?.send(encodeBatch([{ t: 'bye' }]));
      this.#end(null, 'close-called');
    }
  }

  #transition(to: ConnectionState, cause: StateCause): void {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`unbroken: illegal transition from ${from} to ${to}`);
    this.#state = to;
    this.#events.emit('state', { from, to, cause });
  }

  #setTimer(fn: () => void, ms: number): unknown {
    // Longer delays overflow browser timers, which then fire at once.
    return this.#options.clock.setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
  }

  #clearTimer(handle: unknown): void {
    if (handle !== undefined) this.#options.clock.clearTimeout(handle);
  }

  /** The http(s) URL of an endpoint, with the query of PROTOCOL.md §3 as of now. */
  #endpoint = (endpoint: string): string => {
    const url = new URL(this.#url);
    const query = url.searchParams;
    url.pathname = url.pathname.replace(/\/$/, '') + endpoint;
    query.set(QueryParam.version, `${PROTOCOL_VERSION}`);
    if (this.#sessionId) query.set(QueryParam.sessionId, this.#sessionId);
    if (this.#cursor) query.set(QueryParam.lastEventId, this.#cursor);
    return url.href;
  };

  #start(): void {
    if (this.#state === 'closed') return;
    const { transports, connectTimeout } = this.#options;
    const found = this.#available();
    // The route: a transport that worked is used again; after a fallback, the next one in the list.
    const pick = found.find(({ name }) => name === this.#route) ?? found[0];
    if (!pick) {
      return this.#fail(
        new UnbrokenError(
          'NO_TRANSPORT',
          `none of ${transports.join(', ')} can run here: in Node, pass the \`ws\` package as the WebSocket option`,
        ),
      );
    }
    const a: Attempt = { id: ++this.#attempts, name: pick.name, l: 0 };
    const live = (): boolean => this.#attempt?.id === a.id;
    this.#attempt = a;
    a.c = this.#setTimer(
      () => this.#fail(new UnbrokenError('CONNECT_TIMEOUT', `no hello within ${connectTimeout} ms`)),
      connectTimeout,
    );
    try {
      a.t = pick.make(this.#endpoint, {
        onOpen: () => {
          if (live()) a.up = true;
        },
        onFrames: (frames) => {
          if (live()) this.#frames(a, frames);
        },
        onClose: ({ code, error }) => {
          if (live()) {
            this.#fail(error ?? new UnbrokenError(codeForClose(code) ?? 'TRANSPORT_ERROR', `closed with ${code}`));
          }
        },
      });
    } catch (cause) {
      this.#fail(new UnbrokenError('TRANSPORT_ERROR', String(cause), cause));
    }
  }

  #frames(a: Attempt, frames: InboundFrame[]): void {
    a.l = this.#options.clock.now();
    for (const f of frames) {
      // A listener may have closed the client, or the attempt failed on an earlier frame.
      if (!this.#attempt || this.#attempt.id !== a.id) return;
      // One hello, first; only an error (a refusal, §3.1) may come without one.
      if (f.t === 'hello' ? a.o !== undefined : a.o === undefined && f.t !== 'error') {
        return this.#fail(new UnbrokenError('PROTOCOL_ERROR', `expects one hello, first; got ${f.t}`));
      }
      switch (f.t) {
        case 'hello':
          this.#hello(a, f);
          break;
        case 'msg':
          // A message whose id is the cursor was delivered already (§6.4).
          if (f.id !== this.#cursor) {
            this.#cursor = f.id;
            const message: UnbrokenMessage<T> = { data: (f.b ?? f.d) as T, id: f.id, event: f.e };
            this.#events.emit('message', message);
            if (f.e !== undefined) this.#events.emit(`message:${f.e}`, message);
          }
          break;
        case 'gap':
          this.#cursor = f.cursor;
          this.#events.emit('gap', { reason: f.reason, lastEventId: f.after, resumeEventId: f.cursor });
          break;
        case 'ack':
          this.#outbox.ack(f.s);
          break;
        case 'retry':
          this.#floor = f.ms;
          break;
        case 'reconnect':
          // Not a failure: reconnect after exactly `ms` (§10.2), when the server closed or at the latest then.
          a.w = a.l + f.ms;
          this.#clearTimer(a.r);
          a.r = this.#setTimer(() => this.#fail(new UnbrokenError('SERVER_RESTART', 'the server asked to reconnect')), f.ms);
          break;
        case 'pong':
          this.#pings.get(f.n)?.[0](a.l);
          this.#pings.delete(f.n);
          break;
        case 'error':
          // Only codes a server signals count; anything else is the server failing (§9).
          this.#fail(new UnbrokenError(serverCode(f.code) ?? 'INTERNAL_ERROR', f.message));
        // 'hb' needs nothing: its arrival was the point.
      }
    }
  }

  #hello(a: Attempt, f: HelloFrame): void {
    if (f.v !== PROTOCOL_VERSION) {
      return this.#fail(new UnbrokenError('PROTOCOL_ERROR', `expects hello.v ${PROTOCOL_VERSION}, got ${f.v}`));
    }
    this.#clearTimer(a.c);
    a.o = a.l;
    const previous = this.#transport;
    this.#transport = this.#route = a.name;
    this.#remember(a.name);
    this.#sessionId = f.sid;
    this.#floor = f.retry;
    this.#hb = f.hb;
    this.#cursor = f.cursor;
    this.#outbox.hello(f.ack, f.resumed, f.max, a.t?.binary === true);
    this.#beat(a);
    this.#flushSoon();
    this.#transition('open', 'connected');
    if (previous !== a.name && this.#attempt === a) {
      this.#events.emit('transport', { transport: a.name, previous, reason: this.#why });
    }
    if (this.#attempt === a) this.#events.emit('open', { transport: a.name, sessionId: f.sid, resumed: f.resumed });
    // Last: a listener above may have closed the client or dropped this attempt.
    if (this.#attempt === a) this.#scheduleProbe(a);
  }

  /** Ms left before the link of `a` counts as dead (2 × hb, §11); fails it when none are left. */
  #left(a: Attempt): number {
    const hb = this.#hb;
    const left = hb ? a.l + 2 * hb - this.#options.clock.now() : 1;
    if (left <= 0) this.#fail(new UnbrokenError('HEARTBEAT_TIMEOUT', `nothing received for ${2 * hb} ms`));
    return left;
  }

  /** One timer for the liveness deadline: when it fires it checks the clock and re-arms for the rest. */
  #beat(a: Attempt): void {
    const left = this.#left(a);
    if (left > 0 && this.#hb) a.h = this.#setTimer(() => this.#beat(a), left);
  }

  /** Writes what the outbox holds in a microtask: every send of this tick goes out together (§4.1). */
  #flushSoon(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => {
      this.#flushing = false;
      const a = this.#attempt;
      if (this.#state === 'open' && a && this.#left(a) > 0) for (const unit of this.#outbox.take()) a.t?.send(unit);
    });
  }

  /**
   * Ends the current attempt after a failure, then: closes for good when fatal; tries the next
   * transport at once when this one could not connect (§13.3); otherwise reconnects with backoff.
   */
  #fail(error: UnbrokenError): void {
    const a = this.#attempt;
    const { code } = error;
    const now = this.#options.clock.now();
    const closeCode = closeCodeFor(code);
    this.#drop(closeCode >= DROP ? closeCode : DROP, error);
    this.#events.emit('error', error);
    if (this.#state === 'closed') return;
    const verdict = classify(code, a?.o !== undefined);
    if (verdict === 'fatal') return this.#end(error, code);
    let delay: number | undefined;
    if (a?.w !== undefined) {
      delay = Math.max(0, a.w - now);
    } else if (verdict === 'fallback' && a) {
      const found = this.#available();
      const next = found[found.findIndex(({ name }) => name === a.name) + 1];
      // The list is exhausted: back off, then start over from its first transport.
      this.#route = next ? next.name : null;
      if (next) {
        delay = 0;
        this.#why = code === 'CONNECT_TIMEOUT' ? (a.up ? STALLED[a.name] : 'timeout') : 'refused';
      }
    } else if (a?.o !== undefined && now - a.o >= this.#options.minUptime) {
      this.#failures = 0;
    }
    const wait = delay ?? backoff(this.#failures++, this.#floor, this.#options, this.#options.random);
    this.#wait = this.#setTimer(() => this.#start(), wait);
    // Moving on to the next transport at once is still the same (re)connection, not a new state.
    if (delay !== 0 || verdict !== 'fallback') {
      if (this.#state !== 'reconnecting') this.#transition('reconnecting', code);
    }
    // After the state change, so a listener that shows a countdown sees the state it belongs to; a
    // state listener may have closed the client (hence the getter: the field's type is narrowed here).
    if (this.state !== 'closed') {
      this.#events.emit('schedule', { kind: 'reconnect', delay: wait, at: now + wait });
    }
  }

  /** The transports of the list that can run here, in list order. */
  #available(): AvailableTransport[] {
    const { transports, env } = this.#options;
    return availableTransports(transports, {
      WebSocket: env.WebSocket ?? globalThis.WebSocket,
      EventSource: env.EventSource ?? globalThis.EventSource,
      fetch: env.fetch ?? globalThis.fetch,
    });
  }

  #memoryKey(): string {
    return `unbroken:transport:${this.#url}`;
  }

  /** Remembers the transport that worked; the first of the list needs no memory (§13.3). */
  #remember(name: TransportName): void {
    try {
      if (name === this.#options.transports[0]) this.#memory?.removeItem(this.#memoryKey());
      else {
        this.#memory?.setItem(
          this.#memoryKey(),
          JSON.stringify({ name, until: this.#options.clock.now() + this.#options.rememberFor }),
        );
      }
    } catch {
      // Storage full or forbidden: the client works the same, it only forgets.
    }
  }

  /**
   * While on a fallback, probes WebSocket now and then with a session-less round trip (§7.1.1), and
   * moves the session back to it only after one succeeded.
   */
  #scheduleProbe(a: Attempt): void {
    const { transports, upgradeInterval, connectTimeout, env } = this.#options;
    const WebSocket = env.WebSocket ?? globalThis.WebSocket;
    const ws = transports.indexOf('websocket');
    if (!upgradeInterval || !WebSocket || ws < 0 || transports.indexOf(a.name) <= ws) return;
    a.u = this.#setTimer(() => {
      const url = new URL(this.#url);
      url.pathname = url.pathname.replace(/\/$/, '') + Endpoint.websocket;
      url.search = `?${QueryParam.version}=${PROTOCOL_VERSION}&${QueryParam.probe}=1`;
      let probe: WebSocketLike | undefined;
      let timer: unknown;
      const finish = (worked: boolean): void => {
        if (!a.p) return;
        a.p = undefined;
        this.#clearTimer(timer);
        if (probe) probe.onopen = probe.onmessage = probe.onclose = null;
        try {
          probe?.close(CloseCode.Normal);
        } catch {
          // Closing a socket that never opened may throw; it is gone either way.
        }
        if (this.#attempt !== a) return;
        if (worked) {
          this.#probeDelay = upgradeInterval;
          this.#upgrade();
        } else {
          this.#probeDelay = Math.min(this.#probeDelay * 2, upgradeInterval * 16);
          this.#scheduleProbe(a);
        }
      };
      a.p = () => finish(false);
      timer = this.#setTimer(() => finish(false), connectTimeout);
      try {
        probe = new WebSocket(url.href.replace(/^http/, 'ws'));
        probe.onerror = () => {};
        probe.onclose = () => finish(false);
        probe.onopen = () => probe?.send(encodeBatch([{ t: 'ping', n: 0 }]));
        probe.onmessage = ({ data }) => {
          let worked = false;
          try {
            worked = decodeText(String(data)).some((f) => f.t === 'pong');
          } catch {
            // A garbled answer is a failed probe.
          }
          finish(worked);
        };
      } catch {
        finish(false);
      }
    }, this.#probeDelay);
    const now = this.#options.clock.now();
    this.#events.emit('schedule', { kind: 'upgrade-probe', delay: this.#probeDelay, at: now + this.#probeDelay });
  }

  /** Moves the session to WebSocket after a successful probe: a reconnection with no delay (§13.3). */
  #upgrade(): void {
    this.#route = 'websocket';
    this.#why = 'upgrade';
    this.#drop(DROP, new UnbrokenError('TRANSPORT_ERROR', 'the client moved to websocket'));
    this.#transition('reconnecting', 'upgrade');
    this.#start();
  }

  /**
   * The page came back (online, visible, restored): a link that claims to be open is checked with a
   * ping at once and dropped if nothing answers within the connect deadline; a pending reconnection
   * starts now.
   */
  #wake(): void {
    const a = this.#attempt;
    if (this.#state === 'reconnecting' && !a) {
      this.#clearTimer(this.#wait);
      return this.#start();
    }
    if (this.#state !== 'open' || !a || this.#left(a) <= 0) return;
    // Only the answer to this ping proves the link works now: a batch already in flight when the
    // link died could still arrive after it.
    const n = ++this.#pingId;
    this.#pings.set(n, [() => this.#clearTimer(a.k), () => {}]);
    a.t?.send(encodeBatch([{ t: 'ping', n }]));
    this.#clearTimer(a.k);
    a.k = this.#setTimer(() => {
      if (this.#attempt === a && this.#pings.delete(n)) {
        this.#fail(new UnbrokenError('HEARTBEAT_TIMEOUT', 'no answer after the page came back'));
      }
    }, this.#options.connectTimeout);
  }

  /** Releases the current attempt: its timers, its link (closed with `code`) and its pings. */
  #drop(code: number, error: UnbrokenError): void {
    const a = this.#attempt;
    if (a) {
      this.#attempt = undefined;
      this.#clearTimer(a.c);
      this.#clearTimer(a.h);
      this.#clearTimer(a.r);
      this.#clearTimer(a.u);
      this.#clearTimer(a.k);
      a.p?.();
      a.t?.close(code);
    }
    for (const [, reject] of this.#pings.values()) reject(error);
    this.#pings.clear();
  }

  #end(error: UnbrokenError | null, cause: StateCause): void {
    const closed = new UnbrokenError('CLIENT_CLOSED', 'the client closed', error ?? undefined);
    this.#clearTimer(this.#wait);
    this.#stopWatching();
    this.#drop(CloseCode.Normal, closed);
    this.#outbox.fail(closed);
    this.#transition('closed', cause);
    this.#events.emit('close', { error });
  }
}

/** `localStorage` when the page may use it (it throws in some private modes and sandboxed frames). */
function defaultMemory(): TransportMemory | null {
  try {
    return (globalThis as { localStorage?: TransportMemory }).localStorage ?? null;
  } catch {
    return null;
  }
}

/**
 * Connects to an unbroken server and keeps the connection: WebSocket first, falling back to SSE and
 * long polling, resuming the stream after every reconnection. Starts connecting at once.
 *
 * @param url - the http(s) URL of the server's endpoint, e.g. `https://example.com/realtime`, or a
 * path resolved against the page's location, e.g. `/realtime`. The WebSocket URL is derived from it.
 *
 * @example
 * ```ts
 * import { connect } from 'unbroken-realtime';
 *
 * const client = connect<{ text: string }>('/realtime');
 * client.on('message:chat', ({ data }) => console.log(data.text));
 * client.on('state', ({ to, cause }) => console.log(to, cause));
 * await client.send({ text: 'hello' }); // resolves once the server processed it
 * ```
 */
export function connect<T = unknown>(url: string, options?: ClientOptions): Client<T> {
  return new Client<T>(url, options);
}
