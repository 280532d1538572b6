/**
 * The stores the store tests run against, behind one harness each: the same contract tests run on the
 * in-memory store and on the Redis store (a real redis-server, a fresh key prefix per store).
 *
 * Ids are opaque, so the tests take them from what the store returns; the few ids a test must invent
 * (one of another epoch, one past the head) come from the harness, which knows each store's format.
 */
import { afterAll, afterEach } from 'vitest';
import { MemoryStore, type MessageStore } from '../../src/server/index.js';
import { RedisStore } from '../../src/server/redis/index.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

export interface StoreOptions {
  maxMessages?: number;
  maxAge?: number;
}

export interface StoreHarness {
  readonly name: string;
  /** A new, empty store (closed after the test). */
  create(options?: StoreOptions): Promise<MessageStore>;
  /** Lets `ms` pass on the store's clock: a fake clock's for MemoryStore, real time for Redis. */
  elapse(ms: number): Promise<void>;
  /** A well-formed id of another epoch than the store's. */
  foreignId(): string;
  /** A well-formed id of the store's epoch that lies past `head`. */
  beyond(head: string): string;
  /** Closes the stores of the test. */
  cleanup(): Promise<void>;
  /** Releases what the harness holds (a redis-server). */
  teardown(): Promise<void>;
}

export function memoryHarness(): StoreHarness {
  let now = 1_000_000;
  const stores: MemoryStore[] = [];
  return {
    name: 'MemoryStore',
    async create(options = {}) {
      const store = new MemoryStore({ ...options, now: () => now });
      stores.push(store);
      return store;
    },
    async elapse(ms) {
      now += ms;
    },
    foreignId: () => 'zz-9',
    beyond(head) {
      const [epoch, n] = head.split('-');
      return `${epoch}-${Number(n) + 100}`;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((store) => store.close()));
    },
    async teardown() {},
  };
}

let prefixes = 0;

export function redisHarness(): StoreHarness {
  let server: Promise<RedisServer> | undefined;
  const stores: RedisStore[] = [];
  return {
    name: 'RedisStore',
    async create(options = {}) {
      server ??= startRedisServer();
      const { url } = await server;
      // Each store its own prefix: the stores of a file share one redis-server and nothing else.
      const store = new RedisStore({ ...options, url, prefix: `test${++prefixes}-${process.pid}` });
      stores.push(store);
      await store.ready();
      return store;
    },
    async elapse(ms) {
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    foreignId: () => 'zz-1-0',
    beyond(head) {
      const [epoch, ms] = head.split('-');
      return `${epoch}-${Number(ms) + 3_600_000}-0`;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((store) => store.close()));
    },
    async teardown() {
      const started = server;
      server = undefined;
      if (started) await (await started).stop();
    },
  };
}

/** The harnesses of every store. */
export function storeHarnesses(): StoreHarness[] {
  return [memoryHarness(), redisHarness()];
}

/** Closes a harness's stores after each test and releases it after the suite: call inside `describe`. */
export function useHarness(harness: StoreHarness): void {
  afterEach(() => harness.cleanup());
  afterAll(() => harness.teardown());
}
