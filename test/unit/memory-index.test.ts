/**
 * The memberships the memory store's index keeps (src/server/memory-index.ts): a closed membership is
 * kept while a resume may read a retained message through it, and no longer.
 */
import { describe, expect, it } from 'vitest';
import { AddressIndex } from '../../src/server/memory-index.js';

describe('AddressIndex memberships', () => {
  it('keeps nothing for a session that joins and leaves a room no message was sent to, however often', () => {
    const index = new AddressIndex();
    let head = 0;
    index.add(++head, { kind: 'all' });
    for (let cycle = 0; cycle < 10_000; cycle++) {
      index.join('s', 'quiet', head);
      index.add(++head, { kind: 'rooms', rooms: ['other'] });
      index.leave('s', 'quiet', head);
    }
    expect(index.memberships).toBe(0);
    index.join('s', 'quiet', head);
    expect(index.memberships).toBe(1);
  });

  it('keeps a closed membership a retained message to its room fell in, reads through it, and drops it once that message is evicted', () => {
    const index = new AddressIndex();
    index.join('s', 'room', 0);
    index.add(1, { kind: 'rooms', rooms: ['room'] });
    index.leave('s', 'room', 1);
    index.add(2, { kind: 'rooms', rooms: ['room'] });
    expect(index.memberships).toBe(1);
    expect(index.read('s', 0, 10)).toEqual({ numbers: [1], more: false });
    index.evicted(1, { kind: 'rooms', rooms: ['room'] }, 2);
    expect(index.memberships).toBe(0);
    expect(index.read('s', 0, 10)).toEqual({ numbers: [], more: false });
  });
});
