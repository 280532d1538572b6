/**
 * Whether the link of the open attempt is alive: the liveness deadline, 2 × `hb` after the last byte
 * of the stream (PROTOCOL.md §11), and the pings whose `pong` must come down the stream (§5) — for
 * `ping()`, the stream check and the check after the page came back (§13.4).
 */
import { encodeBatch } from '../protocol/index.js';
import type { Attempt } from './attempt.js';
import { UnbrokenError } from './errors.js';
import type { Clock } from './options.js';

type PendingPing = [pong: (at: number) => void, reject: (error: UnbrokenError) => void];

/** The liveness deadline and the pings in flight, across the attempts of one client. */
export class Liveness {
  /** `hello.hb` of the last hello, within its bounds (§13.5); 0 before the first. */
  heartbeat = 0;
  readonly #pings = new Map<number, PendingPing>();
  #pingId = 0;
  readonly #clock: Clock;
  /** Fails the current attempt: the client core's failure path. */
  readonly #fail: (error: UnbrokenError) => void;

  constructor(clock: Clock, fail: (error: UnbrokenError) => void) {
    this.#clock = clock;
    this.#fail = fail;
  }

  /** Ms left before the stream of `a` counts as dead: 2 × `hb` after its last byte (§11). */
  #left(a: Attempt): number {
    return this.heartbeat ? a.lastStreamByteAt + 2 * this.heartbeat - this.#clock.now() : Infinity;
  }

  /**
   * Fails `a` with `HEARTBEAT_TIMEOUT` when the clock shows its liveness deadline passed — also when
   * its timer has not fired yet, as in a background tab (§11). Returns whether `a` is still alive.
   */
  failIfDead(a: Attempt): boolean {
    if (this.#left(a) > 0) return true;
    this.#fail(new UnbrokenError('HEARTBEAT_TIMEOUT', `nothing received for ${2 * this.heartbeat} ms`));
    return false;
  }

  /** One timer for the liveness deadline: when it fires it checks the clock and re-arms for the rest. */
  watch(a: Attempt): void {
    if (this.failIfDead(a) && this.heartbeat) a.schedule('liveness', () => this.watch(a), this.#left(a));
  }

  /** Sends a ping on `a`; `pong` gets the arrival time of its `pong`, `reject` the error that broke the link first. */
  sendPing(a: Attempt, pong: (at: number) => void, reject: (error: UnbrokenError) => void, answered?: () => void): number {
    const n = ++this.#pingId;
    this.#pings.set(n, [pong, reject]);
    a.link?.send(encodeBatch([{ t: 'ping', n }]), answered);
    return n;
  }

  /** The `pong` of ping `n` arrived at `at`. */
  pong(n: number, at: number): void {
    this.#pings.get(n)?.[0](at);
    this.#pings.delete(n);
  }

  /**
   * Checks the open link of `a` after the page came back: a ping at once, and `a` fails if nothing
   * answers within `deadline` ms.
   */
  checkAwake(a: Attempt, deadline: number): void {
    // Only the answer to this ping proves the link works now: a batch already in flight when the
    // link died could still arrive after it.
    const n = this.sendPing(a, () => a.cancel('wake'), () => {});
    a.schedule(
      'wake',
      () => {
        if (this.#pings.delete(n)) this.#fail(new UnbrokenError('HEARTBEAT_TIMEOUT', 'no answer after the page came back'));
      },
      deadline,
    );
  }

  /** Rejects every ping in flight with `error`: the link they went out on is gone. */
  rejectPings(error: UnbrokenError): void {
    for (const [, reject] of this.#pings.values()) reject(error);
    this.#pings.clear();
  }
}
