/**
 * The one table of error codes shared by client and server (docs/PROTOCOL.md §9).
 *
 * Every failure a user can meet has a stable string code. Codes the server signals on the wire also
 * have a WebSocket close code and an HTTP status; the client decides what to do next from `action`:
 * `retry` reconnects with backoff, `reauthenticate` gets fresh credentials first (§3.5), `fatal` stops for good.
 */

/** WebSocket close codes used by protocol version 1 (PROTOCOL.md §9). */
export const CloseCode = {
  /** The client closed on purpose and ended its session. */
  Normal: 1000,
  /** The client dropped this link to reconnect (dead link, protocol error); the session goes on. */
  Reconnecting: 4000,
  /** The server is going away without a reconnect notice (e.g. process exit). */
  GoingAway: 1001,
  /** A frame was larger than the announced maximum. */
  MessageTooBig: 1009,
  /** The server failed while handling the connection. */
  InternalError: 1011,
  /** The server is restarting; a `reconnect` notice preceded this close. */
  ServiceRestart: 1012,
  /** A frame could not be decoded or broke a MUST of the protocol. */
  ProtocolError: 4400,
  /** The Origin is not on the server's allow-list. */
  Forbidden: 4403,
  /** No valid ticket, credentials refused or expired, or the application disconnected the user (§3.4, §3.5). */
  Unauthorized: 4401,
  /** The peer sent nothing within its liveness deadline. */
  HeartbeatTimeout: 4408,
  /** A newer connection of the same session replaced this one. */
  Superseded: 4409,
  /** The client asked for a protocol version the server does not speak. */
  UnsupportedVersion: 4426,
  /** The client read too slowly; it reconnects and resumes from the store. */
  Backpressure: 4429,
  /** The client's address created sessions faster than the server allows. */
  RateLimited: 4430,
  /** The client's address, or the server, holds as many sessions or connections as allowed. */
  TooManyConnections: 4431,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * What a client does after a failure with this code. `reauthenticate`: call the `auth` option again
 * and retry at once; fatal when the attempt right after fails the same way before its `hello` (§3.5).
 */
export type FailureAction = 'retry' | 'reauthenticate' | 'fatal';

interface CodeInfo {
  readonly action: FailureAction;
  /** Close code when the server signals it over WebSocket. */
  readonly close?: CloseCode;
  /** HTTP status when the server signals it over SSE or long polling. */
  readonly http?: number;
}

/**
 * Every stable error code. Codes without `close`/`http` are raised by the client itself.
 * Keep in step with the table in docs/PROTOCOL.md §9 and README "Errors".
 */
export const ERROR_CODES = {
  /** The server sent something that breaks the protocol, or rejected what the client sent. */
  PROTOCOL_ERROR: { action: 'retry', close: CloseCode.ProtocolError, http: 400 },
  /** The server does not speak the client's protocol version. */
  UNSUPPORTED_VERSION: { action: 'fatal', close: CloseCode.UnsupportedVersion, http: 426 },
  /** The page's Origin is not allowed by the server. */
  FORBIDDEN: { action: 'fatal', close: CloseCode.Forbidden, http: 403 },
  /**
   * The request carried no valid ticket or session key, the application's `authenticate` refused the
   * credentials, the identity expired, or the application disconnected the user (§3.4, §3.5).
   */
  UNAUTHORIZED: { action: 'reauthenticate', close: CloseCode.Unauthorized, http: 401 },
  /** A message is larger than the server's maximum. */
  MESSAGE_TOO_LARGE: { action: 'retry', close: CloseCode.MessageTooBig, http: 413 },
  /** No byte arrived within the liveness deadline: the link is dead. */
  HEARTBEAT_TIMEOUT: { action: 'retry', close: CloseCode.HeartbeatTimeout },
  /** A newer connection of the same session replaced this one. */
  SUPERSEDED: { action: 'retry', close: CloseCode.Superseded, http: 409 },
  /** The client read too slowly; the server dropped the connection, the store keeps the messages. */
  BACKPRESSURE: { action: 'retry', close: CloseCode.Backpressure },
  /**
   * The client's address created sessions faster than the server allows, or holds too many tickets
   * (§3.4, §12.1): retry after a delay.
   */
  RATE_LIMITED: { action: 'retry', close: CloseCode.RateLimited, http: 429 },
  /** An upstream request body did not arrive within the server's body timeout. */
  REQUEST_TIMEOUT: { action: 'retry', http: 408 },
  /** The server does not know the session named on an upstream request: reconnect first. */
  UNKNOWN_SESSION: { action: 'retry', http: 404 },
  /** The server is restarting and asked the client to come back later. */
  SERVER_RESTART: { action: 'retry', close: CloseCode.ServiceRestart, http: 503 },
  /**
   * The client's address, or the server as a whole, is at its limit of sessions or connections.
   * After SERVER_RESTART: a bare 503 (no error body, e.g. from a proxy) maps to SERVER_RESTART.
   */
  TOO_MANY_CONNECTIONS: { action: 'retry', close: CloseCode.TooManyConnections, http: 503 },
  /** The server failed. */
  INTERNAL_ERROR: { action: 'retry', close: CloseCode.InternalError, http: 500 },
  /** The connection failed or closed without a protocol reason (network, proxy, server gone). */
  TRANSPORT_ERROR: { action: 'retry' },
  /** The connection opened but no `hello` arrived within the deadline. */
  CONNECT_TIMEOUT: { action: 'retry' },
  /** No transport can run in this environment (e.g. no WebSocket implementation). */
  NO_TRANSPORT: { action: 'fatal' },
  /** `send()` was refused: the bounded outbox is full. */
  OUTBOX_FULL: { action: 'fatal' },
  /** `send()` was given a value that is neither JSON-serialisable nor binary. */
  INVALID_DATA: { action: 'fatal' },
  /** The client was closed before the message was acknowledged. */
  CLIENT_CLOSED: { action: 'fatal' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The code itself when `code` is one a server signals on the wire (it has a close code or an HTTP status). */
export function serverCode(code: unknown): ErrorCode | undefined {
  if (typeof code !== 'string' || !Object.hasOwn(ERROR_CODES, code)) return undefined;
  const info: CodeInfo = ERROR_CODES[code as ErrorCode];
  return info.close !== undefined || info.http !== undefined ? (code as ErrorCode) : undefined;
}

/** Maps an HTTP status to the protocol error code it signals, if any. */
export function codeForStatus(status: number): ErrorCode | undefined {
  for (const code in ERROR_CODES) {
    const info: CodeInfo = ERROR_CODES[code as ErrorCode];
    if (info.http === status) return code as ErrorCode;
  }
  return undefined;
}

/** Maps a WebSocket close code to the protocol error code it signals, if any. */
export function codeForClose(closeCode: number): ErrorCode | undefined {
  for (const code in ERROR_CODES) {
    const info: CodeInfo = ERROR_CODES[code as ErrorCode];
    if (info.close === closeCode) return code as ErrorCode;
  }
  return undefined;
}

/** Maps a protocol error code to its WebSocket close code; `fallback` for codes without one. */
export function closeCodeFor(code: ErrorCode, fallback: number = CloseCode.InternalError): number {
  const info: CodeInfo = ERROR_CODES[code];
  return info.close ?? fallback;
}

/** Maps a protocol error code to its HTTP status (server side); `fallback` for codes without one. */
export function httpStatusFor(code: ErrorCode, fallback = 500): number {
  const info: CodeInfo = ERROR_CODES[code];
  return info.http ?? fallback;
}
