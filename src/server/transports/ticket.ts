/**
 * Tickets on the wire (docs/PROTOCOL.md §3.4): `POST P/ticket` issues one, every downstream request
 * presents one in its `ticket` query parameter, and `POST P/send` names its session with the
 * `X-Unbroken-Session: <sid>.<key>` header. No secret that resumes, reads, sends to or closes a
 * session ever travels in a URL.
 */
import type http from 'node:http';
import { MAX_DATA_DEPTH, QueryParam, SESSION_HEADER, type JsonValue } from '../../protocol/index.js';
import { BodyBytes, readJsonBody, refuseBeforeBody, refuseBody } from '../body.js';
import { UPSTREAM_HEADERS_MISSING, admitRequest, answerError, answerJson, hasUpstreamHeaders, queryValue } from '../http.js';
import { authenticateRequest, identityId, type Identity } from '../identity.js';
import { ServerSession } from '../session.js';
import { SECRET_PATTERN, TICKET_PATTERN, randomToken, sameSecret, type TicketGrant } from '../tickets.js';
import type { PreparedSession } from '../cluster.js';
import { UnbrokenServerError } from '../errors.js';
import type { TransportContext } from './context.js';

/** The body of `POST P/ticket`: an object, one level, plus the depth of `credentials`. */
const TICKET_BODY_DEPTH = 1 + MAX_DATA_DEPTH;

/** A field of the ticket body when it is a well-formed id or key (§3.4), else null: "absent". */
function secretField(body: Record<string, unknown>, name: string): string | null {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  return typeof value === 'string' && SECRET_PATTERN.test(value) ? value : null;
}

/**
 * The ticket body's `max`, the largest batch the client reads (§3.4, §4.1.size), when it is a whole
 * number of bytes ≥ 1; anything else counts as absent, and the server's own bound applies.
 */
function maxField(body: Record<string, unknown>): { max: number } | undefined {
  const value = Object.hasOwn(body, 'max') ? body.max : undefined;
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 ? { max: value } : undefined;
}

/** The address tickets are counted against. */
function addressOf(context: TransportContext, request: http.IncomingMessage): string {
  // The same address the limits of §12.1 count (behind a proxy, what `clientAddress` reads).
  return context.limits.settings.clientAddress(request);
}

/** Serves `POST P/ticket` (§3.4). */
export async function handleTicket(context: TransportContext, request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
  const { hub, tickets, authenticate, now } = context;
  const admission = admitRequest(context, request, url, 'upstream');
  if (!admission.ok) {
    refuseBeforeBody(request, response, context, admission.code, admission.message);
    return;
  }
  if (!hasUpstreamHeaders(request)) {
    refuseBeforeBody(request, response, context, 'FORBIDDEN', UPSTREAM_HEADERS_MISSING);
    return;
  }
  const read = await readJsonBody(request, context.maxMessageSize, TICKET_BODY_DEPTH, context.bodyTimeout, new BodyBytes(context.limits, request));
  if (!read.ok) {
    refuseBody(request, response, read);
    return;
  }
  const body = read.value;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    answerError(request, response, 'PROTOCOL_ERROR', 'expects a JSON object body');
    return;
  }
  const fields = body as Record<string, unknown>;
  const credentials = Object.hasOwn(fields, 'credentials') ? (fields.credentials as JsonValue) : undefined;
  let user: Identity | null = null;
  if (authenticate !== null) {
    try {
      user = await authenticateRequest(authenticate, request, credentials, now, (error) => context.hub.authReports.add(error));
    } catch (error) {
      // AUTH_UNAVAILABLE: no refusal, the client tries again with its backoff.
      context.hub.authReports.add(error as UnbrokenServerError);
      answerError(request, response, 'INTERNAL_ERROR', 'the server could not check the credentials now; retry later');
      return;
    }
    if (user === null) {
      answerError(request, response, 'UNAUTHORIZED', 'the credentials were refused');
      return;
    }
  }
  // Malformed ids and keys count as absent: a new session (§3.4).
  const sid = secretField(fields, 'sid');
  const key = sid === null ? null : secretField(fields, 'key');
  let held: { readonly key: string; readonly user: Identity | null } | null | undefined;
  try {
    // With a store shared by several processes, the session may live in another one (cluster.ts).
    held = sid === null ? undefined : (hub.sessions.get(sid) ?? (await hub.cluster?.state.getSession(sid)));
  } catch (error) {
    storeFailed(context, error);
    answerError(request, response, 'INTERNAL_ERROR', 'the server could not reach its store; retry later');
    return;
  }
  const existed = held !== undefined && held !== null;
  // A session another ticket named and nobody created yet is guarded as a held one (§3.4.one-session).
  const reserved = sid === null || held ? undefined : tickets.reservation(sid);
  held ??= reserved;
  if (held && (key === null || !sameSecret(key, held.key) || identityId(user) !== identityId(held.user))) {
    // The session is not touched: no supersede, no expiry change, nothing said about it.
    answerError(request, response, 'UNAUTHORIZED', 'this session needs its key and the same user');
    return;
  }
  if (!hub.accepting) {
    answerError(request, response, 'SERVER_RESTART', 'the server is shutting down');
    return;
  }
  // A new session is named now, so that every ticket of the attempts racing to open it names the
  // same one (§3.4.name-session); it is created by the first connection that uses one of them.
  const issue = tickets.next();
  const max = maxField(fields);
  const grant: TicketGrant =
    sid === null
      ? { sid: randomToken(), key: randomToken(), user, fresh: true, issue, ...max }
      : { sid, key, user, ...(reserved ? { fresh: true } : {}), ...(existed ? { held: true } : {}), issue, ...max };
  const issued = tickets.issue(grant, addressOf(context, request));
  if (issued === null) {
    answerError(request, response, 'RATE_LIMITED', 'too many tickets outstanding; retry later');
    return;
  }
  const { ticket, evicted } = issued;
  if (hub.cluster) {
    // A ticket dropped for this one's room admits nothing at any process.
    if (evicted !== null) {
      hub.cluster.state.takeTicket(evicted).catch((error: unknown) => storeFailed(context, error));
    }
    // Any process may serve the downstream request: the ticket goes to the shared store too.
    try {
      await hub.cluster.state.putTicket(ticket, grant, tickets.ttl);
    } catch (error) {
      // Not issued after all: it takes no place in the table.
      tickets.redeem(ticket);
      storeFailed(context, error);
      answerError(request, response, 'INTERNAL_ERROR', 'the server could not reach its store; retry later');
      return;
    }
  }
  answerJson(request, response, JSON.stringify({ ticket, ttl: tickets.ttl, sid: grant.sid, key: grant.key }));
}

function storeFailed(context: TransportContext, cause: unknown): void {
  context.hub.fail(new UnbrokenServerError('STORE_ERROR', 'a request could not be served: the store failed', { cause }));
}

/** What a downstream request was admitted for (§3.4), and with a shared store the session it opens. */
export interface Admitted {
  readonly grant: TicketGrant;
  readonly prepared?: PreparedSession;
}

/**
 * Admits a downstream request by its ticket (§3.4) and calls `open`, or `refuse` with the code to
 * answer: UNAUTHORIZED without a valid ticket (missing, unknown, used or expired). In one process
 * this happens at once; with a store shared by several processes the ticket is taken from the store
 * and the session found or created there first (cluster.ts), so `open` runs later — unless `gone()`
 * says the request went away meanwhile.
 */
export function admitByTicket(
  context: TransportContext,
  url: URL,
  address: string,
  open: (admitted: Admitted) => void,
  refuse: (code: 'UNAUTHORIZED' | 'INTERNAL_ERROR', message: string) => void,
  gone: () => boolean,
): void {
  const ticket = queryValue(url, QueryParam.ticket);
  const local = context.tickets.redeem(ticket);
  const cluster = context.hub.cluster;
  if (cluster === null) {
    if (local === null) refuse(NO_TICKET.code, NO_TICKET.message);
    else open({ grant: local });
    return;
  }
  void (async () => {
    let admitted: Admitted | null = null;
    const logouts = context.tickets.logoutMark();
    try {
      const grant = ticket !== null && TICKET_PATTERN.test(ticket) ? await cluster.state.takeTicket(ticket) : null;
      if (grant !== null && !gone()) admitted = { grant, prepared: await cluster.prepare(grant, address) };
      else if (grant === null) {
        refuse(NO_TICKET.code, NO_TICKET.message);
        return;
      }
    } catch (error) {
      storeFailed(context, error);
      if (!gone()) refuse('INTERNAL_ERROR', 'the server could not reach its store; retry later');
      return;
    }
    if (admitted === null || gone()) return;
    // §3.5.disconnect: a logout while the ticket was taken and its session found or made; asked, as
    // `disconnect()` asks about a ticket, of a stand-in.
    const { grant } = admitted;
    if (!context.tickets.loggedOutSince(logouts, ServerSession.standIn(context.hub, grant, address))) {
      open(admitted);
      return;
    }
    refuse('UNAUTHORIZED', 'the application disconnected this session');
    // A session made for this admission alone goes with it, rather than wait for its ttl in the store.
    if (admitted.prepared?.created) cluster.state.deleteSession(grant.sid ?? admitted.prepared.session.id).catch((error: unknown) => storeFailed(context, error));
  })();
}

/** The refusal of a downstream request without a valid ticket (§3.4). */
export const NO_TICKET = { code: 'UNAUTHORIZED', message: 'expects a valid ticket: POST P/ticket first' } as const;

/**
 * The session `POST P/send` names in `X-Unbroken-Session: <sid>.<key>` (§3.4, §7.3), or null when the
 * header is missing, malformed, or its key is not the session's: all the same to the client, so a
 * wrong key reveals nothing about the session.
 */
export function sessionOfHeader(context: TransportContext, request: http.IncomingMessage): ServerSession | null | Promise<ServerSession | null> {
  const header = request.headers[SESSION_HEADER.toLowerCase()];
  if (typeof header !== 'string' || header.length > 129) return null;
  const dot = header.indexOf('.');
  if (dot < 0) return null;
  const sid = header.slice(0, dot);
  const key = header.slice(dot + 1);
  if (!SECRET_PATTERN.test(sid) || !SECRET_PATTERN.test(key)) return null;
  const { hub, limits } = context;
  const verified = (session: ServerSession | null | undefined): ServerSession | null => (session && sameSecret(key, session.key) ? session : null);
  const local = hub.sessions.get(sid);
  // With a shared store the session may live in another process: learn it from the store.
  if (local || hub.cluster === null) return verified(local);
  return hub.cluster.find(sid, limits.settings.clientAddress(request), key).then(verified);
}
