/**
 * Reads a small JSON request body with every value bounded (docs/PROTOCOL.md §3.4, §12): its size, the
 * time it may take, and its nesting depth (checked without recursion before it is parsed).
 */
import type http from 'node:http';
import { nestsDeeperThan } from '../protocol/index.js';

/** How long a body may take to arrive once the request head is in. */
export const BODY_DEADLINE_MS = 10_000;

export type BodyResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: 'too-large' | 'malformed' | 'too-slow' | 'aborted'; readonly message: string };

/**
 * Reads the body of `request` as JSON: at most `maxBytes`, at most `maxDepth` levels of arrays and
 * objects. A body over the limit (declared or counted) is not read further: the caller answers it and
 * the connection closes.
 */
export function readJsonBody(request: http.IncomingMessage, maxBytes: number, maxDepth: number): Promise<BodyResult> {
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
      request.off('data', onData);
      if (!result.ok) request.pause();
      resolve(result);
    };
    const deadline = setTimeout(() => finish({ ok: false, reason: 'too-slow', message: `expects the body within ${BODY_DEADLINE_MS} ms` }), BODY_DEADLINE_MS);
    deadline.unref?.();
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        finish(tooLarge(size));
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('error', () => finish({ ok: false, reason: 'aborted', message: 'the request failed' }));
    request.on('aborted', () => finish({ ok: false, reason: 'aborted', message: 'the request was aborted' }));
    request.on('end', () => {
      const text = Buffer.concat(chunks, size).toString('utf8');
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
