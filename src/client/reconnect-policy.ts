/**
 * When to reconnect (docs/PROTOCOL.md §10), and the bounds of every number the server sends that
 * the client waits on (§13.5): pure functions, tested with a seeded random.
 */
import { ERROR_CODES, type ErrorCode, type FailureAction } from '../protocol/index.js';
import type { Route } from './transport-selector.js';

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
  /** Whether the application's `auth` threw for it (its `UNAUTHORIZED` is then the client's own). */
  readonly authThrew?: boolean | undefined;
}

/**
 * What the client does after a failure with `code` (§9, §13.3): stop for good (`fatal`); try the next
 * transport at once (`fallback`) when the attempt failed to connect or to say `hello` — the mark of
 * a proxy or network that blocks this transport (not when its ticket request failed); get fresh credentials and retry at once
 * (`reauthenticate`), but stop when the attempt made right after an `UNAUTHORIZED` failed the same
 * way before its `hello` (§3.5); or reconnect with backoff (`retry`), also when `auth` threw.
 */
export function classify(code: ErrorCode, failed: FailedAttempt = { opened: true }): FailureAction | 'fallback' {
  // An `auth` that threw is no refusal by the server: the network or the token service may be down
  // for a while (a train, a tunnel). Retried with backoff, never fatal; an application that knows
  // its user logged out closes the client (§13.5).
  if (failed.authThrew) return 'retry';
  const action = ERROR_CODES[code].action;
  if (action === 'reauthenticate') return failed.after === code && !failed.opened ? 'fatal' : action;
  return action === 'retry' && !failed.opened && failed.linked !== false && (code === 'TRANSPORT_ERROR' || code === 'CONNECT_TIMEOUT')
    ? 'fallback'
    : action;
}

/** What {@link nextStart} knows of the attempt that failed, past what {@link classify} knows. */
export interface EndedAttempt {
  /** When the next attempt starts at the latest: the server's `reconnect` (§10.2), a shared connection's handover (§7.5). */
  readonly reconnectAt?: number | undefined;
  /** When its `hello` arrived, if it did. */
  readonly helloAt?: number | undefined;
  /** Where to go if a newer connection supersedes it soon after its `hello`: the rival it beat (§13.3). */
  readonly ifSuperseded?: Route | null | undefined;
  /** The code of the failure the attempt was started after, if any. */
  readonly after?: ErrorCode | undefined;
}

/**
 * When the attempt after a failed one starts, given the failure's `verdict` ({@link classify}, not
 * `fatal`): at once (0), after an exact number of ms, or after a backoff (`undefined`). Where it goes
 * changes only on a race lost to a newer connection and on a fallback, through `follow` (`null`: the
 * list is exhausted, start over from its first); `steady` is told when `a` had stayed open
 * `minUptime`, so that the count of failures starts over. `fallbackRoute` is asked only on a fallback.
 */
export function nextStart(
  code: ErrorCode,
  verdict: FailureAction | 'fallback',
  a: EndedAttempt | undefined,
  now: number,
  timing: { readonly connectTimeout: number; readonly minUptime: number },
  fallbackRoute: () => Route | null,
  follow: (route: Route | null) => void,
  steady: () => void,
): number | undefined {
  if (a?.reconnectAt !== undefined) return Math.max(0, a.reconnectAt - now);
  if (code === 'SUPERSEDED' && a?.ifSuperseded !== undefined && now - (a.helloAt ?? now) < timing.connectTimeout) {
    // The attempt `a` beat in a race attached after it (§13.3): at once, where that one got through.
    if (a.ifSuperseded) follow(a.ifSuperseded);
    return 0;
  }
  // At once, with fresh credentials; a second time in a row only after a backoff (§3.5).
  if (verdict === 'reauthenticate' && a?.after !== code) return 0;
  if (verdict === 'fallback' && a) {
    const route = fallbackRoute();
    follow(route);
    return route ? 0 : undefined;
  }
  if (a?.helloAt !== undefined && now - a.helloAt >= timing.minUptime) steady();
  return undefined;
}
