/**
 * What every endpoint checks before it touches a session (docs/PROTOCOL.md §3.1, §3.2), and how an
 * HTTP endpoint answers a refusal (§9: the status of the code table and a `{code, message}` body).
 */
import type http from 'node:http';
import type { SessionHub } from './hub.js';
import type { Limits } from './limits.js';
import type { TicketStore } from './tickets.js';
import {
  CONNECTION_HEADER,
  QueryParam,
  SESSION_HEADER,
  SUPPORTED_VERSIONS,
  UPSTREAM_HEADER,
  httpStatusFor,
  type ErrorCode,
  CARRIER_HEADER,
} from '../protocol/index.js';

/** Decides whether a request's `Origin` header is allowed beyond same-origin (`allowedOrigins`). */
export type OriginCheck = (origin: string) => boolean;

/** A request that passed the checks of §3.1 and §3.2, or why it did not. */
export type Admission =
  | { readonly ok: true; readonly version: number }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/**
 * §3.2: a request is same-origin when its `Origin` names the host (and port) its `Host` header names.
 * The scheme is not compared: behind a TLS-terminating proxy the server cannot know it.
 */
export function isSameOrigin(request: http.IncomingMessage, origin: string): boolean {
  const host = request.headers.host;
  if (host === undefined || host === '') return false;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return false; // "null" (an opaque origin) and anything else that is not a URL
  }
  return originHost !== '' && originHost === new URL(`http://${host}`).host;
}

/** §3.2: no `Origin` (not a browser), same-origin, or allowed by `allowedOrigins`. */
export function originAdmitted(request: http.IncomingMessage, allowed: OriginCheck): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return isSameOrigin(request, origin) || allowed(origin);
  } catch {
    return false; // a Host header that is not a host
  }
}

/**
 * Why an origin is refused (§3.2). Behind a proxy that rewrites `Host` (nginx's default) a page of the
 * site itself is refused, and the message says what to fix. It does not repeat the `Host`: the page
 * of any site reads it (§3.2.cors), and behind such a proxy it is an internal address.
 */
export function originRefusal(request: http.IncomingMessage): string {
  return `origin ${String(request.headers.origin)} is not allowed: not the origin of the request's Host nor on allowedOrigins (behind a proxy, pass Host on)`;
}

/** What `admitRequest` needs of the server. */
export interface AdmissionContext {
  readonly hub: SessionHub;
  readonly originAllowed: OriginCheck;
  readonly limits: Limits;
  /** The tickets that name the session a downstream request opens (§3.4). */
  readonly tickets: TicketStore;
}

/** What a request asks for: a downstream connection (which may create a session), or not. */
export type RequestKind = 'connection' | 'probe' | 'upstream';

/** A request admitted by {@link admitRequest}, with the client address it counts against. */
export type RequestAdmission =
  | { readonly ok: true; readonly version: number; readonly address: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** The highest version in `v` (comma-separated) that the server speaks, or `null` (§3.1). */
export function negotiateVersion(v: string | null): number | null {
  if (v === null) return null;
  let best: number | null = null;
  for (const part of v.split(',')) {
    const trimmed = part.trim();
    if (!/^\d{1,6}$/.test(trimmed)) continue;
    const version = Number(trimmed);
    if (SUPPORTED_VERSIONS.includes(version) && (best === null || version > best)) best = version;
  }
  return best;
}

/** A query parameter, with an empty value counting as absent. */
export function queryValue(url: URL, name: string): string | null {
  const value = url.searchParams.get(name);
  return value === null || value === '' ? null : value;
}

/** §3.2 first (before any session is created or touched), then §3.1. */
export function admit(request: http.IncomingMessage, url: URL, originAllowed: OriginCheck): Admission {
  if (!originAdmitted(request, originAllowed)) {
    return { ok: false, code: 'FORBIDDEN', message: originRefusal(request) };
  }
  const v = url.searchParams.get(QueryParam.version);
  const version = negotiateVersion(v);
  if (version === null) {
    return {
      ok: false,
      code: 'UNSUPPORTED_VERSION',
      message: `expects v to name one of ${SUPPORTED_VERSIONS.join(', ')}, got ${v === null ? 'none' : JSON.stringify(v)}`,
    };
  }
  return { ok: true, version };
}

/**
 * The one admission of every request under the server's path: Origin and version (§3.1, §3.2), then
 * shutdown (§10.2), then, for a request that opens a connection, the limits of §12.1 (a session is
 * created when its ticket names none the server holds). The caller answers a refusal in its transport's
 * way; nothing was created or counted for a refused request.
 */
export function admitRequest(context: AdmissionContext, request: http.IncomingMessage, url: URL, kind: RequestKind): RequestAdmission {
  const admission = admit(request, url, context.originAllowed);
  if (!admission.ok) return admission;
  if (!context.hub.accepting) return { ok: false, code: 'SERVER_RESTART', message: 'the server is shutting down' };
  const address = context.limits.settings.clientAddress(request);
  if (kind !== 'upstream') {
    // The session a request opens is the one its ticket names (§3.4): resuming one creates nothing,
    // and neither does a request without a valid ticket — it is refused UNAUTHORIZED, or it is the
    // poll that replays a lost answer on its session's open connection (§7.4). Neither may spend the
    // address's budget of new sessions.
    const grant = kind === 'probe' ? null : context.tickets.peek(queryValue(url, QueryParam.ticket));
    const refusal = context.limits.check(address, grant === null ? 'none' : context.hub.creation(grant.sid, grant.fresh, grant.held));
    if (refusal) return { ok: false, ...refusal };
  }
  return { ok: true, version: admission.version, address };
}

/** Why a request without the headers {@link hasUpstreamHeaders} checks is refused (`FORBIDDEN`). */
export const UPSTREAM_HEADERS_MISSING = 'expects Content-Type: application/json and X-Unbroken: 1';

/** §7.3: `Content-Type: application/json` (parameters allowed) and `X-Unbroken: 1`. */
export function hasUpstreamHeaders(request: http.IncomingMessage): boolean {
  const type = request.headers['content-type'];
  const mediaType = type?.split(';', 1)[0]?.trim().toLowerCase();
  return mediaType === 'application/json' && request.headers[UPSTREAM_HEADER.toLowerCase()] === '1';
}

/**
 * CORS headers for an allowed cross-origin request, so a page served from another origin can read
 * the stream and post upstream. Nothing for same-origin and non-browser requests.
 */
export function corsHeaders(request: http.IncomingMessage): Record<string, string> {
  const origin = request.headers.origin;
  return origin === undefined ? {} : { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
}

/**
 * CORS headers when the request's origin was admitted (§3.2), else none: an answer to a refused
 * origin is not readable by its page.
 */
export function corsHeadersIfAdmitted(request: http.IncomingMessage, allowed: OriginCheck): Record<string, string> {
  return originAdmitted(request, allowed) ? corsHeaders(request) : {};
}

/** Answers a CORS preflight of an allowed origin. */
export function answerPreflight(request: http.IncomingMessage, response: http.ServerResponse): void {
  response.writeHead(204, {
    ...corsHeaders(request),
    'Access-Control-Allow-Methods': 'GET, POST',
    // §3.4, §7.5: the connection id, the session key and the carrier id travel in headers, so a cross-origin page must be allowed to send them.
    'Access-Control-Allow-Headers': `Content-Type, ${UPSTREAM_HEADER}, ${CONNECTION_HEADER}, ${SESSION_HEADER}, ${CARRIER_HEADER}, Last-Event-ID`,
    'Access-Control-Max-Age': '600',
  });
  response.end();
}

/** How long a closing connection (a WebSocket's close handshake, a stream's last bytes) may take before it is cut. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * Ends a streamed response, and cuts its socket if what was written has not left within the grace:
 * a reader that stopped reading (cut with BACKPRESSURE, §12) would otherwise hold the socket and every
 * byte buffered for it until it goes away itself.
 */
export function endStream(response: http.ServerResponse, last?: string): void {
  response.end(last);
  if (response.writableFinished || response.destroyed) return;
  const cut = setTimeout(() => response.destroy(), CLOSE_GRACE_MS);
  cut.unref();
  response.once('close', () => clearTimeout(cut));
}

/** Answers with the status of `code` and the error body of §9. */
export function answerError(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  code: ErrorCode,
  message: string,
  status = httpStatusFor(code),
  headers: Record<string, string> = {},
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body = JSON.stringify({ code, message });
  response.writeHead(status, {
    // A refused origin is not granted CORS (every request from one is answered FORBIDDEN, §3.2).
    ...(code === 'FORBIDDEN' ? {} : corsHeaders(request)),
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  response.end(body);
}

/** Answers 200 with one batch, as text or as its UTF-8 bytes. */
export function answerBatch(request: http.IncomingMessage, response: http.ServerResponse, batch: string | Uint8Array): void {
  answerJson(request, response, batch);
}

/** Answers 200 with JSON, as text or as its UTF-8 bytes: a batch, or the ticket of `POST P/ticket` (§3.4). */
export function answerJson(request: http.IncomingMessage, response: http.ServerResponse, body: string | Uint8Array): void {
  response.writeHead(200, {
    ...corsHeaders(request),
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength),
  });
  response.end(body);
}

/**
 * Answers a plain GET on `P/ws`, one without `Upgrade: websocket` — what a proxy that strips the
 * header forwards (§7.1). It says what is missing in a short text body, so whoever reads a log or a
 * browser's network panel sees the proxy's fault rather than the application's 404.
 */
export function answerUpgradeRequired(request: http.IncomingMessage, response: http.ServerResponse): void {
  const body = 'expects a WebSocket upgrade (Upgrade: websocket); a proxy may have dropped the header\n';
  response.writeHead(426, {
    ...corsHeaders(request),
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  response.end(body);
}
