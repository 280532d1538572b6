/**
 * The names of the store's keys, all under `<prefix>:` (the layout is described in scripts.ts and
 * session-scripts.ts). For Redis Cluster, give a prefix with a hash tag (`{unbroken}`): the scripts
 * reach keys they compute (a session's rooms), which must then be in one slot.
 */
import type { Address } from '../index.js';

export class Keys {
  readonly meta: string;
  readonly feed: string;
  readonly all: string;
  /** The ids of every retained message (the feed also holds membership changes): what `maxMessages` counts. */
  readonly messages: string;
  /** Prefixes the Lua scripts complete themselves. */
  readonly roomIndexPrefix: string;
  readonly roomsPrefix: string;
  readonly membersPrefix: string;
  readonly ticketPrefix: string;
  readonly pollPrefix: string;
  /** The pub/sub channel of signals between processes. */
  readonly signals: string;
  readonly #p: string;

  constructor(prefix: string) {
    const p = `${prefix}:`;
    this.meta = `${p}meta`;
    this.feed = `${p}feed`;
    this.all = `${p}x:all`;
    this.messages = `${p}x:messages`;
    this.roomIndexPrefix = `${p}x:r:`;
    this.roomsPrefix = `${p}rooms:`;
    this.membersPrefix = `${p}members:`;
    this.ticketPrefix = `${p}ticket:`;
    this.pollPrefix = `${p}poll:`;
    this.signals = `${p}signals`;
    this.#p = p;
  }

  /** The index of the messages to one session. */
  sessionIndex(session: string): string {
    return `${this.#p}x:s:${session}`;
  }

  roomIndex(room: string): string {
    return `${this.roomIndexPrefix}${room}`;
  }

  /** The index streams a message to `to` is listed in: each room once. */
  indexesOf(to: Address): string[] {
    switch (to.kind) {
      case 'all':
        return [this.all];
      case 'session':
        return [this.sessionIndex(to.session)];
      case 'rooms':
        return [...new Set(to.rooms)].map((room) => this.roomIndex(room));
    }
  }

  /** A session's membership intervals, by room. */
  rooms(session: string): string {
    return `${this.roomsPrefix}${session}`;
  }

  /** A room's open memberships, by session. */
  members(room: string): string {
    return `${this.membersPrefix}${room}`;
  }

  session(id: string): string {
    return `${this.#p}session:${id}`;
  }

  ticket(ticket: string): string {
    return `${this.ticketPrefix}${ticket}`;
  }

  /** The tickets issued for a session, so that ending it voids them. */
  ticketsOf(session: string): string {
    return `${this.#p}tickets:${session}`;
  }

  /** A long-polling connection → its record: its session and its client's batch limit (§4.1.size). */
  poll(connection: string): string {
    return `${this.pollPrefix}${connection}`;
  }

  /** The long-polling connections of a session, so that touching the session keeps them. */
  pollsOf(session: string): string {
    return `${this.#p}polls:${session}`;
  }
}
