/**
 * The message stores (src/server/store.ts, src/server/redis/): ids and epochs (§6.2), the read
 * semantics of §6.3 with every gap reason, session filtering (§6.1), pagination, retention by count
 * and by age. The contract runs on every store; what only the in-memory store promises (its id
 * format, its injected clock, listeners called during the append) is tested on it alone.
 */
import { describe, expect, it, vi } from 'vitest';
import { MemoryStore, type Address, type MessageStore, type StoredMessage } from '../../src/server/index.js';
import { when } from '../helpers/signals.js';
import { storeHarnesses, useHarness } from '../helpers/store-harness.js';

const ALL: Address = { kind: 'all' };

const ids = (messages: readonly StoredMessage[]): string[] => messages.map((message) => message.id);
const data = (messages: readonly StoredMessage[]): unknown[] => messages.map((message) => message.data);

async function fill(store: MessageStore, count: number, to: Address = ALL): Promise<string[]> {
  const appended: string[] = [];
  for (let i = 1; i <= count; i++) appended.push((await store.append({ to, data: i })).id);
  return appended;
}

describe.each(storeHarnesses())('$name', (harness) => {
  useHarness(harness);

  describe('ids', () => {
    it('issues distinct ids of 1–256 characters without CR, LF or NUL, and its head is the last one', async () => {
      const store = await harness.create();
      const appended = await fill(store, 3);
      expect(new Set(appended).size).toBe(3);
      for (const id of appended) expect(id).toMatch(/^[^\r\n\0]{1,256}$/);
      expect(await store.head()).toBe(appended[2]);
    });

    it('starts an empty store at a head that reads nothing, then everything appended after it', async () => {
      const store = await harness.create();
      const start = await store.head();
      expect(await store.read('s', start, 10)).toEqual({ cursor: start, messages: [], more: false });
      const appended = await fill(store, 2);
      expect(ids((await store.read('s', start, 10)).messages)).toEqual(appended);
    });

    it('returns what it stored: the id, the address, the event only when there is one, the data', async () => {
      const store = await harness.create();
      const a = await store.append({ to: ALL, data: 'b' });
      const c = await store.append({ to: ALL, event: 'news', data: { n: [1, null, true] } });
      expect(c).toEqual({ id: c.id, to: ALL, event: 'news', data: { n: [1, null, true] } });
      expect('event' in a).toBe(false);
    });
  });

  describe('subscribe', () => {
    it('calls listeners with every append, in append order', async () => {
      const store = await harness.create();
      const heard: string[] = [];
      store.subscribe((message) => heard.push(message.id));
      const appended = [
        ...(await fill(store, 2)),
        (await store.append({ to: { kind: 'session', session: 'someone' }, data: 3 })).id,
        (await store.append({ to: { kind: 'rooms', rooms: ['lobby'] }, data: 4 })).id,
      ];
      await vi.waitFor(() => expect(heard).toEqual(appended));
    });

    it('stops calling a listener once unsubscribed, and counts the same function twice as two subscriptions', async () => {
      const store = await harness.create();
      const heard: string[] = [];
      const listener = (message: StoredMessage) => heard.push(message.id);
      const first = store.subscribe(listener);
      const second = store.subscribe(listener);
      const one = (await store.append({ to: ALL, data: 1 })).id;
      await vi.waitFor(() => expect(heard).toEqual([one, one]));
      first();
      const two = (await store.append({ to: ALL, data: 2 })).id;
      await vi.waitFor(() => expect(heard).toEqual([one, one, two]));
      second();
    });

    it('has called listeners with every message a read returned by the time the read resolves', async () => {
      const store = await harness.create();
      const start = await store.head();
      const heard: string[] = [];
      store.subscribe((message) => heard.push(message.id));
      const appended = await fill(store, 5);
      const read = await store.read('s', start, 10);
      expect(ids(read.messages)).toEqual(appended);
      expect(heard).toEqual(appended);
    });
  });

  describe('read', () => {
    it('reads nothing after the head: no gap, cursor is the id given', async () => {
      const store = await harness.create();
      const [, last] = await fill(store, 2);
      expect(await store.read('s', last!, 10)).toEqual({ cursor: last, messages: [], more: false });
    });

    it('reads every message after an id, in order, with the cursor at that id', async () => {
      const store = await harness.create();
      const appended = await fill(store, 5);
      const result = await store.read('s', appended[1]!, 10);
      expect(result.cursor).toBe(appended[1]);
      expect(result.gap).toBeUndefined();
      expect(ids(result.messages)).toEqual(appended.slice(2));
      expect(result.more).toBe(false);
    });

    it('reads a session its broadcasts and its own messages, never those of another session', async () => {
      const store = await harness.create();
      const start = await store.head();
      await store.append({ to: ALL, data: 'all 1' });
      await store.append({ to: { kind: 'session', session: 'alice' }, data: 'alice 1' });
      await store.append({ to: { kind: 'session', session: 'bob' }, data: 'bob 1' });
      await store.append({ to: ALL, data: 'all 2' });
      expect(data((await store.read('alice', start, 10)).messages)).toEqual(['all 1', 'alice 1', 'all 2']);
      expect(data((await store.read('bob', start, 10)).messages)).toEqual(['all 1', 'bob 1', 'all 2']);
    });

    it('pages with limit: more is true while the stream has more, and the next page starts after the last id', async () => {
      const store = await harness.create();
      const start = await store.head();
      const appended = await fill(store, 5);
      const first = await store.read('s', start, 2);
      expect([ids(first.messages), first.more]).toEqual([appended.slice(0, 2), true]);
      const second = await store.read('s', appended[1]!, 2);
      expect([ids(second.messages), second.more]).toEqual([appended.slice(2, 4), true]);
      const third = await store.read('s', appended[3]!, 2);
      expect([ids(third.messages), third.more]).toEqual([appended.slice(4), false]);
    });

    it('says more is false when exactly limit messages remain', async () => {
      const store = await harness.create();
      const appended = await fill(store, 4);
      const page = await store.read('s', appended[1]!, 2);
      expect([ids(page.messages), page.more]).toEqual([appended.slice(2), false]);
    });

    it('says more is false when what follows a full page belongs to other sessions only', async () => {
      const store = await harness.create();
      const start = await store.head();
      const appended = await fill(store, 2);
      await fill(store, 3, { kind: 'session', session: 'someone-else' });
      const page = await store.read('s', start, 2);
      expect([ids(page.messages), page.more]).toEqual([appended, false]);
    });

    it('refuses a limit below 1', async () => {
      const store = await harness.create();
      await expect(store.read('s', await store.head(), 0)).rejects.toThrow(RangeError);
    });

    it.each([
      ['not an id of this store', 'nonsense'],
      ['with a non-numeric part', 'e-abc'],
      ['with a leading zero', 'e-01'],
      ['with a negative part', 'e--1'],
      ['empty', ''],
      ['with a line feed', 'e-1\n'],
    ])('answers an id %s with an invalid-id gap that continues from the head', async (_name, after) => {
      const store = await harness.create();
      const [, , last] = await fill(store, 3);
      expect(await store.read('s', after, 10)).toEqual({ cursor: last, gap: 'invalid-id', messages: [], more: false });
    });

    it('answers an id of this epoch past the head with an invalid-id gap', async () => {
      const store = await harness.create();
      const [, , last] = await fill(store, 3);
      expect(await store.read('s', harness.beyond(last!), 10)).toEqual({ cursor: last, gap: 'invalid-id', messages: [], more: false });
    });

    it('answers an id of another epoch with an unknown-epoch gap that continues from the beginning of this epoch', async () => {
      const store = await harness.create();
      const start = await store.head();
      const appended = await fill(store, 3);
      const result = await store.read('s', harness.foreignId(), 10);
      expect(result).toMatchObject({ cursor: start, gap: 'unknown-epoch', more: false });
      expect(ids(result.messages)).toEqual(appended);
    });

    it('continues an unknown-epoch gap from the oldest retained message once the epoch evicted its start', async () => {
      const store = await harness.create({ maxMessages: 2 });
      const appended = await fill(store, 5);
      const result = await store.read('s', harness.foreignId(), 10);
      expect(result).toMatchObject({ cursor: appended[2], gap: 'unknown-epoch' });
      expect(ids(result.messages)).toEqual(appended.slice(3));
    });
  });

  describe('retention', () => {
    it('retains maxMessages and answers an older id with an expired gap from the id before the oldest retained', async () => {
      const store = await harness.create({ maxMessages: 3 });
      const appended = await fill(store, 10);
      const result = await store.read('s', appended[1]!, 10);
      expect(result).toMatchObject({ cursor: appended[6], gap: 'expired', more: false });
      expect(ids(result.messages)).toEqual(appended.slice(7));
    });

    it('resumes without a gap from the id just before the oldest retained message', async () => {
      const store = await harness.create({ maxMessages: 3 });
      const appended = await fill(store, 10);
      const result = await store.read('s', appended[6]!, 10);
      expect(result.gap).toBeUndefined();
      expect(ids(result.messages)).toEqual(appended.slice(7));
    });

    it('keeps reads right across many evictions', async () => {
      const store = await harness.create({ maxMessages: 10 });
      const appended = await fill(store, 300);
      expect(ids((await store.read('s', appended[294]!, 10)).messages)).toEqual(appended.slice(295));
      expect(await store.read('s', appended[99]!, 1)).toMatchObject({ cursor: appended[289], gap: 'expired', more: true });
    });

    it('evicts by age on append', async () => {
      const store = await harness.create({ maxAge: 300 });
      const start = await store.head();
      const appended = await fill(store, 2);
      await harness.elapse(350);
      await store.append({ to: ALL, data: 'fresh' });
      const result = await store.read('s', start, 10);
      expect(result).toMatchObject({ cursor: appended[1], gap: 'expired' });
      expect(data(result.messages)).toEqual(['fresh']);
    });

    it('evicts by age on read too, and an expired gap then continues from the head', async () => {
      const store = await harness.create({ maxAge: 300 });
      const start = await store.head();
      const appended = await fill(store, 3);
      expect((await store.read('s', start, 10)).messages).toHaveLength(3);
      await harness.elapse(350);
      expect(await store.read('s', start, 10)).toEqual({ cursor: appended[2], gap: 'expired', messages: [], more: false });
      expect(await store.head()).toBe(appended[2]);
    });
  });

  describe('data and lifecycle', () => {
    it('keeps a private copy of bytes, as a plain Uint8Array, and reads bytes back as bytes', async () => {
      const store = await harness.create();
      const start = await store.head();
      const source = Buffer.from([1, 2, 3, 0, 255]);
      const stored = await store.append({ to: ALL, data: source });
      source[0] = 9;
      expect(stored.data).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(stored.data)).toBe(false);
      expect([...(stored.data as Uint8Array)]).toEqual([1, 2, 3, 0, 255]);
      const [read] = (await store.read('s', start, 1)).messages;
      expect(read!.data).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(read!.data)).toBe(false);
      expect([...(read!.data as Uint8Array)]).toEqual([1, 2, 3, 0, 255]);
    });

    it('reads back JSON values, addresses and event names as they were appended', async () => {
      const store = await harness.create();
      const start = await store.head();
      const values = ['text ✓', 0, -1.5, true, null, [], { nested: { list: [1, 'two'] } }];
      for (const value of values) await store.append({ to: { kind: 'session', session: 's' }, event: 'évènement', data: value });
      const { messages } = await store.read('s', start, 10);
      expect(data(messages)).toEqual(values);
      for (const message of messages) {
        expect(message).toMatchObject({ to: { kind: 'session', session: 's' }, event: 'évènement' });
      }
    });

    it('rejects appends after close and forgets its listeners: nothing done on it after close reaches a listener subscribed before', async () => {
      const store = await harness.create();
      const heard: string[] = [];
      const heardSoFar = when(() => heard.length === 2);
      store.subscribe(
        (message) => {
          heard.push(`message ${String(message.data)}`);
          heardSoFar.wake();
        },
        {
          membership: ({ session, room, joined }) => {
            heard.push(`${joined ? 'join' : 'leave'} ${session} ${room}`);
            heardSoFar.wake();
          },
        },
      );
      // While open, the listener hears a message and a membership change: the check after close is not vacuous.
      await store.append({ to: ALL, data: 'before close' });
      await store.join('s', 'lobby');
      await heardSoFar.promise;
      expect(heard).toEqual(['message before close', 'join s lobby']);

      await store.close?.();
      await expect(store.append({ to: ALL, data: 'after close' })).rejects.toThrow(/after close/);
      if (store.appendNow) expect(() => store.appendNow!({ to: ALL, data: 'after close, now' })).toThrow(/after close/);
      // A closed store may refuse these or not; either way, the listeners it had are gone. A store that
      // tells its listeners does so during the call (MemoryStore) or through its reader, stopped by close.
      await Promise.allSettled([store.leave('s', 'lobby'), store.join('t', 'lobby')]);
      expect(heard).toEqual(['message before close', 'join s lobby']);
    });
  });
});

describe('MemoryStore ids and epochs', () => {
  it('issues <epoch>-<n> ids with n counting from 1, and its head is <epoch>-0 while empty', async () => {
    const store = new MemoryStore({ epoch: 'k2' });
    expect(await store.head()).toBe('k2-0');
    expect(await fill(store, 3)).toEqual(['k2-1', 'k2-2', 'k2-3']);
    expect(await store.head()).toBe('k2-3');
  });

  it('numbers broadcasts and messages to sessions in one append order', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const a = await store.append({ to: ALL, data: 'b' });
    const b = await store.append({ to: { kind: 'session', session: 'session-aaaaaaaaaaaa' }, data: 's' });
    const c = await store.append({ to: ALL, event: 'news', data: 'b2' });
    expect([a.id, b.id, c.id]).toEqual(['e-1', 'e-2', 'e-3']);
  });

  it('draws a new random lower-case base36 epoch for every instance', () => {
    const epochs = Array.from({ length: 50 }, () => new MemoryStore().epoch);
    for (const epoch of epochs) expect(epoch).toMatch(/^[0-9a-z]+$/);
    expect(new Set(epochs).size).toBe(epochs.length);
  });

  it.each(['', 'K2', 'a-b', 'a b', 'x'.repeat(33)])('refuses the epoch %j', (epoch) => {
    expect(() => new MemoryStore({ epoch })).toThrow(RangeError);
  });

  it.each([
    ['maxMessages 0', { maxMessages: 0 }],
    ['maxMessages 1.5', { maxMessages: 1.5 }],
    ['maxAge 0', { maxAge: 0 }],
    ['maxAge NaN', { maxAge: Number.NaN }],
  ])('refuses %s', (_name, options) => {
    expect(() => new MemoryStore(options)).toThrow(RangeError);
  });

  it('answers an id of its epoch that it never issued with an invalid-id gap', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 3);
    expect(await store.read('s', 'e-99', 10)).toEqual({ cursor: 'e-3', gap: 'invalid-id', messages: [], more: false });
  });
});

describe('MemoryStore specifics', () => {
  it('calls listeners during the append, before it resolves', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const heard: string[] = [];
    store.subscribe((message) => heard.push(message.id));
    const appending = store.append({ to: ALL, data: 1 });
    expect(heard).toEqual(['e-1']);
    await appending;
  });

  it("hands its listeners the data's JSON text an append was given, for the server to encode around", async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const heard: (string | undefined)[] = [];
    store.subscribe((_message, dataText) => heard.push(dataText));
    store.appendNow({ to: ALL, data: { a: 1 } }, '{"a":1}');
    await store.append({ to: ALL, data: 2 }, '2');
    await store.append({ to: ALL, data: 3 });
    expect(heard).toEqual(['{"a":1}', '2', undefined]);
  });

  it('counts what it retains and keeps lookups right across many compactions', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 10 });
    await fill(store, 5_000);
    expect(store.size).toBe(10);
    expect(ids((await store.read('s', 'e-4995', 10)).messages)).toEqual(['e-4996', 'e-4997', 'e-4998', 'e-4999', 'e-5000']);
    expect(await store.read('s', 'e-100', 1)).toMatchObject({ cursor: 'e-4990', gap: 'expired', more: true });
  });

  it('evicts by age exactly at maxAge, with the injected clock', async () => {
    let now = 1_000;
    const store = new MemoryStore({ epoch: 'e', maxAge: 500, now: () => now });
    await fill(store, 3);
    now += 499;
    expect((await store.read('s', 'e-0', 10)).messages).toHaveLength(3);
    now += 1;
    expect(await store.read('s', 'e-0', 10)).toEqual({ cursor: 'e-3', gap: 'expired', messages: [], more: false });
    expect(store.size).toBe(0);
  });
});
