/**
 * Reads a small JSON request body with every value bounded (docs/PROTOCOL.md §3.4, §12): its size, the
 * time it may take, and its nesting depth (checked without recursion before it is parsed).
 */
import { isUtf8 } from 'node:buffer';
import type http from 'node:http';
import { ProtocolViolation, nestsDeeperThan, type ErrorCode } from '../protocol/index.js';
import { answerError } from './http.js';
import type { Limits } from './limits.js';

/**
 * The text of a request body or text frame; throws {@link ProtocolViolation} for bytes that are not
 * UTF-8, which are no JSON text (RFC 8259 §8.1) and would otherwise reach the application altered
 * (each bad byte made U+FFFD), acknowledged as if the client had sent that (§5).
 */
export function decodeUtf8(bytes: Buffer, what: string): string {
  if (!isUtf8(bytes)) throw new ProtocolViolation(`${what} expects UTF-8`);
  return bytes.toString('utf8');
}

export type BodyResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: 'too-large' | 'malformed' | 'too-slow' | 'busy' | 'aborted'; readonly message: string };

/**
 * The bytes of one body being read, counted against its address's and the server's bound of bodies
 * read at once (§12.1.bodies) as they arrive, and given back once, when the body is done with.
 */
export class BodyBytes {
  #taken = 0;
  readonly #limits: Limits;
  /** The address the request counts against (§12.1: behind a proxy, what `clientAddress` reads). */
  readonly #address: string;

  constructor(limits: Limits, request: http.IncomingMessage) {
    this.#limits = limits;
    this.#address = limits.settings.clientAddress(request);
  }

  /** Counts `bytes` more; false, counting nothing, past a bound. */
  take(bytes: number): boolean {
    if (!this.#limits.takeBody(this.#address, bytes)) return false;
    this.#taken += bytes;
    return true;
  }

  release(): void {
    this.#limits.releaseBody(this.#address, this.#taken);
    this.#taken = 0;
  }
}

/** The refusal of a body past the bound of bodies read at once (§12.1.bodies). */
export const BODIES_BUSY = 'this address sends more request bodies at once than the server reads; retry later';

/**
 * Reads the body of `request` as JSON: at most `maxBytes`, at most `maxDepth` levels of arrays and
 * objects, all of it within `timeoutMs` (the server's `bodyTimeout`, §12.1.body-timeout). A body over
 * the limit (declared or counted), or late, is not read further: the caller answers it and the
 * connection closes.
 */
export function readJsonBody(request: http.IncomingMessage, maxBytes: number, maxDepth: number, timeoutMs: number, counted?: BodyBytes): Promise<BodyResult> {
  return new Promise((resolve) => {
    const tooLarge = (size: number): BodyResult => ({ ok: false, reason: 'too-large', message: `expects a body of at most ${maxBytes} bytes, got ${size}` });
    const declared = Number(request.headers['content-length']);
    if (declared > maxBytes) {
      resolve(tooLarge(declared));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      counted?.release();
      request.off('data', onData);
      if (!result.ok) request.pause();
      resolve(result);
    };
    const deadline = setTimeout(() => finish({ ok: false, reason: 'too-slow', message: `expects the body within ${timeoutMs} ms` }), timeoutMs);
    deadline.unref?.();
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        finish(tooLarge(size));
        return;
      }
      if (counted && !counted.take(chunk.length)) {
        chunks.length = 0;
        finish({ ok: false, reason: 'busy', message: BODIES_BUSY });
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('error', () => finish({ ok: false, reason: 'aborted', message: 'the request failed' }));
    request.on('aborted', () => finish({ ok: false, reason: 'aborted', message: 'the request was aborted' }));
    request.on('end', () => {
      const bytes = Buffer.concat(chunks, size);
      if (!isUtf8(bytes)) {
        finish({ ok: false, reason: 'malformed', message: 'expects a JSON body in UTF-8' });
        return;
      }
      const text = bytes.toString('utf8');
      if (nestsDeeperThan(text, maxDepth)) {
        finish({ ok: false, reason: 'malformed', message: `expects JSON nested at most ${maxDepth} levels deep` });
        return;
      }
      try {
        finish({ ok: true, value: JSON.parse(text) });
      } catch {
        finish({ ok: false, reason: 'malformed', message: 'expects a JSON body' });
      }
    });
  });
}

/** Destroys the request's socket once the answer went out: destroying it sooner drops what it has not written yet. */
function destroyAfterAnswer(request: http.IncomingMessage, response: http.ServerResponse): void {
  if (response.writableFinished) request.socket.destroy();
  else response.once('finish', () => request.socket.destroy());
}

/**
 * Answers with `code` and stops reading the request: `Connection: close`, and the socket is destroyed
 * once the answer went out, so a body the server refused is never read to its end (§12.1.no-read).
 */
export function answerAndStopReading(request: http.IncomingMessage, response: http.ServerResponse, code: ErrorCode, message: string): void {
  answerError(request, response, code, message, undefined, { Connection: 'close' });
  destroyAfterAnswer(request, response);
}

/**
 * Answers a body {@link readJsonBody} refused. The rest of a body too large or too late is not read
 * (§12.1.no-read). A malformed body was read whole, and the connection may serve the next request.
 */
export function refuseBody(request: http.IncomingMessage, response: http.ServerResponse, refused: BodyResult & { readonly ok: false }): void {
  switch (refused.reason) {
    case 'too-large':
      return answerAndStopReading(request, response, 'MESSAGE_TOO_LARGE', refused.message);
    case 'too-slow':
      return answerAndStopReading(request, response, 'REQUEST_TIMEOUT', refused.message);
    case 'busy':
      return answerAndStopReading(request, response, 'RATE_LIMITED', refused.message);
    case 'malformed':
      return answerError(request, response, 'PROTOCOL_ERROR', refused.message);
    case 'aborted':
      response.destroy();
  }
}

/** How much of a body the server reads, and for how long: the server's options, or an endpoint's own size. */
export interface BodyBounds {
  readonly maxMessageSize: number;
  readonly bodyTimeout: number;
}

/**
 * Answers a refusal that came before the body was read, keeping the connection for the client's
 * next request: the body is read and dropped, but only up to `bounds.maxMessageSize` bytes and within
 * `bounds.bodyTimeout` ms — past either the connection is cut (§12.1.drain). Closing at once instead would leave unread bytes
 * in the socket, and the reset that sends can reach the client before the answer; leaving the body
 * to Node would read it to its end, however large.
 */
export function refuseBeforeBody(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  bounds: BodyBounds,
  code: ErrorCode,
  message: string,
): void {
  answerError(request, response, code, message);
  if (request.complete) return;
  let size = 0;
  const cut = (): void => {
    clearTimeout(timer);
    destroyAfterAnswer(request, response);
  };
  const timer = setTimeout(cut, bounds.bodyTimeout);
  timer.unref?.();
  request.on('error', () => undefined);
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > bounds.maxMessageSize) cut();
  });
  request.once('end', () => clearTimeout(timer));
  request.once('close', () => clearTimeout(timer));
}
