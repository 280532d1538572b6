/**
 * The message store: the one append order every stream is cut from (docs/PROTOCOL.md §6).
 *
 * The server appends every message it sends, reads a session's stream back to resume a client, and
 * subscribes to appends to deliver live. Methods are asynchronous so that a store backed by a database
 * (e.g. Redis Streams: XADD / XRANGE / XREAD) implements the same interface; {@link MemoryStore} is the
 * in-memory default.
 */
import { randomBytes } from 'node:crypto';
import type { GapReason, Payload } from '../protocol/index.js';
import { UnbrokenServerError } from './errors.js';
import { AddressIndex } from './memory-index.js';

/**
 * Whom a message is for: every session, one session, or the sessions in any of some rooms at the
 * message's position (§6.5).
 */
export type Address =
  | { readonly kind: 'all' }
  | { readonly kind: 'session'; readonly session: string }
  | { readonly kind: 'rooms'; readonly rooms: readonly string[] };

/** A message as the store holds it. */
export interface StoredMessage {
  /** Chosen by the store: strictly ordered, carries the store's epoch, 1–256 characters (§4.2, §6.2). */
  readonly id: string;
  /** Whom it is for. */
  readonly to: Address;
  /** Optional event name. */
  readonly event?: string;
  readonly data: Payload;
}

/** What to append: a store assigns the id. */
export interface NewMessage {
  readonly to: Address;
  readonly event?: string;
  readonly data: Payload;
}

/** A membership that began or ended (§6.5), told to subscribers in append order. */
export interface MembershipChange {
  readonly session: string;
  readonly room: string;
  /** True for a join, false for a leave. */
  readonly joined: boolean;
}

/** What a store tells its subscribers besides messages. */
export interface StoreEvents {
  /**
   * A join or leave changed a membership, told in append order with the messages: a server delivers
   * a room's messages live to the sessions the changes so far put in it, which is what a read of
   * their streams returns (§6.5) — also when another process sharing the store made the change.
   */
  membership?(change: MembershipChange): void;
  /**
   * The store lost its history and began a new epoch (a store server restarted without persistence,
   * §6.2): live streams must resume, so that each client is told the gap once.
   */
  historyLost?(): void;
  /**
   * Messages were evicted before they could be told to subscribers (appends ran further ahead of a
   * store's reader than its retention): live streams must resume, so that each client reads what is
   * still retained and is told the gap of what is not (§6.3).
   */
  overrun?(): void;
}

/** One page of a session's stream (§6.3). */
export interface ReadResult {
  /**
   * The id the returned messages follow: `after` itself when the store could resume from it, else the
   * position after the gap (the client is told the range `after` exclusive to `cursor` inclusive is lost).
   */
  cursor: string;
  /** Set when the store could not resume from `after`. */
  gap?: GapReason;
  /** Messages of the session's stream after `cursor`, in append order, at most `limit`. */
  messages: StoredMessage[];
  /** True when the stream has more messages after the last one returned: read again after it. */
  more: boolean;
}

/** The pluggable store. Every method of a conforming store keeps the semantics documented here. */
export interface MessageStore {
  /**
   * Appends a message and assigns its id; resolves once the message is stored. Subscribers hear of it
   * in append order, before or after the promise resolves: {@link MemoryStore} calls them during the
   * append, a store shared by several processes when its reader sees the message (see `subscribe`).
   *
   * `dataText`, when given, is `JSON.stringify(message.data)`, made by the server as it checked the
   * message: a store that keeps text may store it rather than serialise the data again.
   */
  append(message: NewMessage, dataText?: string): Promise<StoredMessage>;
  /**
   * Optional: `append`, done before it returns, for a store that holds its messages in this process.
   * It tells subscribers during the call, as `append` does, and throws where `append` rejects. The
   * server then answers a send without waiting on the store, and pays no promise of the store's per
   * message; a store whose append does I/O leaves it out. `dataText` as for `append`.
   */
  appendNow?(message: NewMessage, dataText?: string): StoredMessage;
  /** The id of the newest message, or the id a brand-new stream starts after when there is none. */
  head(): Promise<string>;
  /**
   * Makes `sessionId` a member of `room` (§6.5): the room's messages appended after the returned
   * position, until a `leave`, are part of the session's stream. The position is the head as of the
   * call — a message whose `append` was called after `join` comes after it — so a shared store must
   * order joins with appends (e.g. in the same stream or script). Joining a room the session is in
   * already changes nothing and returns where that membership began.
   */
  join(sessionId: string, room: string): Promise<string>;
  /**
   * Ends the membership of `sessionId` in `room` at the head as of the call (inclusive): the room's
   * later messages are not part of its stream, the earlier ones stay in it for resume. Returns the
   * position, or `null` when the session was not in the room.
   */
  leave(sessionId: string, room: string): Promise<string | null>;
  /** The ids of the sessions in `room` now, in no particular order. */
  members(room: string): Promise<string[]>;
  /**
   * The rooms `sessionId` is in now, in no particular order: what a server process that has never
   * seen the session learns its rooms from (a store shared by several processes).
   */
  roomsOf(sessionId: string): Promise<string[]>;
  /**
   * Reads the stream of `sessionId` after `after`, at most `limit` messages: broadcasts, messages
   * addressed to it, and messages to a room it was in at the message's position (§6.5). When `after`
   * cannot be resumed from, the result carries a `gap`:
   * `invalid-id` (not an id this store could issue; continues from the head), `unknown-epoch` (another
   * epoch; continues from the oldest retained message of this epoch) or `expired` (older than
   * retention; continues from the oldest retained message).
   */
  read(sessionId: string, after: string, limit: number): Promise<ReadResult>;
  /**
   * Optional, and every store that keeps messages for a session longer than the session should have
   * it: a session is created under `sessionId`, so nothing addressed to that id until now — messages
   * to it, its memberships, open or closed — is part of its stream (§3.3.same-id). A session id is
   * no secret (§3.4): without this, a client that creates a session under the id of one that ended
   * reads what was sent to that one. It takes effect before any later call for the id (a `read`, a
   * `join`, an `append` to it). A store that shares session state (shared-state.ts) does this in
   * `createSession` instead.
   */
  forget?(sessionId: string): void | Promise<void>;
  /**
   * Calls `listener` with every message appended after the call — by any process sharing the store —
   * once each, in append order, and `events` with what else the server must know in that order (see
   * {@link StoreEvents}). Returns the unsubscribe function. Listeners must not throw.
   *
   * A listener may be called after the `append` of its message resolved, but never after a `read`
   * that returned the message resolved: the server places the seam between a replay and the live
   * stream on that (§6.3).
   *
   * A store that holds the message's data as JSON text may pass it as `dataText` (never for bytes):
   * the server then encodes the message around that text instead of serialising the data again. It
   * must be JSON text whose value is `message.data`, as `JSON.stringify` makes it: a text with a raw
   * line break is not used (it would cut a carrier's line, PROTOCOL §7.5).
   */
  subscribe(listener: (message: StoredMessage, dataText?: string) => void, events?: StoreEvents): () => void;
  /**
   * Resolves once the store can serve, rejects with an `UnbrokenServerError` (`STORE_ERROR`) that says
   * why when it cannot (a database that does not answer). The server awaits it before it serves; a
   * store without it is ready at once.
   */
  ready?(): Promise<void>;
  /**
   * Calls `listener` with what goes wrong in the store outside any call — a lost or restored
   * connection, a database that has stopped answering, a background reader that failed — as errors
   * with plain messages. Returns the unsubscribe function. The server forwards every report to its
   * `error` event.
   */
  onError?(listener: (error: Error) => void): () => void;
  /** Releases the store's resources; a closed store rejects appends. */
  close?(): Promise<void>;
}

export interface MemoryStoreOptions {
  /**
   * Most messages retained; the oldest are evicted first.
   * @default 10_000
   */
  maxMessages?: number;
  /**
   * Longest a message is retained, in ms (checked on every append and read).
   * @default 300_000
   */
  maxAge?: number;
  /**
   * Clock, in ms.
   * @default Date.now
   */
  now?: () => number;
  /**
   * The epoch, lower-case base36 (`[0-9a-z]+`). Meant for tests; a store's epoch must change whenever
   * its history is lost, which a fresh random epoch per instance guarantees.
   * @default 7 random base36 characters
   */
  epoch?: string;
}

const EPOCH_PATTERN = /^[0-9a-z]+$/;
const ID_PATTERN = /^([0-9a-z]+)-(0|[1-9][0-9]{0,15})$/;

function randomEpoch(): string {
  // 36^7 ≈ 7.8e10 values: two lifetimes of one server meeting the same epoch is not a concern.
  let epoch = '';
  for (const byte of randomBytes(7)) epoch += (byte % 36).toString(36);
  return epoch;
}

function copyPayload(data: Payload): Payload {
  // Callers reuse buffers (Node's Buffer pool, a socket's chunks): keep a private copy of bytes.
  return data instanceof Uint8Array ? new Uint8Array(data) : data;
}

/**
 * The in-memory store. Ids are `<epoch>-<n>` with `n` counting from 1; a new instance draws a new epoch,
 * so a client that presents an id from before a restart is told `unknown-epoch`. Retention is bounded
 * by count and by age; lookups by id are O(1). Reading a session's stream costs in proportion to the
 * messages addressed to it (broadcasts, its own, its rooms' while it was in them), through an index of
 * message numbers per address; memberships are kept as intervals of positions until retention
 * passes their end, and not at all past their leave when no message to the room fell in them.
 *
 * @example
 * const server = createServer({ store: new MemoryStore({ maxMessages: 50_000, maxAge: 600_000 }) });
 */
export class MemoryStore implements MessageStore {
  readonly epoch: string;
  readonly #maxMessages: number;
  readonly #maxAge: number;
  readonly #now: () => number;
  /**
   * Retained messages are `#messages[#offset…]`, appended at `#times[#offset…]` (two arrays rather
   * than an object per message); the last one has number `#lastN`.
   */
  #messages: StoredMessage[] = [];
  #times: number[] = [];
  #offset = 0;
  #lastN = 0;
  #listeners = new Set<(message: StoredMessage, dataText: string | undefined) => void>();
  #membershipListeners = new Set<(change: MembershipChange) => void>();
  readonly #index = new AddressIndex();
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const { maxMessages = 10_000, maxAge = 300_000, now = Date.now, epoch = randomEpoch() } = options;
    if (!Number.isSafeInteger(maxMessages) || maxMessages < 1) {
      throw new RangeError(`MemoryStore: expects maxMessages to be an integer ≥ 1, got ${maxMessages}`);
    }
    if (!(maxAge > 0)) throw new RangeError(`MemoryStore: expects maxAge > 0 ms, got ${maxAge}`);
    if (!EPOCH_PATTERN.test(epoch) || epoch.length > 32) {
      throw new RangeError(`MemoryStore: expects epoch of 1–32 characters [0-9a-z], got ${JSON.stringify(epoch)}`);
    }
    this.#maxMessages = maxMessages;
    this.#maxAge = maxAge;
    this.#now = now;
    this.epoch = epoch;
  }

  /** Number of messages retained. */
  get size(): number {
    return this.#messages.length - this.#offset;
  }

  async append(message: NewMessage, dataText?: string): Promise<StoredMessage> {
    return this.appendNow(message, dataText);
  }

  /** Subscribers get `dataText` with the message: it is the text of the data the store keeps. */
  appendNow(message: NewMessage, dataText?: string): StoredMessage {
    if (this.#closed) throw new Error('MemoryStore: append after close()');
    const now = this.#now();
    this.#evictExpired(now);
    const stored: StoredMessage =
      message.event === undefined
        ? { id: this.#id(this.#lastN + 1), to: message.to, data: copyPayload(message.data) }
        : { id: this.#id(this.#lastN + 1), to: message.to, event: message.event, data: copyPayload(message.data) };
    this.#messages.push(stored);
    this.#times.push(now);
    this.#lastN++;
    this.#index.add(this.#lastN, stored.to);
    if (this.size > this.#maxMessages) this.#evict(this.size - this.#maxMessages);
    for (const listener of this.#listeners) listener(stored, dataText);
    return stored;
  }

  async head(): Promise<string> {
    return this.#id(this.#lastN);
  }

  // Each of these acts when called, before its promise settles: the position is the head as of the call.
  async join(sessionId: string, room: string): Promise<string> {
    const open = this.#index.isMember(sessionId, room);
    const position = this.#id(this.#index.join(sessionId, room, this.#lastN));
    if (!open) this.#tellMembership({ session: sessionId, room, joined: true });
    return position;
  }

  async leave(sessionId: string, room: string): Promise<string | null> {
    if (!this.#index.leave(sessionId, room, this.#lastN)) return null;
    this.#tellMembership({ session: sessionId, room, joined: false });
    return this.#id(this.#lastN);
  }

  async members(room: string): Promise<string[]> {
    return this.#index.members(room);
  }

  forget(sessionId: string): void {
    for (const room of this.#index.forget(sessionId)) this.#tellMembership({ session: sessionId, room, joined: false });
  }

  async roomsOf(sessionId: string): Promise<string[]> {
    return this.#index.roomsOf(sessionId);
  }

  async read(sessionId: string, after: string, limit: number): Promise<ReadResult> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`MemoryStore.read: expects limit to be an integer ≥ 1, got ${limit}`);
    }
    this.#evictExpired(this.#now());
    const firstN = this.#lastN - this.size + 1;
    const match = ID_PATTERN.exec(after);
    let start: number;
    let gap: GapReason | undefined;
    if (!match) {
      gap = 'invalid-id';
      start = this.#lastN;
    } else if (match[1] !== this.epoch) {
      gap = 'unknown-epoch';
      start = firstN - 1;
    } else {
      const n = Number(match[2]);
      if (n > this.#lastN) {
        gap = 'invalid-id';
        start = this.#lastN;
      } else if (n < firstN - 1) {
        gap = 'expired';
        start = firstN - 1;
      } else {
        start = n;
      }
    }

    const { numbers, more } = this.#index.read(sessionId, start, limit);
    const base = this.#offset - firstN;
    const messages = numbers.map((n) => this.#messages[base + n]!);
    const cursor = gap === undefined ? after : this.#id(start);
    return gap === undefined ? { cursor, messages, more } : { cursor, gap, messages, more };
  }

  subscribe(listener: (message: StoredMessage, dataText?: string) => void, events?: StoreEvents): () => void {
    // Wrappers per call, so the same function subscribed twice is two subscriptions. An instance's
    // history is never lost while it lives (a new instance is a new epoch), so no `historyLost`.
    const wrapped = (message: StoredMessage, dataText: string | undefined) => listener(message, dataText);
    const membership = events?.membership;
    const wrappedMemberships = membership && ((change: MembershipChange) => membership.call(events, change));
    this.#listeners.add(wrapped);
    if (wrappedMemberships) this.#membershipListeners.add(wrappedMemberships);
    return () => {
      this.#listeners.delete(wrapped);
      if (wrappedMemberships) this.#membershipListeners.delete(wrappedMemberships);
    };
  }

  /** Rejects once closed: a server made on a closed store would greet clients and fail every send. */
  async ready(): Promise<void> {
    if (this.#closed) {
      throw new UnbrokenServerError('STORE_ERROR', 'MemoryStore: closed (a server closes the store it made itself: to hand a store to the next server, make it and pass it as `store`)');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    this.#membershipListeners.clear();
    this.#messages = [];
    this.#times = [];
    this.#offset = 0;
    this.#index.clear();
  }

  #tellMembership(change: MembershipChange): void {
    for (const listener of this.#membershipListeners) listener(change);
  }

  #id(n: number): string {
    return `${this.epoch}-${n}`;
  }

  #evictExpired(now: number): void {
    const oldest = now - this.#maxAge;
    let count = 0;
    for (let i = this.#offset; i < this.#times.length && this.#times[i]! <= oldest; i++) count++;
    if (count > 0) this.#evict(count);
  }

  #evict(count: number): void {
    const firstN = this.#lastN - this.size + 1 + count;
    for (let i = this.#offset; i < this.#offset + count; i++) {
      this.#index.evicted(firstN - count + (i - this.#offset), this.#messages[i]!.to, firstN);
    }
    this.#offset += count;
    // Compact now and then instead of shifting on every eviction: amortised O(1).
    if (this.#offset >= 1024 && this.#offset * 2 >= this.#messages.length) {
      this.#messages = this.#messages.slice(this.#offset);
      this.#times = this.#times.slice(this.#offset);
      this.#offset = 0;
    }
  }
}
