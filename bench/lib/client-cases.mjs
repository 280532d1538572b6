// @ts-check
/**
 * The push and round-trip measurements of one open client (drivers.mjs, through a client host), shared
 * by the client rows (bench/run.mjs) and the Redis rows (bench/lib/redis.mjs) so that both measure the
 * same way.
 */
import { whileAwake } from './awake.mjs';
import { PUSH_MESSAGES, PUSH_WARMUPS, PUSH_WARMUP_MS, RTT_ROUND_TRIPS, RTT_STEADY_AFTER, RTT_WARMUP } from './workload.mjs';

/** @typedef {import('./processes.mjs').ClientHost} ClientHost */

/**
 * The arguments of drivers.mjs's `throughput`. No `undefined`: it would cross IPC (JSON) as `null`,
 * which a default parameter does not replace.
 * @param {number} messages
 * @param {number | undefined} timeout
 */
const pushArgs = (messages, timeout) => (timeout === undefined ? [messages] : [messages, timeout]);

/**
 * Unmeasured pushes first, so that both processes run optimised code: {@link PUSH_WARMUPS} of them, or
 * fewer once {@link PUSH_WARMUP_MS} have passed.
 * @param {ClientHost} host with an open connection
 * @param {number} [messages] per push
 * @param {number} [timeout] ms one push may take (drivers.mjs's default when omitted)
 */
export async function warmUpPush(host, messages = PUSH_MESSAGES, timeout) {
  const end = Date.now() + PUSH_WARMUP_MS;
  for (let i = 0; i < PUSH_WARMUPS && Date.now() < end; i++) await host.call('throughput', ...pushArgs(messages, timeout));
}

/**
 * One timed push: messages per second from the command to the last message's arrival.
 * @param {ClientHost} host with an open connection
 * @param {number} [messages]
 * @param {number} [timeout] ms it may take (drivers.mjs's default when omitted)
 */
export async function pushRate(host, messages = PUSH_MESSAGES, timeout) {
  const { ms } = /** @type {{ ms: number }} */ (await host.call('throughput', ...pushArgs(messages, timeout)));
  return (messages / ms) * 1000;
}

/**
 * {@link RTT_ROUND_TRIPS} sequential send → echo round trips after {@link RTT_WARMUP} unmeasured ones,
 * the CPUs held awake meanwhile (awake.mjs), as in {@link steadyRoundTrips}.
 * @param {ClientHost} host with an open connection
 * @returns {Promise<number[]>} ms of each measured round trip
 */
export async function roundTrips(host) {
  return /** @type {number[]} */ (await whileAwake(() => host.call('rtt', RTT_ROUND_TRIPS, RTT_WARMUP)));
}

/**
 * After {@link roundTrips} on the same connection: unmeasured round trips up to {@link RTT_STEADY_AFTER}
 * in all, then {@link RTT_ROUND_TRIPS} measured (round trips 10,001–12,000 of the connection, with the
 * values of workload.mjs).
 * @param {ClientHost} host with an open connection that ran {@link roundTrips}
 * @returns {Promise<number[]>} ms of each measured round trip
 */
export async function steadyRoundTrips(host) {
  const warmup = RTT_STEADY_AFTER - RTT_WARMUP - RTT_ROUND_TRIPS;
  return /** @type {number[]} */ (await whileAwake(() => host.call('rtt', RTT_ROUND_TRIPS, warmup)));
}
