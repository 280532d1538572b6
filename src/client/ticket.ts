/**
 * The start of every connection attempt (PROTOCOL.md §3.4): the application's credentials, then
 * `POST P/ticket` for the single-use ticket the attempt's downstream request carries instead of
 * anything that names the session.
 */
import type { JsonValue } from '../protocol/index.js';
import { UnbrokenError } from './errors.js';
import type { AuthProvider } from './options.js';
import type { FetchLike } from './transport.js';
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

/**
 * Calls `auth`, then asks `url` (`P/ticket`) for a ticket for `session` (a new session when `null`).
 * Rejects with an {@link UnbrokenError}: `UNAUTHORIZED` when `auth` failed or the server refused,
 * the code of any other refusal (§9), `TRANSPORT_ERROR` when the request failed, `PROTOCOL_ERROR`
 * when the answer holds no ticket.
 */
export async function requestTicket(
  fetch: FetchLike,
  url: string,
  auth: AuthProvider | undefined,
  session: SessionName | null,
  signal: AbortSignal,
): Promise<string> {
  const credentials = await credentialsOf(auth);
  let response: Response;
  let text: string;
  const body = JSON.stringify({ ...session, credentials });
  try {
    response = await fetch(url, { method: 'POST', headers: UPSTREAM_HEADERS, body, cache: 'no-store', signal });
    text = await response.text();
  } catch (cause) {
    throw new UnbrokenError('TRANSPORT_ERROR', `the ticket request failed: ${String(cause)}`, cause);
  }
  if (response.status !== 200) throw answerError(response.status, text);
  let ticket: unknown;
  try {
    ticket = (JSON.parse(text) as { ticket?: unknown }).ticket;
  } catch {}
  if (typeof ticket !== 'string' || !TICKET.test(ticket)) {
    throw new UnbrokenError('PROTOCOL_ERROR', 'expects the ticket answer to hold a base64url ticket');
  }
  return ticket;
}
