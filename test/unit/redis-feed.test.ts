/**
 * What the Redis store's subscribers hear besides messages, on a real redis-server with two store
 * instances standing for two server processes: every change of membership, by any process, in append
 * order with the messages (§6.5); the ends of a session's memberships; one `historyLost` per new
 * epoch, before anything of it (§6.2); and retention by count, which membership changes do not use up.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Address } from '../../src/server/index.js';
import { RedisStore, type RedisStoreOptions } from '../../src/server/redis/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const ALL: Address = { kind: 'all' };
const room = (...rooms: string[]): Address => ({ kind: 'rooms', rooms });
const TTL = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let prefixes = 0;
const stores: RedisStore[] = [];
const clients: Redis[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  clients.splice(0).forEach((client) => client.disconnect());
});

/** Store instances sharing one prefix: the processes of one deployment. */
async function processes(server: RedisServer, count: number, options: RedisStoreOptions = {}): Promise<RedisStore[]> {
  const prefix = `feed${++prefixes}`;
  const opened: RedisStore[] = [];
  for (let i = 0; i < count; i++) {
    const store = new RedisStore({ url: server.url, prefix, ...options });
    stores.push(store);
    await store.ready();
    opened.push(store);
  }
  return opened;
}

/** What one subscriber heard, one line each: `m <data>`, `+ <session> <room>`, `- <session> <room>`, `lost`. */
function listen(store: RedisStore): string[] {
  const heard: string[] = [];
  store.subscribe((message) => heard.push(`m ${String(message.data)}`), {
    membership: ({ session, room, joined }) => heard.push(`${joined ? '+' : '-'} ${session} ${room}`),
    historyLost: () => heard.push('lost'),
  });
  return heard;
}

/** Appends a broadcast and waits until `heard` ends with it: whatever was told before it was told by then. */
async function mark(store: RedisStore, heard: readonly string[], label: string): Promise<void> {
  await store.append({ to: ALL, data: label });
  await vi.waitFor(() => expect(heard.at(-1)).toBe(`m ${label}`));
}

describe('RedisStore membership changes (§6.5)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('tells another process every join and leave in append order with the messages around it', async () => {
    const [a, b] = await processes(server, 2);
    const heard = listen(b!);
    const other = listen(b!);
    await mark(a!, heard, 'start');
    await a!.append({ to: room('lobby'), data: 'before join' });
    await a!.join('alice', 'lobby');
    await b!.append({ to: room('lobby'), data: 'while in' });
    await a!.join('alice', 'kitchen');
    await a!.leave('alice', 'lobby');
    await a!.append({ to: room('lobby'), data: 'after leave' });
    await b!.leave('alice', 'kitchen');
    await mark(a!, heard, 'end');
    expect(heard).toEqual([
      'm start',
      'm before join',
      '+ alice lobby',
      'm while in',
      '+ alice kitchen',
      '- alice lobby',
      'm after leave',
      '- alice kitchen',
      'm end',
    ]);
    expect(other).toEqual(heard);
  });

  it('places each change exactly where its position lies among messages another process appends meanwhile', async () => {
    const [a, b, c] = await processes(server, 3);
    const heard = listen(c!);
    await mark(a!, heard, 'start');
    const ids: string[] = [];
    /** Per change, how many of b's messages were heard before it. */
    const told = new Map<string, number>();
    c!.subscribe((message) => ids.push(message.id), {
      membership: ({ session, joined }) => told.set(`${joined ? '+' : '-'}${session}`, ids.length),
    });
    const start = await a!.head();
    const sending = Promise.all(Array.from({ length: 80 }, (_, i) => b!.append({ to: room('lobby'), data: i })));
    const positions = new Map<string, string>();
    for (let i = 0; i < 4; i++) {
      positions.set(`+s${i}`, await a!.join(`s${i}`, 'lobby'));
      positions.set(`-s${i}`, (await a!.leave(`s${i}`, 'lobby'))!);
    }
    await sending;
    await mark(a!, heard, 'end');
    expect(told.size).toBe(8);
    for (const [change, position] of positions) {
      // After every message up to its position (the head as of the change), before every later one.
      expect(told.get(change), change).toBe(position === start ? 0 : ids.indexOf(position) + 1);
    }
  });

  it('reports a subscriber that throws on a change as LISTENER_ERROR, and the others still hear it', async () => {
    const [a, b] = await processes(server, 2);
    const reports: Error[] = [];
    b!.onError((error) => reports.push(error));
    b!.subscribe(() => undefined, {
      membership: () => {
        throw new Error('listener bug');
      },
    });
    const heard = listen(b!);
    await a!.join('alice', 'lobby');
    await mark(a!, heard, 'end');
    expect(heard).toEqual(['+ alice lobby', 'm end']);
    const listenerErrors = reports.filter((report) => (report as Error & { code?: string }).code === 'LISTENER_ERROR');
    expect(listenerErrors).toMatchObject([{ message: 'a subscriber of the store threw', cause: { message: 'listener bug' } }]);
  });

  it('tells nothing for a join that changes nothing or a leave of a room the session is not in', async () => {
    const [a, b] = await processes(server, 2);
    const heard = listen(b!);
    await a!.join('alice', 'lobby');
    await a!.join('alice', 'lobby');
    await b!.leave('alice', 'kitchen');
    await b!.leave('bob', 'lobby');
    await mark(a!, heard, 'end');
    expect(heard).toEqual(['+ alice lobby', 'm end']);
  });

  it('§6.5.session tells the end of a session as a leave of each of its rooms, in order with the messages', async () => {
    const [a, b] = await processes(server, 2);
    const heard = listen(b!);
    await a!.createSession({ id: 's1', key: 'key-aaaaaaaaaaaaaaaa', user: null }, TTL);
    await a!.join('s1', 'lobby');
    await a!.join('s1', 'kitchen');
    await a!.join('s2', 'lobby');
    await b!.append({ to: room('lobby'), data: 'before the end' });
    await a!.deleteSession('s1');
    await a!.append({ to: room('lobby'), data: 'after the end' });
    // A leave after the end changes nothing: nothing more is told.
    expect(await b!.leave('s1', 'lobby')).toBeNull();
    await mark(a!, heard, 'end');
    const ends = heard.slice(4, 6);
    expect(heard).toEqual(['+ s1 lobby', '+ s1 kitchen', '+ s2 lobby', 'm before the end', ...ends, 'm after the end', 'm end']);
    expect([...ends].sort()).toEqual(['- s1 kitchen', '- s1 lobby']);
  });

  it('starts a first subscriber after the changes made before it subscribed', async () => {
    const [a, b] = await processes(server, 2);
    await a!.append({ to: ALL, data: 'before' });
    await a!.join('alice', 'lobby');
    const heard = listen(b!);
    // The reader's start is asked on the command connection, in order with what follows.
    await b!.leave('alice', 'lobby');
    await mark(b!, heard, 'end');
    expect(heard).toEqual(['- alice lobby', 'm end']);
  });

  it('never returns membership changes from a read, and keeps head at the last message', async () => {
    const [a] = await processes(server, 1);
    const start = await a!.head();
    const sent = await a!.append({ to: room('lobby'), data: 'r1' });
    await a!.join('alice', 'lobby');
    expect(await a!.head()).toBe(sent.id);
    const after = await a!.append({ to: room('lobby'), data: 'r2' });
    await a!.leave('alice', 'lobby');
    await a!.join('bob', 'lobby');
    expect(await a!.head()).toBe(after.id);
    expect((await a!.read('carol', start, 100)).messages).toEqual([]);
    expect((await a!.read('alice', start, 100)).messages.map((message) => message.data)).toEqual(['r2']);
    // A join's position is the head as of the join, whatever changes of membership precede it.
    expect(await a!.join('alice', 'lobby')).toBe(after.id);
  });
});

describe('RedisStore retention by count with membership changes', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('counts messages only: joins and leaves evict no message, and go with the messages before them', async () => {
    const [a] = await processes(server, 1, { maxMessages: 5 });
    const redis = new Redis(server.url);
    clients.push(redis);
    const prefix = `feed${prefixes}`;
    const start = await a!.head();
    const sent: string[] = [];
    for (let i = 1; i <= 5; i++) sent.push((await a!.append({ to: ALL, data: i })).id);
    for (let i = 0; i < 20; i++) {
      await a!.join(`s${i}`, 'lobby');
      await a!.leave(`s${i}`, 'lobby');
    }
    // The epoch's beginning, five messages and forty changes: every message is still there.
    expect(await redis.xlen(`${prefix}:feed`)).toBe(46);
    expect(await a!.read('s', start, 100)).toEqual({ cursor: start, messages: expect.any(Array), more: false });
    expect((await a!.read('s', start, 100)).messages.map((message) => message.id)).toEqual(sent);
    await a!.join('s0', 'lobby');
    const sixth = await a!.append({ to: ALL, data: 6 });
    // The oldest message went, with the entry before it; the changes after it stay.
    expect(await redis.xlen(`${prefix}:feed`)).toBe(46);
    const result = await a!.read('s', start, 100);
    expect(result).toMatchObject({ gap: 'expired', cursor: sent[0] });
    expect(result.messages.map((message) => message.id)).toEqual([...sent.slice(1), sixth.id]);
    for (let i = 7; i <= 11; i++) await a!.append({ to: ALL, data: i });
    // The changes before the oldest retained message went with the messages around them.
    expect(await redis.xlen(`${prefix}:feed`)).toBe(5);
  });
});

describe('RedisStore retention by age with membership changes', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('drops changes older than maxAge at the next join or leave, without any message', async () => {
    const [a] = await processes(server, 1, { maxAge: 200 });
    const redis = new Redis(server.url);
    clients.push(redis);
    for (let i = 0; i < 10; i++) {
      await a!.join(`s${i}`, 'lobby');
      await a!.leave(`s${i}`, 'lobby');
    }
    expect(await redis.xlen(`feed${prefixes}:feed`)).toBe(21);
    await sleep(250);
    await a!.join('late', 'lobby');
    expect(await redis.xlen(`feed${prefixes}:feed`)).toBe(1);
  });
});

describe('RedisStore history lost (§6.2)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('tells every subscriber once, after Redis restarted without its data, before the new epoch’s first message', async () => {
    const [a, b] = await processes(server, 2, {});
    const heard = listen(b!);
    const other = listen(b!);
    const own = listen(a!);
    await a!.append({ to: ALL, data: 'old 1' });
    await mark(a!, heard, 'old 2');
    await server.restart();
    await a!.append({ to: ALL, data: 'new 1' });
    await a!.join('alice', 'lobby');
    await mark(b!, heard, 'new 2');
    expect(heard).toEqual(['m old 1', 'm old 2', 'lost', 'm new 1', '+ alice lobby', 'm new 2']);
    expect(other).toEqual(heard);
    await vi.waitFor(() => expect(own).toEqual(heard));
  });

  it('tells it once after FLUSHALL, before the new epoch’s first message', async () => {
    const [a, b] = await processes(server, 2, {});
    const heard = listen(b!);
    await mark(a!, heard, 'old');
    const redis = new Redis(server.url);
    clients.push(redis);
    await redis.flushall();
    await a!.append({ to: ALL, data: 'new 1' });
    await mark(a!, heard, 'new 2');
    expect(heard).toEqual(['m old', 'lost', 'm new 1', 'm new 2']);
  });

  it('finds a new epoch without any append: a read of the new epoch does not wait on the reader for ever', async () => {
    const [a] = await processes(server, 1, {});
    const heard = listen(a!);
    await mark(a!, heard, 'old');
    const redis = new Redis(server.url);
    clients.push(redis);
    await redis.flushall();
    const read = await a!.read('s', 'zz-1-0', 10);
    expect(read).toMatchObject({ gap: 'unknown-epoch', messages: [] });
    await vi.waitFor(() => expect(heard).toEqual(['m old', 'lost']), { timeout: 5_000 });
    await mark(a!, heard, 'new');
    expect(heard).toEqual(['m old', 'lost', 'm new']);
  });
});

describe('RedisStore reader overtaken by retention (§6.3)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('tells subscribers to resume their streams when retention evicted messages the reader had not read', async () => {
    const [store] = await processes(server, 1, { maxMessages: 10 });
    const heard: string[] = [];
    store!.subscribe((message) => heard.push(`m ${String(message.data)}`), { overrun: () => heard.push('overrun') });
    await mark(store!, heard, 'before');
    // The reader's connection goes; while it waits to reconnect, 30 appends evict 20 it never read.
    const admin = new Redis(server.url);
    clients.push(admin);
    const list = String(await admin.call('CLIENT', 'LIST'));
    const reader = /id=(\d+) .*cmd=xread/.exec(list);
    expect(reader, list).not.toBeNull();
    await admin.call('CLIENT', 'KILL', 'ID', reader![1]!);
    await Promise.all(Array.from({ length: 30 }, (_, index) => store!.append({ to: ALL, data: `burst ${index}` })));
    await vi.waitFor(() => expect(heard).toContain('overrun'), { timeout: 5000 });
    // Told before the messages that were still retained, which follow in order.
    const after = heard.slice(heard.indexOf('overrun') + 1);
    expect(after).toEqual(Array.from({ length: 10 }, (_, index) => `m burst ${index + 20}`));
  });
});
