/**
 * The client's options: what the application may set, their defaults (one block, in
 * {@link resolveOptions}), and the environment a client runs in (clock, storage).
 */
import { Endpoint, PROTOCOL_VERSION, QueryParam, type JsonValue } from '../protocol/index.js';
import type {
  BroadcastChannelConstructor,
  EventSourceConstructor,
  FetchLike,
  ClientTransport,
  LockManagerLike,
  TransportDefinition,
  TransportEnvironment,
  TransportName,
  WebSocketConstructor,
} from './transport.js';
import { checkDefinitions } from './transport-selector.js';

/** Where a client remembers the transport that worked, e.g. `localStorage`. */
export interface TransportMemory {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

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

/**
 * Gives the credentials the server's `authenticate` checks, e.g. a fresh token: a JSON value of whatever shape, or
 * `undefined` for none (cookies need none). May return a promise. A throw or rejection fails the
 * attempt with `UNAUTHORIZED`; on a live connection the server asked for fresh credentials, it is
 * reported as an `error` event, and the connection goes on while its identity lasts.
 */
export type AuthProvider = () => JsonValue | undefined | Promise<JsonValue | undefined>;

/** Options of {@link connect}. */
export interface ClientOptions {
  /**
   * Called before each connection attempt, its result sent in the body of the ticket request
   * (PROTOCOL.md §3.4), and when the server asks for fresh credentials, its result sent on the live
   * connection (§3.5). After `UNAUTHORIZED` the client calls it once more and retries at once; a
   * second `UNAUTHORIZED` in a row before a `hello` closes the client with that error.
   * @default none: the request carries no credentials (the page's cookies still go with it)
   */
  auth?: AuthProvider | undefined;
  /**
   * Largest inbound unit the client accepts, in bytes: a WebSocket message, an SSE event's data, a
   * poll answer (PROTOCOL.md §13.5). A larger one fails the link with `MESSAGE_TOO_LARGE`; the client
   * skips the messages it held (a `gap` event with reason `too-large` names them) and reconnects.
   * @default 4194304 (4 MiB)
   */
  maxMessageSize?: number;
  /**
   * Transports to try, in order (PROTOCOL.md §13.3), by name or as the imported transports a
   * {@link BaseClient} takes (`webSocketTransport`…). An unknown name throws at once; a transport that
   * cannot run here (e.g. no WebSocket implementation) is skipped.
   * @default ['websocket', 'sse', 'long-polling']
   */
  transports?: readonly (TransportName | ClientTransport)[];
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
   * Share one connection between the tabs of this origin when on SSE or long polling (PROTOCOL.md
   * §7.5): a browser opens at most six HTTP/1.1 connections per host, and each SSE stream or held poll
   * takes one. Each tab keeps its own session; one tab holds the connection, and another takes over
   * when it closes, crashes or freezes. `false` gives this client a connection of its own.
   * @default true where Web Locks and BroadcastChannel exist
   */
  share?: boolean;
  /**
   * The Web Locks implementation that elects the tab holding a shared connection.
   * @default globalThis.navigator.locks, looked up when each attempt starts
   */
  locks?: LockManagerLike | undefined;
  /**
   * The BroadcastChannel implementation that carries a shared connection between tabs.
   * @default globalThis.BroadcastChannel, looked up when each attempt starts
   */
  BroadcastChannel?: BroadcastChannelConstructor | undefined;
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
   * Ms after an attempt's ticket arrived with no `hello` yet before the next transport of the list
   * starts alongside it, for the same session; whichever says `hello` first is kept and the other
   * closed (PROTOCOL.md §13.3, "Racing"). The head start is the larger of this and 4 × the ticket
   * request's round trip, so a slow network does not start a race a healthy link would win. 0 turns
   * racing off: the next transport then waits for the attempt to fail (at `connectTimeout` at most).
   * @default 500
   */
  raceAfter?: number;
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


/** The options with every default applied. */
export interface ResolvedOptions {
  readonly auth: AuthProvider | undefined;
  readonly maxMessageSize: number;
  readonly transports: readonly TransportDefinition[];
  readonly reconnectDelay: number;
  readonly maxReconnectDelay: number;
  readonly minUptime: number;
  readonly connectTimeout: number;
  readonly raceAfter: number;
  readonly outboxLimit: number;
  readonly upgradeInterval: number;
  readonly storage: TransportMemory | null;
  readonly rememberFor: number;
  readonly pageLifecycle: boolean;
  readonly clock: Clock;
  readonly random: () => number;
  /** The implementations transports are made from, looked up in globalThis when each attempt starts. */
  environment(): TransportEnvironment;
}

/**
 * The options of a {@link BaseClient}: those of {@link ClientOptions}, with the transports given as
 * their definitions rather than named, so that a bundler leaves out the ones the application does not
 * import.
 */
export interface BaseClientOptions extends Omit<ClientOptions, 'transports'> {
  /**
   * Transports to try, in order (PROTOCOL.md §13.3): `webSocketTransport`, `sseTransport`,
   * `longPollingTransport`. A transport that cannot run here is skipped.
   */
  transports: readonly ClientTransport[];
}

/** The options that are amounts (ms, bytes, messages), with their defaults. */
const AMOUNTS = {
  maxMessageSize: 4_194_304,
  reconnectDelay: 500,
  maxReconnectDelay: 30_000,
  minUptime: 5_000,
  connectTimeout: 3_000,
  raceAfter: 500,
  outboxLimit: 10_000,
  upgradeInterval: 30_000,
  rememberFor: 86_400_000,
};

/** The options that are functions (or classes), when given. */
const FUNCTIONS = ['auth', 'random', 'WebSocket', 'EventSource', 'fetch', 'BroadcastChannel'] as const;

/**
 * Applies the defaults (also to an amount given as `null`); throws a `TypeError` for a list of
 * transports that is not one, an amount that is not a number ≥ 0 (≥ 1 for `connectTimeout` and
 * `maxMessageSize`), or one of {@link FUNCTIONS} given as something else than a function.
 */
export function resolveOptions(options: BaseClientOptions): ResolvedOptions {
  // Plain JavaScript may leave the options out: it is told what `transports` takes.
  const given = options ?? ({} as Partial<BaseClientOptions>);
  const { auth, transports, storage = defaultMemory(), pageLifecycle = true, share = true, clock = systemClock, random = Math.random } = given;
  checkDefinitions(transports);
  const refuse = (name: string, expected: string, got: string): never => {
    throw new TypeError(`unbroken: expects ${name} ${expected}, got ${got}`);
  };
  // Plain JavaScript may pass anything: `random: 0.5` would throw in a timer (in Node, an uncaught
  // exception that ends the process), `auth: 'token'` would be refused as credentials at each attempt.
  // Only the type is told: `auth: localStorage.token` is a secret, which an error must not carry to logs.
  for (const name of FUNCTIONS) {
    const value = given[name];
    if (value != null && typeof value != 'function') refuse(name, 'a function', typeof value);
  }
  const amounts = { ...AMOUNTS };
  for (const name of Object.keys(amounts) as (keyof typeof AMOUNTS)[]) {
    const value = given[name] ?? amounts[name];
    // A string, NaN or a negative would not fail anywhere: timers would fire at once, and the client
    // would time out and reconnect for ever without saying why. A timeout of 0 times out at once, and
    // a link takes no message in 0 bytes: those two take 1 and up.
    const least = +(name == 'connectTimeout' || name == 'maxMessageSize');
    if (!(Number.isFinite(value) && value >= least)) refuse(name, `≥ ${least}`, `${typeof value} ${String(value)}`);
    amounts[name] = value;
  }
  return {
    ...amounts,
    auth,
    transports,
    storage,
    pageLifecycle,
    clock,
    random,
    environment: () => ({
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      EventSource: options.EventSource ?? globalThis.EventSource,
      fetch: options.fetch ?? globalThis.fetch,
      locks: share ? (options.locks ?? (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks) : undefined,
      BroadcastChannel: share ? (options.BroadcastChannel ?? globalThis.BroadcastChannel) : undefined,
    }),
  };
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
 * The http(s) URL of the server's endpoint from what the application passed: an http(s) or ws(s)
 * URL, or a path resolved against the page's location. Throws a `TypeError` for anything else.
 */
export function endpointBase(url: string): string {
  let base: URL | undefined;
  try {
    base = new URL(url, globalThis.location?.href);
  } catch {}
  if (!base || !/^(http|ws)s?:$/.test(base.protocol)) {
    throw new TypeError(`unbroken: expects an http(s) URL, or a path in a page, got ${url}`);
  }
  base.protocol = base.protocol.replace('ws', 'http');
  // A WebSocket URL may not have a fragment (its constructor throws), and no request sends one.
  base.hash = '';
  return base.href;
}

/** The URL of `endpoint` (`/ws`, `/ticket`…) under the endpoint `base`, with the query of `base`. */
export function endpointAt(base: string, endpoint: string): URL {
  const url = new URL(base);
  url.pathname = url.pathname.replace(/\/$/, '') + endpoint;
  return url;
}

/**
 * The URL of `endpoint` under `base`, with the query of PROTOCOL.md §3: the version, the cursor on
 * downstream requests, and the single-use ticket when given (§3.4) — nothing that resumes a session
 * without one.
 */
export function endpointUrl(base: string, endpoint: string, cursor: string | null, ticket?: string): string {
  const url = endpointAt(base, endpoint);
  const query = url.searchParams;
  query.set(QueryParam.version, `${PROTOCOL_VERSION}`);
  if (ticket) query.set(QueryParam.ticket, ticket);
  // The cursor belongs to the stream (§3): upstream requests (`P/send`, `P/ticket`) carry `v` alone.
  if (cursor && endpoint !== Endpoint.send && endpoint !== Endpoint.ticket) query.set(QueryParam.lastEventId, cursor);
  return url.href;
}
