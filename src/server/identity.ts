/**
 * Who a client is (docs/PROTOCOL.md §3.5): the application's `authenticate` hook, run on every ticket
 * request and on every client `auth` frame, and the shape of what it returns.
 */
import type http from 'node:http';
import type { JsonValue } from '../protocol/index.js';
import { UnbrokenServerError } from './errors.js';

/**
 * What `authenticate` returns for an accepted client. `id` names the user: every connection of a
 * session must authenticate as the same `id` (§3.5). Any other fields are the application's own.
 */
export interface Identity {
  /** The user: 1–256 characters. */
  readonly id: string;
  /**
   * When the identity stops being valid, in ms since the epoch. Before it the server asks the client
   * for fresh credentials (`auth` frame); past it the connection closes with `UNAUTHORIZED` (§3.5).
   */
  readonly expiresAt?: number;
  readonly [field: string]: unknown;
}

/**
 * The application's check of a client (§3.5). `request` is the HTTP request that carried the
 * credentials: the `POST P/ticket`, the WebSocket upgrade (for an `auth` frame on the socket), or the
 * `POST P/send` (for an `auth` frame in a batch) — its headers, cookies and socket address.
 * `credentials` is what the client's `auth` option returned (`undefined` without one). Return the
 * identity to accept; `null`/`undefined`, a throw or a rejection refuses with `UNAUTHORIZED`.
 */
export type Authenticate = (
  request: http.IncomingMessage,
  credentials: JsonValue | undefined,
) => Identity | null | undefined | Promise<Identity | null | undefined>;

/** Longest identity id, in characters. */
const MAX_IDENTITY_ID = 256;

/**
 * Runs `authenticate` and returns the identity it accepted, or `null` for every kind of refusal —
 * including a return value that is not a usable identity, and one that expired already (`now`).
 * Throws what `authenticate` threw when it is an `AUTH_UNAVAILABLE` error: the check could not be
 * made, which is no refusal (a throw is also how `jwt.verify` refuses, so any other throw refuses).
 * A value that is neither an identity nor a refusal (`null`, `undefined`) — a number as `id`, an
 * `expiresAt` in seconds or as a `Date` — refuses too, and goes to `report` as `INVALID_IDENTITY`:
 * it refuses every user, and only the server's operator can tell why.
 */
export async function authenticateRequest(
  authenticate: Authenticate,
  request: http.IncomingMessage,
  credentials: JsonValue | undefined,
  now: () => number,
  report: (error: UnbrokenServerError) => void,
): Promise<Identity | null> {
  let identity: unknown;
  try {
    identity = await authenticate(request, credentials);
  } catch (error) {
    const unavailable = asUnavailable(error);
    if (unavailable === null) return null;
    throw unavailable;
  }
  // Any falsy value is a refusal: `return user && { id: user.id }`, a signature check's `false`.
  if (!identity) return null;
  let wrong: string | null;
  try {
    wrong = identityFault(identity, now);
  } catch {
    // A getter or proxy that throws: no usable identity.
    wrong = 'its fields cannot be read';
  }
  if (wrong === null) return identity as Identity;
  // An identity that expired already is the application's refusal (a stale token it let through), no fault.
  if (wrong !== 'expired') report(new UnbrokenServerError('INVALID_IDENTITY', `authenticate returned no identity (${wrong}): the client is refused`));
  return null;
}

/** What is wrong with `identity`, `'expired'`, or null when it is one. */
function identityFault(identity: unknown, now: () => number): string | null {
  if (typeof identity !== 'object') return `expects an object { id, expiresAt? }, got ${typeof identity}`;
  const { id, expiresAt } = identity as { id?: unknown; expiresAt?: unknown };
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_IDENTITY_ID) {
    return `expects id to be a string of 1–${MAX_IDENTITY_ID} characters, got ${typeof id === 'string' ? `${id.length} characters` : typeof id}`;
  }
  if (expiresAt === undefined) return null;
  if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt)) return `expects expiresAt to be ms since the epoch, got ${expiresAt instanceof Date ? 'a Date' : typeof expiresAt}`;
  const at = now();
  if (expiresAt > at) return null;
  // Far in the past: seconds (a JWT's `exp`) or a duration, not a time in ms; no stale token is that old.
  return expiresAt < at / 100 ? `expects expiresAt in ms since the epoch, got ${expiresAt}: seconds, or a duration?` : 'expired';
}

/** The id a session and a connection compare (§3.4): the identity's, or null without `authenticate`. */
export function identityId(identity: Identity | null): string | null {
  return identity === null ? null : identity.id;
}

/**
 * What `authenticate` threw as this copy's AUTH_UNAVAILABLE error, or null when it is anything else.
 * Also by name, for an error made by another copy of the package (two installed versions), whose
 * class is not this one: it becomes this one's, so that the `error` event always carries this class.
 * A thrown value that throws when read (a getter, a revoked proxy) is a refusal.
 */
function asUnavailable(error: unknown): UnbrokenServerError | null {
  try {
    if (!(error instanceof Error) || (error as { code?: unknown }).code !== 'AUTH_UNAVAILABLE') return null;
    if (error instanceof UnbrokenServerError) return error;
    return error.name === 'UnbrokenServerError' ? new UnbrokenServerError('AUTH_UNAVAILABLE', String(error.message), { cause: error }) : null;
  } catch {
    return null;
  }
}

/** The longest a run of errors of one code of `authenticate` goes without a report, in ms. */
export const AUTH_REPORT_EVERY = 10_000;

/**
 * Reports the errors of `authenticate` (AUTH_UNAVAILABLE, INVALID_IDENTITY): of each code, the first
 * at once, then at most one every {@link AUTH_REPORT_EVERY} ms, counting the ones held
 * back. During an outage every client retries, and anyone can send ticket requests: one report each
 * would flood the log.
 */
export class AuthReports {
  readonly #now: () => number;
  readonly #report: (error: UnbrokenServerError) => void;
  /** Per code: when it was last reported, and how many were held back since. */
  readonly #codes = new Map<string, { lastAt: number; held: number }>();

  constructor(now: () => number, report: (error: UnbrokenServerError) => void) {
    this.#now = now;
    this.#report = report;
  }

  add(error: UnbrokenServerError): void {
    const now = this.#now();
    let state = this.#codes.get(error.code);
    if (!state) this.#codes.set(error.code, (state = { lastAt: -Infinity, held: 0 }));
    if (now - state.lastAt < AUTH_REPORT_EVERY) {
      state.held++;
      return;
    }
    const held = state.held;
    state.lastAt = now;
    state.held = 0;
    this.#report(held === 0 ? error : new UnbrokenServerError(error.code, `${error.message} (and ${held} more since the last report)`, { cause: error }));
  }
}
