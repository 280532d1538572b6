/**
 * One Server-Sent Event of the reference server (PROTOCOL.md §7.2), from a batch given as text or
 * as its UTF-8 bytes (`Connection.writeTextBytes`): both must give the same event, byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { formatEvent } from '../../src/server/transports/sse.js';

const wire = (pieces: readonly (string | Uint8Array)[]): string => Buffer.concat(pieces.map((piece) => Buffer.from(piece))).toString('utf8');
const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

describe('formatEvent', () => {
  it('writes retry and id before the data line, and gives the same event for text and bytes', () => {
    const batch = '[{"t":"msg","id":"e-1","d":"déjà 🎉 \u2028"}]';
    const expected = `retry: 1500\nid: e-1\ndata: ${batch}\n\n`;
    expect(wire(formatEvent(batch, 'e-1', 1500))).toBe(expected);
    expect(wire(formatEvent(bytesOf(batch), 'e-1', 1500))).toBe(expected);
    expect(wire(formatEvent(bytesOf(batch), undefined, undefined))).toBe(`data: ${batch}\n\n`);
  });

  it('passes the bytes on as they are, without decoding them, when they hold no line break', () => {
    const bytes = bytesOf('["x"]');
    expect(formatEvent(bytes, 'e-2', undefined)).toContain(bytes);
  });

  it('splits a batch holding CR, LF or CRLF into data lines, from text and from bytes alike', () => {
    const batch = 'one\ntwo\r\nthree\rfour';
    const expected = 'id: e-3\ndata: one\ndata: two\ndata: three\ndata: four\n\n';
    expect(wire(formatEvent(batch, 'e-3', undefined))).toBe(expected);
    expect(wire(formatEvent(bytesOf(batch), 'e-3', undefined))).toBe(expected);
  });
});
