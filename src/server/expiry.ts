/**
 * The expiry of a session's identity (docs/PROTOCOL.md §3.5): `N` ms before `expiresAt` the session's
 * connection is asked for fresh credentials (`{"t":"auth","ms":N}`), `N = min(60 000, half the time
 * the identity had when it was adopted)`, at once when less is left; past `expiresAt` with no fresh
 * identity adopted, the connection closes with `UNAUTHORIZED` and the session stays.
 */

/** Longest delay `setTimeout` takes as given; a longer one fires at once. Later deadlines re-arm. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** The most warning an expiry gets (§3.5). */
export const MAX_AUTH_NOTICE_MS = 60_000;

/**
 * Most ms before a connection is asked again for fresh credentials that could not be checked
 * (`AUTH_UNAVAILABLE`, §3.5): the check is retried while the identity lasts, as the client's backoff
 * retries a ticket request, so a short outage of the application's user database closes nothing.
 */
export const AUTH_ASK_AGAIN_MS = 5_000;
/** No ask again later than half the time left, nor when that is under this many ms: each ask costs the client a call of its `auth`. */
export const MIN_AUTH_ASK_AGAIN_MS = 250;

/** What the clock acts on: the session's current connection, whichever it is when the time comes. */
export interface ExpiryTarget<Link> {
  /** The session's current connection, or null while the client is away. */
  link(): Link | null;
  /** Sends `{"t":"auth","ms":ms}` on `link`. */
  ask(link: Link, ms: number): void;
  /** Closes `link` with `UNAUTHORIZED`: the identity expired. */
  expire(link: Link): void;
}

export class IdentityExpiry<Link> {
  readonly #target: ExpiryTarget<Link>;
  readonly #now: () => number;
  #expiresAt: number | undefined;
  /** When the `auth` request is due. */
  #askAt = 0;
  /** The connection already asked for the current identity: each connection is asked once. */
  #asked: Link | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** When a connection was last asked. */
  #lastAskAt = -Infinity;

  constructor(target: ExpiryTarget<Link>, now: () => number) {
    this.#target = target;
    this.#now = now;
  }

  /** A new identity was adopted: its `expiresAt` (or none) replaces the previous one. */
  adopt(expiresAt: number | undefined): void {
    this.set(expiresAt);
    this.check();
  }

  /** Like `adopt`, without acting yet: for a session that has no connection so far. */
  set(expiresAt: number | undefined): void {
    this.#expiresAt = expiresAt;
    this.#asked = null;
    if (expiresAt === undefined) return;
    const askAt = expiresAt - Math.min(MAX_AUTH_NOTICE_MS, Math.floor((expiresAt - this.#now()) / 2));
    // An identity barely fresher than the one before, or no fresher (the client's `auth` gave the same
    // token again), is asked about after half the time left, again and again: never closer to the
    // last ask than MIN_AUTH_ASK_AGAIN_MS, where the asks would come a few ms apart, each a call of
    // the client's `auth` and of `authenticate`; not at all when that is past the expiry.
    const earliest = this.#lastAskAt + MIN_AUTH_ASK_AGAIN_MS;
    this.#askAt = askAt >= earliest ? askAt : Math.min(earliest, expiresAt);
  }

  /** Acts on what is due now and arms the timer for what comes next. Call it when a connection attaches. */
  check(): void {
    this.stop();
    const expiresAt = this.#expiresAt;
    if (expiresAt === undefined) return;
    const now = this.#now();
    const link = this.#target.link();
    if (now >= expiresAt) {
      if (link !== null) this.#target.expire(link);
      return;
    }
    if (now >= this.#askAt && link !== null && this.#asked !== link) {
      this.#asked = link;
      this.#lastAskAt = now;
      this.#target.ask(link, expiresAt - now);
    }
    // Timers are checked against the clock when they fire (a timer may fire early or late).
    const next = now >= this.#askAt ? expiresAt : this.#askAt;
    this.#timer = setTimeout(() => this.check(), Math.min(MAX_TIMER_DELAY, Math.max(0, next - now)));
    this.#timer.unref?.();
  }

  /**
   * The fresh credentials could not be checked (`AUTH_UNAVAILABLE`): the connection is asked again
   * after half the time left, at most {@link AUTH_ASK_AGAIN_MS}, never sooner than the ask was due,
   * and not at all under {@link MIN_AUTH_ASK_AGAIN_MS}: at most 17 asks per identity, for the longest
   * notice (60 s), when no check can be made.
   */
  askAgain(): void {
    const next = this.nextAsk();
    if (next === null) return;
    this.#askAt = next.at;
    this.#asked = null;
    // With no connection now, the one that attaches is asked when due (`check` on attach).
    if (this.#target.link() !== null) this.check();
  }

  /** When {@link askAgain} would ask, and when the identity expires; null when it would not ask. */
  nextAsk(): { at: number; expiresAt: number } | null {
    const expiresAt = this.#expiresAt;
    if (expiresAt === undefined) return null;
    const now = this.#now();
    const delay = Math.min(AUTH_ASK_AGAIN_MS, Math.floor((expiresAt - now) / 2));
    return delay < MIN_AUTH_ASK_AGAIN_MS ? null : { at: Math.max(this.#askAt, now + delay), expiresAt };
  }

  /** True once the identity expired with nothing fresh adopted. */
  expired(): boolean {
    return this.#expiresAt !== undefined && this.#now() >= this.#expiresAt;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
