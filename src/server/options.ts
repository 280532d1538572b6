/**
 * The server's options: what the application may set (`ServerOptions`), and their defaults and
 * checks in one block ({@link resolveServerOptions}).
 */
import type http from 'node:http';
import { DEFAULT_MAX_ROOMS } from './rooms.js';
import { UnbrokenTypeError } from './errors.js';
import type { OriginCheck } from './http.js';
import type { Authenticate } from './identity.js';
import { socketAddress } from './limits.js';
import type { MessageStore } from './store.js';

export interface ServerOptions {
  /**
   * Path the server serves: `P/ws`, `P/sse`, `P/poll`, `P/send` and `P/ticket` (§3), and the
   * carriers the tabs share, `P/carrier`, `P/carrier-poll`, `P/attach` and `P/detach` (§7.5).
   * @default '/realtime'
   */
  path?: string;
  /**
   * Where messages are kept for replay (§6).
   * @default new MemoryStore()
   */
  store?: MessageStore;
  /**
   * Heartbeat interval in ms (`hello.hb`): every connection gets a frame at least this often, and
   * WebSocket ping frames go out at this pace (§7.1, §11).
   * @default 15_000
   */
  heartbeatInterval?: number;
  /**
   * Reconnect delay floor in ms the client must respect (`hello.retry`, SSE `retry:`, §10.1).
   * @default 1_000
   */
  retry?: number;
  /**
   * Largest frame or upstream request body accepted, in bytes (`hello.max`, §12).
   * @default 1_048_576
   */
  maxMessageSize?: number;
  /**
   * Origins allowed besides the server's own: a list, or a predicate. Same-origin requests (an
   * `Origin` whose host is the request's `Host`) and requests without an `Origin` header (not from a
   * browser) are always allowed; this adds to them, it does not replace them (§3.2). Each entry of a
   * list is an origin as a browser sends it — `https://app.example`, `http://localhost:3000`: lower
   * case, no path, no trailing slash, no default port; other schemes (`chrome-extension://…`) as
   * written — and anything else is refused with `INVALID_OPTION`, since it would never match. An
   * empty entry allows nothing.
   * @default none: same-origin only
   */
  allowedOrigins?: readonly string[] | ReadonlySet<string> | ((origin: string) => boolean);
  /**
   * How long a session survives without a connection, in ms (§3.3).
   * @default 300_000
   */
  sessionTimeout?: number;
  /**
   * On `close()`, each client is told to reconnect after a delay drawn from `[0, shutdownJitter)` ms,
   * so that they do not all come back at once (§10.2).
   * @default 5_000
   */
  shutdownJitter?: number;
  /**
   * Most bytes buffered for one connection; a client that reads slower is disconnected with
   * `BACKPRESSURE` and resumes from the store (§12). Keep it above the largest message sent.
   * @default 1_048_576 (1 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * Most bytes buffered across every connection; past it the connections that hold the most (the
   * slowest readers) are cut with `BACKPRESSURE` first, and resume from the store (§12.1).
   * @default 67_108_864 (64 MiB)
   */
  maxTotalBufferedBytes?: number;
  /**
   * Most rooms one session is in at once; `session.join()` past it throws `TOO_MANY_ROOMS` (§6.5).
   * @default 100
   */
  maxRoomsPerSession?: number;
  /**
   * Sessions alive at once (connected or waiting for their client within `sessionTimeout`); a
   * connection that would create one more is refused with `TOO_MANY_CONNECTIONS` (§12.1).
   * @default 100_000
   */
  maxSessions?: number;
  /**
   * Sessions alive at once created from one client address (see `clientAddress`); more are refused
   * with `TOO_MANY_CONNECTIONS`. Raise it when many users share an address (a NAT, a proxy whose
   * forwarded address `clientAddress` does not read).
   * @default 500
   */
  maxSessionsPerAddress?: number;
  /**
   * Downstream connections (and WebSocket upgrade probes) open at once; more are refused with
   * `TOO_MANY_CONNECTIONS` (§12.1).
   * @default 50_000
   */
  maxConnections?: number;
  /**
   * Downstream connections (and upgrade probes) open at once from one client address; more are
   * refused with `TOO_MANY_CONNECTIONS`.
   * @default 500
   */
  maxConnectionsPerAddress?: number;
  /**
   * New sessions one client address may create per second (a token bucket that saves up one
   * second's worth); more are refused with `RATE_LIMITED` (§12.1).
   * @default 20
   */
  sessionsPerSecondPerAddress?: number;
  /**
   * Client messages one session may send per second (a token bucket that saves up one second's
   * worth). Past it the client is slowed, never refused: the server stops reading its WebSocket, or
   * holds its next `POST P/send`, until the budget is back; nothing is lost (§12.1).
   * @default 200
   */
  messagesPerSecond?: number;
  /**
   * How long the body of an upstream request (`POST P/send`, `P/ticket`, `P/attach`, `P/detach`) may
   * take to arrive, in ms; a slower one is answered `REQUEST_TIMEOUT` and its connection closed (§12.1).
   * @default 8_000
   */
  bodyTimeout?: number;
  /**
   * Upper bound, in ms, for the attached http server's `headersTimeout`: `attach()` lowers it to this
   * when it is higher (headers arrive before the path is known, so this bound cannot be per path).
   * Node checks it every `connectionsCheckingInterval` (30 s unless the http server was created with
   * another). `0` leaves the http server's setting alone.
   * @default 10_000
   */
  headersTimeout?: number;
  /**
   * The address a request counts against for the per-address limits. Behind a reverse proxy every
   * request comes from the proxy: return the client address the proxy forwards (e.g. the last entry
   * of `X-Forwarded-For` that your proxy appended), never a header a client can set freely.
   * @default the socket's remote address
   */
  clientAddress?: (request: http.IncomingMessage) => string;
  /**
   * Checks who a client is (§3.5): called with the HTTP request and what the client's `auth` option
   * supplied, before a session is created, on every new connection of a session (each `POST
   * P/ticket`), and for every `auth` frame. Return an {@link Identity} (`session.user`) to accept;
   * `null`/`undefined`, a throw or a rejection refuses with `UNAUTHORIZED`. A connection whose
   * identity `id` differs from its session's never attaches to it. With `expiresAt`, the client is
   * asked for fresh credentials before it and its connection closes past it.
   * @default none: every client is accepted and `session.user` is null
   */
  authenticate?: Authenticate;
  /**
   * How long a ticket from `POST P/ticket` stays valid, in ms (§3.4). It is used once, at once.
   * @default 30_000
   */
  ticketTtl?: number;
  /**
   * Most tickets outstanding (issued, neither used nor expired) in total; past it `POST P/ticket` is
   * answered `RATE_LIMITED` (§3.4).
   * @default 10_000
   */
  maxTickets?: number;
  /**
   * Most tickets outstanding per client address (the socket's remote address: behind a proxy, the
   * proxy's); past it `POST P/ticket` is answered `RATE_LIMITED` (§3.4).
   * @default 1_000
   */
  maxTicketsPerAddress?: number;
  /**
   * Clock in ms, for heartbeats and timeouts.
   * @default Date.now
   */
  now?: () => number;
  /**
   * Random numbers in `[0, 1)`, for the shutdown jitter. Session ids never come from it.
   * @default Math.random
   */
  random?: () => number;
}

/** The options with their defaults, checked; `store` stays as given (the server makes its own without one). */
export type ResolvedServerOptions = Required<Omit<ServerOptions, 'store' | 'allowedOrigins' | 'authenticate'>> & {
  readonly store: MessageStore | undefined;
  readonly originAllowed: OriginCheck;
  readonly authenticate: Authenticate | null;
};

/** A value as an error message names it: a string in quotes, so that `"1000"` is not read as a number. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

function checkInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects ${name} to be an integer ≥ ${min}, got ${shown(value)}`);
  }
  return value;
}

function checkFunction<F>(name: string, value: F): F {
  if (typeof value !== 'function') throw new UnbrokenTypeError('INVALID_OPTION', `expects ${name} to be a function, got ${shown(value)}`);
  return value;
}

/** The methods of every {@link MessageStore}, and those a store may leave out. */
const STORE_METHODS = ['append', 'head', 'join', 'leave', 'members', 'roomsOf', 'read', 'subscribe'] as const;
const OPTIONAL_STORE_METHODS = ['appendNow', 'ready', 'onError', 'close'] as const;

/** A store given in plain JavaScript is checked for its methods here, not at its first use. */
function checkStore(store: MessageStore | undefined): MessageStore | undefined {
  if (store === undefined) return undefined;
  const refuse = (what: string): never => {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects store to be a MessageStore (a MemoryStore, a RedisStore or one of their kind), got ${what}`);
  };
  if (typeof store !== 'object' || store === null) return refuse(shown(store));
  const methods = store as unknown as Record<string, unknown>;
  const wrong = [
    ...STORE_METHODS.filter((name) => typeof methods[name] !== 'function'),
    ...OPTIONAL_STORE_METHODS.filter((name) => methods[name] !== undefined && typeof methods[name] !== 'function'),
  ];
  if (wrong.length > 0) refuse(`an object whose ${wrong.join(', ')} ${wrong.length > 1 ? 'are' : 'is'} not a function`);
  return store;
}

function normalisePath(path: string): string {
  if (typeof path !== 'string') throw new UnbrokenTypeError('INVALID_OPTION', `expects path to be a string, got ${shown(path)}`);
  const trimmed = path.replace(/\/+$/, '');
  if (!trimmed.startsWith('/') || /[?#]/.test(trimmed)) {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects path to start with / and hold no ? or #, got ${JSON.stringify(path)}`);
  }
  return trimmed;
}

/**
 * An origin as a browser sends it in `Origin` (RFC 6454): a lower-case scheme, `://`, a host and a
 * port, nothing else — for http(s) exactly what the URL's origin is (no default port, no upper case).
 * Other schemes (`chrome-extension://…`, `capacitor://localhost`) have no origin of their own in the
 * URL standard, and are taken as written.
 */
function isOrigin(text: string): boolean {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#\sA-Z]+$/.test(text)) return false;
  try {
    const { origin } = new URL(text);
    return origin === text || origin === 'null';
  } catch {
    return false;
  }
}

function originCheck(allowed: ServerOptions['allowedOrigins'] | null): OriginCheck {
  if (allowed === undefined || allowed === null) return () => false;
  if (typeof allowed === 'function') return allowed;
  // A string is iterable too: it would allow no origin at all, one character at a time.
  if (typeof allowed !== 'object' || typeof (allowed as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects allowedOrigins to be a list of origins or a function, got ${shown(allowed)}`);
  }
  // An empty entry matches nothing: a list read from an empty setting (`''.split(',')`) allows none.
  const set = new Set<unknown>(allowed);
  set.delete('');
  for (const origin of set) {
    // An entry no browser sends (a path, a trailing slash, upper case, a default port) would never match.
    if (typeof origin !== 'string' || !isOrigin(origin)) {
      throw new UnbrokenTypeError(
        'INVALID_OPTION',
        `expects each of allowedOrigins to be an origin as browsers send it (scheme://host[:port], lower case, no path or trailing /), got ${shown(origin)}`,
      );
    }
  }
  return (origin) => set.has(origin);
}

/**
 * Every option with its default, checked: a bad value throws `INVALID_OPTION` (an
 * {@link UnbrokenTypeError}) naming the option.
 */
export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const {
    path = '/realtime',
    store,
    heartbeatInterval = 15_000,
    retry = 1_000,
    maxMessageSize = 1_048_576,
    allowedOrigins,
    sessionTimeout = 300_000,
    shutdownJitter = 5_000,
    maxBufferedBytes = 1024 * 1024,
    maxTotalBufferedBytes = 64 * 1024 * 1024,
    maxRoomsPerSession = DEFAULT_MAX_ROOMS,
    maxSessions = 100_000,
    maxSessionsPerAddress = 500,
    maxConnections = 50_000,
    maxConnectionsPerAddress = 500,
    sessionsPerSecondPerAddress = 20,
    messagesPerSecond = 200,
    bodyTimeout = 8_000,
    headersTimeout = 10_000,
    clientAddress = socketAddress,
    now = Date.now,
    random = Math.random,
    authenticate,
    ticketTtl = 30_000,
    maxTickets = 10_000,
    maxTicketsPerAddress = 1_000,
  } = options;
  // Checked in this order, so that of several bad options the same one is named as before.
  const resolved = {
    headersTimeout: checkInteger('headersTimeout', headersTimeout, 0),
    maxSessions: checkInteger('maxSessions', maxSessions, 1),
    maxSessionsPerAddress: checkInteger('maxSessionsPerAddress', maxSessionsPerAddress, 1),
    maxConnections: checkInteger('maxConnections', maxConnections, 1),
    maxConnectionsPerAddress: checkInteger('maxConnectionsPerAddress', maxConnectionsPerAddress, 1),
    sessionsPerSecondPerAddress: checkInteger('sessionsPerSecondPerAddress', sessionsPerSecondPerAddress, 1),
    messagesPerSecond: checkInteger('messagesPerSecond', messagesPerSecond, 1),
    clientAddress: checkFunction('clientAddress', clientAddress),
  };
  if (authenticate !== undefined && typeof authenticate !== 'function') {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects authenticate to be a function, got ${typeof authenticate}`);
  }
  return {
    ...resolved,
    ticketTtl: checkInteger('ticketTtl', ticketTtl, 1),
    maxTickets: checkInteger('maxTickets', maxTickets, 1),
    maxTicketsPerAddress: checkInteger('maxTicketsPerAddress', maxTicketsPerAddress, 1),
    path: normalisePath(path),
    store: checkStore(store),
    heartbeatInterval: checkInteger('heartbeatInterval', heartbeatInterval, 1),
    retry: checkInteger('retry', retry, 0),
    maxMessageSize: checkInteger('maxMessageSize', maxMessageSize, 64),
    sessionTimeout: checkInteger('sessionTimeout', sessionTimeout, 0),
    shutdownJitter: checkInteger('shutdownJitter', shutdownJitter, 0),
    maxBufferedBytes: checkInteger('maxBufferedBytes', maxBufferedBytes, 1024),
    maxTotalBufferedBytes: checkInteger('maxTotalBufferedBytes', maxTotalBufferedBytes, 1024),
    maxRoomsPerSession: checkInteger('maxRoomsPerSession', maxRoomsPerSession, 1),
    originAllowed: originCheck(allowedOrigins),
    bodyTimeout: checkInteger('bodyTimeout', bodyTimeout, 1),
    now: checkFunction('now', now),
    random: checkFunction('random', random),
    authenticate: authenticate ?? null,
  };
}
