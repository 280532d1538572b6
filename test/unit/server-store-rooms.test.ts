/**
 * Rooms in the message stores (docs/PROTOCOL.md §6.5), the in-memory one and the Redis one alike:
 * membership as intervals of positions, the read of a session's stream through them, how
 * memberships and the per-address index follow retention, and the changes of membership told to
 * subscribers in append order.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Address, MessageStore, StoredMessage } from '../../src/server/index.js';
import { storeHarnesses, useHarness } from '../helpers/store-harness.js';

const ALL: Address = { kind: 'all' };
const room = (...rooms: string[]): Address => ({ kind: 'rooms', rooms });
const direct = (session: string): Address => ({ kind: 'session', session });
const data = (messages: readonly StoredMessage[]): unknown[] => messages.map((message) => message.data);

async function send(store: MessageStore, to: Address, label: string): Promise<string> {
  return (await store.append({ to, data: label })).id;
}

async function stream(store: MessageStore, session: string, after: string, limit = 100): Promise<unknown[]> {
  return data((await store.read(session, after, limit)).messages);
}

describe.each(storeHarnesses())('$name rooms (§6.5)', (harness) => {
  useHarness(harness);

  it('§6.5.interval gives a member the room messages between its join and its leave, and nobody else', async () => {
    const store = await harness.create();
    const start = await store.head();
    const before = await send(store, room('lobby'), 'before join');
    expect(await store.join('alice', 'lobby')).toBe(before);
    await send(store, room('lobby'), 'while in');
    const last = await send(store, room('kitchen'), 'another room');
    expect(await store.leave('alice', 'lobby')).toBe(last);
    await send(store, room('lobby'), 'after leave');
    expect(await stream(store, 'alice', start)).toEqual(['while in']);
    expect(await stream(store, 'bob', start)).toEqual([]);
  });

  it('§6.5.order interleaves room messages with direct messages and broadcasts in append order', async () => {
    const store = await harness.create();
    const start = await store.head();
    await store.join('alice', 'lobby');
    await send(store, ALL, 'b1');
    await send(store, room('lobby'), 'r1');
    await send(store, direct('alice'), 'd1');
    await send(store, direct('bob'), 'not hers');
    await send(store, room('lobby'), 'r2');
    await send(store, ALL, 'b2');
    expect(await stream(store, 'alice', start)).toEqual(['b1', 'r1', 'd1', 'r2', 'b2']);
  });

  it('§6.5.interval returns a message to several rooms of the session once', async () => {
    const store = await harness.create();
    const start = await store.head();
    await store.join('alice', 'a');
    await store.join('alice', 'b');
    await send(store, room('a', 'b', 'c'), 'to three');
    await send(store, room('a', 'a'), 'to one room twice');
    await send(store, room('c'), 'not hers');
    expect(await stream(store, 'alice', start)).toEqual(['to three', 'to one room twice']);
  });

  it('§6.5.resume replays from before a join only what came after the join', async () => {
    const store = await harness.create();
    const cursor = await send(store, ALL, 'b1');
    await send(store, room('lobby'), 'r-before');
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'r-after');
    expect(await stream(store, 'alice', cursor)).toEqual(['r-after']);
  });

  it('§6.5.resume replays from before a leave what came before it, and nothing after', async () => {
    const store = await harness.create();
    await store.join('alice', 'lobby');
    const cursor = await send(store, room('lobby'), 'r1');
    await send(store, room('lobby'), 'r2');
    await store.leave('alice', 'lobby');
    await send(store, room('lobby'), 'r3');
    expect(await stream(store, 'alice', cursor)).toEqual(['r2']);
    expect(await stream(store, 'alice', await store.head())).toEqual([]);
  });

  it('§6.5.resume leaves out what a room got between a leave and a rejoin', async () => {
    const store = await harness.create();
    const start = await store.head();
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'first stay');
    await store.leave('alice', 'lobby');
    await send(store, room('lobby'), 'while away');
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'second stay');
    expect(await stream(store, 'alice', start)).toEqual(['first stay', 'second stay']);
    expect(await store.members('lobby')).toEqual(['alice']);
  });

  it('§6.5.order tells subscribers each join and leave that changed a membership, in append order with the messages', async () => {
    const store = await harness.create();
    const heard: string[] = [];
    store.subscribe((message) => heard.push(String(message.data)), {
      membership: ({ session, room: name, joined }) => heard.push(`${joined ? 'join' : 'leave'} ${session} ${name}`),
    });
    await send(store, room('lobby'), 'before');
    await store.join('alice', 'lobby');
    await store.join('alice', 'lobby');
    await send(store, room('lobby'), 'while in');
    await store.leave('bob', 'lobby');
    await store.leave('alice', 'lobby');
    await send(store, ALL, 'after');
    await vi.waitFor(() => expect(heard).toHaveLength(5));
    expect(heard).toEqual(['before', 'join alice lobby', 'while in', 'leave alice lobby', 'after']);
  });

  it('joins once: joining again keeps where the membership began, leaving twice reports null', async () => {
    const store = await harness.create();
    const start = await store.head();
    expect(await store.join('alice', 'lobby')).toBe(start);
    const r1 = await send(store, room('lobby'), 'r1');
    expect(await store.join('alice', 'lobby')).toBe(start);
    expect(await store.leave('alice', 'lobby')).toBe(r1);
    expect(await store.leave('alice', 'lobby')).toBeNull();
    expect(await store.members('lobby')).toEqual([]);
  });

  it('lists the members of a room and the rooms of a session as they are now', async () => {
    const store = await harness.create();
    await store.join('alice', 'lobby');
    await store.join('bob', 'lobby');
    await store.join('alice', 'kitchen');
    await store.leave('bob', 'lobby');
    await store.join('carol', 'lobby');
    expect((await store.members('lobby')).sort()).toEqual(['alice', 'carol']);
    expect((await store.roomsOf('alice')).sort()).toEqual(['kitchen', 'lobby']);
    expect(await store.roomsOf('bob')).toEqual([]);
    expect(await store.members('nobody here')).toEqual([]);
  });

  it('takes any valid room name, however it is spelled', async () => {
    const store = await harness.create();
    const start = await store.head();
    const names = ['a:b', 'x:r:lobby', 'spaces and ✓ unicode', '*', 'r'.repeat(128)];
    for (const name of names) await store.join('alice', name);
    for (const name of names) await send(store, room(name), name);
    expect(await stream(store, 'alice', start)).toEqual(names);
    expect((await store.roomsOf('alice')).sort()).toEqual([...names].sort());
  });

  it('pages a stream of room messages with more, and more is false when only other rooms follow', async () => {
    const store = await harness.create();
    const start = await store.head();
    await store.join('alice', 'lobby');
    for (let i = 1; i <= 5; i++) await send(store, room('lobby'), `r${i}`);
    for (let i = 1; i <= 5; i++) await send(store, room('kitchen'), `k${i}`);
    const first = await store.read('alice', start, 3);
    expect(data(first.messages)).toEqual(['r1', 'r2', 'r3']);
    expect(first.more).toBe(true);
    const second = await store.read('alice', first.messages.at(-1)!.id, 3);
    expect(data(second.messages)).toEqual(['r4', 'r5']);
    expect(second.more).toBe(false);
  });

  it('keeps the gap rules: an expired cursor continues from the oldest retained room message', async () => {
    const store = await harness.create({ maxMessages: 3 });
    await store.join('alice', 'lobby');
    const sent: string[] = [];
    for (let i = 1; i <= 5; i++) sent.push(await send(store, room('lobby'), `r${i}`));
    const result = await store.read('alice', sent[0]!, 100);
    expect(result).toMatchObject({ gap: 'expired', cursor: sent[1] });
    expect(data(result.messages)).toEqual(['r3', 'r4', 'r5']);
  });

  it('forgets a closed membership once retention passed its end, and still reads correctly', async () => {
    const store = await harness.create({ maxMessages: 2 });
    const sent: string[] = [];
    for (let round = 0; round < 50; round++) {
      await store.join('alice', 'lobby');
      sent.push(await send(store, room('lobby'), `in ${round}`));
      await store.leave('alice', 'lobby');
      sent.push(await send(store, room('lobby'), `out ${round}`));
    }
    // Retained: 'in 49' (sent while she was in) and 'out 49' (sent after she left).
    const result = await store.read('alice', sent[97]!, 100);
    expect(result.gap).toBeUndefined();
    expect(data(result.messages)).toEqual(['in 49']);
  });
});
