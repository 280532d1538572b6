/**
 * The start of every connection attempt (PROTOCOL.md §3.4): the application's credentials, then
 * `POST P/ticket` for the single-use ticket the attempt's downstream request carries instead of
 * anything that names the session.
 */
import type { JsonValue } from '../protocol/index.js';
import { UnbrokenError } from './errors.js';
import type { AuthProvider } from './options.js';
import { readObject, type FetchLike } from './transport.js';
import { UPSTREAM_HEADERS, answerError } from './transports/http-link.js';

/** What the client knows of its session: from its last `hello`, none before the first. */
export interface SessionName {
  readonly sid: string;
  readonly key: string;
}

/** A ticket as the server issues it: base64url, at least 128 bits; anything else is refused before it reaches a URL. */
const TICKET = /^[\w-]{16,512}$/;

/**
 * The credentials `auth` gives now (`undefined` without `auth`); a throw or rejection, or a value
 * that is no JSON, becomes `UNAUTHORIZED` caused by it (§3.5).
 */
export async function credentialsOf(auth: AuthProvider | undefined): Promise<JsonValue | undefined> {
  try {
    const credentials = await auth?.();
    JSON.stringify(credentials);
    return credentials;
  } catch (cause) {
    throw new UnbrokenError('UNAUTHORIZED', `auth failed: ${String(cause)}`, cause);
  }
}

/** Session ids and keys as §3.4 defines well-formed ones. */
const NAME = /^[\w-]{16,64}$/;

/** A ticket answer (§3.4). */
export interface Ticket {
  /** The single-use ticket for the attempt's downstream request. */
  readonly ticket: string;
  /**
   * The session the ticket admits to, as the answer names it (§3.4.name-session): for a new session,
   * the id and key it will have. `null` from a server that names none.
   */
  readonly session: SessionName | null;
  /** Ms from sending the request to its answer: a measured round trip. */
  readonly roundTrip: number;
}

/**
 * Calls `auth`, then asks `url` (`P/ticket`) for a ticket for `session` (a new session when `null`)
 * with its credentials. Rejects with an {@link UnbrokenError}: `UNAUTHORIZED` when `auth` failed
 * (after telling `authThrew`: that is no refusal by the server, §13.5) or the server refused, the code
 * of any other refusal (§9), `TRANSPORT_ERROR` when the request failed, `PROTOCOL_ERROR` when the
 * answer holds no ticket.
 */
export async function requestTicket(
  fetch: FetchLike,
  url: string,
  auth: AuthProvider | undefined,
  authThrew: () => unknown,
  session: SessionName | null,
  signal: AbortSignal,
  now: () => number,
  max: number,
): Promise<Ticket> {
  const credentials = await credentialsOf(auth).catch((error: unknown) => {
    authThrew();
    throw error;
  });
  const sentAt = now();
  let response: Response;
  let text: string;
  // `max`: the largest batch this client reads, which the server then never exceeds (§4.1.size).
  const body = JSON.stringify({ ...session, credentials, max });
  try {
    response = await fetch(url, { method: 'POST', headers: UPSTREAM_HEADERS, body, cache: 'no-store', signal });
    text = await response.text();
  } catch (cause) {
    // Node's fetch says only "fetch failed": what failed is its cause's code (ECONNREFUSED, ENOTFOUND;
    // an AggregateError of both addresses of a host says no more than its code).
    const reason = (cause as { cause?: { code?: unknown } } | null)?.cause;
    throw new UnbrokenError('TRANSPORT_ERROR', `the ticket request failed: ${String(cause)}${reason ? ` (${String(reason.code ?? reason)})` : ''}`, cause);
  }
  if (response.status !== 200) throw answerError(response.status, text);
  const answer = readObject(text);
  const { ticket, sid, key } = answer;
  if (typeof ticket !== 'string' || !TICKET.test(ticket)) {
    // A page of the application answers `200` to a URL that misses the endpoint: say so, quoting
    // the page, but never an object's fields, which may hold a session's key.
    const got = Object.keys(answer).length ? 'an object' : JSON.stringify(text.slice(0, 40));
    throw new UnbrokenError('PROTOCOL_ERROR', `expects the ticket answer to hold a base64url ticket, got ${got}: is the URL the endpoint?`);
  }
  const named = typeof sid === 'string' && typeof key === 'string' && NAME.test(sid) && NAME.test(key) ? { sid, key } : null;
  return { ticket, session: named, roundTrip: now() - sentAt };
}
