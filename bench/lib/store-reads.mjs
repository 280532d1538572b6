// @ts-check
/**
 * What a resume costs the store: a `MemoryStore` (the built one) holding many sessions, rooms and
 * messages, and the time to read one session's whole stream page by page, as the server's replay
 * does, for a member of one room and for a session in no room. Run in a fresh process per store by
 * the runner (bench/lib/processes.mjs `runStoreReads`):
 *
 *   node bench/lib/store-reads.mjs '{"sessions":10000,"members":100,…}'
 *
 * The sessions join their rooms first; then every message is appended in a seeded random order: to
 * one of the other rooms, to the measured room, to everyone, or to one session. It reports over IPC
 * `{ result }` (see {@link StoreReadResult}), or `{ error }` when a stream read back is not what was
 * appended to it.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/**
 * @typedef {object} StoreReadJob
 * @property {number} sessions sessions the store knows
 * @property {number} members sessions in the measured room; as many more are in no room, the rest in the other rooms
 * @property {number} otherRooms
 * @property {number} otherRoomMessages messages to the other rooms, round robin
 * @property {number} roomMessages messages to the measured room
 * @property {number} broadcasts
 * @property {number} sessionMessages messages to one session each, round robin from the first session
 * @property {number} page messages per `read()`
 * @property {number} repeats timed full reads of each stream (after as many untimed ones)
 * @property {number} seed of the append order
 */
/**
 * @typedef {object} StreamRead
 * @property {number} returned messages in the stream
 * @property {number} usPerMessage median over the repeats of (time of a full read / returned)
 * @property {number} msPerRead median time of a full read
 */
/**
 * @typedef {object} StoreReadResult
 * @property {number} retained messages the store held
 * @property {StreamRead} member a member of the measured room (in it from before the first message)
 * @property {StreamRead} loner a session in no room
 * @property {number} fillMs time to join and append everything
 * @property {number} heapUsedMiB after the fill
 */

// The built store, as a user gets it: the runner's snapshot of dist/ (UNBROKEN_BENCH_DIST), else
// dist/ itself. Typed from its source so that type-checking needs no build.
const dist = process.env.UNBROKEN_BENCH_DIST ? pathToFileURL(`${process.env.UNBROKEN_BENCH_DIST}/`) : new URL('../../dist/', import.meta.url);
const { MemoryStore } = /** @type {typeof import('../../src/server/index.js')} */ (await import(new URL('server.mjs', dist).href));

/** @type {StoreReadJob} */
const job = JSON.parse(process.argv[2] ?? '{}');

/**
 * A small seeded generator (mulberry32): the same job appends in the same order every run.
 * @param {number} seed
 */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** @typedef {'other' | 'room' | 'all' | 'session'} Kind */

/** Builds and fills the store; returns it with the two measured sessions and what their streams hold. */
async function fill() {
  const total = job.otherRoomMessages + job.roomMessages + job.broadcasts + job.sessionMessages;
  // Retention holds everything: what is measured is the cost of a stream among many messages.
  const store = new MemoryStore({ maxMessages: total, maxAge: 3_600_000 });
  const sids = Array.from({ length: job.sessions }, () => randomBytes(16).toString('base64url'));
  const room = 'measured';
  const others = Array.from({ length: job.otherRooms }, (_, i) => `other-${i}`);
  // Sessions [0, members) are in the measured room, the last `members` in none, the rest spread over the others.
  for (const [i, sid] of sids.entries()) {
    if (i < job.members) await store.join(sid, room);
    else if (i < job.sessions - job.members) await store.join(sid, /** @type {string} */ (others[i % others.length]));
  }
  /** @type {Kind[]} */
  const kinds = [
    ...Array.from({ length: job.otherRoomMessages }, () => /** @type {const} */ ('other')),
    ...Array.from({ length: job.roomMessages }, () => /** @type {const} */ ('room')),
    ...Array.from({ length: job.broadcasts }, () => /** @type {const} */ ('all')),
    ...Array.from({ length: job.sessionMessages }, () => /** @type {const} */ ('session')),
  ];
  const next = random(job.seed);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [kinds[i], kinds[j]] = [/** @type {Kind} */ (kinds[j]), /** @type {Kind} */ (kinds[i])];
  }
  let other = 0;
  let direct = 0;
  for (const [seq, kind] of kinds.entries()) {
    /** @type {import('../../src/server/index.js').Address} */
    const to =
      kind === 'other'
        ? { kind: 'rooms', rooms: [/** @type {string} */ (others[other++ % others.length])] }
        : kind === 'room'
          ? { kind: 'rooms', rooms: [room] }
          : kind === 'all'
            ? { kind: 'all' }
            : { kind: 'session', session: /** @type {string} */ (sids[direct++ % sids.length]) };
    await store.append({ to, data: { seq } });
  }
  const directTo = (/** @type {number} */ i) => Math.floor(job.sessionMessages / job.sessions) + (i < job.sessionMessages % job.sessions ? 1 : 0);
  const loner = job.sessions - 1;
  return {
    store,
    member: { sid: /** @type {string} */ (sids[0]), expected: job.roomMessages + job.broadcasts + directTo(0) },
    loner: { sid: /** @type {string} */ (sids[loner]), expected: job.broadcasts + directTo(loner) },
  };
}

/**
 * Reads the whole stream of `sid` from the oldest message, `job.page` at a time, as a resume from
 * before the first message does; returns how many messages it held.
 * @param {InstanceType<typeof MemoryStore>} store
 * @param {string} sid
 */
async function readAll(store, sid) {
  let after = `${store.epoch}-0`;
  let returned = 0;
  for (;;) {
    const page = await store.read(sid, after, job.page);
    returned += page.messages.length;
    const last = page.messages[page.messages.length - 1];
    if (!page.more || !last) return returned;
    after = last.id;
  }
}

/** @param {number[]} values */
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? /** @type {number} */ (sorted[mid]) : (/** @type {number} */ (sorted[mid - 1]) + /** @type {number} */ (sorted[mid])) / 2;
};

async function main() {
  const started = performance.now();
  const { store, member, loner } = await fill();
  const fillMs = performance.now() - started;
  for (const [name, stream] of /** @type {const} */ ([['member', member], ['loner', loner]])) {
    const returned = await readAll(store, stream.sid);
    if (returned !== stream.expected) throw new Error(`the ${name}'s stream held ${returned} messages, not the ${stream.expected} appended to it`);
  }
  /** @type {{ member: number[], loner: number[] }} */
  const times = { member: [], loner: [] };
  // Untimed reads first, then timed ones, alternating between the two streams so that both meet the
  // same moments of the machine.
  for (let round = 0; round < 2 * job.repeats; round++) {
    for (const name of /** @type {const} */ (['member', 'loner'])) {
      const t0 = performance.now();
      await readAll(store, (name === 'member' ? member : loner).sid);
      if (round >= job.repeats) times[name].push(performance.now() - t0);
    }
  }
  /** @param {number[]} ms @param {number} returned @returns {StreamRead} */
  const summary = (ms, returned) => ({ returned, usPerMessage: (median(ms) * 1000) / returned, msPerRead: median(ms) });
  /** @type {StoreReadResult} */
  const result = {
    retained: store.size,
    member: summary(times.member, member.expected),
    loner: summary(times.loner, loner.expected),
    fillMs,
    heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
  };
  return result;
}

main().then(
  (result) => process.send?.({ result }),
  (error) => process.send?.({ error: error instanceof Error ? error.message : String(error) }),
);
process.on('disconnect', () => process.exit(0));
