// @ts-check
/**
 * What one retained message costs Redis: a `RedisStore` (the built one) on an empty redis-server,
 * retention large enough to keep everything, `messages` appends of ~100 B of JSON to one kind of
 * address, and Redis's `used_memory` (`INFO memory`) before and after. Run in a fresh process per case
 * by the runner (bench/lib/processes.mjs `runRedisMemory`), each case on a redis-server of its own:
 *
 *   node bench/lib/redis-memory.mjs '{"url":"redis://127.0.0.1:PORT","address":"room","messages":10000}'
 *
 * Every message is one entry of the feed (the message itself) plus one id entry in the index of each
 * address it has (everyone, one session, each room): `MEMORY USAGE` of the feed and of the index keys
 * splits the total between the two. It reports over IPC `{ result }` (see {@link RedisMemoryResult}),
 * or `{ error }`.
 */
import { Redis } from 'ioredis';
import { pathToFileURL } from 'node:url';
import { payload, REDIS } from './workload.mjs';

/** @typedef {'all' | 'session' | 'room' | 'rooms'} MemoryAddress */
/**
 * @typedef {object} RedisMemoryJob
 * @property {string} url of an empty redis-server
 * @property {MemoryAddress} address `all`: broadcasts; `session`: to one session; `room`: to one room;
 *   `rooms`: to `REDIS.roomsPerMessage` rooms each (workload.mjs)
 * @property {number} messages appended between the two measurements
 */
/**
 * @typedef {object} RedisMemoryResult
 * @property {number} messages
 * @property {number} jsonBytes mean size of a message's data as JSON
 * @property {number} usedPerMessage (used_memory after − before) / messages, in bytes
 * @property {number} feedPerMessage the feed's part (`MEMORY USAGE`)
 * @property {number} indexPerMessage the index streams' part (`MEMORY USAGE`, all of the message's indexes)
 * @property {number} appendMs time to append them all
 */

/**
 * Appends before the first measurement, to the same address: they create the store's keys (its meta
 * hash, the feed, the index) and load its scripts, which are not what one more message costs.
 */
const WARM_UP = 200;
/** Appends in flight at once: enough to keep Redis busy, few enough to keep the client's queue short. */
const IN_FLIGHT = 100;
const PREFIX = 'bench';

// The built store, as a user gets it: the runner's snapshot of dist/ (UNBROKEN_BENCH_DIST), else
// dist/ itself. Typed from its source so that type-checking needs no build.
const dist = process.env.UNBROKEN_BENCH_DIST ? pathToFileURL(`${process.env.UNBROKEN_BENCH_DIST}/`) : new URL('../../dist/', import.meta.url);
const { RedisStore } = /** @type {typeof import('../../src/server/redis/index.js')} */ (await import(new URL('redis.mjs', dist).href));

/** @type {RedisMemoryJob} */
const job = JSON.parse(process.argv[2] ?? '{}');

/**
 * The address of every message, and the keys of its indexes (keys.ts names them).
 * @param {MemoryAddress} kind
 * @returns {{ to: import('../../src/server/index.js').Address, indexes: string[] }}
 */
function addressOf(kind) {
  switch (kind) {
    case 'all':
      return { to: { kind: 'all' }, indexes: [`${PREFIX}:x:all`] };
    case 'session': {
      // A session id as the server makes them: 22 characters of base64url.
      const session = 'Q2hvb3NlIGEgc2Vzc2lvbg';
      return { to: { kind: 'session', session }, indexes: [`${PREFIX}:x:s:${session}`] };
    }
    case 'room':
      return { to: { kind: 'rooms', rooms: ['room-0'] }, indexes: [`${PREFIX}:x:r:room-0`] };
    case 'rooms': {
      const rooms = Array.from({ length: REDIS.roomsPerMessage }, (_, i) => `room-${i}`);
      return { to: { kind: 'rooms', rooms }, indexes: rooms.map((room) => `${PREFIX}:x:r:${room}`) };
    }
  }
}

/**
 * `used_memory`, and the exact size of each key (`SAMPLES 0` counts every entry, not a sample).
 * @param {Redis} redis
 * @param {string[]} keys
 */
async function measure(redis, keys) {
  const info = await redis.info('memory');
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
  if (!Number.isFinite(used)) throw new Error('INFO memory has no used_memory');
  const sizes = await Promise.all(keys.map(async (key) => Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0)));
  return { used, sizes };
}

/**
 * Appends `count` messages numbered from `from`, {@link IN_FLIGHT} at a time.
 * @param {InstanceType<typeof RedisStore>} store
 * @param {import('../../src/server/index.js').Address} to
 * @param {number} from
 * @param {number} count
 */
async function appendMany(store, to, from, count) {
  let next = from;
  const end = from + count;
  const worker = async () => {
    while (next < end) await store.append({ to, data: payload(next++) });
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

async function main() {
  const { to, indexes } = addressOf(job.address);
  // Retention holds every message: what is measured is what one more retained message costs.
  const store = new RedisStore({ url: job.url, prefix: PREFIX, maxMessages: WARM_UP + job.messages, maxAge: 3_600_000 });
  const redis = new Redis(job.url);
  try {
    await store.ready();
    await appendMany(store, to, 0, WARM_UP);
    const keys = [`${PREFIX}:feed`, ...indexes];
    const before = await measure(redis, keys);
    const started = performance.now();
    await appendMany(store, to, WARM_UP, job.messages);
    const appendMs = performance.now() - started;
    const after = await measure(redis, keys);
    // Messages are counted in the list of every message id: the feed also holds an entry where the
    // epoch began (and any membership change), which are no messages.
    const length = await redis.xlen(`${PREFIX}:x:messages`);
    if (length !== WARM_UP + job.messages) throw new Error(`the store lists ${length} messages, not the ${WARM_UP + job.messages} appended`);
    const grown = (/** @type {number} */ i) => (after.sizes[i] ?? 0) - (before.sizes[i] ?? 0);
    let jsonBytes = 0;
    for (let i = WARM_UP; i < WARM_UP + job.messages; i++) jsonBytes += JSON.stringify(payload(i)).length;
    /** @type {RedisMemoryResult} */
    const result = {
      messages: job.messages,
      jsonBytes: jsonBytes / job.messages,
      usedPerMessage: (after.used - before.used) / job.messages,
      feedPerMessage: grown(0) / job.messages,
      indexPerMessage: indexes.reduce((sum, _, i) => sum + grown(i + 1), 0) / job.messages,
      appendMs,
    };
    return result;
  } finally {
    redis.disconnect();
    await store.close();
  }
}

main().then(
  (result) => process.send?.({ result }),
  (error) => process.send?.({ error: error instanceof Error ? error.message : String(error) }),
);
process.on('disconnect', () => process.exit(0));
