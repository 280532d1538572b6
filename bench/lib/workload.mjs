// @ts-check
/**
 * The fixed inputs of every benchmark, shared by the servers, the clients (Node and Chromium) and the
 * runner, so that every row of a table measures the same work.
 */

/** Messages the server pushes to one client in the throughput case. */
export const PUSH_MESSAGES = 20_000;
/**
 * Unmeasured pushes of {@link PUSH_MESSAGES} before the measured one, so that both processes run
 * optimised code: {@link PUSH_WARMUPS} of them, or fewer once {@link PUSH_WARMUP_MS} have passed (rows
 * bound by one browser event per message are slow and flat, and need no more).
 */
export const PUSH_WARMUPS = 3;
export const PUSH_WARMUP_MS = 2_000;
/**
 * Pushes of {@link PUSH_MESSAGES} in a row on one connection to a fresh server process, none of them
 * a warm-up: the first is the cold figure, the last the warm one.
 */
export const COLD_PUSHES = 6;
/**
 * Retention of unbroken's store in the push cases, in pushes of {@link PUSH_MESSAGES}. One push is
 * appended in one synchronous loop, far faster than a long-polling client drains it, and a client
 * that falls further behind than the store retains is told of a gap (PROTOCOL.md §6.3), which fails
 * the case: with the default 10,000 for pushes of 20,000, the long-polling rows failed so in some
 * runs. A deployment sizes its retention above its largest burst; so do the push cases, every row
 * and both stores alike (the Redis section's RedisStore lags its appends further, hence more than
 * one push's worth).
 */
const PUSH_RETENTION_PUSHES = 4;
/**
 * Messages unbroken's store retains in a push case whose pushes are `messagesPerPush` long
 * ({@link PUSH_RETENTION_PUSHES} pushes' worth).
 * @param {number} [messagesPerPush]
 */
export const pushRetention = (messagesPerPush = PUSH_MESSAGES) => PUSH_RETENTION_PUSHES * messagesPerPush;
/** Sequential send → echo round trips in the latency case, after {@link RTT_WARMUP} unmeasured ones. */
export const RTT_ROUND_TRIPS = 2_000;
/**
 * Unmeasured round trips first, on every row alike: the figure is the latency of warm code, as in a
 * server and a page that have run for a while (the cold push row shows what a fresh process costs).
 * After only 50, unbroken's round trip over WebSocket in Node measured 0.17–0.30 ms against 0.07 ms
 * after 3,000 (raw `ws`: 0.08–0.10 and 0.05 ms): the figure was V8 still compiling the longer path.
 */
export const RTT_WARMUP = 3_000;
/**
 * The steady-state round trip, on the rows whose upstream is a WebSocket: after the measured ones, on
 * the same connection, more unmeasured round trips until {@link RTT_STEADY_AFTER} in all, then
 * {@link RTT_ROUND_TRIPS} measured again. V8 optimises a function once it has run often enough, so a
 * longer path reaches its floor later: over 20,000 round trips in Node, raw `ws` was at its floor by
 * the 4,000th and unbroken by about the 7,000th (docs/PERFORMANCE.md, "Where a WebSocket round trip
 * goes in Node"), inside the window above. Shown beside the window's figure, without a target, for
 * the rows `measuresSteadyRtt` (rows.mjs) selects.
 */
export const RTT_STEADY_AFTER = 10_000;
/** Client sends issued in one synchronous burst (HTTP upstream cost). */
export const BURST_SENDS = 1_000;
/** Connections per connect-time case: the first (cold) is discarded, the others are measured. */
export const CONNECTS = 6;
/** Idle connections held open at once in the server-scale case. */
export const IDLE_CONNECTIONS = 10_000;
/** Broadcast fan-out: clients, messages per second, and how long the broadcast runs. */
export const FANOUT_CLIENTS = 1_000;
export const FANOUT_RATE = 100;
export const FANOUT_SECONDS = 3;
/**
 * Loopback addresses the scale clients' connections are spread over. The server's limits per client
 * address (by default 500 sessions, 20 new sessions per second) are what a real server meets from
 * many addresses; 10,000 connections are 10 per address, and reach none of them.
 */
export const CLIENT_ADDRESSES = 1_000;

/**
 * Rooms: sessions connected, how many of them are in the room, and the messages each case delivers
 * in all (members × messages to the room, or sessions × broadcasts). Both cases deliver the same
 * number, so their measured windows are about as long and background work (heartbeats over every
 * session) weighs the same in each. Messages are sent one per event-loop turn, as a chat room gets
 * them, so that each is written as a frame of its own to each recipient in both cases.
 */
export const ROOM_SESSIONS = 10_000;
export const ROOM_MEMBERS = 100;
export const ROOM_DELIVERIES = 200_000;
/** Unmeasured deliveries of the same kind first, so that the measured ones run optimised code. */
export const ROOM_WARMUP_DELIVERIES = 20_000;
/**
 * The store behind a resume: sessions, members of the measured room, and what it retains, appended
 * in a seeded random order. The other rooms' messages are the bulk of the store; the read cost of a
 * session must not follow them. `otherRoomMessages` is a list: one store per entry, to show the
 * per-message read cost stays flat while the store grows around the same stream.
 */
export const STORE_READ = {
  sessions: 10_000,
  members: 100,
  otherRooms: 100,
  otherRoomMessages: [10_000, 100_000],
  roomMessages: 1_000,
  broadcasts: 1_000,
  /** Messages to single sessions, spread over all of them. */
  sessionMessages: 1_000,
  /** Messages per `read()`, as the server's replay asks for them. */
  page: 500,
  /** Full reads of each stream timed per process, after as many untimed ones (a read takes well under 1 ms). */
  repeats: 200,
};

/**
 * The Redis section (bench/lib/redis.mjs): server processes sharing one Redis in the multi-process
 * fan-out; broadcasts appended before the round-trip and fan-out cases, so that each store starts as
 * full as a running deployment's (the default retention of both stores; the push case gets there by
 * its warm-up); messages appended per memory case (after the store's keys exist; retention keeps
 * them all) and the rooms of each in the case with several; how long one push may take: Redis
 * appends are far slower than the in-memory store's, and a push of {@link PUSH_MESSAGES} must not
 * count as failed for that alone (below the runner's 180 s per IPC call).
 */
export const REDIS = {
  processes: 3,
  fillMessages: 10_000,
  memoryMessages: 10_000,
  /** The rooms of each message in the memory case "several rooms": one index entry per room. */
  roomsPerMessage: 4,
  pushTimeoutMs: 170_000,
};

/** What `--quick` runs instead. */
export const QUICK = {
  runs: 2,
  idleConnections: 1_000,
  fanoutSeconds: 2,
  roomSessions: 1_000,
  roomMembers: 10,
  roomDeliveries: 20_000,
  roomWarmupDeliveries: 2_000,
  redisPushMessages: 5_000,
  redisFillMessages: 2_000,
  redisMemoryMessages: 2_000,
};

/** Padding that brings a pushed message to about 100 bytes of JSON. */
const BODY = 'unbroken-benchmark-payload-'.repeat(3).slice(0, 77);

/**
 * The i-th pushed message: about 100 bytes of JSON (`{"seq":12345,"body":"…"}` is 96–100 bytes).
 * @param {number} seq
 * @returns {{ seq: number, body: string }}
 */
export function payload(seq) {
  return { seq, body: BODY };
}

/**
 * The i-th round-trip message; the server echoes it unchanged.
 * @param {number} echo
 * @returns {{ echo: number, body: string }}
 */
export function echoMessage(echo) {
  return { echo, body: BODY };
}

/**
 * Commands a client sends to a benchmark server, over the transport under test:
 * - `{ cmd: 'push', n }`: send `payload(0)` … `payload(n - 1)` to this client, in one synchronous loop;
 * - `{ cmd: 'kill' }`: cut this client's connections at the TCP level, then 50 ms later send it
 *   `{ replayed: true }` (which only a transport that resumes can deliver);
 * - anything with an `echo` field is sent back unchanged.
 * On every new connection (new session for unbroken) the server sends `{ welcome: true }`.
 * @typedef {{ cmd: 'push', n: number } | { cmd: 'kill' } | { echo: number, body: string }} Command
 */

/** Delay between a kill and the message sent while the client is away. */
export const KILL_REPLAY_DELAY_MS = 50;
