/**
 * The link queue's batches (PROTOCOL.md §4.1): the text a connection writes, and the same batch as
 * UTF-8 bytes for a connection that takes them (`writeTextBytes`, WebSocket). Both must be the same
 * JSON array of the same frames, byte for byte, whatever the characters.
 */
import { describe, expect, it } from 'vitest';
import { utf8Length } from '../../src/protocol/index.js';
import { MessageEncodings, textQueueItem, type QueuedItem } from '../../src/server/encoding.js';
import { LinkQueue, type NextWrite } from '../../src/server/link-queue.js';
import type { StoredMessage } from '../../src/server/store.js';

const message = (id: string, data: StoredMessage['data'], event?: string): QueuedItem =>
  new MessageEncodings(event === undefined ? { id, to: { kind: 'all' }, data } : { id, to: { kind: 'all' }, event, data }).item(true);

/** A queue holding `items`, for a client that reads batches of at most `maxBytes` (§4.1.size) when given. */
function queueOf(items: readonly QueuedItem[], maxBytes?: number): LinkQueue {
  const queue = new LinkQueue(maxBytes);
  for (const item of items) queue.push(item);
  return queue;
}

/** Every write the queue gives, taken as bytes or not. */
function drain(items: readonly QueuedItem[], asBytes: boolean): NextWrite[] {
  const queue = queueOf(items);
  const writes: NextWrite[] = [];
  for (let next = queue.take(asBytes); next; next = queue.take(asBytes)) writes.push(next);
  expect(queue.length).toBe(0);
  expect(queue.bytes).toBe(0);
  return writes;
}

const textOf = (write: NextWrite): string =>
  write.kind === 'batch' ? write.text : write.kind === 'batch-bytes' ? Buffer.from(write.bytes).toString('utf8') : `binary ${write.id}`;

describe('LinkQueue batches as bytes', () => {
  const mixed = [
    message('e-1', { text: 'plain' }),
    message('e-2', { text: 'déjà vu, 日本語, 🎉' }, 'chat'),
    textQueueItem('{"t":"ack","s":7}'),
    message('e-3\u00e9', 'ids with accents'),
    message('e-4', ['\u2028', 'line separator and "quotes" \\ kept']),
  ];

  it('gives the same frames as the text batch, byte for byte, with the same last message id', () => {
    const [asText] = drain(mixed, false);
    const [asBytes] = drain(mixed, true);
    expect(asBytes?.kind).toBe('batch-bytes');
    expect(asText?.kind).toBe('batch');
    if (asBytes?.kind !== 'batch-bytes' || asText?.kind !== 'batch') return;
    expect(Buffer.from(asBytes.bytes).equals(Buffer.from(asText.text, 'utf8'))).toBe(true);
    expect(asBytes.lastMessageId).toBe('e-4');
    expect(JSON.parse(textOf(asBytes))).toHaveLength(5);
  });

  it('counts UTF-8 bytes exactly, lone surrogates (sent as U+FFFD) and pairs included', () => {
    for (const text of ['', 'ascii', 'é', '日本', '🎉', '\ud800', '\udc00', '\ud800é', '\ud800\ud800\udc00', 'a\ud83c', '\ud83c\udf89x', 'x'.repeat(300), `${'x'.repeat(300)}é`, `é${'x'.repeat(300)}`, '\0', '\x7f', '\x80', '\u07ff', '\u0800', `${'x'.repeat(300)}\x80`]) {
      expect(utf8Length(text), JSON.stringify(text)).toBe(Buffer.byteLength(text, 'utf8'));
    }
  });

  it('writes a batch of one as text to the first connection and as one buffer shared by the others, and joins text when a count is high', () => {
    // A broadcast's item reaches every connection's queue: the first writes the text, and the ones
    // after it share one buffer of the same bytes rather than each socket encoding the string.
    const broadcast = message('e-5', 'one');
    const [first, second, third] = [drain([broadcast], true)[0]!, drain([broadcast], true)[0]!, drain([broadcast], true)[0]!];
    expect([first.kind, second.kind, third.kind]).toEqual(['batch', 'batch-bytes', 'batch-bytes']);
    expect(second.kind === 'batch-bytes' && third.kind === 'batch-bytes' && second.bytes === third.bytes).toBe(true);
    expect(textOf(second)).toBe(textOf(first));
    expect(second.kind === 'batch-bytes' && second.lastMessageId).toBe('e-5');
    expect(drain([message('e-5', 'one')], false)[0]?.kind).toBe('batch');
    // JSON escapes a lone surrogate of an event name into ASCII, so its frame counts high: the batch
    // goes out as the text join, unchanged.
    const items = [message('e-5', 'lone', 'x\ud800é'), message('e-6', 'next')];
    const [pair] = drain(items, true);
    expect(pair?.kind).toBe('batch');
    expect(textOf(pair!)).toBe(textOf(drain(items, false)[0]!));
  });

  it('stops a batch at a binary frame, as the text batch does', () => {
    const items = [message('e-1', 'a'), message('e-2', 'b'), message('e-3', new Uint8Array([1, 2, 3])), message('e-4', 'c'), message('e-5', 'd')];
    expect(drain(items, true).map((write) => write.kind)).toEqual(['batch-bytes', 'binary', 'batch-bytes']);
    expect(drain(items, true).map(textOf)).toEqual(drain(items, false).map(textOf));
  });

  it('never counts an item low, which would leave no room for its bytes', () => {
    const tricky = [message('e-1', 'é🎉'), message('e-2\ud800é', '\udc00x', 'ev\ud83c'), message('e-3', { k: '\ud800' }, 'é'), textQueueItem('"\ud800é"')];
    for (const item of tricky) {
      if (item.kind !== 'text') continue;
      expect(item.bytes, item.text).toBeGreaterThanOrEqual(Buffer.byteLength(item.text, 'utf8'));
    }
  });
});

describe('LinkQueue batches within the client\'s limit (§4.1.size)', () => {
  const items = [message('e-1', { text: 'déjà' }), message('e-2', 'two'), message('e-3', ['three', 3])];
  /** The UTF-8 size of the three as one batch: their bytes, two commas and the brackets. */
  const whole = Buffer.byteLength(`[${items.map((item) => (item.kind === 'text' ? item.text : '')).join(',')}]`);

  it('§4.1.size puts the items in one batch of exactly the limit, and splits it one byte below', () => {
    for (const asBytes of [true, false]) {
      const at = (limit: number): number[] => {
        const queue = queueOf(items, limit);
        const sizes: number[] = [];
        for (let next = queue.take(asBytes); next; next = queue.take(asBytes)) sizes.push(Buffer.byteLength(textOf(next)));
        return sizes;
      };
      expect(at(whole)).toEqual([whole]);
      const split = at(whole - 1);
      expect(split).toHaveLength(2);
      expect(Math.max(...split)).toBeLessThanOrEqual(whole - 1);
    }
  });

  it('§4.1.size sends a frame larger than the limit alone, and the frames after it in batches that fit', () => {
    const large = message('e-0', 'x'.repeat(500));
    const queue = queueOf([large, ...items], 100);
    const sizes: number[] = [];
    for (let next = queue.take(true); next; next = queue.take(true)) sizes.push(Buffer.byteLength(textOf(next)));
    expect(sizes[0]).toBeGreaterThan(500);
    expect(sizes.slice(1).every((size) => size <= 100)).toBe(true);
    expect(sizes.length).toBeGreaterThanOrEqual(2);
  });
});
