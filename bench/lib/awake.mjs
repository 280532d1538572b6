// @ts-check
/**
 * Round trips measured with every CPU kept awake. On a virtual machine a CPU with nothing to run
 * halts, and the host may take it off its core; the next wake-up then costs far more than a round
 * trip over loopback. On the 2-CPU machine of docs/PERFORMANCE.md ("Round trips and idle CPUs"), the
 * p50 of 2,000 WebSocket round trips was either about 20 µs or about 100 µs for raw `ws` and unbroken
 * alike, and which one changed from one window of the same connection to the next: the ratio of the
 * two then measured the host more than the code. One busy loop per CPU at the lowest priority (nice
 * 19) keeps every CPU from halting and yields to the processes measured whenever they can run.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';

/** The lowest scheduling priority (nice 19). */
const LOWEST_PRIORITY = 19;

/** ms between the loops' start and the measurement. */
const SETTLE_MS = 200;

/** @type {Set<import('node:child_process').ChildProcess>} */
const loops = new Set();
// A run that ends early ends its loops too: they never outlive the runner.
process.on('exit', () => {
  for (const loop of loops) if (loop.pid !== undefined && loop.exitCode === null) process.kill(loop.pid, 'SIGKILL');
});

/**
 * Runs `measure` with one lowest-priority busy loop per CPU, and ends the loops after it.
 * @template T
 * @param {() => Promise<T>} measure
 * @returns {Promise<T>}
 */
export async function whileAwake(measure) {
  const started = Array.from({ length: os.availableParallelism() }, () => {
    // It says when it spins: a node process takes tens of ms to start.
    const loop = spawn(process.execPath, ['-e', 'process.stdout.write("spinning"); for (;;) {}'], { stdio: ['ignore', 'pipe', 'ignore'] });
    loops.add(loop);
    if (loop.pid !== undefined) os.setPriority(loop.pid, LOWEST_PRIORITY);
    return loop;
  });
  await Promise.all(
    started.map(
      (loop) =>
        new Promise((resolve) => {
          loop.stdout?.once('data', resolve);
          loop.once('exit', resolve);
        }),
    ),
  );
  // A pause, so that the first round trips do not find a CPU still in the state it idled in.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  try {
    return await measure();
  } finally {
    await Promise.all(
      started.map(async (loop) => {
        loops.delete(loop);
        if (loop.pid === undefined || loop.exitCode !== null || loop.signalCode !== null) return;
        const gone = new Promise((resolve) => loop.once('exit', resolve));
        process.kill(loop.pid, 'SIGKILL');
        await gone;
      }),
    );
  }
}
