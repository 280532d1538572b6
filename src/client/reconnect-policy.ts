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

/** What the client does after a failure with `code`: reconnect with backoff, or stop for good (§9). */
export function classify(code: ErrorCode): FailureAction {
  return ERROR_CODES[code].action;
}
