/**
 * When to reconnect (docs/PROTOCOL.md §10), and the bounds of every number the server sends that
 * the client waits on (§13.5): pure functions, tested with a seeded random.
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

/** Range of `hello.hb` the client accepts, in ms: a heartbeat outside it is moved to its nearer end (§13.5). */
export const HEARTBEAT_RANGE = [100, 300_000] as const;

/** Range of the delays the server sets (`hello.retry`, `retry`, `reconnect`), in ms (§13.5). */
export const SERVER_DELAY_RANGE = [0, 60_000] as const;

const clamp = (value: number, [min, max]: readonly [number, number]): number => Math.min(Math.max(value, min), max);

/**
 * A delay the server set (`hello.retry`, `retry`, `reconnect`) within {@link SERVER_DELAY_RANGE}
 * (§13.5): with the jitter on top, no wait exceeds 60 s plus `maxReconnectDelay`.
 */
export const serverDelay = (ms: number): number => clamp(ms, SERVER_DELAY_RANGE);

/** The heartbeat interval to hold the server to: `hb` within {@link HEARTBEAT_RANGE}, never off (§13.5). */
export const heartbeatOf = (hb: number): number => clamp(hb, HEARTBEAT_RANGE);

/** What {@link classify} knows of the attempt that failed. */
export interface FailedAttempt {
  /** Whether its `hello` arrived. */
  readonly opened: boolean;
  /** Whether it got as far as its transport: a failed ticket request (§3.4) says nothing of the transport. Default true. */
  readonly linked?: boolean;
  /** The code of the failure the attempt was started after, if any. */
  readonly after?: ErrorCode | undefined;
}

/**
 * What the client does after a failure with `code` (§9, §13.3): stop for good (`fatal`); try the next
 * transport at once (`fallback`) when the attempt failed to connect or to say `hello` — the mark of
 * a proxy or network that blocks this transport (not when its ticket request failed); get fresh credentials and retry at once
 * (`reauthenticate`), but stop when the attempt made right after an `UNAUTHORIZED` failed the same
 * way before its `hello` (§3.5); or reconnect with backoff (`retry`).
 */
export function classify(code: ErrorCode, failed: FailedAttempt = { opened: true }): FailureAction | 'fallback' {
  const action = ERROR_CODES[code].action;
  if (action === 'reauthenticate') return failed.after === code && !failed.opened ? 'fatal' : action;
  return action === 'retry' && !failed.opened && failed.linked !== false && (code === 'TRANSPORT_ERROR' || code === 'CONNECT_TIMEOUT')
    ? 'fallback'
    : action;
}
