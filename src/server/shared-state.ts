/**
 * Session state shared by several server processes (docs/PROTOCOL.md §3.3, §3.4, §8, §10.3): what
 * any process needs to serve any request of a session it has never seen, so that a load balancer
 * needs no sticky sessions.
 *
 * A store that implements this interface besides {@link MessageStore} (the Redis one does) makes the
 * server keep sessions, tickets, long-polling connections and the upstream sequence in it, and carry
 * the few signals a session's processes exchange (a newer connection elsewhere, a `pong` for a stream
 * held elsewhere). Without it — the in-memory store — the process's own memory is the only state,
 * which is right for one process.
 */
import type { ServerFrame } from '../protocol/index.js';
import type { Identity } from './identity.js';
import type { MessageStore } from './store.js';
import type { TicketGrant } from './tickets.js';

/** A session as every process sees it. */
export interface SharedSession {
  /** The session's name (`sid`). */
  readonly id: string;
  /** The session key (§3.4). */
  readonly key: string;
  /** The identity it was created or last refreshed with (§3.5); `null` without `authenticate`. */
  readonly user: Identity | null;
  /** Highest client sequence number processed — handed over and confirmed (§8). */
  readonly processed: number;
  /**
   * A mark the store makes when it creates the session, new each time a session is created under
   * its id (§3.3.same-id): it tells a copy of an ended session from the session that took its id. A
   * store that keeps none leaves it out; then `session.close()` on a copy another process took the
   * connection from ends nothing at that process.
   */
  readonly born?: string;
}

/** A long-polling connection (§7.4) as every process sees it. */
export interface PollConnectionRecord {
  /** The id of the session it belongs to. */
  readonly session: string;
  /** The largest batch its client reads, in UTF-8 bytes, when its ticket named one (§3.4, §4.1.size). */
  readonly max?: number;
}

/** What one process tells the others about a session. */
export type Signal =
  /**
   * A connection of `session` attached at process `node` at time `at` (ms since the epoch); every
   * connection of it that attached before closes (§3.3.supersede).
   */
  | { readonly kind: 'attached'; readonly session: string; readonly node: string; readonly at: number }
  /**
   * A frame for the session's stream (a `pong` to a ping that came by `POST P/send`), told by process
   * `node` to whichever process holds the stream now or takes it next.
   */
  | { readonly kind: 'frame'; readonly session: string; readonly node: string; readonly frame: ServerFrame }
  /** The session took a fresh identity (§3.5). */
  | { readonly kind: 'user'; readonly session: string; readonly user: Identity }
  /**
   * The session ended at process `node` (bye, logout, close): the others drop it — when `born` is
   * given, only a copy of that incarnation ({@link SharedSession.born}).
   */
  | { readonly kind: 'ended'; readonly session: string; readonly node: string; readonly at: number; readonly born?: string }
  /**
   * The incarnation `born` of the session ended on a copy that process `node` no longer held
   * (`session.close()` as another process took the connection): the process that holds it ends it.
   */
  | { readonly kind: 'close'; readonly session: string; readonly node: string; readonly born: string };

/**
 * The shared state. Every method acts atomically for the processes sharing it; times are in ms;
 * every entry expires by itself after its `ttl` unless refreshed, so a crashed process leaks nothing.
 */
export interface SessionState {
  /**
   * Creates the session unless one with its id exists. Returns the session stored — the existing
   * one when there was one (whose key the caller must compare) — and whether this call created it.
   * When it creates, it forgets, in the same step, what the store held addressed to that id — its
   * messages, its memberships — as `MessageStore.forget` does (§3.3.same-id-fresh).
   */
  createSession(session: { id: string; key: string; user: Identity | null }, ttl: number): Promise<{ session: SharedSession; created: boolean }>;
  /** The session, or `null` when no process holds it (never created, ended, or expired). */
  getSession(id: string): Promise<SharedSession | null>;
  /** Records a fresh identity of the session (§3.5). Nothing happens for an unknown session. */
  setUser(id: string, user: Identity): Promise<void>;
  /** Keeps sessions (and their memberships and connections) alive for another `ttl`. */
  touchSessions(ids: readonly string[], ttl: number): Promise<void>;
  /** Ends a session: its entry is gone, tickets for it no longer admit it. */
  deleteSession(id: string): Promise<void>;
  /**
   * Claims client messages `first`…`last` (consecutive sequence numbers, §8) for process `node`, to
   * hand them over, atomically. The base is what `node` may hand over above: the session's processed
   * count, or `node`'s own claim when it is higher. When `first` ≤ base + 1, the claim is raised to
   * `last` (if higher) for `lease` ms. Returns `{ base }` — the caller hands over the messages above
   * it, then calls {@link confirm} — or `{ busy: ms }` when another process holds an unexpired claim
   * on messages above the processed count (it is handing them over: try again after `busy` ms), or
   * `null` for an unknown session. A claim whose lease ran out without a `confirm` (its process
   * died) is handed over again: at least once, never lost. A hole (`first` > base + 1) changes
   * nothing; the caller sees it from the returned base.
   */
  advance(id: string, first: number, last: number, claim: { node: string; lease: number }): Promise<{ base: number } | { busy: number } | null>;
  /** Records that messages up to `upTo` were handed over: the processed count `hello.ack` tells (§8). */
  confirm(id: string, upTo: number): Promise<void>;
  /** Stores a ticket (§3.4) for `ttl`. */
  putTicket(ticket: string, grant: TicketGrant, ttl: number): Promise<void>;
  /** Takes a ticket: its grant if stored and unexpired, else `null`; either way it is gone (single use). */
  takeTicket(ticket: string): Promise<TicketGrant | null>;
  /**
   * Records long-polling connection `connection` (§7.4) for `ttl`: its session, and the largest
   * batch its client reads when its ticket named one (§4.1.size), so that another process continues
   * it as this one would (§3.6.continue).
   */
  putConnection(connection: string, record: PollConnectionRecord, ttl: number): Promise<void>;
  /** What {@link putConnection} recorded for long-polling connection `connection`, or `null`. */
  getConnection(connection: string): Promise<PollConnectionRecord | null>;
  /** Sends a signal to every process sharing the state, this one included. */
  publish(signal: Signal): Promise<void>;
  /** Calls `listener` with every signal published by any process. Returns the unsubscribe function. */
  subscribeSignals(listener: (signal: Signal) => void): () => void;
}

/** A store that also shares session state. */
export type SharedStore = MessageStore & SessionState;

/** True when `store` shares session state with other processes. */
export function sharesState(store: MessageStore): store is SharedStore {
  const candidate = store as Partial<SessionState>;
  return typeof candidate.createSession === 'function' && typeof candidate.advance === 'function' && typeof candidate.subscribeSignals === 'function';
}
