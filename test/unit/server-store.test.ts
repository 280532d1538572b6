/**
 * The in-memory store (src/server/store.ts): ids and epochs (§6.2), the read semantics of §6.3 with
 * every gap reason, session filtering (§6.1), pagination, retention by count and by age.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, type Address, type StoredMessage } from '../../src/server/index.js';

const ALL: Address = { kind: 'all' };

const ids = (messages: readonly StoredMessage[]): string[] => messages.map((message) => message.id);

async function fill(store: MemoryStore, count: number, to: Address = ALL): Promise<string[]> {
  const appended: string[] = [];
  for (let i = 1; i <= count; i++) appended.push((await store.append({ to, data: i })).id);
  return appended;
}

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
    expect(c).toEqual({ id: 'e-3', to: ALL, event: 'news', data: 'b2' });
    expect('event' in a).toBe(false);
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
});

describe('MemoryStore.subscribe', () => {
  it('calls listeners with every append, in append order, before the append resolves', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const heard: string[] = [];
    store.subscribe((message) => heard.push(message.id));
    const appending = store.append({ to: ALL, data: 1 });
    expect(heard).toEqual(['e-1']);
    await appending;
    await fill(store, 2);
    expect(heard).toEqual(['e-1', 'e-2', 'e-3']);
  });

  it('stops calling a listener once unsubscribed, and counts the same function twice as two subscriptions', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const heard: string[] = [];
    const listener = (message: StoredMessage) => heard.push(message.id);
    const first = store.subscribe(listener);
    store.subscribe(listener);
    await store.append({ to: ALL, data: 1 });
    first();
    await store.append({ to: ALL, data: 2 });
    expect(heard).toEqual(['e-1', 'e-1', 'e-2']);
  });
});

describe('MemoryStore.read', () => {
  it('reads nothing after the head: no gap, cursor is the id given', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 2);
    expect(await store.read('s', 'e-2', 10)).toEqual({ cursor: 'e-2', messages: [], more: false });
  });

  it('reads every message after an id, in order, with the cursor at that id', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 5);
    const result = await store.read('s', 'e-2', 10);
    expect(result.cursor).toBe('e-2');
    expect(result.gap).toBeUndefined();
    expect(ids(result.messages)).toEqual(['e-3', 'e-4', 'e-5']);
    expect(result.more).toBe(false);
  });

  it('reads a session its broadcasts and its own messages, never those of another session', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await store.append({ to: ALL, data: 'all 1' });
    await store.append({ to: { kind: 'session', session: 'alice' }, data: 'alice 1' });
    await store.append({ to: { kind: 'session', session: 'bob' }, data: 'bob 1' });
    await store.append({ to: ALL, data: 'all 2' });
    const alice = await store.read('alice', 'e-0', 10);
    const bob = await store.read('bob', 'e-0', 10);
    expect(alice.messages.map((message) => message.data)).toEqual(['all 1', 'alice 1', 'all 2']);
    expect(bob.messages.map((message) => message.data)).toEqual(['all 1', 'bob 1', 'all 2']);
  });

  it('pages with limit: more is true while the stream has more, and the next page starts after the last id', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 5);
    const first = await store.read('s', 'e-0', 2);
    expect([ids(first.messages), first.more]).toEqual([['e-1', 'e-2'], true]);
    const second = await store.read('s', 'e-2', 2);
    expect([ids(second.messages), second.more]).toEqual([['e-3', 'e-4'], true]);
    const third = await store.read('s', 'e-4', 2);
    expect([ids(third.messages), third.more]).toEqual([['e-5'], false]);
  });

  it('says more is false when exactly limit messages remain', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 4);
    const page = await store.read('s', 'e-2', 2);
    expect([ids(page.messages), page.more]).toEqual([['e-3', 'e-4'], false]);
  });

  it('says more is false when what follows a full page belongs to other sessions only', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 2);
    await fill(store, 3, { kind: 'session', session: 'someone-else' });
    const page = await store.read('s', 'e-0', 2);
    expect([ids(page.messages), page.more]).toEqual([['e-1', 'e-2'], false]);
  });

  it('refuses a limit below 1', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await expect(store.read('s', 'e-0', 0)).rejects.toThrow(RangeError);
  });

  it.each([
    ['not of the <epoch>-<n> form', 'nonsense'],
    ['with a non-numeric n', 'e-abc'],
    ['with a leading zero', 'e-01'],
    ['with a negative n', 'e--1'],
    ['empty', ''],
    ['of this epoch but never issued', 'e-99'],
  ])('answers an id %s with an invalid-id gap that continues from the head', async (_name, after) => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 3);
    expect(await store.read('s', after, 10)).toEqual({ cursor: 'e-3', gap: 'invalid-id', messages: [], more: false });
  });

  it('answers an id of another epoch with an unknown-epoch gap that continues from the beginning of this epoch', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    await fill(store, 3);
    const result = await store.read('s', 'zz-9', 10);
    expect(result).toMatchObject({ cursor: 'e-0', gap: 'unknown-epoch', more: false });
    expect(ids(result.messages)).toEqual(['e-1', 'e-2', 'e-3']);
  });

  it('continues an unknown-epoch gap from the oldest retained message once the epoch evicted its start', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 2 });
    await fill(store, 5);
    const result = await store.read('s', 'zz-9', 10);
    expect(result).toMatchObject({ cursor: 'e-3', gap: 'unknown-epoch' });
    expect(ids(result.messages)).toEqual(['e-4', 'e-5']);
  });
});

describe('MemoryStore retention', () => {
  it('retains maxMessages and answers an older id with an expired gap from the id before the oldest retained', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 3 });
    await fill(store, 10);
    expect(store.size).toBe(3);
    const result = await store.read('s', 'e-2', 10);
    expect(result).toMatchObject({ cursor: 'e-7', gap: 'expired', more: false });
    expect(ids(result.messages)).toEqual(['e-8', 'e-9', 'e-10']);
  });

  it('resumes without a gap from the id just before the oldest retained message', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 3 });
    await fill(store, 10);
    const result = await store.read('s', 'e-7', 10);
    expect(result.gap).toBeUndefined();
    expect(ids(result.messages)).toEqual(['e-8', 'e-9', 'e-10']);
  });

  it('keeps lookups right across many evictions', async () => {
    const store = new MemoryStore({ epoch: 'e', maxMessages: 10 });
    await fill(store, 5_000);
    expect(store.size).toBe(10);
    expect(ids((await store.read('s', 'e-4995', 10)).messages)).toEqual(['e-4996', 'e-4997', 'e-4998', 'e-4999', 'e-5000']);
    expect(await store.read('s', 'e-100', 1)).toMatchObject({ cursor: 'e-4990', gap: 'expired', more: true });
  });

  it('evicts by age on append, with the injected clock', async () => {
    let now = 1_000;
    const store = new MemoryStore({ epoch: 'e', maxAge: 500, now: () => now });
    await fill(store, 2);
    now += 500;
    await store.append({ to: ALL, data: 'fresh' });
    expect(store.size).toBe(1);
    const result = await store.read('s', 'e-0', 10);
    expect(result).toMatchObject({ cursor: 'e-2', gap: 'expired' });
    expect(result.messages.map((message) => message.data)).toEqual(['fresh']);
  });

  it('evicts by age on read too, and an expired gap then continues from the head', async () => {
    let now = 1_000;
    const store = new MemoryStore({ epoch: 'e', maxAge: 500, now: () => now });
    await fill(store, 3);
    now += 499;
    expect((await store.read('s', 'e-0', 10)).messages).toHaveLength(3);
    now += 1;
    expect(await store.read('s', 'e-0', 10)).toEqual({ cursor: 'e-3', gap: 'expired', messages: [], more: false });
    expect(store.size).toBe(0);
    expect(await store.head()).toBe('e-3');
  });
});

describe('MemoryStore data and lifecycle', () => {
  it('keeps a private copy of bytes, as a plain Uint8Array', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const source = Buffer.from([1, 2, 3]);
    const stored = await store.append({ to: ALL, data: source });
    source[0] = 9;
    expect(stored.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(stored.data)).toBe(false);
    expect([...(stored.data as Uint8Array)]).toEqual([1, 2, 3]);
  });

  it('rejects appends after close and forgets its listeners', async () => {
    const store = new MemoryStore({ epoch: 'e' });
    const heard: string[] = [];
    store.subscribe((message) => heard.push(message.id));
    await store.close();
    await expect(store.append({ to: ALL, data: 1 })).rejects.toThrow(/after close/);
    expect(heard).toEqual([]);
  });
});
