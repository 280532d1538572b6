/**
 * Room names (docs/PROTOCOL.md §6.5). A room is named by the application only — clients never send
 * one on the wire — but a name often comes from user input, so it is checked like an event name.
 */
import type { Payload } from '../protocol/index.js';
import { UnbrokenServerError, UnbrokenTypeError, asServerError } from './errors.js';
import type { SessionHub } from './hub.js';
import type { RoomTarget, ServerSession, Session } from './session.js';
import type { MembershipChange } from './store.js';

/** Longest room name, in characters (code points). */
export const MAX_ROOM_LENGTH = 128;

// C0 and C1 control characters and DEL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Returns `room` when it is a valid room name: a string of 1–128 characters without control
 * characters.
 * @throws {UnbrokenTypeError} `INVALID_ROOM` otherwise.
 */
export function checkRoom(room: unknown): string {
  // A code point takes one or two UTF-16 units: past twice the bound the name is too long uncounted.
  if (
    typeof room !== 'string' ||
    room.length === 0 ||
    room.length > 2 * MAX_ROOM_LENGTH ||
    CONTROL.test(room) ||
    (room.length > MAX_ROOM_LENGTH && [...room].length > MAX_ROOM_LENGTH)
  ) {
    const shown = typeof room === 'string' ? JSON.stringify(room.length > 200 ? `${room.slice(0, 200)}…` : room) : typeof room;
    throw new UnbrokenTypeError(
      'INVALID_ROOM',
      `expects a room name of 1–${MAX_ROOM_LENGTH} characters without control characters, got ${shown}`,
    );
  }
  return room;
}

/** The distinct valid rooms of `rooms` (one name or a non-empty list), in first-seen order. */
export function checkRooms(rooms: unknown): string[] {
  if (!Array.isArray(rooms)) return [checkRoom(rooms)];
  if (rooms.length === 0) throw new UnbrokenTypeError('INVALID_ROOM', 'expects at least one room, got an empty list');
  return [...new Set(rooms.map(checkRoom))];
}

/**
 * The rooms of one server's sessions (§6.5): the live index that dispatch reads, kept in step with
 * the store, which holds membership and its positions (what replay reads).
 */
export class LiveRooms {
  readonly #hub: SessionHub;
  /** Sessions of this server by room. */
  readonly #members = new Map<string, Set<ServerSession>>();
  /** This process's joins and leaves the store has not told back yet, by session and room. */
  readonly #expected = new Map<string, Expected[]>();

  constructor(hub: SessionHub) {
    this.#hub = hub;
  }

  /** `session.join()`: see {@link Session.join}. */
  join(session: ServerSession, name: string): Promise<void> {
    const room = this.checkJoin(session, name);
    if (session.ended || session.inRoom(room)) return Promise.resolve();
    // The session's own view changes now (its limit and `rooms` must hold for the next call); live
    // delivery follows the store's notification of the change, which comes in append order (§6.5).
    session.addRoom(room);
    const expected = this.#expect(session, room, true);
    const recorded = attempt(() => this.#hub.options.store.join(session.id, room));
    this.#hub.emit('join', session, room);
    return recorded.then(
      () => undefined,
      (error: unknown) => {
        this.#unexpect(session, room, expected);
        this.#remove(session, room);
        throw new UnbrokenServerError('STORE_ERROR', `recording that session ${session.id} joined ${JSON.stringify(room)} failed`, { cause: error });
      },
    );
  }

  /** The room `session.join(name)` joins; throws what it throws at once (INVALID_ROOM, TOO_MANY_ROOMS). */
  checkJoin(session: ServerSession, name: string): string {
    const room = checkRoom(name);
    const max = this.#hub.options.maxRoomsPerSession ?? DEFAULT_MAX_ROOMS;
    if (!session.ended && !session.inRoom(room) && session.roomCount >= max) {
      throw new UnbrokenTypeError('TOO_MANY_ROOMS', `expects a session to be in at most maxRoomsPerSession (${max}) rooms; leave one first`);
    }
    return room;
  }

  /** `session.leave()`: see {@link Session.leave}. */
  leave(session: ServerSession, name: string): Promise<void> {
    const room = checkRoom(name);
    if (!session.inRoom(room)) return Promise.resolve();
    session.removeRoom(room);
    const expected = this.#expect(session, room, false);
    const recorded = attempt(() => this.#hub.options.store.leave(session.id, room));
    this.#hub.emit('leave', session, room);
    return recorded.then(
      () => undefined,
      (error: unknown) => {
        this.#unexpect(session, room, expected);
        throw new UnbrokenServerError('STORE_ERROR', `recording that session ${session.id} left ${JSON.stringify(room)} failed`, { cause: error });
      },
    );
  }

  /**
   * The store told a change of membership, in append order: the session (when this server holds it)
   * gets the room's later messages live, or no longer — whichever process made the change.
   */
  changed(change: MembershipChange): void {
    // Delivery follows the store's order, always. The session's own view (`rooms`) already holds
    // this process's joins and leaves, which a store shared by several processes may tell late —
    // after a later join or leave here — so only a change another process made is applied to it.
    const own = this.#takeExpected(change);
    const session = this.#hub.sessions.get(change.session);
    if (!session || session.ended) return;
    if (change.joined) this.#index(session, change.room, true, own);
    else this.#index(session, change.room, false, own);
  }

  /** A session this server held learnt its rooms from the store (another process served it before). */
  adopted(session: ServerSession, rooms: readonly string[]): void {
    for (const room of rooms) this.#add(session, room);
  }

  /** A session ended: it leaves every room (§6.5), each reported on `leave`. */
  ended(session: ServerSession): void {
    const rooms = session.roomList();
    this.released(session);
    for (const room of rooms) {
      session.addRoom(room);
      this.leave(session, room).catch((error: unknown) => this.#hub.fail(asServerError('STORE_ERROR', `session ${session.id} could not leave room ${room}`, error)));
    }
  }

  /**
   * This server no longer holds the session (it ended, or another process serves it now): it leaves
   * the delivery index. Its own view stays: the session is still in its rooms, and a listener that
   * holds it (a message being handled as another process takes the connection) reads them.
   */
  released(session: ServerSession): void {
    for (const room of session.roomList()) this.#index(session, room, false, true);
  }

  /** The sessions of this server in any of `rooms`, each once. */
  recipients(rooms: readonly string[]): Set<ServerSession> {
    if (rooms.length === 1) return this.#members.get(rooms[0]!) ?? new Set();
    const found = new Set<ServerSession>();
    for (const room of rooms) for (const session of this.#members.get(room) ?? []) found.add(session);
    return found;
  }

  /** `server.to()`: see {@link RoomTarget}. */
  target(names: string | readonly string[]): RoomTarget {
    const rooms = checkRooms(names);
    const hub = this.#hub;
    return {
      send: (data: Payload, options?: { event?: string }) => hub.append({ kind: 'rooms', rooms }, data, options),
      async sessions() {
        const lists = await Promise.all(rooms.map((room) => hub.options.store.members(room)));
        const ids = new Set(lists.flat());
        const found: ServerSession[] = [];
        for (const id of ids) {
          // With a store shared by several processes, a session another process serves is learnt
          // from the store (cluster.ts): the answer spans every process.
          const session = hub.sessions.get(id) ?? (await hub.cluster?.find(id, STORE_ADDRESS)) ?? undefined;
          if (session && !session.ended) found.push(session);
        }
        return found;
      },
    };
  }

  #add(session: ServerSession, room: string): void {
    this.#index(session, room, true, false);
  }

  #remove(session: ServerSession, room: string): void {
    this.#index(session, room, false, false);
  }

  /** Puts the session in or out of the delivery index of `room`, and its own view unless `indexOnly`. */
  #index(session: ServerSession, room: string, member: boolean, indexOnly: boolean): void {
    let members = this.#members.get(room);
    if (member) {
      if (!indexOnly) session.addRoom(room);
      if (!members) this.#members.set(room, (members = new Set()));
      members.add(session);
    } else {
      if (!indexOnly) session.removeRoom(room);
      members?.delete(session);
      if (members?.size === 0) this.#members.delete(room);
    }
  }

  /** Notes that this process's join or leave will be told by the store (see `changed`). */
  #expect(session: ServerSession, room: string, joined: boolean): Expected {
    const key = expectationKey(session.id, room);
    const expected: Expected = { joined, at: this.#hub.options.now() };
    const list = this.#expected.get(key);
    if (list) list.push(expected);
    else this.#expected.set(key, [expected]);
    return expected;
  }

  /** A join or leave the store refused is not told. */
  #unexpect(session: ServerSession, room: string, expected: Expected): void {
    const key = expectationKey(session.id, room);
    const list = this.#expected.get(key)?.filter((entry) => entry !== expected);
    if (list && list.length > 0) this.#expected.set(key, list);
    else this.#expected.delete(key);
  }

  /**
   * True when `change` is this process's own join or leave, told back by the store. One that changed
   * nothing in the store (joining a room the session entered elsewhere) is never told: such an entry
   * is dropped once older than EXPECTATION_TTL.
   */
  #takeExpected(change: MembershipChange): boolean {
    const key = expectationKey(change.session, change.room);
    const list = this.#expected.get(key);
    if (!list) return false;
    const oldest = this.#hub.options.now() - EXPECTATION_TTL;
    while (list.length > 0 && list[0]!.at < oldest) list.shift();
    const own = list.length > 0 && list[0]!.joined === change.joined;
    if (own) list.shift();
    if (list.length === 0) this.#expected.delete(key);
    return own;
  }
}

interface Expected {
  readonly joined: boolean;
  readonly at: number;
}

/** How long this process waits for the store to tell its own join or leave back (see `changed`). */
const EXPECTATION_TTL = 10_000;

function expectationKey(session: string, room: string): string {
  return `${session}\n${room}`;
}

/** The address a session learnt from the store for a membership query counts against (§12.1). */
const STORE_ADDRESS = 'store';

/** @default of `maxRoomsPerSession`. */
export const DEFAULT_MAX_ROOMS = 100;

/** Runs a store call, turning a synchronous throw into a rejection. */
function attempt<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}
