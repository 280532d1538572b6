/**
 * The shared session state of the Redis store (src/server/shared-state.ts, src/server/redis/), with two
 * store instances on one redis-server standing for two server processes: sessions (§3.3), the
 * upstream sequence (§8) under concurrency, single-use tickets (§3.4), long-polling connections
 * (§7.4), signals between processes, and how a session's end and expiry take its memberships (§6.5).
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UnbrokenTypeError, type Signal } from '../../src/server/index.js';
import { RedisStore } from '../../src/server/redis/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const TTL = 60_000;
/**
 * A ttl meant to run out during a test: it need only outlast the few round trips between writing a
 * key and touching it, a wide margin, and it keeps the test quick. Expiry is waited for, never slept on.
 */
const EXPIRING = 500;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisServer;
let prefixes = 0;
const stores: RedisStore[] = [];

/** Two processes sharing one prefix. */
async function processes(): Promise<[RedisStore, RedisStore, Error[]]> {
  const prefix = `state${++prefixes}`;
  const reports: Error[] = [];
  const pair = [new RedisStore({ url: server.url, prefix }), new RedisStore({ url: server.url, prefix })] as const;
  for (const store of pair) {
    stores.push(store);
    store.onError((error) => reports.push(error));
    await store.ready();
  }
  return [pair[0], pair[1], reports];
}

/** Resolves once `read()` finds nothing: an expiry seen, not a sleep hoping it happened. */
async function gone(read: () => Promise<unknown>): Promise<void> {
  await vi.waitFor(async () => expect(await read()).toBeNull(), { timeout: 10_000, interval: 25 });
}

const session = (id: string, key = 'key-aaaaaaaaaaaaaaaa', user: { id: string; role?: string } | null = null) => ({ id, key, user });

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
});
afterAll(() => server.stop());

describe('RedisStore sessions', () => {
  it('§3.3 creates a session once: of two processes creating it at once, one creates, both get the same key', async () => {
    const [a, b] = await processes();
    const results = await Promise.all([a.createSession(session('s1', 'key-from-a-aaaaaaaa'), TTL), b.createSession(session('s1', 'key-from-b-bbbbbbbb'), TTL)]);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(results[0]!.session).toEqual(results[1]!.session);
    expect(await b.getSession('s1')).toEqual({ id: 's1', key: results[0]!.session.key, user: null, processed: 0, born: results[0]!.session.born });
  });

  it('§3.3.same-id marks each incarnation of a session id: the same for every process, another once it was created anew', async () => {
    const [a, b] = await processes();
    const first = (await a.createSession(session('s1'), TTL)).session.born;
    expect(first).toMatch(/^[0-9a-z]{10}$/);
    expect((await b.createSession(session('s1'), TTL)).session.born).toBe(first);
    expect((await b.getSession('s1'))?.born).toBe(first);
    await b.deleteSession('s1');
    const second = (await b.createSession(session('s1'), TTL)).session.born;
    expect(second).toMatch(/^[0-9a-z]{10}$/);
    expect(second).not.toBe(first);
    expect((await a.getSession('s1'))?.born).toBe(second);
    // A session an older version created has no mark: read as none.
    const raw = new Redis(server.url);
    try {
      await raw.hdel(`state${prefixes}:session:s1`, 'born');
    } finally {
      raw.disconnect();
    }
    expect(await a.getSession('s1')).toEqual({ id: 's1', key: 'key-aaaaaaaaaaaaaaaa', user: null, processed: 0 });
    expect((await b.createSession(session('s1'), TTL)).session.born).toBeUndefined();
  });

  it('§3.5 keeps the identity as JSON and takes a fresh one for a known session only', async () => {
    const [a, b] = await processes();
    await a.createSession(session('s1', 'key-aaaaaaaaaaaaaaaa', { id: 'ada', role: 'admin' }), TTL);
    expect((await b.getSession('s1'))?.user).toEqual({ id: 'ada', role: 'admin' });
    await b.setUser('s1', { id: 'ada', expiresAt: 123 });
    expect((await a.getSession('s1'))?.user).toEqual({ id: 'ada', expiresAt: 123 });
    await b.setUser('unknown', { id: 'ada' });
    expect(await a.getSession('unknown')).toBeNull();
  });

  it('expires a session after its ttl unless touched, and deleteSession ends it at once', async () => {
    const [a, b] = await processes();
    // 'touched' is created before 'short' with the same ttl, so untouched it would expire no later
    // than 'short' (Redis keeps each deadline as an absolute time): once 'short' is gone, only the
    // touch can have kept 'touched'. No fixed sleep; EXPIRING need only outlast three round trips.
    await a.createSession(session('touched'), EXPIRING);
    await a.createSession(session('short'), EXPIRING);
    await a.createSession(session('deleted'), TTL);
    await b.touchSessions(['touched', 'nobody'], TTL);
    await gone(() => b.getSession('short'));
    expect(await b.getSession('touched')).not.toBeNull();
    await b.deleteSession('deleted');
    expect(await a.getSession('deleted')).toBeNull();
  });

  it('§8 claims a batch above the processed count; processed moves only when the hand-over is confirmed', async () => {
    const [a] = await processes();
    const mine = { node: 'node-a', lease: 60_000 };
    await a.createSession(session('s1'), TTL);
    expect(await a.advance('s1', 1, 3, mine)).toEqual({ base: 0 });
    // The same process goes on from its own claim before confirming it.
    expect(await a.advance('s1', 4, 5, mine)).toEqual({ base: 3 });
    expect((await a.getSession('s1'))?.processed).toBe(0);
    await a.confirm('s1', 5);
    expect((await a.getSession('s1'))?.processed).toBe(5);
    expect(await a.advance('s1', 1, 2, mine)).toEqual({ base: 5 });
    // A hole changes nothing.
    expect(await a.advance('s1', 8, 9, mine)).toEqual({ base: 5 });
    expect(await a.advance('s1', 6, 6, mine)).toEqual({ base: 5 });
    expect(await a.advance('nobody', 1, 1, mine)).toBeNull();
    await expect(a.advance('s1', 0, 1, mine)).rejects.toThrow(UnbrokenTypeError);
    await expect(a.advance('s1', 3, 2, mine)).rejects.toThrow(UnbrokenTypeError);
  });

  it('§3.6.exactly-once keeps another process off a claim until its lease runs out, then hands the claimed messages over again', async () => {
    const [a, b] = await processes();
    await a.createSession(session('s1'), TTL);
    expect(await a.advance('s1', 1, 2, { node: 'node-a', lease: 300 })).toEqual({ base: 0 });
    // Process A dies before confirming: B is told to wait while the lease holds…
    const busy = await b.advance('s1', 1, 2, { node: 'node-b', lease: 300 });
    expect(busy).toMatchObject({ busy: expect.any(Number) });
    await new Promise((resolve) => setTimeout(resolve, (busy as { busy: number }).busy + 20));
    // …then hands messages 1 and 2 over itself: at least once, never lost.
    expect(await b.advance('s1', 1, 2, { node: 'node-b', lease: 300 })).toEqual({ base: 0 });
  });

  it('§8 hands every client message over exactly once when two processes receive every one at the same time', async () => {
    const [a, b] = await processes();
    await a.createSession(session('s1'), TTL);
    const handedOver: number[] = [];
    // Both processes get messages 1…100 in order (a resend racing the original): each hands over
    // those above its base, confirms them, and waits while the other holds a claim.
    const receive = async (store: RedisStore, node: string): Promise<void> => {
      for (let seq = 1; seq <= 100; seq++) {
        for (;;) {
          const claimed = await store.advance('s1', seq, seq, { node, lease: 60_000 });
          if (claimed === null) throw new Error('the session is gone');
          if ('busy' in claimed) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            continue;
          }
          if (claimed.base === seq - 1) {
            handedOver.push(seq);
            await store.confirm('s1', seq);
          }
          break;
        }
      }
    };
    await Promise.all([receive(a, 'node-a'), receive(b, 'node-b')]);
    expect(handedOver.sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect((await b.getSession('s1'))?.processed).toBe(100);
  });
});

describe('RedisStore tickets and long-polling connections', () => {
  const grant = { sid: 'session-aaaaaaaaaaa', key: 'key-aaaaaaaaaaaaaaaa', user: { id: 'ada' } };

  it('§3.4.ticket-once admits one taker of a ticket among many at once, across processes', async () => {
    const [a, b] = await processes();
    await a.putTicket('ticket-aaaaaaaaaaaaaa', grant, TTL);
    const taken = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).takeTicket('ticket-aaaaaaaaaaaaaa')));
    expect(taken.filter((value) => value !== null)).toEqual([grant]);
    expect(await a.takeTicket('ticket-aaaaaaaaaaaaaa')).toBeNull();
  });

  it('§3.4.ticket-ttl refuses a ticket past its ttl, and finds no ticket that was never issued', async () => {
    const [a, b] = await processes();
    await a.putTicket('ticket-bbbbbbbbbbbbbb', { sid: null, key: null, user: null }, 100);
    await sleep(150);
    expect(await b.takeTicket('ticket-bbbbbbbbbbbbbb')).toBeNull();
    expect(await b.takeTicket('never-issued')).toBeNull();
    expect(await b.takeTicket('x'.repeat(10_000))).toBeNull();
  });

  it('§3.5.disconnect voids the tickets of a session that ends, and only those', async () => {
    const [a, b] = await processes();
    await a.putTicket('ticket-of-the-session', grant, TTL);
    await a.putTicket('ticket-for-a-new-one', { sid: null, key: null, user: null }, TTL);
    await b.deleteSession(grant.sid);
    expect(await a.takeTicket('ticket-of-the-session')).toBeNull();
    expect(await a.takeTicket('ticket-for-a-new-one')).toEqual({ sid: null, key: null, user: null });
  });

  it('§7.4 finds a long-polling connection from any process while its session is touched, and forgets it with the session', async () => {
    const [a, b] = await processes();
    await a.createSession(session('s1'), EXPIRING);
    await a.putConnection('connection-1', { session: 's1' }, EXPIRING);
    expect(await b.getConnection('connection-1')).toEqual({ session: 's1' });
    await b.touchSessions(['s1'], TTL);
    // A connection of another session, put after connection-1 with the same ttl and never touched:
    // once it is gone, connection-1 would be gone too, unless touching its session kept it.
    await a.putConnection('witness', { session: 'another-session' }, EXPIRING);
    await gone(() => b.getConnection('witness'));
    expect(await a.getConnection('connection-1')).toEqual({ session: 's1' });
    await a.deleteSession('s1');
    expect(await b.getConnection('connection-1')).toBeNull();
    expect(await b.getConnection('unknown')).toBeNull();
  });

  it('§4.1.size keeps a long-polling connection\'s batch limit for every process; a value that is no record reads as no connection', async () => {
    const [a, b] = await processes();
    await a.createSession(session('s1'), TTL);
    await a.putConnection('connection-1', { session: 's1', max: 4096 }, TTL);
    expect(await b.getConnection('connection-1')).toEqual({ session: 's1', max: 4096 });
    // Keys written under the store's prefix by an older process (the session id alone), or by someone else.
    const foreign = [
      'not an id',
      '{broken',
      '{"max":4096}',
      '{"session":7}',
      '{"session":""}',
      `{"session":"${'x'.repeat(65)}"}`,
      ...[-1, 0, 1.5, 2 ** 60, '"4096"', '[]', 'null'].map((max) => `{"session":"s1","max":${max}}`),
    ];
    const raw = new Redis(server.url);
    try {
      await raw.set(`state${prefixes}:poll:older`, 's1');
      for (const [index, value] of foreign.entries()) await raw.set(`state${prefixes}:poll:foreign-${index}`, value);
    } finally {
      raw.disconnect();
    }
    expect(await b.getConnection('older')).toEqual({ session: 's1' });
    for (const [index, value] of foreign.entries()) expect(await b.getConnection(`foreign-${index}`), value).toBeNull();
  });
});

describe('RedisStore memberships and the end of a session (§6.5.session)', () => {
  it('§3.3.same-id-fresh starts a session created under the id of one that ended without its messages and memberships', async () => {
    const [a, b] = await processes();
    const start = await a.head();
    await a.createSession(session('s1'), TTL);
    await a.join('s1', 'lobby');
    await b.append({ to: { kind: 'session', session: 's1' }, data: 'to the first' });
    await b.append({ to: { kind: 'rooms', rooms: ['lobby'] }, data: 'to its room' });
    const everyone = await b.append({ to: { kind: 'all' }, data: 'to everyone' });
    // Ended by its process crashing (its entries expire), or deleted: either way, created anew.
    await b.deleteSession('s1');
    expect((await b.createSession(session('s1', 'key-bbbbbbbbbbbbbbbb'), TTL)).created).toBe(true);
    const { messages } = await a.read('s1', start, 10);
    expect(messages.map((message) => message.id)).toEqual([everyone.id]);
    expect(await a.roomsOf('s1')).toEqual([]);
  });

  it('ends the open memberships of a deleted session at the head, and keeps its stream until a session is created under its id', async () => {
    const [a, b] = await processes();
    const start = await a.head();
    await a.createSession(session('s1'), TTL);
    await a.join('s1', 'lobby');
    await a.join('s1', 'kitchen');
    const sent = await b.append({ to: { kind: 'rooms', rooms: ['lobby'] }, data: 'while in' });
    await b.deleteSession('s1');
    await a.append({ to: { kind: 'rooms', rooms: ['lobby', 'kitchen'] }, data: 'after the end' });
    expect(await a.members('lobby')).toEqual([]);
    expect(await a.roomsOf('s1')).toEqual([]);
    expect(await a.leave('s1', 'lobby')).toBeNull();
    const { messages } = await b.read('s1', start, 10);
    expect(messages.map((message) => message.id)).toEqual([sent.id]);
  });

  it('lets the memberships of a session that expired (its process crashed) expire with it', async () => {
    const [a, b] = await processes();
    await a.createSession(session('s1'), 150);
    await a.join('s1', 'lobby');
    await b.createSession(session('s2'), TTL);
    await b.join('s2', 'lobby');
    expect((await b.members('lobby')).sort()).toEqual(['s1', 's2']);
    await sleep(200);
    expect(await b.members('lobby')).toEqual(['s2']);
    expect(await b.roomsOf('s1')).toEqual([]);
  });
});

describe('RedisStore signals', () => {
  /**
   * Subscribes `store` and resolves once its subscription is in place — once it hears a signal of its
   * own: pub/sub delivers only to those subscribed when a message is published.
   */
  async function listen(store: RedisStore, heard: Signal[]): Promise<void> {
    const warmUp: Signal = { kind: 'ended', session: 'warm-up', node: 'test', at: 1 };
    let ready = false;
    store.subscribeSignals((signal) => {
      if (signal.session === 'warm-up') ready = true;
      else heard.push(signal);
    });
    await store.publish(warmUp);
    await vi.waitFor(() => expect(ready).toBe(true));
  }

  it('carries a signal to every process, the one that published it included', async () => {
    const [a, b] = await processes();
    const heardA: Signal[] = [];
    const heardB: Signal[] = [];
    await listen(a, heardA);
    await listen(b, heardB);
    const signals: Signal[] = [
      { kind: 'attached', session: 's1', node: 'node-a', at: 2 },
      { kind: 'frame', session: 's1', node: 'node-a', frame: { t: 'ack', s: 7 } },
      { kind: 'user', session: 's1', user: { id: 'ada', expiresAt: 5 } },
      { kind: 'ended', session: 's1', node: 'node-b', at: 3 },
      { kind: 'ended', session: 's1', node: 'node-b', at: 4, born: 'abcdefghij' },
      { kind: 'close', session: 's1', node: 'node-b', born: 'abcdefghij' },
    ];
    for (const signal of signals) await a.publish(signal);
    await vi.waitFor(() => expect(heardB).toEqual(signals));
    await vi.waitFor(() => expect(heardA).toEqual(signals));
  });

  it('reports and drops a message on the channel that is not a signal', async () => {
    const [a, , reports] = await processes();
    const heard: Signal[] = [];
    await listen(a, heard);
    // Someone else publishing on the store's channel.
    const raw = new Redis(server.url);
    try {
      await raw.publish(`state${prefixes}:signals`, '{"kind":"nonsense","session":"s1"}');
      await raw.publish(`state${prefixes}:signals`, 'not json');
      await raw.publish(`state${prefixes}:signals`, '{"kind":"ended","session":"s1","node":"n","at":1,"born":7}');
      await raw.publish(`state${prefixes}:signals`, '{"kind":"close","session":"s1","node":"n"}');
    } finally {
      raw.disconnect();
    }
    await vi.waitFor(() => expect(reports.filter((report) => /that is not a signal/.test(report.message))).toHaveLength(4));
    expect(heard).toEqual([]);
  });
});
