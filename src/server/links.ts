/**
 * The connections of one server (docs/PROTOCOL.md §12.1): their count for the limits, what they
 * buffer together, and the bound on that total.
 */
import type { Downlink } from './downlink.js';
import type { Limits } from './limits.js';

/**
 * The total is checked at most this often after deliveries (and on every sweep): a pass goes over
 * every connection, so checking after every event-loop turn that sent something made a message to
 * a small room pay for every connection of the server. Each connection's own bound (§12) holds at
 * every write meanwhile.
 */
const TOTAL_CHECK_DELAY = 25;

export class Links {
  readonly #links = new Set<Downlink>();
  readonly #limits: Limits;
  readonly #maxTotal: number | undefined;
  #checkScheduled = false;
  #emptied: (() => void) | null = null;
  /** Links with a flush scheduled, in the order they asked. */
  #unflushed: Downlink[] = [];
  readonly #flushAll = (): void => {
    const links = this.#unflushed;
    this.#unflushed = [];
    for (const link of links) link.flushScheduled();
  };

  constructor(limits: Limits, maxTotalBufferedBytes: number | undefined) {
    this.#limits = limits;
    this.#maxTotal = maxTotalBufferedBytes;
  }

  get size(): number {
    return this.#links.size;
  }

  add(link: Downlink): void {
    this.#links.add(link);
    this.#limits.connectionOpened(link.address);
  }

  /** The adapter reported `link` gone. */
  gone(link: Downlink): void {
    if (this.#links.delete(link)) this.#limits.connectionClosed(link.address);
    if (this.#links.size === 0) this.#emptied?.();
  }

  /** Resolves once no connection is left. */
  empty(): Promise<void> {
    if (this.#links.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#emptied = resolve));
  }

  /** Bytes buffered over every connection, and how many are parked (§12.1). */
  load(): { bufferedBytes: number; parkedConnections: number } {
    let bufferedBytes = 0;
    let parkedConnections = 0;
    for (const link of this.#links) {
      bufferedBytes += link.pressure();
      if (link.isParked) parkedConnections++;
    }
    return { bufferedBytes, parkedConnections };
  }

  /**
   * Flushes `link` in a microtask, never a timer: a batch holds what one tick produced, and nothing
   * waits (§4.1). One microtask flushes every link that asked, so a broadcast to many connections
   * queues one task, not one per connection.
   */
  scheduleFlush(link: Downlink): void {
    if (this.#unflushed.push(link) === 1) queueMicrotask(this.#flushAll);
  }

  /** Checks the total soon, once the writes of this turn went out (they move bytes into socket buffers). */
  scheduleCheck(): void {
    if (this.#checkScheduled || this.#maxTotal === undefined) return;
    this.#checkScheduled = true;
    const timer = setTimeout(() => {
      this.#checkScheduled = false;
      this.enforce();
    }, TOTAL_CHECK_DELAY);
    timer.unref?.();
  }

  /**
   * §12.1: when every connection together holds more than `maxTotalBufferedBytes`, the ones that hold
   * the most — the slowest readers — are cut with BACKPRESSURE until the rest fit. They resume from
   * the store.
   */
  enforce(): void {
    const max = this.#maxTotal;
    if (max === undefined) return;
    let total = 0;
    const loaded: { link: Downlink; bytes: number }[] = [];
    for (const link of this.#links) {
      const bytes = link.pressure();
      if (bytes === 0) continue;
      total += bytes;
      loaded.push({ link, bytes });
    }
    if (total <= max) return;
    loaded.sort((a, b) => b.bytes - a.bytes);
    for (const { link, bytes } of loaded) {
      if (total <= max) break;
      link.close({ kind: 'error', code: 'BACKPRESSURE', message: 'the server holds too much for slow clients; resume' });
      total -= bytes;
    }
  }
}
