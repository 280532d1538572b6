/**
 * The holder tab's part in sharing (PROTOCOL.md §7.5): it keeps the group's carrier open, reopens it
 * with backoff when it ends, hands each line to the tab whose channel it names, and detaches the
 * channels of tabs that went away — closed, crashed or frozen — so their sessions time out as a
 * stream of their own would have.
 */
import { Endpoint, type CarrierLine } from '../protocol/index.js';
import { openCarrier, carrierUrl, type CarrierEnvironment, type CarrierLink } from './carrier.js';
import type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike } from './transport.js';
import { UPSTREAM_HEADERS } from './transports/http-link.js';

/**
 * What the group announces to every tab of it, the holder's own included: a holder is opening a
 * carrier (`linked` once its response began), the carrier is up with its id, it could not be opened,
 * or it ended. `term` orders holders: a tab heeds no holder older than the newest it heard of, so a
 * holder whose lock was taken from it while its page hung is not heard when it runs again.
 */
export type Announcement = ({ t: 'opening'; linked: boolean } | { t: 'up'; id: string } | { t: 'down' } | { t: 'gone'; id: string; told?: string[] }) & {
  term?: number;
};

/**
 * What a tab's own BroadcastChannel carries: one line for a channel of the tab (the channel and the
 * batch), or the end of carrier `g` after its last lines. The group's channel says so too (`gone`,
 * naming the tabs `told` this way), but BroadcastChannel orders the messages of one channel only: a
 * tab that took the group's word would end a channel whose last lines, a restart notice among them
 * (§10.2), were still on their way.
 */
export type Delivery = { c: string; b: string } | { g: string };

/** What a holder needs from its tab. */
export interface HolderContext extends CarrierEnvironment {
  readonly locks: LockManagerLike;
  readonly BroadcastChannel: BroadcastChannelConstructor;
  /** The group's name: the endpoint and the transport. */
  readonly name: string;
  readonly base: string;
  readonly transport: 'sse' | 'long-polling';
  /** This tab's id: its channels are `<tab>.<n>`. */
  readonly tab: string;
  announce(message: Announcement): void;
  /** A line for a channel of this tab. */
  deliver(delivery: Delivery): void;
}

/**
 * Delays before a holder reopens a carrier that failed — never opened, or ended within `minLife` ms
 * of opening: the first, doubling up to the cap. Meanwhile the group hears the carrier is down and
 * each tab connects on its own, with its own backoff: a carrier that keeps failing (a proxy that
 * cuts it, a header a cross-origin server does not allow) never drives the tabs into a loop.
 */
export const REOPEN_DELAY = { first: 250, max: 8_000, minLife: 5_000 } as const;

/** The lock a tab holds while it takes part in a group: its release tells the holder the tab is gone. */
export const tabLock = (group: string, tab: string): string => `${group}|tab|${tab}`;

/** The BroadcastChannel name of one tab's lines. */
export const inboxName = (group: string, tab: string): string => `${group}|to|${tab}`;

/** The tab part of a channel id `<tab>.<n>`. */
const tabOf = (channel: string): string => channel.slice(0, channel.lastIndexOf('.'));

/** A tab other than the holder with channels on the carrier. */
interface Follower {
  readonly inbox: BroadcastChannelLike;
  readonly channels: Set<string>;
  /** Stops waiting for the tab's lock. */
  readonly watch: AbortController;
}

export class Holder {
  readonly #context: HolderContext;
  #link: CarrierLink | null = null;
  /** The id of the open carrier, once it said it. */
  #id: string | null = null;
  #failures = 0;
  /** Whether the carrier being opened has its response. */
  #linked = false;
  /** When the open carrier said its id. */
  #openedAt = 0;
  #timer: unknown;
  #stopped = false;
  readonly #followers = new Map<string, Follower>();

  constructor(context: HolderContext) {
    this.#context = context;
    this.#open();
  }

  /** The carrier's state as the group should hear it now (a tab asked). */
  get announcement(): Announcement {
    return this.#id !== null ? { t: 'up', id: this.#id } : this.#failures > 0 ? { t: 'down' } : { t: 'opening', linked: this.#linked };
  }

  /** Detaches `channels` of the current carrier `id` on the server. */
  detach(id: string, channels: readonly string[]): void {
    if (id !== this.#id || channels.length === 0) return;
    const body = JSON.stringify({ carrier: id, channels });
    // A plain call: a browser's fetch throws when called as another object's method.
    const { fetch, base } = this.#context;
    fetch(carrierUrl(base, Endpoint.detach), { method: 'POST', headers: UPSTREAM_HEADERS, body, keepalive: true, cache: 'no-store' }).catch(() => undefined);
  }

  /** Gives up the carrier: the tab leaves the group, freezes, or its page goes away. */
  stop(): void {
    this.#stopped = true;
    this.#context.clock.clearTimeout(this.#timer);
    this.#link?.close();
    for (const follower of this.#followers.values()) this.#forget(follower);
    this.#followers.clear();
  }

  #open(): void {
    const { transport, base } = this.#context;
    this.#linked = false;
    if (this.#failures === 0) this.#context.announce({ t: 'opening', linked: false });
    this.#link = openCarrier(transport, base, this.#context, {
      onLinkUp: () => {
        this.#linked = true;
        if (this.#failures === 0) this.#context.announce({ t: 'opening', linked: true });
      },
      onLine: (line) => this.#onLine(line),
      onEnd: (opened) => this.#onEnd(opened),
    });
  }

  #onLine(line: CarrierLine): void {
    if ('notice' in line) {
      if (line.notice.kind !== 'open') return;
      this.#id = line.notice.id;
      this.#openedAt = this.#context.clock.now();
      this.#context.announce({ t: 'up', id: this.#id });
      return;
    }
    const delivery: Delivery = { c: line.channel, b: line.batch };
    const tab = tabOf(line.channel);
    if (tab === this.#context.tab) return this.#context.deliver(delivery);
    this.#follower(tab).channels.add(line.channel);
    this.#followers.get(tab)?.inbox.postMessage(delivery);
  }

  #onEnd(opened: boolean): void {
    this.#link = null;
    const id = this.#id;
    this.#id = null;
    const told = [...this.#followers.keys()];
    if (id !== null) {
      this.#context.deliver({ g: id });
      for (const follower of this.#followers.values()) follower.inbox.postMessage({ g: id });
      this.#context.announce({ t: 'gone', id, told });
    }
    for (const follower of this.#followers.values()) this.#forget(follower);
    this.#followers.clear();
    if (this.#stopped) return;
    const failed = !opened || this.#context.clock.now() - this.#openedAt < REOPEN_DELAY.minLife;
    this.#failures = failed ? this.#failures + 1 : 0;
    if (failed) this.#context.announce({ t: 'down' });
    const { first, max } = REOPEN_DELAY;
    const delay = this.#failures === 0 ? 0 : Math.min(max, first * 2 ** (this.#failures - 1));
    this.#timer = this.#context.clock.setTimeout(() => this.#stopped || this.#open(), delay);
  }

  /** The follower `tab`, watched from its first line: when its lock comes free, it is gone. */
  #follower(tab: string): Follower {
    const known = this.#followers.get(tab);
    if (known) return known;
    const { locks, BroadcastChannel, name } = this.#context;
    const follower: Follower = { inbox: new BroadcastChannel(inboxName(name, tab)), channels: new Set(), watch: new AbortController() };
    this.#followers.set(tab, follower);
    const id = this.#id;
    locks
      .request(tabLock(name, tab), { signal: follower.watch.signal }, async () => {
        if (this.#followers.get(tab) !== follower) return;
        this.#followers.delete(tab);
        if (id !== null) this.detach(id, [...follower.channels]);
        this.#forget(follower);
      })
      .catch(() => undefined);
    return follower;
  }

  #forget(follower: Follower): void {
    follower.watch.abort();
    follower.inbox.close();
  }
}
