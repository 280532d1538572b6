/**
 * Checks that an open stream is live, not just open (PROTOCOL.md §13.3, "Checking an open stream"):
 * a proxy that buffers an event stream regardless of its headers lets `hello` through once a busy
 * stream filled its buffer, and then holds every event back until the buffer fills again.
 *
 * A check sends a `ping` upstream; the server writes its `pong` to the stream in the same turn as it
 * answers the POST that carried the ping (§5, §7.3). So on a live stream the `pong` arrives about
 * when the POST's answer does; on a held-back one it waits for the proxy's buffer to fill.
 */
import type { Clock } from './options.js';

/**
 * Ms the `pong` may arrive after the answer to its POST. Both left the server in the same turn, so
 * on a live path they arrive within a few ms of each other; 500 ms leaves room for a busy page or a
 * loaded machine, and is still far less than the delay a buffering proxy adds to a stream (the
 * time to fill 4–16 KB) that is worth leaving the transport for.
 */
export const STREAM_CHECK_DEADLINE = 500;

/**
 * Checks run back to back when the stream opens. A check can pass on a held-back stream when the
 * proxy happens to flush its buffer just after the ping; the check right after it then finds the
 * buffer empty and must wait for it to fill again. Three in a row make a pass by chance negligible.
 */
export const STREAM_CHECKS_AT_OPEN = 3;

/**
 * Ms between later rounds, while messages flow. An idle stream has nothing to hold back and is not
 * pinged; a busy one costs two pings per round.
 */
export const STREAM_CHECK_INTERVAL = 15_000;

/** Checks in each later round: two, for the reason given at {@link STREAM_CHECKS_AT_OPEN}. */
export const STREAM_CHECKS_PER_ROUND = 2;

/** What a stream check needs from the client core. */
export interface StreamCheckHost {
  readonly clock: Clock;
  /**
   * Sends a `ping` upstream. `pong` is called when its `pong` came down the stream; `answered` when
   * the request that carried it was answered.
   */
  ping(pong: () => void, answered: () => void): void;
  /** A check failed: the stream holds frames back. Called once; the check stops. */
  heldBack(): void;
}

/** The check of one open stream. It owns its timers; {@link StreamCheck.stop} releases them. */
export class StreamCheck {
  readonly #host: StreamCheckHost;
  #timer: unknown;
  /** Whether a message arrived since the last round began. */
  #flowing = false;
  #stopped = false;

  constructor(host: StreamCheckHost) {
    this.#host = host;
  }

  /** Starts checking: a round at once, then one every {@link STREAM_CHECK_INTERVAL} while messages flow. */
  start(): void {
    this.#check(STREAM_CHECKS_AT_OPEN);
  }

  /** A message arrived on the stream. */
  sawMessage(): void {
    this.#flowing = true;
  }

  /** Stops checking; nothing is reported after. */
  stop(): void {
    this.#stopped = true;
    this.#clear();
  }

  /** One check; `left` checks of the round remain, this one included. */
  #check(left: number): void {
    if (this.#stopped) return;
    this.#flowing = false;
    let ponged = false;
    let answered = false;
    const passed = (): void => {
      this.#clear();
      if (left > 1) this.#check(left - 1);
      else this.#later();
    };
    this.#host.ping(
      () => {
        ponged = true;
        if (answered && !this.#stopped) passed();
      },
      () => {
        answered = true;
        if (this.#stopped) return;
        if (ponged) return passed();
        this.#set(() => {
          this.stop();
          this.#host.heldBack();
        }, STREAM_CHECK_DEADLINE);
      },
    );
  }

  /** The next round, once the interval passed, when messages flowed meanwhile. */
  #later(): void {
    this.#set(() => (this.#flowing ? this.#check(STREAM_CHECKS_PER_ROUND) : this.#later()), STREAM_CHECK_INTERVAL);
  }

  #set(fn: () => void, ms: number): void {
    this.#clear();
    if (!this.#stopped) this.#timer = this.#host.clock.setTimeout(fn, ms);
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
