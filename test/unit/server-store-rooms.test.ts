/**
 * Rooms in the in-memory store (docs/PROTOCOL.md §6.5): membership as intervals of positions, the
 * read of a session's stream through them, and how memberships and the per-address index follow
 * retention.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, type Address, type StoredMessage } from '../../src/server/index.js';

const ALL: Address = { kind: 'all' };
const room = (...rooms: string[]): Address => ({ kind: 'rooms', rooms });
const direct = (session: string): Address => ({ kind: 'session', session });
const data = (messages: readonly StoredMessage[]): unknown[] => messages.map((message) => message.data);

async function send(store: MemoryStore, to: Address, label: string): Promise<string> {
  return (await store.append({ to, data: label })).id;
}

async function stream(store: MemoryStore, session: string, after: string, limit = 100): Promise<unknown[]> {
  return data((await store.read(session, after, limit)).messages);
}

describe('MemoryStore rooms (§6.5)', () => {
  it('§6.5.interval gives a member the room messages between its join and its leave, and nobody else', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await send(store, room('lobby'), 'before join');
    expect(await store.join('alice', 'lobby')).toBe('e-1');
    await send(store, room('lobby'), 'while in');
    await send(store, room('kitchen'), 'another room');
    expect(await store.leave('alice', 'lobby')).toBe('e-3');
    await send(store, room('lobby'), 'after leave');
    expect(await stream(store, 'alice', 'e-0')).toEqual(['while in']);
    expect(await stream(store, 'bob', 'e-0')).toEqual([]);
  });

  it('§6.5.order interleaves room messages with direct messages and broadcasts in append order', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await store.join('alice', 'lobby');
    await send(store, ALL, 'b1');
    await send(store, room('lobby'), 'r1');
    await send(store, direct('alice'), 'd1');
    await send(store, direct('bob'), 'not hers');
    await send(store, room('lobby'), 'r2');
    await send(store, ALL, 'b2');
    expect(await stream(store, 'alice', 'e-0')).toEqual(['b1', 'r1', 'd1', 'r2', 'b2']);
  });

  it('§6.5.interval returns a message to several rooms of the session once', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await store.join('alice', 'a');
    await store.join('alice', 'b');
    await send(store, room('a', 'b', 'c'), 'to three');
    await send(store, room('c'), 'not hers');
    expect(await stream(store, 'alice', 'e-0')).toEqual(['to three']);
  });

  it('§6.5.resume replays from before a join only what came after the join', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const cursor = await send(store, ALL, 'b1');
    await send(store, room('lobby'), 'r-before');
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'r-after');
    expect(await stream(store, 'alice', cursor)).toEqual(['r-after']);
  });

  it('§6.5.resume replays from before a leave what came before it, and nothing after', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await store.join('alice', 'lobby');
    const cursor = await send(store, room('lobby'), 'r1');
    await send(store, room('lobby'), 'r2');
    await store.leave('alice', 'lobby');
    await send(store, room('lobby'), 'r3');
    expect(await stream(store, 'alice', cursor)).toEqual(['r2']);
    expect(await stream(store, 'alice', await store.head())).toEqual([]);
  });

  it('§6.5.resume leaves out what a room got between a leave and a rejoin', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'first stay');
    await store.leave('alice', 'lobby');
    await send(store, room('lobby'), 'while away');
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'second stay');
    expect(await stream(store, 'alice', 'e-0')).toEqual(['first stay', 'second stay']);
    expect(await store.members('lobby')).toEqual(['alice']);
  });

  it('joins once: joining again keeps where the membership began, leaving twice reports null', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    expect(await store.join('alice', 'lobby')).toBe('e-0');
    await send(store, room('lobby'), 'r1');
    expect(await store.join('alice', 'lobby')).toBe('e-0');
    expect(await store.leave('alice', 'lobby')).toBe('e-1');
    expect(await store.leave('alice', 'lobby')).toBeNull();
    expect(await store.members('lobby')).toEqual([]);
  });

  it('pages a stream of room messages with more, and more is false when only other rooms follow', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await store.join('alice', 'lobby');
    for (let i = 1; i <= 5; i++) await send(store, room('lobby'), `r${i}`);
    for (let i = 1; i <= 5; i++) await send(store, room('kitchen'), `k${i}`);
    const first = await store.read('alice', 'e-0', 3);
    expect(data(first.messages)).toEqual(['r1', 'r2', 'r3']);
    expect(first.more).toBe(true);
    const second = await store.read('alice', first.messages.at(-1)!.id, 3);
    expect(data(second.messages)).toEqual(['r4', 'r5']);
    expect(second.more).toBe(false);
  });

  it('keeps the gap rules: an expired cursor continues from the oldest retained room message', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 3 });
    await store.join('alice', 'lobby');
    for (let i = 1; i <= 5; i++) await send(store, room('lobby'), `r${i}`);
    const result = await store.read('alice', 'e-1', 100);
    expect(result).toMatchObject({ gap: 'expired', cursor: 'e-2' });
    expect(data(result.messages)).toEqual(['r3', 'r4', 'r5']);
  });

  it('forgets a closed membership once retention passed its end, and still reads correctly', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 2 });
    for (let round = 0; round < 50; round++) {
      await store.join('alice', 'lobby');
      await send(store, room('lobby'), `in ${round}`);
      await store.leave('alice', 'lobby');
      await send(store, room('lobby'), `out ${round}`);
    }
    // Retained: e-99 ('in 49', sent while she was in) and e-100 ('out 49', sent after she left).
    const result = await store.read('alice', 'e-98', 100);
    expect(result.gap).toBeUndefined();
    expect(data(result.messages)).toEqual(['in 49']);
    expect(store.size).toBe(2);
  });
});
