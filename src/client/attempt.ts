/**
 * One connection attempt: the link it made, what it has seen so far, and every timer it set. An
 * attempt belongs to the client state that holds it (`connecting`, `reconnecting` or `open`); when
 * the state lets go of it, one {@link Attempt.dispose} releases everything it holds.
 */
import type { ErrorCode } from '../protocol/index.js';
import type { Clock } from './options.js';
import type { SessionName } from './ticket.js';
import type { StreamCheck } from './stream-check.js';
import type { Route } from './transport-selector.js';
import type { Transport, TransportName } from './transport.js';

/** The timers an attempt may hold, one of each at most. */
export type AttemptTimer =
  /** The connect deadline: no `hello` within `connectTimeout` (§13.3). */
  | 'connect'
  /** The liveness deadline: 2 × `hb` after the last byte of the stream (§11). */
  | 'liveness'
  /** The reconnection a `reconnect` frame asked for (§10.2). */
  | 'reconnect'
  /** The end of its head start: the next transport starts alongside it (§13.3, "Racing"). */
  | 'race'
  /** The next upgrade probe (§7.1.1). */
  | 'probe'
  /** The answer to the ping sent when the page came back (§13.4). */
  | 'wake';

/**
 * One connection attempt of a client. Its fields are `declare`d and set where they become known:
 * a field declared without `declare` is a class field definition in the ES2022 output, bytes in the
 * browser bundle that only say "undefined" until the constructor or a handler sets it anyway.
 */
export class Attempt {
  /** When it started, on the client's clock. */
  declare readonly startedAt: number;
  /** When its ticket arrived and its transport was made (§3.4). */
  declare ticketAt: number | undefined;
  /** Whether the application's `auth` threw or rejected for its ticket request. */
  declare authThrew: boolean | undefined;
  /** When the link came up (the socket opened, the response headers arrived), before its `hello`. */
  declare linkUpAt: number | undefined;
  /** When the `hello` arrived; `undefined` while connecting. */
  declare helloAt: number | undefined;
  /** When the last batch of the server's stream arrived: the liveness deadline runs from it (§11). */
  declare lastStreamByteAt: number;
  /** When to reconnect, after a `reconnect` frame (§10.2). */
  declare reconnectAt: number | undefined;
  /**
   * The session its ticket answer named (§3.4.name-session), or the one it presented: an attempt
   * racing it presents the same, so the two open one session.
   */
  declare named: SessionName | undefined;
  /**
   * Set on the winner of a race (§13.3): where to reconnect, at once, when the server closes it with
   * `SUPERSEDED` soon after its `hello` — the attempt it beat attached after it. `null`: on its own
   * transport.
   */
  declare ifSuperseded: Route | null | undefined;
  /** The link, once made. */
  declare link: Transport | undefined;
  /** The check that an open stream is not held back by a proxy, on a transport that may be (§13.3). */
  declare streamCheck: StreamCheck | undefined;
  /** Stops the upgrade probe in flight. */
  declare stopProbe: (() => void) | undefined;

  /** Cancels the attempt's own requests: its ticket request. */
  readonly requests = new AbortController();
  readonly #timers = new Map<AttemptTimer, unknown>();
  readonly #clock: Clock;
  #disposed = false;

  constructor(
    /** The transport it uses. */
    readonly name: TransportName,
    /** Whether a proxy may hold its open stream back, so the stream is checked once open (§13.3). */
    readonly bufferable: boolean,
    clock: Clock,
    /** The code of the failure this attempt follows, if any: the twice-in-a-row rule of §3.5 reads it. */
    readonly after?: ErrorCode,
  ) {
    this.#clock = clock;
    this.startedAt = clock.now();
    this.lastStreamByteAt = this.startedAt;
  }

  /** Whether {@link Attempt.dispose} ran: a disposed attempt is nobody's current attempt. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Whether the `hello` arrived. */
  get opened(): boolean {
    return this.helloAt !== undefined;
  }

  /** Sets `timer` to call `fn` in `ms`, replacing the one set before. Does nothing once disposed. */
  schedule(timer: AttemptTimer, fn: () => void, ms: number): void {
    this.cancel(timer);
    if (this.#disposed) return;
    // Longer delays overflow browser timers, which then fire at once.
    this.#timers.set(
      timer,
      this.#clock.setTimeout(() => {
        this.#timers.delete(timer);
        fn();
      }, Math.min(ms, 2 ** 31 - 1)),
    );
  }

  /** Clears `timer` if it is set. */
  cancel(timer: AttemptTimer): void {
    const handle = this.#timers.get(timer);
    if (handle === undefined) return;
    this.#timers.delete(timer);
    this.#clock.clearTimeout(handle);
  }

  /** Releases everything: every timer, the ticket request, the probe, the stream check, and the link (closed with `code`). */
  dispose(code: number): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const timer of [...this.#timers.keys()]) this.cancel(timer);
    this.requests.abort();
    this.stopProbe?.();
    this.stopProbe = undefined;
    this.streamCheck?.stop();
    this.link?.close(code);
  }
}
