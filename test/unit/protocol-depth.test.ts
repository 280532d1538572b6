/**
 * The nesting-depth bound (docs/PROTOCOL.md §4.4): a hostile batch of deeply nested arrays is refused
 * by a scan, before it is parsed, by both sides; neither side sends data the other would refuse.
 */
import { describe, expect, it } from 'vitest';
import { Outbox } from '../../src/client/outbox.js';
import {
  MAX_BATCH_DEPTH,
  MAX_DATA_DEPTH,
  ProtocolViolation,
  decodeBinaryFrame,
  decodeClientBatch,
  decodeServerBatch,
  nestsDeeperThan,
} from '../../src/protocol/index.js';
import { createServer } from '../../src/server/index.js';

/** A value nested `levels` deep: `[[…[0]…]]`. */
const nested = (levels: number): string => '['.repeat(levels) + '0' + ']'.repeat(levels);

describe('nestsDeeperThan', () => {
  it.each([
    ['a scalar', '1', 0, false],
    ['one array at a limit of 1', '[1]', 1, false],
    ['two arrays at a limit of 1', '[[1]]', 1, true],
    ['objects and arrays mixed', '{"a":[{"b":[]}]}', 4, false],
    ['objects and arrays mixed, one too deep', '{"a":[{"b":[]}]}', 3, true],
    ['brackets inside strings', '["[[[[{{{{"]', 1, false],
    ['an escaped quote inside a string', '["\\"[[[["]', 1, false],
    ['an escaped backslash closing a string', '["\\\\",[[1]]]', 2, true],
    ['siblings that are each shallow', '[[1],[2],[3]]', 2, false],
    ['a quote after three backslashes, which stays inside the string', '["\\\\\\"[[[["]', 1, false],
    ['strings side by side, brackets between them counted', '["a",["b",["c"]]]', 2, true],
    ['an unterminated string (not JSON: the parse refuses it)', '["[[[[', 1, false],
    // Texts of more than 2 × max characters: fewer opening brackets than the limit answer at once,
    // more of them take the pass over the characters.
    ['a long text with as many opening brackets as the limit', `{"body":"${'x'.repeat(300)}"}`, 1, false],
    ['a long text with one opening bracket too many', `{"body":["${'x'.repeat(300)}"]}`, 1, true],
    ['more shallow siblings than the limit', `[${'[1],'.repeat(20)}[1]]`, 2, false],
    ['brackets in a long string, over the limit in count but not in depth', `["${'[{'.repeat(100)}"]`, 2, false],
    ['nesting too deep after a long string', `{"pad":"${'x'.repeat(300)}","d":${nested(5)}}`, 5, true],
    // The shortest texts that nest one level too deep: 2 × (max + 1) characters.
    ['two empty arrays at a limit of 1', '[[]]', 1, true],
    ['an empty object in an array at a limit of 1', '[{}]', 1, true],
    [`empty arrays ${MAX_DATA_DEPTH + 1} deep`, '['.repeat(MAX_DATA_DEPTH + 1) + ']'.repeat(MAX_DATA_DEPTH + 1), MAX_DATA_DEPTH, true],
  ])('tells %s', (_name, text, max, expected) => {
    expect(nestsDeeperThan(text, max)).toBe(expected);
  });

  it('scans a megabyte of nested arrays without recursion', () => {
    const text = nested(512 * 1024);
    expect(nestsDeeperThan(text, MAX_BATCH_DEPTH)).toBe(true);
  });
});

describe('§4.4 decoding', () => {
  const batch = (dataDepth: number): string => `[{"t":"msg","s":1,"d":${nested(dataDepth)}}]`;

  it(`§4.4.limit accepts data nested ${MAX_DATA_DEPTH} levels deep`, () => {
    // nested(n) holds n arrays around a scalar: n levels.
    expect(decodeClientBatch(batch(MAX_DATA_DEPTH))).toHaveLength(1);
  });

  it('§4.4.refuse refuses a client batch one level deeper, before parsing it', () => {
    expect(() => decodeClientBatch(batch(MAX_DATA_DEPTH + 1))).toThrow(ProtocolViolation);
  });

  it('refuses short unbalanced brackets, which no JSON parse accepts', () => {
    expect(() => decodeClientBatch('['.repeat(100))).toThrow(ProtocolViolation);
    expect(() => decodeServerBatch('{'.repeat(100))).toThrow(ProtocolViolation);
  });

  it('§4.4.refuse refuses a server batch nested too deep, and a hostile megabyte of it', () => {
    expect(() => decodeServerBatch(`[{"t":"msg","id":"a-1","d":${nested(MAX_DATA_DEPTH + 1)}}]`)).toThrow(ProtocolViolation);
    expect(() => decodeServerBatch(nested(512 * 1024))).toThrow(/nested at most/);
  });

  it('§4.4.refuse refuses a binary frame whose header is not flat', () => {
    const header = new TextEncoder().encode('{"t":"msg","s":1,"x":[1]}');
    const frame = new Uint8Array(4 + header.length);
    new DataView(frame.buffer).setUint32(0, header.length);
    frame.set(header, 4);
    expect(() => decodeBinaryFrame(frame)).toThrow(ProtocolViolation);
  });
});

describe('§4.4 senders refuse data the peer would refuse', () => {
  const deep = JSON.parse(nested(MAX_DATA_DEPTH + 1)) as unknown;

  it('§4.4.sender the client rejects send() of data nested too deep with INVALID_DATA', async () => {
    const outbox = new Outbox(10);
    await expect(outbox.add(deep)).rejects.toMatchObject({ name: 'UnbrokenError', code: 'INVALID_DATA' });
  });

  it('§4.4.sender the server throws INVALID_DATA for data nested too deep, and sends data at the limit', async () => {
    const server = createServer();
    try {
      expect(() => server.broadcast(deep as never)).toThrow(expect.objectContaining({ code: 'INVALID_DATA' }));
      await expect(server.broadcast(JSON.parse(nested(MAX_DATA_DEPTH)) as never)).resolves.toEqual(expect.any(String));
    } finally {
      await server.close();
    }
  });
});
