/**
 * Reports commands that Redis has not answered in time. A stalled Redis (stopped, swapping, stuck in a
 * slow command) keeps its connections open, so nothing else would say anything; yet the commands are
 * not dropped — an append that waited completes when Redis answers, a latency spike rather than a
 * loss — so this only reports: once when the first command becomes slow, once when the last slow one
 * is answered.
 */
import type { Report } from './connections.js';

export class Watchdog {
  readonly #threshold: number;
  readonly #where: string;
  readonly #report: Report;
  /** Commands past their threshold and not yet answered. */
  #slow = 0;
  /** When the oldest of the slow commands was sent. */
  #since = 0;

  constructor(threshold: number, where: string, report: Report) {
    this.#threshold = threshold;
    this.#where = where;
    this.#report = report;
  }

  /**
   * Returns `promise`, reporting when it has not settled after `threshold` ms (the store's
   * `slowCommandWarning` unless given: a blocking read passes its block time on top).
   */
  track<T>(what: string, promise: Promise<T>, threshold = this.#threshold): Promise<T> {
    const sentAt = Date.now();
    let slow = false;
    const timer = setTimeout(() => {
      slow = true;
      if (this.#slow++ > 0) return;
      this.#since = sentAt;
      this.#report(`Redis at ${this.#where} has not answered ${what} for ${Date.now() - sentAt} ms; still waiting (nothing is dropped)`);
    }, threshold);
    // A timer of its own must not keep the process alive.
    timer.unref();
    const settled = (): void => {
      clearTimeout(timer);
      if (!slow || --this.#slow > 0) return;
      this.#report(`Redis at ${this.#where} answers again, after ${Date.now() - this.#since} ms`);
    };
    promise.then(settled, settled);
    return promise;
  }
}
