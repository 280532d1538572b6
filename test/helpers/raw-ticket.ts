/**
 * Tickets for the raw clients of the conformance suite (docs/PROTOCOL.md §3.4): `POST P/ticket` by
 * hand, and the keys of the sessions the raw clients saw, so that a test that resumes a session by its
 * id (`{ sid: hello.sid }`) presents its key the way a real client does — in the ticket body and the
 * `X-Unbroken-Session` header, never in a URL.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { ServerFrame } from '../../src/protocol/index.js';

/** Session keys by session id, as the last `hello` with that id gave them. */
const keys = new Map<string, string>();

/** Records the key of every `hello` among `frames`. */
export function rememberKeys(frames: readonly ServerFrame[]): void {
  for (const frame of frames) if (frame.t === 'hello' && typeof frame.key === 'string') keys.set(frame.sid, frame.key);
}

/** The key a raw client presents with `sid`: the one its hello gave, else a fresh one (a session to create). */
export function keyFor(sid: string): string {
  let key = keys.get(sid);
  if (key === undefined) keys.set(sid, (key = randomToken()));
  return key;
}

/** 128 random bits, base64url: a key or connection id as a conforming client makes one. */
export function randomToken(): string {
  return randomBytes(16).toString('base64url');
}

/** The HTTP base (`http://host:port<path>`) of a server's WebSocket base (`ws://host:port<path>`). */
export function httpBaseOf(base: string): string {
  return base.replace(/^ws(s?):/, 'http$1:').replace(/\/ws$/, '');
}

export interface TicketRequest {
  /** The session to resume (or create with this id); its key comes from {@link keyFor} unless `key` is given. */
  sid?: string;
  /** The key to present; `null` leaves it out even with a `sid`. */
  key?: string | null;
  /** The `credentials` field; left out when undefined. */
  credentials?: unknown;
  /** The `max` field: the largest batch the client reads (§4.1.size); left out when undefined. */
  max?: unknown;
  origin?: string;
  /**
   * The local address to send from (`127.0.0.x`): tickets are counted per client address (§3.4), so a
   * test that connects from an address gets its ticket from the same one.
   */
  localAddress?: string;
  /** The `v` query parameter; `null` leaves it out. @default '1' */
  v?: string | null;
  /** Headers instead of the conforming ones (`Content-Type: application/json`, `X-Unbroken: 1`). */
  headers?: Readonly<Record<string, string>>;
  /** A body sent as given instead of the one built from the fields above. */
  body?: string | Uint8Array;
}

export interface TicketAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The ticket of a `200` answer. */
  ticket: string | undefined;
  ttl: number | undefined;
}

/** `POST P/ticket` (§3.4). */
export async function requestTicket(httpBase: string, request: TicketRequest = {}): Promise<TicketAnswer> {
  const url = new URL(`${httpBase.replace(/\/$/, '')}/ticket`);
  const v = request.v === undefined ? '1' : request.v;
  if (v !== null) url.searchParams.set('v', v);
  const headers: Record<string, string> = { ...(request.headers ?? { 'Content-Type': 'application/json', 'X-Unbroken': '1' }) };
  if (request.origin !== undefined) headers.Origin = request.origin;
  const fields: Record<string, unknown> = {};
  if (request.sid !== undefined) {
    fields.sid = request.sid;
    const key = request.key === undefined ? keyFor(request.sid) : request.key;
    if (key !== null) fields.key = key;
  } else if (typeof request.key === 'string') fields.key = request.key;
  if (request.credentials !== undefined) fields.credentials = request.credentials;
  if (request.max !== undefined) fields.max = request.max;
  const { status, headers: answerHeaders, text } = await post(url, headers, request.body ?? JSON.stringify(fields), request.localAddress);
  let ticket: string | undefined;
  let ttl: number | undefined;
  if (status === 200) {
    const parsed = JSON.parse(text) as { ticket?: unknown; ttl?: unknown };
    if (typeof parsed.ticket === 'string') ticket = parsed.ticket;
    if (typeof parsed.ttl === 'number') ttl = parsed.ttl;
  }
  return { status, headers: answerHeaders, text, ticket, ttl };
}

/**
 * One POST on its own connection: a pooled keep-alive socket could belong to a server that a test
 * stopped and started again on the same port.
 */
function post(url: URL, headers: Record<string, string>, body: string | Uint8Array, localAddress?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const options: http.RequestOptions = { method: 'POST', headers, agent: false, ...(localAddress !== undefined ? { localAddress } : {}) };
    const request = http.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** A ticket, or a failure saying what the server answered instead. */
export async function ticketFor(httpBase: string, request: TicketRequest = {}): Promise<string> {
  const answer = await requestTicket(httpBase, request);
  if (answer.ticket === undefined) throw new Error(`POST /ticket answered ${answer.status} instead of a ticket: ${answer.text}`);
  return answer.ticket;
}

/**
 * The ticket a raw client's downstream request carries when its test did not choose one: a fresh one
 * for `sid`, or none when the server refused it — the request then shows the server's own refusal
 * of the downstream request (a refused Origin, a missing ticket).
 */
export async function automaticTicket(httpBase: string, request: TicketRequest): Promise<string | undefined> {
  return (await requestTicket(httpBase, { ...request, v: '1' })).ticket;
}
