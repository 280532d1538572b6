/**
 * What lets {@link MemoryStore} read a session's stream in proportion to the messages addressed to it
 * (docs/PROTOCOL.md §6.5): the numbers of the retained messages per address (everyone, each session,
 * each room), and each session's room memberships as intervals of store positions.
 */
import type { Address } from './store.js';

/** Message numbers in append order; the retained ones are `items[offset…]`. */
class NumberList {
  items: number[];
  offset = 0;

  /**
   * Made with its first number: most sessions are sent few messages of their own, and an array that
   * starts empty takes room for 16 at its first push.
   */
  constructor(first?: number) {
    this.items = first === undefined ? [] : [first];
  }

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

/** Lists message `n` under `key` of `lists`. */
function listIn(lists: Map<string, NumberList>, key: string, n: number): void {
  const list = lists.get(key);
  if (list) list.items.push(n);
  else lists.set(key, new NumberList(n));
}

/** Drops message `n`, evicted, from the front of the list under `key`; an emptied list goes. */
function unlistIn(lists: Map<string, NumberList>, key: string, n: number): void {
  const list = lists.get(key);
  if (!list || list.items[list.offset] !== n) return;
  list.dropFirst();
  if (list.size === 0) lists.delete(key);
}

export class AddressIndex {
  /**
   * The numbers of broadcasts, and of the messages to each session and each room. Kept apart, by the
   * bare id or name, so that listing a message builds no key.
   */
  #all = new NumberList();
  readonly #sessions = new Map<string, NumberList>();
  readonly #rooms = new Map<string, NumberList>();
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
    switch (to.kind) {
      case 'all':
        this.#all.items.push(n);
        break;
      case 'session':
        listIn(this.#sessions, to.session, n);
        break;
      case 'rooms':
        // A message to several rooms is listed once per distinct room.
        if (to.rooms.length === 1) listIn(this.#rooms, to.rooms[0]!, n);
        else for (const room of new Set(to.rooms)) listIn(this.#rooms, room, n);
        break;
    }
  }

  /** Message `n`, the oldest retained, was evicted; `firstN` is now the oldest retained number. */
  evicted(n: number, to: Address, firstN: number): void {
    switch (to.kind) {
      case 'all':
        if (this.#all.items[this.#all.offset] === n) this.#all.dropFirst();
        break;
      case 'session':
        unlistIn(this.#sessions, to.session, n);
        break;
      case 'rooms':
        for (const room of to.rooms) unlistIn(this.#rooms, room, n);
        break;
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
    // A membership no message to the room fell in selects nothing, now or later: forgotten at once,
    // so that joining and leaving a quiet room keeps nothing (it was kept until an eviction passed it,
    // which a quiet store never makes).
    const list = this.#rooms.get(room);
    if (list === undefined || list.size === 0 || list.items[list.items.length - 1]! <= interval.from) {
      const intervals = this.#intervals.get(session);
      intervals?.delete(interval);
      if (intervals?.size === 0) this.#intervals.delete(session);
    } else this.#closed.push(interval);
    return true;
  }

  /** Memberships kept, open or closed: what a resume may still read through (for tests of the bound). */
  get memberships(): number {
    let count = 0;
    for (const intervals of this.#intervals.values()) count += intervals.size;
    return count;
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
    const take = (list: NumberList | undefined, from: number, to: number): void => {
      if (!list) return;
      const start = list.firstAfter(from);
      const end = Math.min(list.items.length, start + limit + 1);
      for (let i = start; i < end && list.items[i]! <= to; i++) found.push(list.items[i]!);
    };
    take(this.#all, after, Infinity);
    take(this.#sessions.get(session), after, Infinity);
    for (const interval of this.#intervals.get(session) ?? []) {
      if (interval.to > after) take(this.#rooms.get(interval.room), Math.max(after, interval.from), interval.to);
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

  /**
   * Forgets what was addressed to `session` — its list and its memberships, whose open ones it
   * returns (the caller tells them as left) — so that none of it is part of a session created under
   * its id later (§3.3.same-id).
   */
  forget(session: string): string[] {
    this.#sessions.delete(session);
    const open: string[] = [];
    for (const interval of this.#intervals.get(session) ?? []) {
      if (interval.to !== Infinity) continue;
      open.push(interval.room);
      const members = this.#members.get(interval.room);
      members?.delete(session);
      if (members?.size === 0) this.#members.delete(interval.room);
    }
    // Closed ones stay in `#closed` until pruned; pruning looks them up in this map, which no longer holds them.
    this.#intervals.delete(session);
    return open;
  }

  /** Forgets every membership and list (the store closed). */
  clear(): void {
    this.#all = new NumberList();
    this.#sessions.clear();
    this.#rooms.clear();
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
