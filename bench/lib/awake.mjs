// @ts-check
/**
 * Round trips measured with the CPUs held out of their idle states. On a virtual machine a CPU with
 * nothing to run halts, and waking it costs far more than a round trip over loopback. On the 2-CPU
 * machine of docs/PERFORMANCE.md ("Round trips and idle CPUs"), the p50 of 2,000 WebSocket round
 * trips was either about 20–30 µs or about 100 µs for raw `ws` and unbroken alike, and which one changed
 * from one window of the same connection to the next: the ratio of the two measured the host more
 * than the code.
 *
 * Linux's CPU latency request (`/dev/cpu_dma_latency`, Documentation/power/pm_qos_interface.rst): while
 * a process holds the device open with a 32-bit 0 written to it, no CPU may take an idle state that
 * takes time to leave, so an idle CPU polls instead of halting. The request ends when the device is
 * closed, or when the process ends. Busy loops at the lowest priority did the same less well: they
 * made the scheduler preempt them for each wake-up, which cost unbroken's SSE round trip more than
 * the raw one's.
 *
 * Holding the device takes Linux and root. Without them the round trips run as the machine is, and
 * the report says so ({@link idleStateNote}).
 */
import fs from 'node:fs';

const LATENCY_DEVICE = '/dev/cpu_dma_latency';

/** Round-trip measurements (calls of {@link whileAwake}) so far with the CPUs held awake, without, and why not. */
const holds = { held: 0, notHeld: 0, reason: '' };

/**
 * Runs `measure` with every CPU held out of its idle states, where this process may ask for it.
 * @template T
 * @param {() => Promise<T>} measure
 * @returns {Promise<T>}
 */
export async function whileAwake(measure) {
  /** @type {number | null} */
  let device = null;
  try {
    device = fs.openSync(LATENCY_DEVICE, 'r+');
    // The latency allowed to wake a CPU, in µs, as a 32-bit integer: none.
    fs.writeSync(device, Buffer.alloc(4));
    holds.held++;
  } catch (error) {
    if (device !== null) fs.closeSync(device);
    device = null;
    holds.notHeld++;
    holds.reason = error instanceof Error && 'code' in error ? String(error.code) : String(error);
  }
  try {
    return await measure();
  } finally {
    if (device !== null) fs.closeSync(device);
  }
}

/** How the round trips of this run were measured, for the report's workload line. */
export function idleStateNote() {
  if (holds.held + holds.notHeld === 0) return 'no round trips measured';
  if (holds.notHeld === 0) return `round trips measured with the CPUs held out of idle states (${LATENCY_DEVICE})`;
  return (
    `round trips NOT held out of idle states in ${holds.notHeld} of ${holds.held + holds.notHeld} measurements ` +
    `(${LATENCY_DEVICE}: ${holds.reason}; it takes Linux and root): their figures depend on how fast an idle CPU wakes`
  );
}
