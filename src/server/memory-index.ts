/**
 * What lets {@link MemoryStore} read a session's stream in proportion to the messages addressed to it
 * (docs/PROTOCOL.md §6.5): the numbers of the retained messages per address (everyone, each session,
 * each room), and each session's room memberships as intervals of store positions.
 */
import type { Address } from './store.js';

/** Message numbers in append order; the retained ones are `items[offset…]`. */
class NumberList {
  items: number[] = [];
  offset = 0;

  get size(): number {
    return this.items.length - this.offset;
  }

  /** Index of the first retained number greater than `n`. */
  firstAfter(n: number): number {
    let lo = this.offset;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]! <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  dropFirst(): void {
    this.offset++;
    // Compact now and then instead of shifting on every eviction: amortised O(1).
    if (this.offset >= 1024 && this.offset * 2 >= this.items.length) {
      this.items = this.items.slice(this.offset);
      this.offset = 0;
    }
  }
}

/** A session's membership of a room: messages `n` with `from < n ≤ to` are in its stream. */
interface Interval {
  readonly session: string;
  readonly room: string;
  readonly from: number;
  to: number;
}

const ALL = '*';
const sessionKey = (id: string): string => `s:${id}`;
const roomKey = (room: string): string => `r:${room}`;

/** The keys of the address lists a message with address `to` is listed in, each once. */
function keysOf(to: Address): string[] {
  switch (to.kind) {
    case 'all':
      return [ALL];
    case 'session':
      return [sessionKey(to.session)];
    case 'rooms':
      return [...new Set(to.rooms)].map(roomKey);
  }
}

export class AddressIndex {
  readonly #lists = new Map<string, NumberList>();
  /** Every interval of a session, open or closed and still covering a retained message. */
  readonly #intervals = new Map<string, Set<Interval>>();
  /** Open intervals by room, then session. */
  readonly #members = new Map<string, Map<string, Interval>>();
  /**
   * Closed intervals in the order they closed. A leave happens at the head, so their ends only grow:
   * the front is always the first to cover no retained message.
   */
  #closed: Interval[] = [];
  #closedOffset = 0;

  /** Lists message `n`, just appended. */
  add(n: number, to: Address): void {
    for (const key of keysOf(to)) {
      let list = this.#lists.get(key);
      if (!list) this.#lists.set(key, (list = new NumberList()));
      list.items.push(n);
    }
  }

  /** Message `n`, the oldest retained, was evicted; `firstN` is now the oldest retained number. */
  evicted(n: number, to: Address, firstN: number): void {
    for (const key of keysOf(to)) {
      const list = this.#lists.get(key);
      if (!list || list.items[list.offset] !== n) continue;
      list.dropFirst();
      if (list.size === 0) this.#lists.delete(key);
    }
    this.#pruneClosed(firstN);
  }

  /** Opens the membership of `session` in `room` after position `head`; returns where it starts. */
  join(session: string, room: string, head: number): number {
    let members = this.#members.get(room);
    const open = members?.get(session);
    if (open) return open.from;
    const interval: Interval = { session, room, from: head, to: Infinity };
    if (!members) this.#members.set(room, (members = new Map()));
    members.set(session, interval);
    let intervals = this.#intervals.get(session);
    if (!intervals) this.#intervals.set(session, (intervals = new Set()));
    intervals.add(interval);
    return head;
  }

  /** Closes the membership at position `head` (inclusive). False when `session` was not in `room`. */
  leave(session: string, room: string, head: number): boolean {
    const members = this.#members.get(room);
    const interval = members?.get(session);
    if (!members || !interval) return false;
    members.delete(session);
    if (members.size === 0) this.#members.delete(room);
    interval.to = head;
    this.#closed.push(interval);
    return true;
  }

  /** True while `session` is in `room`. */
  isMember(session: string, room: string): boolean {
    return this.#members.get(room)?.has(session) ?? false;
  }

  /** Sessions in `room` now. */
  members(room: string): string[] {
    return [...(this.#members.get(room)?.keys() ?? [])];
  }

  /** Rooms `session` is in now. */
  roomsOf(session: string): string[] {
    const rooms: string[] = [];
    for (const interval of this.#intervals.get(session) ?? []) if (interval.to === Infinity) rooms.push(interval.room);
    return rooms;
  }

  /**
   * The numbers of the messages of `session`'s stream after `after`, in order, at most `limit`; `more`
   * when there are others after them. Each address list is read from its first number after `after`:
   * the cost follows the messages addressed to the session, not the store's size.
   */
  read(session: string, after: number, limit: number): { numbers: number[]; more: boolean } {
    const found: number[] = [];
    const take = (key: string, from: number, to: number): void => {
      const list = this.#lists.get(key);
      if (!list) return;
      const start = list.firstAfter(from);
      const end = Math.min(list.items.length, start + limit + 1);
      for (let i = start; i < end && list.items[i]! <= to; i++) found.push(list.items[i]!);
    };
    take(ALL, after, Infinity);
    take(sessionKey(session), after, Infinity);
    for (const interval of this.#intervals.get(session) ?? []) {
      if (interval.to > after) take(roomKey(interval.room), Math.max(after, interval.from), interval.to);
    }
    found.sort((a, b) => a - b);
    // A message to several rooms of the session, or listed in two of its intervals, counts once.
    const numbers: number[] = [];
    for (const n of found) {
      if (numbers.length > 0 && numbers[numbers.length - 1] === n) continue;
      if (numbers.length === limit) return { numbers, more: true };
      numbers.push(n);
    }
    return { numbers, more: false };
  }

  /** Forgets every membership and list (the store closed). */
  clear(): void {
    this.#lists.clear();
    this.#intervals.clear();
    this.#members.clear();
    this.#closed = [];
    this.#closedOffset = 0;
  }

  /** Drops closed intervals that end before the oldest retained message: they select nothing more. */
  #pruneClosed(firstN: number): void {
    while (this.#closedOffset < this.#closed.length && this.#closed[this.#closedOffset]!.to < firstN) {
      const interval = this.#closed[this.#closedOffset++]!;
      const intervals = this.#intervals.get(interval.session);
      intervals?.delete(interval);
      if (intervals?.size === 0) this.#intervals.delete(interval.session);
    }
    if (this.#closedOffset >= 1024 && this.#closedOffset * 2 >= this.#closed.length) {
      this.#closed = this.#closed.slice(this.#closedOffset);
      this.#closedOffset = 0;
    }
  }
}
