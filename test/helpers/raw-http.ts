/**
 * Raw HTTP clients for the conformance suite: Node's `fetch` speaking the SSE, long-polling and
 * upstream endpoints of docs/PROTOCOL.md (§7.2–§7.4) by hand.
 *
 * The SSE reader parses the event stream itself, as the HTML standard describes (lines end with CR,
 * LF or CRLF; `data:` lines join with LF; a blank line dispatches), so tests can assert on the
 * `id:` and `retry:` fields and on comment lines that an EventSource would hide.
 */
import { decodeServerBatch, type ServerFrame } from '../../src/protocol/index.js';
import { DEFAULT_DEADLINE, FrameLog } from './raw-frames.js';
import { automaticTicket, keyFor, rememberKeys } from './raw-ticket.js';

export interface RawHttpQuery {
  /** The `v` parameter; `null` leaves it out. @default '1' */
  v?: string | null;
  /**
   * The session to resume: it goes in the ticket request with its key (§3.4), never in the URL.
   * Ignored when `ticket` is given.
   */
  sid?: string;
  /** The key presented with `sid`; by default the one its hello gave (or a fresh one). `null`: none. */
  key?: string | null;
  /** `credentials` of the ticket request. */
  credentials?: unknown;
  /** The `ticket` query parameter; `null` leaves it out. */
  ticket?: string | null;
  last?: string;
  query?: Readonly<Record<string, string>>;
}

/** The ticket a request carries: the one given, else (with `fetchOne`) a fresh one for `sid`. */
async function ticketOf(base: string, options: RawHttpQuery & { origin?: string }, fetchOne: boolean): Promise<string | null> {
  if (options.ticket !== undefined || !fetchOne) return options.ticket ?? null;
  return (
    (await automaticTicket(base, {
      ...(options.sid !== undefined ? { sid: options.sid } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(options.origin !== undefined ? { origin: options.origin } : {}),
      credentials: options.credentials,
    })) ?? null
  );
}

/** `http://host:port<path><endpoint>?…` from the server's HTTP base (`http://host:port<path>`). */
export function httpEndpoint(base: string, endpoint: string, options: RawHttpQuery = {}): string {
  const url = new URL(`${base.replace(/\/$/, '')}${endpoint}`);
  const v = options.v === undefined ? '1' : options.v;
  if (v !== null) url.searchParams.set('v', v);
  if (typeof options.ticket === 'string') url.searchParams.set('ticket', options.ticket);
  if (options.last !== undefined) url.searchParams.set('last', options.last);
  for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
  return url.toString();
}

/** An HTTP error body of §9. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** Parses `{"code": …, "message": …}`; returns a description of the problem instead when it is not one. */
export function parseErrorBody(text: string): ErrorBody | string {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const { code, message } = value as Record<string, unknown>;
      if (typeof code === 'string' && typeof message === 'string') return { code, message };
    }
    return `not an error body: ${text.slice(0, 200)}`;
  } catch {
    return `not JSON: ${text.slice(0, 200)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

/** One dispatched SSE event, with its fields as they came. */
export interface SseEvent {
  /** The `id:` field, or undefined when the event had no `id:` line. */
  id: string | undefined;
  event: string | undefined;
  /** The `retry:` field as written, when the event carried one. */
  retry: string | undefined;
  data: string;
  /** Comment lines (`: …`) seen since the previous event. */
  comments: string[];
}

export interface RawSseOptions extends RawHttpQuery {
  /** Do not read the response body until `startReading()`: a client that stops reading (§12). */
  paused?: boolean;
  origin?: string;
  lastEventId?: string;
  headers?: Readonly<Record<string, string>>;
  label?: string;
}

export class RawSse extends FrameLog {
  /** Every event dispatched, in order; `events[i]` carried the batch numbered `i`. */
  readonly events: SseEvent[] = [];
  /** Every comment line, in order. */
  readonly comments: string[] = [];
  /** The raw text of the stream so far. */
  raw = '';
  private endReason = 'the response ended';

  private constructor(
    readonly response: Response,
    private readonly controller: AbortController,
    label: string,
  ) {
    super(label);
  }

  /**
   * Opens `GET P/sse`. Resolves with the stream when the server answers `200`; otherwise with the
   * status and body (for the refusals of §3.1, §3.2).
   */
  static async open(
    base: string,
    options: RawSseOptions = {},
  ): Promise<{ ok: true; sse: RawSse } | { ok: false; status: number; headers: Headers; body: string }> {
    const controller = new AbortController();
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...options.headers };
    if (options.origin !== undefined) headers.Origin = options.origin;
    if (options.lastEventId !== undefined) headers['Last-Event-ID'] = options.lastEventId;
    const url = httpEndpoint(base, '/sse', { ...options, ticket: await ticketOf(base, options, true) });
    const response = await fetch(url, { headers, signal: controller.signal });
    if (response.status !== 200) {
      const body = await response.text();
      return { ok: false, status: response.status, headers: response.headers, body };
    }
    const sse = new RawSse(response, controller, options.label ?? `sse ${new URL(url).search}`);
    if (!options.paused) sse.startReading();
    return { ok: true, sse };
  }

  /** Opens the stream and fails with a clear message unless the server answered `200`. */
  static async connect(base: string, options: RawSseOptions = {}): Promise<RawSse> {
    const opened = await RawSse.open(base, options);
    if (!opened.ok) throw new Error(`GET /sse answered ${opened.status} instead of 200: ${opened.body}`);
    return opened.sse;
  }

  override describeEnd(): string {
    return this.endReason;
  }

  /** Starts reading the body (at once, unless opened with `paused`). */
  startReading(): void {
    if (this.reading) return;
    this.reading = true;
    void this.read();
  }

  private reading = false;

  private async read(): Promise<void> {
    const body = this.response.body;
    if (!body) {
      this.end();
      return;
    }
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let pending: SseEvent = emptyEvent();
    let sawData = false;
    const dispatch = (): void => {
      if (!sawData) {
        // An event without data is not dispatched, but its id and retry still count.
        pending = { ...emptyEvent(), comments: pending.comments };
        return;
      }
      const event = pending;
      pending = emptyEvent();
      sawData = false;
      this.events.push(event);
      let frames: ServerFrame[];
      try {
        frames = decodeServerBatch(event.data);
      } catch (error) {
        this.pushViolation(`SSE event data ${JSON.stringify(event.data.slice(0, 200))}: ${(error as Error).message}`);
        return;
      }
      this.pushBatch(frames);
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        this.raw += text;
        buffer += text;
        // Lines end with CRLF, CR or LF. A CR at the very end may be the first half of a CRLF.
        for (;;) {
          const match = /\r\n|\r|\n/.exec(buffer);
          if (!match) break;
          if (match[0] === '\r' && match.index === buffer.length - 1) break;
          const line = buffer.slice(0, match.index);
          buffer = buffer.slice(match.index + match[0].length);
          if (line === '') {
            dispatch();
          } else if (line.startsWith(':')) {
            pending.comments.push(line.slice(1));
            this.comments.push(line.slice(1));
            this.changed();
          } else {
            const colon = line.indexOf(':');
            const field = colon === -1 ? line : line.slice(0, colon);
            let value = colon === -1 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'data') {
              pending.data = sawData ? `${pending.data}\n${value}` : value;
              sawData = true;
            } else if (field === 'id') pending.id = value;
            else if (field === 'event') pending.event = value;
            else if (field === 'retry') pending.retry = value;
          }
        }
      }
    } catch (error) {
      this.endReason = `the response failed: ${(error as Error).message}`;
    }
    this.end();
  }

  /** The SSE event that carried a received frame. */
  eventOf(batch: number): SseEvent {
    const event = this.events[batch];
    if (!event) throw new Error(`no SSE event number ${batch}`);
    return event;
  }

  /** Waits until the server ends the response. */
  finished(deadline = DEFAULT_DEADLINE): Promise<true> {
    return this.waitFor('the server to end the response', () => (this.ended ? true : undefined), deadline, true);
  }

  /** Aborts the request: the client goes away. */
  close(): void {
    this.controller.abort();
  }
}

function emptyEvent(): SseEvent {
  return { id: undefined, event: undefined, retry: undefined, data: '', comments: [] };
}

// ---------------------------------------------------------------------------------------------
// Long polling and upstream POSTs

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The decoded batch when the body is one, else undefined. */
  frames: ServerFrame[] | undefined;
  /** Why the body is not a valid batch, when it is not. */
  problem: string | undefined;
}

async function answer(response: Response): Promise<HttpAnswer> {
  const text = await response.text();
  let frames: ServerFrame[] | undefined;
  let problem: string | undefined;
  try {
    frames = decodeServerBatch(text);
  } catch (error) {
    problem = (error as Error).message;
  }
  if (frames) rememberKeys(frames);
  return { status: response.status, headers: response.headers, text, frames, problem };
}

/** Returns the batch of a `200` answer, or fails with what came instead. */
export function framesOf(reply: HttpAnswer, what = 'the answer'): ServerFrame[] {
  if (reply.status !== 200) throw new Error(`${what}: expected 200 with a batch, got ${reply.status} ${reply.text.slice(0, 200)}`);
  if (!reply.frames) throw new Error(`${what}: the body is not a valid batch (${reply.problem}): ${reply.text.slice(0, 200)}`);
  return reply.frames;
}

export interface PollOptions extends RawHttpQuery {
  /**
   * The long-polling connection id `c`, sent in the `X-Unbroken-Connection` header (§3.4, §7.4). All
   * raw polls share one by default, so a poll continues the connection whenever its `last` does;
   * `null` leaves it out.
   * @default RAW_CONNECTION
   */
  c?: string | null;
  /** Get a ticket first (for `sid`, with its key): the poll opens a new connection (§3.4). */
  open?: boolean;
  origin?: string;
  headers?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

/** The connection id of raw polls unless a test picks another (a well-formed one, §3.4). */
export const RAW_CONNECTION = 'raw-long-polling-connection';

/** `GET P/poll`. */
export async function poll(base: string, options: PollOptions = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.origin !== undefined) headers.Origin = options.origin;
  const c = options.c === undefined ? RAW_CONNECTION : options.c;
  if (c !== null) headers['X-Unbroken-Connection'] = c;
  const ticket = await ticketOf(base, options, options.open === true);
  const response = await fetch(httpEndpoint(base, '/poll', { ...options, ticket }), {
    headers,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return answer(response);
}

export interface SendOptions {
  /** Stream the body in chunks, without a Content-Length header. */
  chunked?: boolean;
  v?: string | null;
  /** The session, named in `X-Unbroken-Session: <sid>.<key>` (§3.4) with the key its hello gave. */
  sid?: string;
  /** The key to present with `sid` instead. */
  key?: string;
  origin?: string;
  /** Headers to send; replaces the conforming defaults (`Content-Type: application/json`, `X-Unbroken: 1`). */
  headers?: Readonly<Record<string, string>>;
  /** Called when the answer's status and headers arrived, before its body is read. */
  onHeaders?: () => void;
}

/** The headers a conforming upstream request carries (§7.3). */
export const UPSTREAM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'application/json',
  'X-Unbroken': '1',
};

/** `POST P/send` with `body` (a batch, or any text for malformed bodies). */
export async function postSend(base: string, body: readonly object[] | string | Uint8Array, options: SendOptions = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...(options.headers ?? UPSTREAM_HEADERS) };
  if (options.origin !== undefined) headers.Origin = options.origin;
  if (options.sid !== undefined) headers['X-Unbroken-Session'] = `${options.sid}.${options.key ?? keyFor(options.sid)}`;
  const url = httpEndpoint(base, '/send', { v: options.v });
  const payload = typeof body === 'string' ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body);
  const response = await fetch(url, options.chunked ? chunkedInit(headers, payload) : { method: 'POST', headers, body: payload });
  options.onHeaders?.();
  return answer(response);
}

/** A POST whose body goes in 512-byte chunks (chunked transfer encoding). */
function chunkedInit(headers: Record<string, string>, payload: string | Uint8Array): RequestInit & { duplex: 'half' } {
  const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 512) controller.enqueue(bytes.slice(i, i + 512));
      controller.close();
    },
  });
  // Node's fetch streams a ReadableStream body with chunked transfer encoding; it needs `duplex`.
  return { method: 'POST', headers, body: stream, duplex: 'half' };
}
