/**
 * One connection for all tabs (PROTOCOL.md §7.5). The tabs of an origin that use the same endpoint
 * and transport form a group: Web Locks elect one holder, which keeps the group's carrier open
 * (holder.ts); BroadcastChannel tells every tab where the carrier stands and carries each tab its
 * own lines. Each tab's client keeps its own session — id, cursor, outbox, identity — and only its
 * downstream travels through the holder; its ticket and upstream requests are short and its own.
 *
 * A tab takes part while one of its clients has an attempt on the group's transport, and for up to
 * CARRIER_WAIT ms after its last one ended because the carrier changed hands (its client comes back
 * at once, transports/shared.ts), so that it keeps its place in line meanwhile. When the holder
 * leaves, closes, crashes or freezes, its lock comes free and the next tab in line opens a carrier at
 * once; the sessions on the old one resume on the new one from their own cursors. A holder whose page
 * hangs keeps its lock: a tab that stops hearing from it takes the lock (`suspect`), and the holders'
 * terms keep what the hung one says when it runs again from moving any tab.
 */
import type { Clock } from './options.js';
import { Holder, inboxName, tabLock, type Announcement, type Delivery } from './holder.js';
import { watchFreeze } from './page-lifecycle.js';
import { randomHex, type BroadcastChannelConstructor, type BroadcastChannelLike, type EventSourceConstructor, type FetchLike, type LockManagerLike } from './transport.js';

/**
 * Ms a tab waits to hear of a holder before its attempt connects on its own. Once a holder says it is
 * opening the carrier, the attempt waits for it within its own connect deadline, as it would for a
 * stream of its own: tabs that gave up on a slow holder would take the very connections it needs.
 */
export const CARRIER_WAIT = 1_000;
/** A tab on the carrier that heard nothing from its holder for this long asks after it (see `watchHolder`). */
export const QUIET_WAIT = 5_000;
/**
 * How long a holder has to answer a tab that asks after a quiet spell: longer than after an attach,
 * so that a holder page busy for a moment (a long task, a dialog) is not taken for a hung one.
 */
export const QUIET_PATIENCE = 3_000;

/** What forming a group takes from the tab. */
export interface GroupEnvironment {
  readonly locks: LockManagerLike;
  readonly BroadcastChannel: BroadcastChannelConstructor;
  readonly EventSource?: EventSourceConstructor | undefined;
  readonly fetch: FetchLike;
  readonly clock: Clock;
}

/** What a channel of this tab hears. */
export interface ChannelListener {
  /** A batch of its session's stream. */
  deliver(batch: string): void;
  /** The carrier it is on ended: its session reconnects, on the group's next carrier. */
  gone(): void;
}

/** `ask`: where is the carrier? `by` a tab that suspects its holder hung (see `suspect`). */
type Message = Announcement | { t: 'ask'; by?: string } | { t: 'leave'; id: string; channels: string[] };

/** An attempt waiting to hear of the group's carrier. */
interface Waiter {
  readonly linkUp: () => void;
  readonly answer: (id: string | null) => void;
  /** Until it connects on its own when no holder spoke up. */
  readonly timer: unknown;
}

/** Where this tab stands in its group. */
type Role =
  | { kind: 'idle' }
  /** In line for the holder's lock. */
  | { kind: 'waiting'; readonly line: AbortController }
  /** `term`: when it took the lock, newer than any holder it heard of (see {@link Announcement}). */
  | { kind: 'holding'; readonly holder: Holder; readonly term: number; readonly release: () => void }
  /** The page is frozen: it holds nothing and waits in no line until it resumes. */
  | { kind: 'frozen' };

/** The groups of this tab, by lock manager (one per tab; tests give each simulated tab its own). */
const groups = new WeakMap<LockManagerLike, Map<string, TabGroup>>();

/** The group of this tab for `base` and `transport`. */
export function groupFor(env: GroupEnvironment, base: string, transport: 'sse' | 'long-polling'): TabGroup {
  let mine = groups.get(env.locks);
  if (!mine) groups.set(env.locks, (mine = new Map()));
  const name = `unbroken|${base}|${transport}`;
  let group = mine.get(name);
  if (!group) mine.set(name, (group = new TabGroup(env, name, base, transport)));
  return group;
}

export class TabGroup {
  /** This tab's id, the first part of each of its channel ids. */
  readonly tab = randomHex(8);
  readonly #env: GroupEnvironment;
  readonly #name: string;
  readonly #base: string;
  readonly #transport: 'sse' | 'long-polling';
  readonly #bus: BroadcastChannelLike;
  #inbox: BroadcastChannelLike | null = null;
  /** The carrier as last announced: being opened, open with its id, down (tabs connect on their own), or not known. */
  #carrier: { kind: 'opening'; linked: boolean } | { kind: 'up'; id: string } | { kind: 'down' } | { kind: 'unknown' } = { kind: 'unknown' };
  readonly #waiting = new Set<Waiter>();
  /** Called with each new carrier's id. */
  readonly #watchers = new Set<(id: string) => void>();
  readonly #listeners = new Map<string, { carrier: string; listener: ChannelListener }>();
  #role: Role = { kind: 'idle' };
  #users = 0;
  #channels = 0;
  /** The term of the newest holder heard of. */
  #term = 0;
  /** How many times this tab heard from a holder: a batch for one of its channels, or the carrier up (see `watchHolder`). */
  heard = 0;
  /** When the wait of a tab whose id sorts before this one's, and which asked after the holder, ends at the latest (see `suspect`). */
  #outranked = -Infinity;
  /** This tab's own lock, which the holder watches, while it takes part: `held` settles once granted (or refused), `release` lets go. */
  #own: { held: Promise<void>; release?: () => void } | null = null;
  /** Settles once this tab's first request for its own lock was granted (or refused). */
  #firstHeld: Promise<void> | null = null;

  constructor(env: GroupEnvironment, name: string, base: string, transport: 'sse' | 'long-polling') {
    this.#env = env;
    this.#name = name;
    this.#base = base;
    this.#transport = transport;
    this.#bus = new env.BroadcastChannel(name);
    // Another script of the origin could post here: anything but an object with a known `t` is ignored.
    this.#bus.onmessage = ({ data }) => typeof data === 'object' && data !== null && this.#hear(data as Message);
    watchFreeze(
      () => this.#freeze(),
      () => {
        if (this.#role.kind !== 'frozen') return;
        if (this.#users > 0) this.#enter();
        else this.#role = { kind: 'idle' };
      },
    );
  }

  /** Whether this tab holds the group's carrier. */
  get holding(): boolean {
    return this.#role.kind === 'holding';
  }

  /** A fresh channel id of this tab. */
  channel(): string {
    return `${this.tab}.${++this.#channels}`;
  }

  /**
   * One more attempt of this tab uses the group; the function returned ends that use (after a
   * handover, the attempt calls it CARRIER_WAIT ms late, transports/shared.ts).
   */
  join(): () => void {
    if (++this.#users === 1 && this.#role.kind === 'idle') this.#enter();
    let joined = true;
    return () => {
      if (!joined) return;
      joined = false;
      if (--this.#users === 0) this.#leave();
    };
  }

  /**
   * The id of the group's open carrier, or `null` when there is none to be had now: connect on your
   * own. `linkUp` is called when the carrier's response began, before its first line: a carrier that
   * a proxy holds back then fails the attempt as `buffered`, as a stream of its own would (§13.3).
   */
  carrier(linkUp: () => void): Promise<string | null> {
    // Only once this tab held its own lock: the holder takes a free lock for a tab that went away and
    // detaches its channels, and a fresh page's first lock can take longer than an attach (§7.5). Its
    // first only: asked again (it left the group and came back) the lock may wait behind a request
    // of a holder that hangs, until that holder runs again. A first lock that does not come within
    // CARRIER_WAIT leaves the tab to connect on its own meanwhile.
    const { clock } = this.#env;
    return new Promise((resolve) => {
      const late = clock.setTimeout(() => resolve(null), CARRIER_WAIT);
      void (this.#firstHeld ?? Promise.resolve()).then(() => {
        clock.clearTimeout(late);
        void this.#carrierNow(linkUp).then(resolve);
      });
    });
  }

  #carrierNow(linkUp: () => void): Promise<string | null> {
    const carrier = this.#carrier;
    if (carrier.kind === 'up' || carrier.kind === 'down') return Promise.resolve(carrier.kind === 'up' ? carrier.id : null);
    return new Promise((resolve) => {
      const { clock } = this.#env;
      const waiter: Waiter = {
        linkUp,
        answer: (id) => {
          clock.clearTimeout(waiter.timer);
          this.#waiting.delete(waiter);
          resolve(id);
        },
        // Alone for now; and a holder that did not answer may hang (see `suspect`).
        timer: carrier.kind === 'unknown' ? clock.setTimeout(() => (waiter.answer(null), this.suspect(null)), CARRIER_WAIT) : undefined,
      };
      this.#waiting.add(waiter);
      if (carrier.kind === 'opening' && carrier.linked) linkUp();
      if (carrier.kind === 'unknown') this.#post({ t: 'ask' });
    });
  }

  /** Calls `watcher` with the id of each carrier that opens from now on; returns the function that stops. */
  watch(watcher: (id: string) => void): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** Hands the lines of `channel`, on carrier `carrier`, to `listener`; returns the function that stops. */
  listen(channel: string, carrier: string, listener: ChannelListener): () => void {
    this.#inbox ??= this.#openInbox();
    this.#listeners.set(channel, { carrier, listener });
    return () => this.#listeners.delete(channel);
  }

  /**
   * A channel of this tab on carrier `id` heard nothing from the holder for a while (`watchHolder`),
   * or the server no longer knows `id`, or (`id` null) no holder answered where the carrier stands:
   * the holder's page may hang (a long task, or a tab the browser suspended without a `freeze`
   * event). Unless the holder answers within `patience` ms, this tab takes its lock (Web Locks
   * `steal`) and opens the next carrier, on which every session resumes; otherwise each would wait
   * out its heartbeat deadline and connect on its own. A tab whose wait ends while a tab whose id
   * sorts first may still wait for its own answer (it asked less than QUIET_PATIENCE ms ago), or
   * waited until less than CARRIER_WAIT ms ago (its announcement may be on its way), asks again
   * instead: of the tabs that suspect the holder together, whatever their waits, the one whose id
   * sorts first takes the lock, so one new carrier opens, not one per tab; and one that deferred
   * takes it when that tab went away meanwhile.
   */
  suspect(id: string | null, patience = CARRIER_WAIT): void {
    const { clock } = this.#env;
    const role = this.#role;
    const carrier = this.#carrier;
    if (role.kind !== 'waiting' || (id === null ? carrier.kind !== 'unknown' : carrier.kind !== 'up' || carrier.id !== id)) return;
    this.#post({ t: 'ask', by: this.tab });
    // Any announcement heeded meanwhile replaces `#carrier`: a holder answered.
    clock.setTimeout(
      () => this.#role === role && this.#carrier === carrier && (this.#outranked < clock.now() - CARRIER_WAIT ? this.#take(true) : this.suspect(id, patience)),
      patience,
    );
  }

  /**
   * Watches the holder of carrier `id` for a channel of this tab, attached when the tab had heard
   * `since` times from a holder, while `live()`. The holder relays the session's hello at once, so
   * silence for CARRIER_WAIT ms after the attach may be a hung holder; so may silence for QUIET_WAIT
   * ms later on, as a quiet stream and a hung holder look alike and the heartbeat deadline (2 × `hb`,
   * 30 s by default) is long to wait. Either way the tab asks (`suspect`) — after a quiet spell with
   * QUIET_PATIENCE for the answer — and the holder's answer to one tab's question reassures every tab
   * whose next check comes after it.
   */
  watchHolder(id: string, since: number, live: () => boolean, wait = CARRIER_WAIT): void {
    this.#env.clock.setTimeout(() => {
      if (!live()) return;
      if (this.heard === since) this.suspect(id, wait < QUIET_WAIT ? CARRIER_WAIT : QUIET_PATIENCE);
      this.watchHolder(id, this.heard, live, QUIET_WAIT);
    }, wait);
  }

  /** The channel's connection is over: the holder detaches it on the server. */
  detach(carrier: string, channel: string): void {
    this.#post({ t: 'leave', id: carrier, channels: [channel] });
  }

  #openInbox(): BroadcastChannelLike {
    const inbox = new this.#env.BroadcastChannel(inboxName(this.#name, this.tab));
    inbox.onmessage = ({ data }) => this.#deliver(data as Delivery);
    return inbox;
  }

  #deliver(delivery: Delivery | null): void {
    const { c, b, g } = (delivery ?? {}) as { c?: unknown; b?: unknown; g?: unknown };
    // The end of carrier `g` (anything but a carrier's id ends nothing).
    if (g) return this.#ended((carrier) => carrier === g);
    // Its keys are strings: anything else finds no channel. Only a batch for a channel this tab
    // listens to is news from its holder (a stepped-down holder may still relay old ones).
    const entry = this.#listeners.get(c as string);
    if (!entry || typeof b !== 'string') return;
    this.heard++;
    entry.listener.deliver(b);
  }

  /** Sends to every other tab, and hears it here too (a BroadcastChannel does not echo). */
  #post(message: Message): void {
    this.#bus.postMessage(message);
    this.#hear(message);
  }

  #hear(message: Message): void {
    const role = this.#role;
    if (message.t === 'ask') {
      if (role.kind === 'holding') this.#post({ ...role.holder.announcement, term: role.term });
      // Its wait is 1 s or QUIET_PATIENCE: counted as the longer, a tab that asked 1 s after it still defers.
      if (typeof message.by === 'string' && message.by < this.tab) this.#outranked = this.#env.clock.now() + QUIET_PATIENCE;
      return;
    }
    if (message.t === 'leave') {
      if (role.kind === 'holding' && Array.isArray(message.channels)) role.holder.detach(message.id, message.channels.filter((c) => typeof c === 'string'));
      return;
    }
    // A holder older than the newest heard of lost its lock while its page hung: it is not heeded.
    const term = Number(message.term) || 0;
    if (term < this.#term) return;
    this.#term = term;
    if (role.kind === 'holding' && term > role.term) this.#stepDown();
    switch (message.t) {
      case 'opening':
        this.#carrier = { kind: 'opening', linked: message.linked === true };
        for (const waiter of this.#waiting) {
          // A holder is at work: the attempt now waits for it within its own connect deadline.
          this.#env.clock.clearTimeout(waiter.timer);
          if (message.linked === true) waiter.linkUp();
        }
        return;
      case 'up':
        if (typeof message.id !== 'string') return;
        // What a holder answers to a question (see `watchHolder`).
        this.heard++;
        this.#carrier = { kind: 'up', id: message.id };
        // A new carrier means the old one is gone, whether or not its holder could say so (a crash).
        this.#ended((carrier) => carrier !== message.id);
        for (const watcher of [...this.#watchers]) watcher(message.id);
        return this.#answer(message.id);
      case 'down':
        this.#carrier = { kind: 'down' };
        return this.#answer(null);
      case 'gone':
        if (this.#carrier.kind === 'up' && this.#carrier.id === message.id) this.#carrier = { kind: 'unknown' };
        // A tab the holder relayed lines to hears of the end after them, on its own channel (`g`).
        if (!(Array.isArray(message.told) && message.told.includes(this.tab))) this.#ended((carrier) => carrier === message.id);
    }
  }

  #answer(id: string | null): void {
    for (const waiter of [...this.#waiting]) waiter.answer(id);
  }

  /** Tells each listener on a carrier that `over` says ended. */
  #ended(over: (carrier: string) => boolean): void {
    for (const [channel, entry] of [...this.#listeners]) {
      if (!over(entry.carrier)) continue;
      this.#listeners.delete(channel);
      entry.listener.gone();
    }
  }

  /** Takes part: holds this tab's own lock, and waits in line for the holder's. */
  #enter(): void {
    // Opened now, well before a holder relays anything to it: a channel opened in one tab can miss
    // what another posts in the moments before the browser registered it.
    this.#inbox ??= this.#openInbox();
    this.#own ??= this.#askOwn();
    this.#firstHeld ??= this.#own.held;
    this.#take(false);
  }

  /**
   * Asks for this tab's own lock, which says to the holder that the tab is there: released when the
   * tab leaves the group, or by the browser when the tab closes or crashes. One request at a time: a
   * grant that comes after the tab left lets go at once, so leaving and coming back meanwhile asks
   * anew behind it instead of waiting on a lock the tab already holds.
   */
  #askOwn(): { held: Promise<void>; release?: () => void } {
    const own: { held: Promise<void>; release?: () => void } = { held: Promise.resolve() };
    own.held = new Promise<void>((held) => {
      const hold = (): Promise<void> => {
        held();
        return this.#own === own ? new Promise<void>((resolve) => (own.release = resolve)) : Promise.resolve();
      };
      this.#env.locks.request(tabLock(this.#name, this.tab), {}, hold).catch(() => {
        held();
        if (this.#own === own) this.#own = null;
      });
    });
    return own;
  }

  /**
   * Waits in line for the holder's lock, or with `steal` takes it from the tab that holds it, at once.
   * A request that steals may not have a signal (Web Locks); the callback lets go of a lock granted to
   * a line this tab left meanwhile.
   */
  #take(steal: boolean): void {
    if (this.#role.kind === 'waiting') this.#role.line.abort();
    const line = new AbortController();
    this.#role = { kind: 'waiting', line };
    let mine: Holder | undefined;
    this.#env.locks
      .request(this.#name, steal ? { steal: true } : { signal: line.signal }, () => {
        if (this.#role.kind !== 'waiting' || this.#role.line !== line) return Promise.resolve();
        return new Promise<void>((release) => {
          const term = (this.#term = Math.max(this.#env.clock.now(), this.#term + 1));
          mine = new Holder({
            ...this.#env,
            name: this.#name,
            base: this.#base,
            transport: this.#transport,
            tab: this.tab,
            announce: (message) => this.#post({ ...message, term }),
            deliver: (delivery) => this.#deliver(delivery),
          });
          this.#role = { kind: 'holding', holder: mine, term, release };
        });
      })
      // Rejected when a tab took the lock from this one, whose page had hung; or the line was left.
      .catch(() => this.#role.kind === 'holding' && this.#role.holder === mine && this.#stepDown());
  }

  /** A newer holder took the lock from this tab while its page hung: this tab waits in line again. */
  #stepDown(): void {
    this.#stand({ kind: 'idle' });
    if (this.#users > 0) this.#take(false);
  }

  /** Takes no part any more: gives up the carrier or the place in line, and this tab's lock. */
  #stand(next: Role): void {
    const role = this.#role;
    this.#role = next;
    if (role.kind === 'waiting') role.line.abort();
    if (role.kind === 'holding') {
      role.holder.stop();
      role.release();
    }
  }

  #leave(): void {
    this.#stand({ kind: 'idle' });
    this.#own?.release?.();
    this.#own = null;
  }

  /**
   * The page is being frozen: its timers and messages stop, so it must neither hold the carrier nor
   * have lines sent to it. Its channels end here; its clients reconnect when it resumes.
   */
  #freeze(): void {
    if (this.#users === 0) return;
    this.#stand({ kind: 'frozen' });
    const mine = [...this.#listeners];
    this.#listeners.clear();
    for (const [channel, { carrier }] of mine) this.detach(carrier, channel);
    for (const [, { listener }] of mine) listener.gone();
  }
}
