/**
 * One server process among several sharing a store (docs/PROTOCOL.md §3.3, §3.4, §7.4, §8), where every
 * process serves any request of any session, so a load balancer needs no sticky sessions.
 *
 * The store's shared state (shared-state.ts) is the truth about sessions, tickets, long-polling
 * connections and the upstream sequence; `hub.sessions` holds the sessions this process serves now,
 * each as one of two residencies:
 * - `owner`: its latest connection attached here. This process ends it when the session timeout
 *   passes without a connection anywhere (it hears of one elsewhere by the `attached` signal).
 * - `visitor`: learnt from the store to process an upstream request or to check a ticket. It is
 *   dropped, silently, once unused for a while: the session goes on elsewhere.
 */
import { ProtocolViolation, type ServerFrame } from '../protocol/index.js';
import type { UpstreamFrame } from './connection.js';
import type { Downlink } from './downlink.js';
import { UnbrokenServerError, asServerError } from './errors.js';
import type { SessionHub } from './hub.js';
import type { Identity } from './identity.js';
import type { ServerSession } from './session.js';
import type { SharedSession, SharedStore, Signal } from './shared-state.js';
import { randomToken, sameSecret, type TicketGrant } from './tickets.js';

/** What `prepare` found or made for a connection: the session to attach, and whether it is new (§3.3). */
export interface PreparedSession {
  readonly session: ServerSession;
  readonly created: boolean;
}

/**
 * How long a claim on client messages holds (§3.6.exactly-once): a process hands its messages over
 * and confirms well within it; past it, another process hands them over again — the claim's process
 * died. Longer than a stalled store's pause, so a slow confirm is not taken for a crash.
 */
const CLAIM_LEASE = 10_000;

/** A session learnt for one request is dropped after this long unused (it lives on in the store). */
const VISITOR_IDLE = 30_000;

/**
 * Frames for a stream no process held when they were told (a `pong` while a long-polling connection
 * moves between processes) wait this long for the next connection of their session, at most
 * `MAX_WAITING_FRAMES` per session and `MAX_WAITING_SESSIONS` sessions: a client's ping is not lost
 * with the stream's move. A stale or repeated `pong` is harmless: the client matches it by number.
 */
const FRAME_WAIT = 5000;
const MAX_WAITING_FRAMES = 4;
const MAX_WAITING_SESSIONS = 10_000;

export class Cluster {
  /** This process, as signals name it. */
  readonly node = randomToken();
  readonly state: SharedStore;
  readonly #hub: SessionHub;
  #unsubscribe: (() => void) | null = null;
  #touch: ReturnType<typeof setInterval> | null = null;
  /** Per session, frames told while no process here held its stream (see FRAME_WAIT), oldest session first. */
  readonly #waitingFrames = new Map<string, { frames: ServerFrame[]; at: number }>();
  /** Per session, the upstream batches waiting for the ones before them (§8: in order). */
  readonly #upstream = new Map<string, Promise<unknown>>();
  /** Per session, the ask for fresh credentials due at the process that holds it (`askAgainLater`): one at a time. */
  readonly #asks = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(hub: SessionHub, state: SharedStore) {
    this.#hub = hub;
    this.state = state;
    this.#unsubscribe = state.subscribeSignals((signal) => this.#signal(signal));
    // The shared entries of the sessions this process owns live while it does: refreshed well
    // within their ttl, so a crashed process's sessions expire one session timeout after it died.
    this.#touch = setInterval(() => this.#refresh(), this.#touchInterval);
    this.#touch.unref?.();
  }

  /** How long shared entries live unless refreshed: the session timeout, plus two refreshes. */
  get ttl(): number {
    return this.#hub.options.sessionTimeout + 2 * this.#touchInterval;
  }

  get #touchInterval(): number {
    return Math.max(1000, Math.floor(this.#hub.options.sessionTimeout / 4));
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#touch) clearInterval(this.#touch);
    this.#touch = null;
    for (const timer of this.#asks.values()) clearTimeout(timer);
    this.#asks.clear();
  }

  // -- sessions -----------------------------------------------------------------------------------

  /**
   * The session `sid`, from this process or from the store; `null` when no process holds it. A
   * session learnt from the store joins `hub.sessions` as a visitor, with its rooms — only when the
   * caller's `key` is its key, when one is given: a session id is no secret, and a request with a
   * wrong key must not make this process load and keep sessions for whoever names them.
   */
  async find(sid: string, address: string, key?: string): Promise<ServerSession | null> {
    const local = this.#hub.sessions.get(sid);
    if (local) {
      local.lastUsed = this.#hub.options.now();
      return local;
    }
    const shared = await this.state.getSession(sid);
    if (shared === null || (key !== undefined && !sameSecret(key, shared.key))) return null;
    return this.#adopt(shared, address);
  }

  /**
   * Finds or creates the session a ticket admits a connection to (§3.3): the one the store holds
   * under its `sid`, else a new one (with that `sid`, or a fresh one) created in the store first, so
   * that two processes creating the same id agree on one.
   */
  async prepare(grant: TicketGrant, address: string): Promise<PreparedSession> {
    if (grant.sid !== null) {
      const found = await this.find(grant.sid, address);
      // A copy of the session this process holds may be stale: other processes may have processed
      // its messages since, and the store may have lost it (Redis restarted without its data).
      const shared = found && (await this.state.getSession(found.id));
      // A copy of an earlier incarnation (it ended, and another process created the id anew) is stale too.
      const earlier = found !== null && shared !== null && found.born !== null && shared.born !== undefined && found.born !== shared.born;
      if (found && shared && !earlier) {
        // The `hello` acknowledges what the session processed (§3.3.resume). A client told a lower
        // number than it was acknowledged before numbers its unacknowledged messages again from
        // there (§8), onto numbers already processed, and they are dropped as duplicates.
        found.processed = Math.max(found.processed, shared.processed);
        return { session: found, created: false };
      }
      // The store no longer holds it: it is created anew below, with the same id (§3.3.same-id).
      // Attached to the stale copy, the connection would resume a session that no other process
      // can find, and each of its requests elsewhere would be refused.
      if (found) this.lost(found);
    }
    const id = grant.sid ?? randomToken();
    const key = grant.key ?? randomToken();
    const { session: shared, created } = await this.state.createSession({ id, key, user: grant.user }, this.ttl);
    const local = this.#hub.sessions.get(id);
    if (local) return { session: local, created: false };
    const session = this.#hub.createSession(shared.id, shared.key, shared.user, address);
    session.processed = shared.processed;
    session.born = shared.born ?? null;
    if (created) return { session, created: true };
    // Another process created it meanwhile, under the same id: resume that one (its key is checked at connect).
    this.#hub.sessions.set(session.id, session);
    this.#hub.limits.sessionOpened(address);
    await this.#learnRooms(session);
    return { session, created: false };
  }

  /** A connection of `session` attached here: it is this process's now, and any other closes (§3.3.supersede). */
  attached(session: ServerSession, link: Downlink): void {
    session.residency = 'owner';
    this.#publish({ kind: 'attached', session: session.id, node: this.node, at: link.attachedAt });
    const waiting = this.#waitingFrames.get(session.id);
    if (!waiting) return;
    this.#waitingFrames.delete(session.id);
    if (this.#hub.options.now() - waiting.at <= FRAME_WAIT) for (const frame of waiting.frames) link.reply(frame);
  }

  /** The session ended here (not by this process's shutdown, which leaves it to the others). */
  ended(session: ServerSession): void {
    this.state.deleteSession(session.id).catch((error: unknown) => this.#fail(`ending session ${session.id} in the store failed`, error));
    this.#publish({ kind: 'ended', session: session.id, node: this.node, at: this.#hub.options.now(), ...this.#bornOf(session) });
  }

  /**
   * A copy of the session that this process let go ended (`session.close()` as another process took
   * the connection): the process that holds that incarnation ends it. A copy of a session that ended
   * meanwhile ends nothing, also when a session took its id since (§3.3.same-id), nor does one from a
   * store that marks no incarnation.
   */
  endedElsewhere(session: ServerSession): void {
    const { born } = session;
    if (born === null) return;
    // The session may have come back here since (a client whose polls go round the processes).
    const local = this.#hub.sessions.get(session.id);
    if (local?.born === born && local.residency === 'owner') {
      local.close();
      return;
    }
    // A kind of its own: a process of an older version ignores it rather than drop the connection.
    this.#publish({ kind: 'close', session: session.id, node: this.node, born });
  }

  #bornOf(session: ServerSession): { born?: string } {
    return session.born === null ? {} : { born: session.born };
  }

  /** The session took a fresh identity here (§3.5): the store and the process holding it learn it. */
  adopted(session: ServerSession, user: Identity): void {
    this.state.setUser(session.id, user).catch((error: unknown) => this.#fail(`recording the identity of session ${session.id} failed`, error));
    this.#publish({ kind: 'user', session: session.id, user });
  }

  /**
   * The store no longer holds the session (its state was lost, or it ended elsewhere): this process
   * lets it go, and its client reconnects — to a session created anew under its id (§3.3.same-id).
   */
  lost(session: ServerSession): void {
    session.link?.close({ kind: 'error', code: 'SERVER_RESTART', message: 'the store no longer holds this session; resume' });
    this.#hub.release(session);
  }

  /** A frame for the session's stream, which another process may hold (a `pong` to a ping sent by POST, §7.3). */
  reply(session: ServerSession, frame: ServerFrame): void {
    const link = session.link;
    link?.reply(frame);
    // A stream that cannot write now (long polling between two polls) may continue at another
    // process with the next poll: the frame is told to them too, and waits there (FRAME_WAIT).
    if (!link || !link.connection.writable()) this.#publish({ kind: 'frame', session: session.id, node: this.node, frame });
  }

  /**
   * Fresh credentials of `session` came in a POST here and could not be checked (§3.5); another
   * process holds its connection. When the ask is due, a frame for its stream asks again — unless
   * the session ended or took a fresh identity meanwhile, as the store says then. One per session.
   */
  askAgainLater(session: ServerSession): void {
    const next = session.nextAsk();
    if (next === null || this.#asks.has(session.id)) return;
    const timer = setTimeout(() => {
      this.#asks.delete(session.id);
      this.state.getSession(session.id).then(
        (shared) => {
          const left = next.expiresAt - this.#hub.options.now();
          if (shared?.user?.expiresAt === next.expiresAt && left > 0 && this.#hub.accepting) this.reply(session, { t: 'auth', ms: left });
        },
        (error: unknown) => this.#fail(`reading session ${session.id} to ask for fresh credentials failed`, error),
      );
    }, Math.max(0, next.at - this.#hub.options.now()));
    timer.unref();
    this.#asks.set(session.id, timer);
  }

  /** Sweep: a visitor unused for a while is dropped; the session lives on in the store. */
  sweep(session: ServerSession, now: number): void {
    if (session.residency === 'visitor' && session.link === null && now - session.lastUsed >= VISITOR_IDLE) {
      this.#hub.release(session);
    }
  }

  // -- upstream (§8) -------------------------------------------------------------------------------

  /**
   * Marks the messages of a batch processed in the store before any is handed over, so that exactly
   * once holds across processes and across a crash: another process, or this one after a restart,
   * sees them processed and acknowledges them without handing them over again. Batches of one
   * session run one after the other, in arrival order.
   *
   * @returns false when the store no longer holds the session (it ended, or expired): nothing is
   * marked, and the caller refuses the batch with UNKNOWN_SESSION.
   * @throws {ProtocolViolation} for a hole; nothing is marked then.
   */
  claim(session: ServerSession, frames: readonly UpstreamFrame[], handOver: () => void): Promise<boolean> {
    const previous = this.#upstream.get(session.id) ?? Promise.resolve();
    const run = async (): Promise<boolean> => {
      const claimed = await this.#claim(session, frames);
      if (!claimed) return false;
      handOver();
      if (claimed === 'messages') {
        // The hand-over is recorded: `hello.ack` may now tell it (§8). Until then another process
        // sees the claim, and hands the messages over again only once its lease ran out (a crash).
        this.state.confirm(session.id, session.processed).catch((error: unknown) => this.#fail(`confirming messages of session ${session.id} failed`, error));
      }
      return true;
    };
    const next = previous.then(run, run);
    this.#upstream.set(session.id, next);
    const forget = (): void => {
      if (this.#upstream.get(session.id) === next) this.#upstream.delete(session.id);
    };
    next.then(forget, forget);
    return next;
  }

  /** Claims the batch's messages in the store; `false` for an unknown session, `'none'` for a batch without messages. */
  async #claim(session: ServerSession, frames: readonly UpstreamFrame[]): Promise<'messages' | 'none' | false> {
    let first = 0;
    let last = 0;
    for (const frame of frames) {
      if (frame.t !== 'msg') continue;
      if (first === 0) first = last = frame.s;
      else if (frame.s === last + 1) last = frame.s;
      else if (frame.s > last + 1 || frame.s < first) {
        // A client sends its messages in order (§8); a batch that jumps cannot be marked as a range.
        throw new ProtocolViolation(`message s=${frame.s} after s=${last}: expects consecutive sequence numbers in a batch`);
      }
    }
    if (first === 0) return 'none';
    for (;;) {
      const claimed = await this.state.advance(session.id, first, last, { node: this.node, lease: CLAIM_LEASE });
      if (claimed === null) return false;
      if ('busy' in claimed) {
        // Another process is handing these messages over, or died doing it: wait for its lease.
        await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(claimed.busy, 10), 1000)));
        continue;
      }
      const { base } = claimed;
      if (first > base + 1) throw new ProtocolViolation(`message s=${first}: expects s ≤ ${base + 1} (a hole in the sequence)`);
      // Handed over by `session.process`, which takes each message one above its count.
      session.processed = Math.max(session.processed, base);
      return 'messages';
    }
  }

  // -- internals ------------------------------------------------------------------------------------

  async #adopt(shared: SharedSession, address: string): Promise<ServerSession> {
    const session = this.#hub.createSession(shared.id, shared.key, shared.user, address);
    session.processed = shared.processed;
    session.born = shared.born ?? null;
    // Another request may have learnt it meanwhile: keep the first.
    const raced = this.#hub.sessions.get(shared.id);
    if (raced) return raced;
    session.residency = 'visitor';
    this.#hub.sessions.set(shared.id, session);
    this.#hub.limits.sessionOpened(address);
    this.#hub.sweep.start();
    await this.#learnRooms(session);
    return session;
  }

  async #learnRooms(session: ServerSession): Promise<void> {
    const rooms = await this.#hub.options.store.roomsOf(session.id);
    if (session.ended) return;
    this.#hub.rooms.adopted(session, rooms);
  }

  #signal(signal: Signal): void {
    const session = this.#hub.sessions.get(signal.session);
    if (signal.kind === 'frame') {
      if (signal.node === this.node) return;
      if (session?.link) session.link.reply(signal.frame);
      else this.#wait(signal.session, signal.frame);
      return;
    }
    if (!session) return;
    try {
      switch (signal.kind) {
        case 'attached': {
          if (signal.node === this.node) return;
          const link = session.link;
          // A signal older than this process's own connection is about a connection it replaced.
          if (link && (link.attachedAt > signal.at || (link.attachedAt === signal.at && this.node > signal.node))) return;
          link?.close({ kind: 'error', code: 'SUPERSEDED', message: 'a newer connection of this session replaced it' });
          this.#hub.release(session);
          return;
        }
        case 'ended':
          if (signal.node === this.node) return;
          // About another incarnation: the session that took its id lives on (§3.3.same-id).
          if (signal.born !== undefined && session.born !== null && signal.born !== session.born) return;
          session.link?.close({ kind: 'end' });
          this.#hub.release(session);
          // A listener may still hold it: what it sends must not reach a session created under the id later.
          session.markEnded();
          return;
        case 'close':
          // Held here, this incarnation: it ends here, as `session.close()` ends it, and the others
          // then drop theirs. A visitor's copy waits for that.
          if (signal.node !== this.node && session.born === signal.born && session.residency === 'owner') session.close();
          return;
        case 'user':
          session.adopt(signal.user);
          return;
      }
    } catch (error) {
      this.#hub.fail(asServerError('INTERNAL_ERROR', `a signal of another process (${signal.kind}) could not be handled`, error));
    }
  }

  #wait(sid: string, frame: ServerFrame): void {
    const now = this.#hub.options.now();
    const waiting = this.#waitingFrames.get(sid);
    if (waiting && now - waiting.at <= FRAME_WAIT) {
      waiting.frames.push(frame);
      if (waiting.frames.length > MAX_WAITING_FRAMES) waiting.frames.shift();
      return;
    }
    this.#waitingFrames.delete(sid);
    this.#waitingFrames.set(sid, { frames: [frame], at: now });
    // The oldest go first: a Map iterates in insertion order.
    for (const [oldest, entry] of this.#waitingFrames) {
      if (this.#waitingFrames.size <= MAX_WAITING_SESSIONS && now - entry.at <= FRAME_WAIT) break;
      this.#waitingFrames.delete(oldest);
    }
  }

  #refresh(): void {
    const ids: string[] = [];
    for (const session of this.#hub.sessions.values()) if (session.residency === 'owner') ids.push(session.id);
    if (ids.length === 0) return;
    this.state.touchSessions(ids, this.ttl).catch((error: unknown) => this.#fail('refreshing sessions in the store failed', error));
  }

  #publish(signal: Signal): void {
    this.state.publish(signal).catch((error: unknown) => this.#fail(`telling the other processes about session ${signal.session} failed`, error));
  }

  #fail(message: string, cause: unknown): void {
    this.#hub.fail(new UnbrokenServerError('STORE_ERROR', message, { cause }));
  }
}
