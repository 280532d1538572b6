// @ts-check
/**
 * The `rooms` section of `npm run bench`: what a message to a room costs the server per delivered
 * message, against a broadcast to every session in the same run, and what reading one session's
 * stream back costs the store (a resume), for a member of a room and for a session in no room.
 *
 * - Delivery: a fresh server process per case, `sessions` raw WebSocket clients (scale-clients.mjs)
 *   in one other process, `members` of them put in one room by the server. Case "room" sends to the
 *   room, case "broadcast" to everyone; both deliver the same number of messages, one send per
 *   event-loop turn, after an unmeasured warm-up of the same kind. Server CPU (process.cpuUsage, user
 *   + system) runs from the first send until the clients counted the last delivery; wall time from
 *   the first send to the last arrival. Every connection's count is checked: each member (or, for a
 *   broadcast, each session) got every message once, no other connection got any. A case whose counts
 *   are off fails, and the run exits non-zero.
 * - Store: a fresh process per store (store-reads.mjs), one store per entry of `otherRoomMessages`
 *   (the same in `--quick`: a store is filled in about a second).
 *
 * Runs are interleaved (run 1 of every case, then run 2 …); figures are medians over runs, with the
 * lowest and highest run beside them.
 */
import { runStoreReads, startScaleClients, startServer } from './processes.mjs';
import { median, num, table } from './stats.mjs';
import { CLIENT_ADDRESSES, QUICK, ROOM_DELIVERIES, ROOM_MEMBERS, ROOM_SESSIONS, ROOM_WARMUP_DELIVERIES, STORE_READ } from './workload.mjs';

/** The room the members are put in. */
const ROOM = 'bench-room';
/** Seed of the store's append order (bench/lib/store-reads.mjs). */
const STORE_SEED = 20_261_129;
/** How long the clients listen past the expected count for a message too many. */
const EXTRA_MS = 300;

/** @typedef {'room' | 'broadcast'} DeliveryCase */
/**
 * One run of a delivery case.
 * @typedef {object} DeliveryRun
 * @property {number} messages sent
 * @property {number} delivered counted by the clients, all checked
 * @property {number} cpuMs server CPU from the first send to the last delivery
 * @property {number} wallMs first send → last arrival
 * @property {number} cpuUsPerDelivered
 * @property {number} wallUsPerDelivered
 * @property {number} connectMs time to open every connection
 * @property {number} serverRssMiB with every session connected, after a full GC
 * @property {number} serverHeapMiB
 * @property {number} clientsRssMiB of the clients' process, at the end
 */
/**
 * @typedef {object} RoomsWorkload
 * @property {number} sessions
 * @property {number} members
 * @property {number} deliveries per case, measured
 * @property {number} warmupDeliveries per case, before the measured ones
 * @property {Omit<import('./store-reads.mjs').StoreReadJob, 'otherRoomMessages' | 'seed'> & { otherRoomMessages: number[] }} store
 */
/**
 * @typedef {object} RoomsResults
 * @property {RoomsWorkload} workload
 * @property {Record<DeliveryCase, DeliveryRun[]>} delivery
 * @property {Record<string, import('./store-reads.mjs').StoreReadResult[]>} store by other-room messages
 * @property {Record<string, string>} errors by case (`room`, `broadcast`, `store <n>`)
 * @property {string[]} inexact delivery checks that failed: messages lost, repeated or misaddressed
 */

/**
 * The workload of a full run, or of `--quick` (fewer sessions).
 * @param {boolean} quick
 * @returns {RoomsWorkload}
 */
export function roomsWorkload(quick) {
  return {
    sessions: quick ? QUICK.roomSessions : ROOM_SESSIONS,
    members: quick ? QUICK.roomMembers : ROOM_MEMBERS,
    deliveries: quick ? QUICK.roomDeliveries : ROOM_DELIVERIES,
    warmupDeliveries: quick ? QUICK.roomWarmupDeliveries : ROOM_WARMUP_DELIVERIES,
    store: STORE_READ,
  };
}

/** A delivery whose counts are off: the row fails, whatever it cost. */
class Inexact extends Error {}

/**
 * Checks the clients' counts for one tag: every recipient got `messages`, every other connection none,
 * and (for a room) the recipients are exactly the sessions the server put in it.
 * @param {Awaited<ReturnType<Awaited<ReturnType<typeof startScaleClients>>['deliveries']>>} got
 * @param {number} messages
 * @param {number} recipients
 * @param {number} sessions
 * @param {string[] | null} members the room's session ids; null for a broadcast
 */
function checkDeliveries(got, messages, recipients, sessions, members) {
  /** @type {Record<string, number>} */
  const expected = { [messages]: recipients };
  if (sessions > recipients) expected[0] = sessions - recipients;
  const shown = (/** @type {Record<string, number>} */ h) =>
    Object.entries(h)
      .sort(([a], [b]) => Number(b) - Number(a))
      .map(([count, connections]) => `${connections} connections × ${count}`)
      .join(', ');
  const same = Object.keys(expected).length === Object.keys(got.histogram).length && Object.entries(expected).every(([count, n]) => got.histogram[count] === n);
  if (!same) throw new Inexact(`messages per connection: expected ${shown(expected)}, counted ${shown(got.histogram)} (${got.total} in all)`);
  if (members) {
    const outside = (got.recipients ?? []).filter((sid) => !members.includes(sid));
    if (got.recipients === null || outside.length > 0) throw new Inexact(`${outside.length || 'some'} connections outside the room got its messages`);
  }
  if (got.lost > 0) throw new Inexact(`${got.lost} connections closed meanwhile: ${got.lastLostReason}`);
}

/**
 * One run of one delivery case on a fresh server.
 * @param {DeliveryCase} kind
 * @param {RoomsWorkload} w
 * @returns {Promise<DeliveryRun>}
 */
async function deliveryRun(kind, w) {
  const server = await startServer('unbroken', { gc: true });
  /** @type {Awaited<ReturnType<typeof startScaleClients>> | null} */
  let clients = null;
  try {
    clients = await startScaleClients({ protocol: 'unbroken-ws', url: server.url, n: w.sessions, concurrency: 100 });
    if (clients.failed > 0) throw new Error(`${clients.failed} of ${w.sessions} connections failed: ${clients.firstError}`);
    // Both cases hold the same room, so that the target of the sends is their only difference.
    const { sids, members } = await server.join(ROOM, w.members);
    if (members !== w.members) throw new Error(`the room holds ${members} sessions, not ${w.members}`);
    const room = kind === 'room' ? ROOM : null;
    const recipients = kind === 'room' ? w.members : w.sessions;
    const memberIds = kind === 'room' ? sids : null;
    const receivers = clients;
    /** Sends `deliveries / recipients` messages tagged `tag` and checks who got them. */
    const send = async (/** @type {string} */ tag, /** @type {number} */ deliveries) => {
      const messages = Math.max(1, Math.round(deliveries / recipients));
      const { startWall } = await server.deliver(room, messages, tag);
      const reached = await receivers.deliveries(tag, messages * recipients);
      // Taken as soon as the last delivery was counted: the wait for extra messages below is idle time.
      const used = await server.usage();
      const got = await receivers.deliveries(tag, messages * recipients, EXTRA_MS);
      if (used.failed > 0) throw new Error(`${used.failed} sends failed: ${used.firstError}`);
      checkDeliveries(got, messages, recipients, w.sessions, memberIds);
      return { messages, delivered: got.total, cpuMs: used.cpuMs, wallMs: reached.lastAt - startWall, clientsRssMiB: got.rss / 2 ** 20 };
    };
    await send('warm-up', w.warmupDeliveries);
    const memory = await server.memory();
    const measured = await send('measured', w.deliveries);
    return {
      ...measured,
      cpuUsPerDelivered: (measured.cpuMs * 1000) / measured.delivered,
      wallUsPerDelivered: (measured.wallMs * 1000) / measured.delivered,
      connectMs: clients.ms,
      serverRssMiB: memory.rss / 2 ** 20,
      serverHeapMiB: memory.heapUsed / 2 ** 20,
    };
  } finally {
    await clients?.stop();
    await server.stop();
  }
}

/**
 * Runs every rooms case `runs` times, interleaved.
 * @param {{ runs: number, quick: boolean, progress: (line: string) => void }} options
 * @returns {Promise<RoomsResults>}
 */
export async function runRoomsCases({ runs, quick, progress }) {
  const workload = roomsWorkload(quick);
  /** @type {RoomsResults} */
  const results = { workload, delivery: { room: [], broadcast: [] }, store: {}, errors: {}, inexact: [] };
  for (let run = 1; run <= runs; run++) {
    for (const kind of /** @type {DeliveryCase[]} */ (['room', 'broadcast'])) {
      if (results.errors[kind]) continue; // failed once: not again
      const label = kind === 'room' ? `room of ${num(workload.members, 0)}` : `broadcast to ${num(workload.sessions, 0)}`;
      try {
        const result = await deliveryRun(kind, workload);
        results.delivery[kind].push(result);
        progress(
          `  rooms run ${run}/${runs} ${label.padEnd(20)} ${num(result.messages, 0)} messages, ${num(result.delivered, 0)} delivered, ` +
            `server CPU ${num(result.cpuUsPerDelivered)} µs/delivered, wall ${num(result.wallUsPerDelivered)} µs/delivered ` +
            `(${num(workload.sessions, 0)} connected in ${num(result.connectMs / 1000, 1)} s; RSS: server ${num(result.serverRssMiB, 0)} MiB, ` +
            `clients ${num(result.clientsRssMiB, 0)} MiB)`,
        );
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        results.errors[kind] = message;
        if (error instanceof Inexact) results.inexact.push(`${label}: ${message}`);
        progress(`  rooms run ${run}/${runs} ${label.padEnd(20)} ${error instanceof Inexact ? 'DELIVERY CHECK FAILED' : 'FAILED'}: ${message}`);
      }
    }
    for (const otherRoomMessages of workload.store.otherRoomMessages) {
      const key = String(otherRoomMessages);
      if (results.errors[`store ${key}`]) continue;
      try {
        const result = await runStoreReads({ ...workload.store, otherRoomMessages, seed: STORE_SEED });
        (results.store[key] ??= []).push(result);
        progress(
          `  rooms run ${run}/${runs} store, ${num(result.retained, 0)} retained: member ${num(result.member.usPerMessage * 1000, 1)} ns/message, ` +
            `no room ${num(result.loner.usPerMessage * 1000, 1)} ns/message`,
        );
      } catch (error) {
        results.errors[`store ${key}`] = error instanceof Error ? error.message : String(error);
        progress(`  rooms run ${run}/${runs} store, ${key} other-room messages FAILED: ${results.errors[`store ${key}`]}`);
      }
    }
  }
  return results;
}

/**
 * A median with the lowest and highest run: `1.23 (1.20–1.31)`; just the value for one run.
 * @param {number[]} values
 * @param {number} [digits]
 */
function spread(values, digits = 2) {
  if (values.length === 0) return '—';
  const m = num(median(values), digits);
  return values.length === 1 ? m : `${m} (${num(Math.min(...values), digits)}–${num(Math.max(...values), digits)})`;
}

/** @param {RoomsResults} results @param {DeliveryCase} kind @param {keyof DeliveryRun} metric */
const deliveryFigure = (results, kind, metric) => median(results.delivery[kind].map((run) => run[metric]));

/**
 * The section's tables.
 * @param {RoomsResults} results
 */
export function roomsTables(results) {
  const w = results.workload;
  /** @type {string[][]} */
  const delivery = [['case', '>messages', '>delivered', 'every count exact', '>server CPU µs/delivered', '>wall µs/delivered', '>server CPU ms', '>server RSS MiB']];
  for (const kind of /** @type {DeliveryCase[]} */ (['room', 'broadcast'])) {
    const label =
      kind === 'room' ? `room of ${num(w.members, 0)} (of ${num(w.sessions, 0)} sessions)` : `broadcast to all ${num(w.sessions, 0)}`;
    const runs = results.delivery[kind];
    const error = results.errors[kind];
    if (error && runs.length === 0) {
      delivery.push([label, `FAILED: ${error}`, '', '', '', '', '', '']);
      continue;
    }
    delivery.push([
      label,
      num(deliveryFigure(results, kind, 'messages'), 0),
      num(deliveryFigure(results, kind, 'delivered'), 0),
      error ? `NO: ${error}` : `yes (${runs.length} run${runs.length === 1 ? '' : 's'})`,
      spread(runs.map((run) => run.cpuUsPerDelivered)),
      spread(runs.map((run) => run.wallUsPerDelivered)),
      num(deliveryFigure(results, kind, 'cpuMs'), 0),
      num(deliveryFigure(results, kind, 'serverRssMiB'), 0),
    ]);
  }
  /** @type {string[][]} */
  const store = [['retained', 'stream', '>returned', '>ns/message', '>µs per full read']];
  for (const [key, runs] of Object.entries(results.store)) {
    const retained = num(median(runs.map((run) => run.retained)), 0);
    for (const [name, label] of /** @type {const} */ ([['member', `member of the room (${num(w.store.members, 0)})`], ['loner', 'session in no room']])) {
      store.push([
        retained,
        label,
        num(median(runs.map((run) => run[name].returned)), 0),
        spread(runs.map((run) => run[name].usPerMessage * 1000), 1),
        num(median(runs.map((run) => run[name].msPerRead * 1000)), 0),
      ]);
    }
    const error = results.errors[`store ${key}`];
    if (error) store.push([retained, `FAILED: ${error}`, '', '', '']);
  }
  for (const [key, error] of Object.entries(results.errors)) {
    if (key.startsWith('store ') && !results.store[key.slice(6)]) store.push([`${key.slice(6)} to other rooms`, `FAILED: ${error}`, '', '', '']);
  }
  return { delivery: table(delivery), store: table(store) };
}

/**
 * The section's lines of text above its tables.
 * @param {RoomsResults} results
 */
export function roomsHeadings(results) {
  const w = results.workload;
  const s = w.store;
  return {
    delivery:
      `delivery: ${num(w.sessions, 0)} sessions on WebSocket (raw protocol clients in one other process, from ${num(CLIENT_ADDRESSES, 0)} loopback addresses), ` +
      `${num(w.members, 0)} of them in one room; each case delivers ${num(w.deliveries, 0)} messages of ~100 B, one send per ` +
      `event-loop turn, after ${num(w.warmupDeliveries, 0)} unmeasured; server CPU = user + system of the server process from the ` +
      `first send to the last delivery counted; wall = first send → last arrival; median (lowest–highest) over runs`,
    store:
      `store reads (what a resume costs): MemoryStore of ${num(s.sessions, 0)} sessions — ${num(s.members, 0)} in the room, ` +
      `${num(s.members, 0)} in none, the rest in ${num(s.otherRooms, 0)} other rooms — holding ${num(s.roomMessages, 0)} messages to the room, ` +
      `${num(s.broadcasts, 0)} broadcasts, ${num(s.sessionMessages, 0)} to single sessions and the rest to the other rooms, in a seeded ` +
      `random order; one session's whole stream read from the oldest message, ${s.page} per read() as replay does; ` +
      `median of ${s.repeats} reads per process`,
  };
}

/**
 * The figures the claims rest on, against their same-run baselines, with the ratio each must stay
 * within (`maxRatio`, none where there is no claim):
 * - a room's server CPU per delivered message stays within 2× of a broadcast's: what a room message
 *   costs must not follow the sessions outside the room;
 * - a stream's read cost per returned message stays within 1.5× when the store holds ~8× more
 *   messages for others: it must not follow the retained total.
 * @param {RoomsResults} results
 * @returns {{ figure: string, value: number, unit: string, baselineLabel: string, baseline: number, values?: number[], baselines?: number[], maxRatio?: number, note?: string }[]}
 */
export function roomsFigures(results) {
  const w = results.workload;
  const room = `room of ${num(w.members, 0)} of ${num(w.sessions, 0)}`;
  const broadcast = `broadcast to ${num(w.sessions, 0)}`;
  const note = results.errors.room ?? results.errors.broadcast;
  const figures = [
    {
      figure: `server CPU per delivered message, ${room}`,
      value: deliveryFigure(results, 'room', 'cpuUsPerDelivered'),
      values: results.delivery.room.map((run) => run.cpuUsPerDelivered),
      baselines: results.delivery.broadcast.map((run) => run.cpuUsPerDelivered),
      unit: 'µs',
      baselineLabel: broadcast,
      baseline: deliveryFigure(results, 'broadcast', 'cpuUsPerDelivered'),
      maxRatio: 2,
      ...(note ? { note } : {}),
    },
    {
      figure: `wall time per delivered message, ${room}`,
      value: deliveryFigure(results, 'room', 'wallUsPerDelivered'),
      values: results.delivery.room.map((run) => run.wallUsPerDelivered),
      baselines: results.delivery.broadcast.map((run) => run.wallUsPerDelivered),
      unit: 'µs',
      baselineLabel: broadcast,
      baseline: deliveryFigure(results, 'broadcast', 'wallUsPerDelivered'),
      ...(note ? { note } : {}),
    },
  ];
  const stores = Object.values(results.store);
  const retained = (/** @type {import('./store-reads.mjs').StoreReadResult[]} */ runs) => num(median(runs.map((run) => run.retained)), 0);
  const nsPerMessage = (/** @type {import('./store-reads.mjs').StoreReadResult[]} */ runs, /** @type {'member' | 'loner'} */ name) =>
    median(runs.map((run) => run[name].usPerMessage * 1000));
  const first = stores[0];
  if (first) {
    figures.push({
      figure: `store read per returned message, room member, ${retained(first)} retained`,
      value: nsPerMessage(first, 'member'),
      values: first.map((run) => run.member.usPerMessage * 1000),
      baselines: first.map((run) => run.loner.usPerMessage * 1000),
      unit: 'ns',
      baselineLabel: 'session in no room',
      baseline: nsPerMessage(first, 'loner'),
    });
  }
  const last = stores[stores.length - 1];
  if (first && last && last !== first) {
    for (const name of /** @type {const} */ (['member', 'loner'])) {
      figures.push({
        figure: `store read per returned message, ${name === 'member' ? 'room member' : 'session in no room'}, ${retained(last)} retained`,
        value: nsPerMessage(last, name),
        values: last.map((run) => run[name].usPerMessage * 1000),
        baselines: first.map((run) => run[name].usPerMessage * 1000),
        unit: 'ns',
        baselineLabel: `${retained(first)} retained`,
        baseline: nsPerMessage(first, name),
        maxRatio: 1.5,
      });
    }
  }
  return figures;
}
