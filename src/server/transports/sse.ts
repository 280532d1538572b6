/**
 * Server-Sent Events transport (docs/PROTOCOL.md §7.2): `GET P/sse` answers one `text/event-stream`
 * response; each event carries one batch. Upstream goes through `POST P/send` (send.ts).
 */
import type http from 'node:http';
import { QueryParam, encodeBatch, type ErrorCode, type ErrorFrame } from '../../protocol/index.js';
import { admitRequest, corsHeaders, endStream, queryValue } from '../http.js';
import type { CloseReason, Connection, ConnectionHandle, TextBatch, TextBytes } from '../connection.js';
import type { TransportContext } from './context.js';
import { admitByTicket } from './ticket.js';

const LINE_BREAK = /\r\n|\r|\n/;
const CR = 0x0d;
const LF = 0x0a;

/**
 * One event, from a batch as text or as its UTF-8 bytes: `retry:` on the first, `id:` when it
 * carries messages, the batch on `data:` lines. In pieces, written one after the other: a batch is
 * up to 256 KiB, and a string concatenated around it would be copied whole before the response could
 * count its bytes.
 */
export function formatEvent(batch: string, id: string | undefined, retry: number | undefined): string[];
export function formatEvent(batch: string | Uint8Array, id: string | undefined, retry: number | undefined): (string | Uint8Array)[];
export function formatEvent(batch: string | Uint8Array, id: string | undefined, retry: number | undefined): (string | Uint8Array)[] {
  const head = (retry === undefined ? '' : `retry: ${retry}\n`) + (id === undefined ? '' : `id: ${id}\n`);
  // JSON text holds no raw CR or LF, but the event format requires splitting on them should it ever.
  let lines: string | undefined;
  if (typeof batch === 'string') {
    if (LINE_BREAK.test(batch)) lines = batch;
  } else if (batch.includes(LF) || batch.includes(CR)) {
    lines = Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength).toString('utf8');
  }
  if (lines !== undefined) return [`${head}${lines.split(LINE_BREAK).map((line) => `data: ${line}\n`).join('')}\n`];
  return [`${head}data: `, batch, '\n\n'];
}

class SseConnection implements Connection {
  readonly transport = 'sse';
  readonly #response: http.ServerResponse;
  /** `hello.retry` for the first event's `retry:` field; cleared once written. */
  #retry: number | undefined;
  #handle: ConnectionHandle | null = null;
  #awaitingDrain = false;

  constructor(response: http.ServerResponse, retry: number) {
    this.#response = response;
    this.#retry = retry;
  }

  bind(handle: ConnectionHandle): void {
    this.#handle = handle;
    // §11: an SSE response is dead when a write fails; either way the response closes.
    this.#response.once('close', () => handle.closed());
  }

  writable(): boolean {
    return !this.#response.writableEnded && !this.#response.destroyed;
  }

  write(batch: TextBatch): void {
    this.#send(formatEvent(batch.text, batch.lastMessageId, this.#retry));
    this.#retry = undefined;
  }

  writeTextBytes(batch: TextBytes): void {
    this.#send(formatEvent(batch.bytes, batch.lastMessageId, this.#retry));
    this.#retry = undefined;
  }

  bufferedBytes(): number {
    return this.#response.writableLength;
  }

  close(reason: CloseReason): void {
    if (!this.writable()) return;
    if (reason.kind === 'error') {
      const frame: ErrorFrame = { t: 'error', code: reason.code, message: reason.message };
      this.#send(formatEvent(encodeBatch([frame]), undefined, this.#retry));
    }
    endStream(this.#response);
  }

  #send(pieces: readonly (string | Uint8Array)[]): void {
    const response = this.#response;
    // Corked, so that the pieces of the event leave in one write to the socket.
    response.cork();
    let room = true;
    for (const piece of pieces) room = response.write(piece);
    response.uncork();
    if (room || this.#awaitingDrain) return;
    this.#awaitingDrain = true;
    this.#response.once('drain', () => {
      this.#awaitingDrain = false;
      this.#handle?.resume();
    });
  }
}

/** The response head of every `GET P/sse` answer, refusals included (§7.2). */
function streamHeaders(request: http.IncomingMessage): http.OutgoingHttpHeaders {
  return {
    ...corsHeaders(request),
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
    Connection: 'keep-alive',
  };
}

/**
 * §7.2: a refusal is a stream of one event carrying the `error` frame, then the end of the response.
 * An EventSource cannot read an HTTP status, so a 403 or 426 would look like a network failure and
 * cost the client a fallback request. The event is readable cross-origin (CORS granted even to a
 * refused origin): it says only why the request was refused, and no session was created or touched.
 */
function refuse(request: http.IncomingMessage, response: http.ServerResponse, code: ErrorCode, message: string): void {
  const frame: ErrorFrame = { t: 'error', code, message };
  response.writeHead(200, streamHeaders(request));
  response.end(formatEvent(encodeBatch([frame]), undefined, undefined).join(''));
}

/** Serves `GET P/sse`. */
export function handleSse(context: TransportContext, request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
  const { hub, retry } = context;
  const admission = admitRequest(context, request, url, 'connection');
  if (!admission.ok) {
    refuse(request, response, admission.code, admission.message);
    return;
  }
  // §7.2: the browser's own Last-Event-ID header is the newer cursor. Polyfills that cannot set the
  // header send it as the `lastEventId` query parameter instead.
  const header = request.headers['last-event-id'];
  const last =
    (typeof header === 'string' && header !== '' ? header : null) ??
    queryValue(url, 'lastEventId') ??
    queryValue(url, QueryParam.lastEventId);
  // §3.4: admitted by a single-use ticket, so a URL replayed from a log opens nothing.
  admitByTicket(
    context,
    url,
    admission.address,
    ({ grant, prepared }) => {
      response.writeHead(200, streamHeaders(request));
      response.flushHeaders();
      request.socket.setNoDelay(true);
      const connection = new SseConnection(response, retry);
      const handle = hub.connect(connection, { version: admission.version, ...grant, last, request, address: admission.address }, prepared);
      connection.bind(handle);
    },
    (code, message) => refuse(request, response, code, message),
    () => response.destroyed,
  );
}
