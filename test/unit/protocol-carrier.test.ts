/** The carrier line format (docs/PROTOCOL.md §7.5), pure. */
import { describe, expect, it } from 'vitest';
import { carrierLine, noticeLine, parseCarrierLines } from '../../src/protocol/index.js';

describe('carrier lines', () => {
  it('reads batches by channel and the carrier notices, in order, across line breaks', () => {
    const text = [
      noticeLine({ kind: 'open', id: 'AAAAAAAAAAAAAAAAAAAAAA', hb: 15_000 }),
      carrierLine('tab.1', '[{"t":"hb"}]'),
      noticeLine({ kind: 'hb' }),
      carrierLine('tab.2', '[{"t":"msg","id":"a-1","d":"x y"}]'),
      noticeLine({ kind: 'end', code: 'SERVER_RESTART', message: 'bye' }),
    ].join('\n');
    expect(parseCarrierLines(text)).toEqual([
      { channel: '*', notice: { kind: 'open', id: 'AAAAAAAAAAAAAAAAAAAAAA', hb: 15_000 } },
      { channel: 'tab.1', batch: '[{"t":"hb"}]' },
      { channel: '*', notice: { kind: 'hb' } },
      { channel: 'tab.2', batch: '[{"t":"msg","id":"a-1","d":"x y"}]' },
      { channel: '*', notice: { kind: 'end', code: 'SERVER_RESTART', message: 'bye' } },
    ]);
  });

  it.each([
    ['a channel with a character outside the pattern', 'tab/1 []'],
    ['a channel longer than 64 characters', `${'a'.repeat(65)} []`],
    ['a notice that is not JSON', '* {oops'],
    ['a notice that is not an object', '* 42'],
  ])('refuses %s: the carrier is broken, not one session', (_what, text) => {
    expect(() => parseCarrierLines(text)).toThrow();
  });

  it('reads an open notice with a malformed id as a heartbeat, never as an id to use', () => {
    expect(parseCarrierLines('* {"k":"short","hb":1}')).toEqual([{ channel: '*', notice: { kind: 'hb' } }]);
  });
});
