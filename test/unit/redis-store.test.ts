/**
 * What only the Redis store (src/server/redis/) does, on a real redis-server: ids and epochs across a
 * Redis that lost its data (§6.2, §6.3), one order for several processes (§6.5), retention kept in
 * the keys it documents, the one blocking reader per store, and what it reports when Redis is
 * unreachable, restarted or stalled. The contract it shares with MemoryStore is in server-store*.test.ts.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UnbrokenTypeError, type Address, type MessageStore, type StoredMessage } from '../../src/server/index.js';
import { RedisStore, type RedisStoreOptions } from '../../src/server/redis/index.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { deferred } from '../helpers/signals.js';

const ALL: Address = { kind: 'all' };
/** How long the stall test keeps Redis stopped: `UNBROKEN_REDIS_PAUSE_MS=5000` for the full-length run. */
const PAUSE = Number(process.env.UNBROKEN_REDIS_PAUSE_MS ?? 1_500);

const ids = (messages: readonly StoredMessage[]): string[] => messages.map((message) => message.id);
/** Orders `<epoch>-<ms>-<seq>` ids of one epoch. */
const compareIds = (a: string, b: string): number => {
  const [, msA = 0, seqA = 0] = a.split('-').map(Number);
  const [, msB = 0, seqB = 0] = b.split('-').map(Number);
  return msA - msB || seqA - seqB;
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function fill(store: MessageStore, count: number, to: Address = ALL): Promise<string[]> {
  const appended: string[] = [];
  for (let i = 1; i <= count; i++) appended.push((await store.append({ to, data: i })).id);
  return appended;
}

let prefixes = 0;
const stores: RedisStore[] = [];
const clients: Redis[] = [];

/** A store on `server` under a fresh prefix, or the `prefix` given (stores sharing one are processes of one deployment). */
async function open(server: RedisServer, options: RedisStoreOptions = {}): Promise<{ store: RedisStore; reports: Error[] }> {
  const store = new RedisStore({ url: server.url, prefix: `redis-test${++prefixes}`, ...options });
  const reports: Error[] = [];
  store.onError((error) => reports.push(error));
  stores.push(store);
  await store.ready();
  return { store, reports };
}

function inspect(server: RedisServer): Redis {
  const client = new Redis(server.url);
  clients.push(client);
  return client;
}

const messages = (reports: readonly Error[]): string[] => reports.map((report) => report.message);

/** The connections Redis has, one line each (`CLIENT LIST`). */
async function connectionsOf(redis: Redis): Promise<string[]> {
  return String(await redis.client('LIST'))
    .trim()
    .split('\n');
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  clients.splice(0).forEach((client) => client.disconnect());
});

describe('RedisStore ids, epochs and order', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('issues <epoch>-<ms>-<seq> ids, starting after <epoch>-0-0, with one epoch for every process of a prefix', async () => {
    const { store } = await open(server, { prefix: 'shared-epoch' });
    const { store: other } = await open(server, { prefix: 'shared-epoch' });
    const head = await store.head();
    expect(head).toMatch(/^[0-9a-z]{10}-0-0$/);
    const epoch = head.split('-')[0];
    const [a, b] = [await store.append({ to: ALL, data: 1 }), await other.append({ to: ALL, data: 2 })];
    for (const { id } of [a, b]) expect(id).toMatch(new RegExp(`^${epoch}-[1-9][0-9]*-[0-9]+$`));
    expect(await other.head()).toBe(b.id);
  });

  it('orders the appends of several processes in one order, which every process reads alike', async () => {
    const { store: a } = await open(server, { prefix: 'one-order' });
    const { store: b } = await open(server, { prefix: 'one-order' });
    const start = await a.head();
    await Promise.all([...Array.from({ length: 50 }, (_, i) => a.append({ to: ALL, data: `a${i}` })), ...Array.from({ length: 50 }, (_, i) => b.append({ to: ALL, data: `b${i}` }))]);
    const [fromA, fromB] = [await a.read('s', start, 1000), await b.read('s', start, 1000)];
    expect(fromA.messages).toHaveLength(100);
    expect(ids(fromB.messages)).toEqual(ids(fromA.messages));
  });

  it('§6.5.interval places a join at the head as of the join, amid another process appending to the room', async () => {
    const { store: a } = await open(server, { prefix: 'join-order' });
    const { store: b } = await open(server, { prefix: 'join-order' });
    const start = await a.head();
    await a.join('bob', 'lobby');
    // b appends one message after another (each its own script call); a joins once the first half
    // is stored, while b goes on with the second: the join lands amid the appends by construction.
    const stored: string[] = [];
    const halfStored = deferred();
    const sending = (async () => {
      for (let i = 0; i < 60; i++) {
        stored.push((await b.append({ to: { kind: 'rooms', rooms: ['lobby'] }, data: i })).id);
        if (stored.length === 30) halfStored.resolve();
      }
    })();
    // An append that fails before the half would otherwise leave the test waiting.
    sending.catch((error: unknown) => halfStored.reject(error));
    await halfStored.promise;
    const storedBeforeJoin = stored.length;
    const joined = await a.join('alice', 'lobby');
    await sending;
    const bob = ids((await a.read('bob', start, 1000)).messages);
    const alice = ids((await b.read('alice', start, 1000)).messages);
    expect(bob).toEqual(stored);
    // The head as of the join: at or after every append that had resolved before it was called.
    expect(bob.indexOf(joined)).toBeGreaterThanOrEqual(storedBeforeJoin - 1);
    // Alice's stream is exactly what the room got after her join's position.
    expect(alice).toEqual(bob.slice(bob.indexOf(joined) + 1));
  });

  it('sends the appends of one turn as one script call per batch of 128, each resolved with its own id, in call order', async () => {
    const { store } = await open(server, { prefix: 'batched' });
    const redis = inspect(server);
    await store.head();
    await redis.config('RESETSTAT');
    const to = (i: number): Address => (i % 3 === 0 ? { kind: 'session', session: `s${i % 5}` } : i % 3 === 1 ? { kind: 'rooms', rooms: ['a', 'b'] } : ALL);
    const stored = await Promise.all(Array.from({ length: 300 }, (_, i) => store.append({ to: to(i), data: i, ...(i % 7 === 0 ? { event: 'tick' } : {}) })));
    // EVALSHA, or EVAL for the script's first call on this connection (after a refused EVALSHA).
    const stats = await redis.info('commandstats');
    const calls = (command: string): number => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('evalsha') + calls('eval')).toBe(Math.ceil(300 / 128));
    expect(stored.map((message) => message.data)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect([...ids(stored)].sort(compareIds)).toEqual(ids(stored));
    expect(new Set(ids(stored)).size).toBe(300);
    // Each message is read back where its address puts it, with its event.
    const s0 = await store.read('s0', (await store.head()).replace(/-\d+-\d+$/, '-0-0'), 1000);
    expect(s0.messages.map((message) => message.data)).toEqual(Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 3 === 2 || (i % 3 === 0 && i % 5 === 0)));
    expect(s0.messages.find((message) => message.data === 0)).toMatchObject({ event: 'tick', to: { kind: 'session', session: 's0' } });
  });

  it('§6.5.interval keeps a join after the appends called before it and before those called after it, in one turn', async () => {
    const { store } = await open(server, { prefix: 'batched-join' });
    const start = await store.head();
    const room: Address = { kind: 'rooms', rooms: ['lobby'] };
    const before = [store.append({ to: room, data: 'before' }), store.append({ to: room, data: 'before, too' })];
    const joined = store.join('carol', 'lobby');
    const after = store.append({ to: room, data: 'after' });
    await Promise.all([...before, joined, after]);
    expect((await store.read('carol', start, 10)).messages.map((message) => message.data)).toEqual(['after']);
  });

  it('keeps no membership of a session that joins and leaves a room no message was sent to, however often, and keeps one a message fell in', async () => {
    const { store } = await open(server, { prefix: 'quiet-churn' });
    const redis = inspect(server);
    const start = await store.head();
    await store.append({ to: ALL, data: 'traffic elsewhere' });
    for (let cycle = 0; cycle < 500; cycle++) {
      await store.join('dave', 'quiet');
      await store.leave('dave', 'quiet');
    }
    expect(await redis.hget('quiet-churn:rooms:dave', 'quiet')).toBeNull();
    await store.join('dave', 'quiet');
    await store.append({ to: { kind: 'rooms', rooms: ['quiet'] }, data: 'to the room' });
    await store.leave('dave', 'quiet');
    await store.append({ to: { kind: 'rooms', rooms: ['quiet'] }, data: 'after the leave' });
    expect((await redis.hget('quiet-churn:rooms:dave', 'quiet'))?.split(' ')).toHaveLength(2);
    expect((await store.read('dave', start, 10)).messages.map((message) => message.data)).toEqual(['traffic elsewhere', 'to the room']);
  });

  it('stores the JSON text an append is given, and hands subscribers the text as stored with each message of JSON data', async () => {
    const { store } = await open(server, { prefix: 'data-text' });
    const heard: { data: unknown; dataText: string | undefined }[] = [];
    let last: () => void = () => undefined;
    store.subscribe((message, dataText) => {
      heard.push({ data: message.data, dataText });
      if (heard.length === 4) last();
    });
    const allHeard = new Promise<void>((resolve) => (last = resolve));
    // Text as the caller serialised it is stored as it is (spaces included), not serialised again.
    await store.append({ to: ALL, data: { a: 1 } }, '{ "a": 1 }');
    await store.append({ to: ALL, data: ['é', 2] });
    await store.append({ to: ALL, data: new Uint8Array([1, 2]) });
    await store.append({ to: ALL, event: 'tick', data: 'text' }, '"text"');
    await allHeard;
    expect(heard).toEqual([
      { data: { a: 1 }, dataText: '{ "a": 1 }' },
      { data: ['é', 2], dataText: '["é",2]' },
      { data: new Uint8Array([1, 2]), dataText: undefined },
      { data: 'text', dataText: '"text"' },
    ]);
  });

  it('evicts within one batch as append by append would: the newest maxMessages stay, and a reader from before is told of the gap', async () => {
    const { store } = await open(server, { prefix: 'batched-trim', maxMessages: 50 });
    const start = await store.head();
    const stored = await Promise.all(Array.from({ length: 120 }, (_, i) => store.append({ to: ALL, data: i })));
    const page = await store.read('s', start, 1000);
    expect(page.gap).toBe('expired');
    expect(ids(page.messages)).toEqual(ids(stored.slice(70)));
  });

  it('§6.2 starts a new epoch when Redis lost its data: an old id gets one unknown-epoch gap, then the new epoch', async () => {
    const own = await startRedisServer();
    try {
      const { store, reports } = await open(own);
      const before = await fill(store, 3);
      await own.restart();
      const resumed = await store.read('s', before[2]!, 10);
      expect(resumed).toMatchObject({ gap: 'unknown-epoch', messages: [], more: false });
      expect(resumed.cursor.split('-')[0]).not.toBe(before[2]!.split('-')[0]);
      expect(resumed.cursor).toMatch(/-0-0$/);
      const after = await fill(store, 2);
      expect(after[0]!.split('-')[0]).toBe(resumed.cursor.split('-')[0]);
      const next = await store.read('s', resumed.cursor, 10);
      expect(next.gap).toBeUndefined();
      expect(ids(next.messages)).toEqual(after);
      // The outage was told, as plain words.
      expect(messages(reports)).toContainEqual(expect.stringMatching(/^lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+ \(commands\); reconnecting$/));
      expect(messages(reports)).toContainEqual(expect.stringMatching(/^reconnected to Redis at redis:\/\/127\.0\.0\.1:\d+ \(commands\) after \d+ ms$/));
      for (const report of reports) expect(report).toMatchObject({ name: 'UnbrokenServerError', code: 'STORE_ERROR' });
    } finally {
      await own.stop();
    }
  });
});

describe('RedisStore retention in Redis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('trims the feed and the index streams to maxMessages, and lets index streams expire after 2 × maxAge', async () => {
    const { store } = await open(server, { prefix: 'trim', maxMessages: 10, maxAge: 60_000 });
    const redis = inspect(server);
    await store.join('alice', 'lobby');
    for (let i = 0; i < 40; i++) await store.append({ to: i % 2 ? { kind: 'rooms', rooms: ['lobby'] } : { kind: 'session', session: 'alice' }, data: i });
    expect(await redis.xlen('trim:feed')).toBe(10);
    expect(await redis.xlen('trim:x:r:lobby')).toBeLessThanOrEqual(10);
    expect(await redis.xlen('trim:x:s:alice')).toBeLessThanOrEqual(10);
    const ttl = await redis.pttl('trim:x:r:lobby');
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
  });

  it('drops closed memberships once retention passed their end', async () => {
    const { store } = await open(server, { prefix: 'intervals', maxMessages: 2 });
    const redis = inspect(server);
    for (let round = 0; round < 30; round++) {
      await store.join('alice', 'lobby');
      await store.append({ to: { kind: 'rooms', rooms: ['lobby'] }, data: round });
      await store.leave('alice', 'lobby');
      await store.append({ to: ALL, data: round });
    }
    const positions = (await redis.hget('intervals:rooms:alice', 'lobby'))!.split(' ');
    expect(positions.length).toBeLessThanOrEqual(4);
  });

  it('measures age with Redis’s clock: messages older than maxAge are gone on the next read', async () => {
    const { store } = await open(server, { maxAge: 200 });
    const start = await store.head();
    const old = await fill(store, 3);
    await sleep(250);
    const fresh = await fill(store, 1);
    const result = await store.read('s', start, 10);
    expect(result).toMatchObject({ gap: 'expired', cursor: old[2] });
    expect(ids(result.messages)).toEqual(fresh);
  });
});

describe('RedisStore live delivery', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('fans every append of every process out to all subscribers, in append order, with one reader per store', async () => {
    const { store: a } = await open(server, { prefix: 'fan-out' });
    const { store: b } = await open(server, { prefix: 'fan-out' });
    const heard: string[][] = [[], [], []];
    for (const list of heard) a.subscribe((message) => list.push(message.id));
    const start = await a.head();
    await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).append({ to: i % 3 ? ALL : { kind: 'session', session: `s${i}` }, data: i })));
    const all = (await b.read('s', start, 1000)).messages.map((message) => message.id);
    await vi.waitFor(() => expect(heard[0]).toHaveLength(200));
    expect(heard[1]).toEqual(heard[0]);
    expect(heard[2]).toEqual(heard[0]);
    // In the one append order: the broadcasts in it are in the order every stream reads them.
    expect(heard[0]!.filter((id) => all.includes(id))).toEqual(all);
    const blocking = (await connectionsOf(inspect(server))).filter((line) => line.includes('cmd=xread'));
    expect(blocking).toHaveLength(1);
  });

  it('reports a failed blocking read and goes on delivering', async () => {
    const { store, reports } = await open(server);
    const heard: unknown[] = [];
    store.subscribe((message) => heard.push(message.data));
    await store.append({ to: ALL, data: 'before' });
    await vi.waitFor(() => expect(heard).toEqual(['before']));
    const redis = inspect(server);
    const reader = (await connectionsOf(redis)).find((line) => line.includes('cmd=xread'));
    const id = /\bid=(\d+)/.exec(reader ?? '')?.[1];
    expect(id).toBeDefined();
    await redis.client('UNBLOCK', id!, 'ERROR');
    await vi.waitFor(() => expect(messages(reports)).toContain('the blocking reader of the feed failed; it retries'));
    await store.append({ to: ALL, data: 'after' });
    await vi.waitFor(() => expect(heard).toEqual(['before', 'after']));
  });

  it('goes on after Redis restarted without its data: subscribers hear the new epoch from its start, nothing twice', async () => {
    const own = await startRedisServer();
    try {
      const { store: a } = await open(own, { prefix: 'restart' });
      const { store: b } = await open(own, { prefix: 'restart' });
      const heard: string[] = [];
      a.subscribe((message) => heard.push(message.id));
      // The reader starts where the feed stood when its first command reached Redis, sent on a's
      // connection: a's next answer comes after it, so b's appends from then on are after it too.
      await a.head();
      const before = await fill(b, 3);
      await vi.waitFor(() => expect(heard).toEqual(before));
      await own.restart();
      const after = await fill(b, 3);
      await vi.waitFor(() => expect(heard).toEqual([...before, ...after]));
      expect(after[0]!.split('-')[0]).not.toBe(before[0]!.split('-')[0]);
    } finally {
      await own.stop();
    }
  });
});

describe('RedisStore after FLUSHALL', () => {
  it('§6.2 starts a new epoch without any reconnection, and subscribers hear it from its start', async () => {
    const own = await startRedisServer();
    try {
      const { store } = await open(own);
      const heard: string[] = [];
      store.subscribe((message) => heard.push(message.id));
      const before = await fill(store, 2);
      await vi.waitFor(() => expect(heard).toEqual(before));
      await inspect(own).flushall();
      const after = await fill(store, 2);
      await vi.waitFor(() => expect(heard).toEqual([...before, ...after]));
      const resumed = await store.read('s', before[1]!, 10);
      expect(resumed).toMatchObject({ gap: 'unknown-epoch' });
      expect(ids(resumed.messages)).toEqual(after);
    } finally {
      await own.stop();
    }
  });
});

describe('RedisStore when Redis is unreachable or stalled', () => {
  it('rejects ready() with a clear STORE_ERROR within connectTimeout when nothing listens, without a password in it', async () => {
    const port = await freePort();
    const store = new RedisStore({ url: `redis://user:hunter2@127.0.0.1:${port}`, connectTimeout: 400 });
    stores.push(store);
    const started = Date.now();
    const error = await store.ready().then(
      () => null,
      (reason: unknown) => reason as Error & { code?: string },
    );
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error).toMatchObject({ name: 'UnbrokenServerError', code: 'STORE_ERROR' });
    expect(error!.message).toMatch(new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(error!.message).not.toContain('hunter2');
  });

  it(`reports a stalled Redis (stopped ${PAUSE} ms) and completes the append that waited, once it runs again`, async () => {
    const own = await startRedisServer();
    try {
      const { store, reports } = await open(own, { slowCommandWarning: 300 });
      const start = await store.head();
      const heard: unknown[] = [];
      store.subscribe((message) => heard.push(message.data));
      own.pause();
      const stoppedAt = Date.now();
      const appending = store.append({ to: ALL, data: 'during the stall' });
      let storedAt = 0;
      void appending.then(() => (storedAt = Date.now()));
      await vi.waitFor(() => expect(messages(reports)).toContainEqual(expect.stringMatching(/^Redis at redis:\/\/127\.0\.0\.1:\d+ has not answered [\w ]+ for \d+ ms; still waiting/)), {
        timeout: PAUSE,
      });
      expect(Date.now() - stoppedAt).toBeLessThan(PAUSE);
      await sleep(PAUSE - (Date.now() - stoppedAt));
      const resumedAt = Date.now();
      own.resume();
      const stored = await appending;
      expect(storedAt).toBeGreaterThanOrEqual(resumedAt);
      expect(ids((await store.read('s', start, 10)).messages)).toEqual([stored.id]);
      await vi.waitFor(() => expect(heard).toEqual(['during the stall']));
      await vi.waitFor(() => expect(messages(reports)).toContainEqual(expect.stringMatching(/ answers again, after \d+ ms$/)));
    } finally {
      own.resume();
      await own.stop();
    }
  }, 20_000 + PAUSE);
});

describe('RedisStore options and connections', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it.each([
    ['url and client', () => new RedisStore({ url: 'redis://localhost', client: new Redis({ lazyConnect: true }) })],
    ['a client with a keyPrefix', () => new RedisStore({ client: new Redis({ lazyConnect: true, keyPrefix: 'app:' }) })],
    ['an empty prefix', () => new RedisStore({ prefix: '' })],
    ['maxMessages 0', () => new RedisStore({ maxMessages: 0 })],
    ['maxAge 1.5', () => new RedisStore({ maxAge: 1.5 })],
    ['slowCommandWarning 0', () => new RedisStore({ slowCommandWarning: 0 })],
  ])('refuses %s with INVALID_OPTION', (_name, create) => {
    let thrown: unknown;
    try {
      stores.push(create());
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UnbrokenTypeError);
    expect(thrown).toMatchObject({ code: 'INVALID_OPTION' });
  });

  it('works on a client it is given, and leaves it open when it closes (its own duplicates closed)', async () => {
    const client = inspect(server);
    const store = new RedisStore({ client, prefix: 'given' });
    await store.ready();
    const heard: string[] = [];
    store.subscribe((message) => heard.push(message.id));
    store.subscribeSignals(() => undefined);
    const { id } = await store.append({ to: ALL, data: 1 });
    await vi.waitFor(() => expect(heard).toEqual([id]));
    await store.close();
    expect(await client.ping()).toBe('PONG');
    await vi.waitFor(async () => expect(await connectionsOf(client)).toHaveLength(1));
  });
});
