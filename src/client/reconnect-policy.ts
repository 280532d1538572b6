/**
 * When to reconnect (docs/PROTOCOL.md §10): pure functions, tested with a seeded random.
 */
import { ERROR_CODES, type ErrorCode, type FailureAction } from '../protocol/index.js';

/** The options {@link backoff} reads. */
export interface BackoffOptions {
  /** Initial delay in ms: the jitter range of the first failed attempt. */
  reconnectDelay: number;
  /** Cap of the jitter range, in ms. */
  maxReconnectDelay: number;
}

/**
 * Delay before the next attempt after the `attempt`-th consecutive failed one (from 0): the server's
 * floor plus full jitter over an exponentially growing range,
 * `floor + random × min(maxDelay, initialDelay × 2^attempt)` (PROTOCOL.md §10.1).
 */
export function backoff(attempt: number, floor: number, options: BackoffOptions, random: () => number): number {
  return floor + random() * Math.min(options.maxReconnectDelay, options.reconnectDelay * 2 ** attempt);
}

/**
 * What the client does after a failure with `code` (§9, §13.3): stop for good (`fatal`); try the next
 * transport at once (`fallback`) when the attempt failed to connect or to say `hello` — the mark of
 * a proxy or network that blocks this transport; or reconnect with backoff (`retry`).
 *
 * @param helloReceived - whether the failed attempt had received its `hello`
 */
export function classify(code: ErrorCode, helloReceived = true): Exclude<FailureAction, 'reauthenticate'> | 'fallback' {
  // This client has no `auth` option yet, so it has no fresh credentials to fetch: an UNAUTHORIZED
  // (§3.5) is handled like any failure it reconnects from.
  const action = ERROR_CODES[code].action === 'reauthenticate' ? 'retry' : ERROR_CODES[code].action;
  return action === 'retry' && !helloReceived && (code === 'TRANSPORT_ERROR' || code === 'CONNECT_TIMEOUT')
    ? 'fallback'
    : action;
}
