/**
 * Tickets (docs/PROTOCOL.md §3.4): what admits one downstream connection attempt. A ticket is the
 * only session-related value in a URL, so it is worth nothing once used or expired: a URL copied
 * from a log yields nothing.
 *
 * The store is bounded: at most `maxTickets` outstanding in total and `maxTicketsPerAddress` per
 * client address, expired ones dropped as new ones are issued; when the total is reached, the
 * address holding the most gives up its oldest to one that holds fewer. Every ticket lives for the same `ttl`,
 * so insertion order is expiry order and purging is a walk from the oldest that stops at the first
 * live one.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from './identity.js';
import type { Session } from './session.js';

/**
 * Where a ticket stands among those its server issued (§3.3.stale): of two tickets with the same
 * `issuer`, the one with the smaller `seq` was issued first. Tickets of two servers do not compare.
 */
export interface TicketIssue {
  /** The server that issued it: random, one per server. */
  readonly issuer: string;
  /** Counts the tickets that server issued, from 1. */
  readonly seq: number;
}

/** Whether ticket `issue` was issued before `other` by the same server; false when either is unknown. */
export function issuedBefore(issue: TicketIssue | undefined | null, other: TicketIssue | undefined | null): boolean {
  return issue != null && other != null && issue.issuer === other.issuer && issue.seq < other.seq;
}

/** What a ticket was issued for: a held session, or a session to create at connect (§3.4). */
export interface TicketGrant {
  /** The session to resume or to create with this id; `null`: a new session with a fresh id. */
  readonly sid: string | null;
  /** The key the client presented with `sid` (the new session's key when it is created); `null` with no `sid`. */
  readonly key: string | null;
  /** The identity `authenticate` returned, or `null` without `authenticate`. */
  readonly user: Identity | null;
  /**
   * True when `sid` is a name the server gave out in a ticket answer for a session still to be
   * created (§3.4.name-session): the connection that creates it counts as creating a session with a
   * fresh id (§12.1.rate), whichever of its tickets is used first.
   */
  readonly fresh?: boolean;
  /**
   * True when its session existed, here or in a shared store, when the ticket was issued: connecting
   * with it resumes that session, whichever process the connection reaches, so it spends no budget of
   * re-created sessions (§12.1.rate-kept) where the process does not hold the session itself.
   */
  readonly held?: boolean;
  /** Its place among the tickets its server issued (§3.3.stale); absent from a grant of an older server. */
  readonly issue?: TicketIssue;
  /** The largest batch its client reads, in bytes (§3.4 `max`, §4.1.size); absent when it said none. */
  readonly max?: number;
}

/** A session named in a ticket answer and not yet created: its key and identity, and its outstanding tickets. */
interface Reservation {
  readonly key: string;
  readonly user: Identity | null;
  tickets: number;
}

interface Entry {
  readonly grant: TicketGrant;
  readonly address: string;
  readonly expiresAt: number;
}

export interface TicketLimits {
  readonly ttl: number;
  readonly maxTickets: number;
  readonly maxTicketsPerAddress: number;
}

/** A ticket as the client sees it: 128 random bits, base64url (22 characters). */
export const TICKET_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** Session ids and keys as §3.4 defines well-formed ones. */
export const SECRET_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** A fresh random token of 128 bits, base64url: ticket and session key alike. */
export function randomToken(): string {
  return randomBytes(16).toString('base64url');
}

/** Compares two secrets in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Most logouts kept for the admissions under way (see `TicketStore.loggedOut`). */
const MAX_LOGOUTS = 64;

export class TicketStore {
  readonly #limits: TicketLimits;
  readonly #now: () => number;
  /** Outstanding tickets, oldest first (§3.4: same ttl for all, so also soonest to expire first). */
  readonly #tickets = new Map<string, Entry>();
  readonly #perAddress = new Map<string, number>();
  /** Sessions named by outstanding fresh tickets (§3.4.one-session), by id. */
  readonly #reserved = new Map<string, Reservation>();
  readonly #issuer = randomToken();
  /**
   * The logouts (`disconnect()`) of the last ticket ttl: a ticket taken from a shared store before
   * one, whose session is made after it, is checked against it (§3.5.disconnect), since neither the
   * ticket nor the session was there for the logout to find.
   */
  readonly #logouts: { readonly at: number; readonly seq: number; readonly select: (session: Session) => boolean }[] = [];
  /** Counts the logouts: what an admission compares, rather than clocks, which may stand still or step back. */
  #logoutSeq = 0;
  #issued = 0;

  constructor(limits: TicketLimits, now: () => number) {
    this.#limits = limits;
    this.#now = now;
  }

  get ttl(): number {
    return this.#limits.ttl;
  }

  /** Tickets issued and neither used nor expired (expired ones count until the next purge). */
  get size(): number {
    return this.#tickets.size;
  }

  /** The place of the next ticket among those this store issues (§3.3.stale), for its grant. */
  next(): TicketIssue {
    return { issuer: this.#issuer, seq: ++this.#issued };
  }

  /**
   * Issues a ticket for `grant`; `null` when a limit is reached (the caller answers RATE_LIMITED).
   * `evicted` is the ticket of another address dropped to make room, which a shared store holds too.
   */
  issue(grant: TicketGrant, address: string): { readonly ticket: string; readonly evicted: string | null } | null {
    this.#purge();
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (fromAddress >= this.#limits.maxTicketsPerAddress) return null;
    let evicted: string | null = null;
    if (this.#tickets.size >= this.#limits.maxTickets && (evicted = this.#makeRoomFor(fromAddress)) === null) return null;
    const ticket = randomToken();
    this.#tickets.set(ticket, { grant, address, expiresAt: this.#now() + this.#limits.ttl });
    this.#perAddress.set(address, fromAddress + 1);
    if (grant.fresh === true && grant.sid !== null && grant.key !== null) {
      const reservation = this.#reserved.get(grant.sid);
      if (reservation) reservation.tickets++;
      else this.#reserved.set(grant.sid, { key: grant.key, user: grant.user, tickets: 1 });
    }
    return { ticket, evicted };
  }

  /**
   * The session-to-be named `sid` while a fresh ticket naming it is outstanding (§3.4.one-session):
   * its key and identity, which a second ticket request for it must match.
   */
  reservation(sid: string): { readonly key: string; readonly user: Identity | null } | undefined {
    return this.#reserved.get(sid);
  }

  /** What `ticket` would grant, without using it: for the admission limits (§12.1), which run first. */
  peek(ticket: string | null): TicketGrant | null {
    if (ticket === null || !TICKET_PATTERN.test(ticket)) return null;
    const entry = this.#tickets.get(ticket);
    return entry && entry.expiresAt > this.#now() ? entry.grant : null;
  }

  /**
   * Takes a ticket: its grant if it is outstanding and unexpired, else `null`. Either way it is gone
   * afterwards (single use, §3.4).
   */
  redeem(ticket: string | null): TicketGrant | null {
    if (ticket === null || !TICKET_PATTERN.test(ticket)) return null;
    const entry = this.#tickets.get(ticket);
    if (!entry) return null;
    this.#remove(ticket, entry);
    return entry.expiresAt > this.#now() ? entry.grant : null;
  }

  /** Drops every outstanding ticket for session `sid` (a disconnected session must not come back, §3.5). */
  revoke(sid: string): string[] {
    return this.revokeWhere((grant) => grant.sid === sid);
  }

  /** A logout: `select` picks the sessions it ends. */
  loggedOut(select: (session: Session) => boolean): void {
    this.#pruneLogouts();
    this.#logouts.push({ at: this.#now(), seq: ++this.#logoutSeq, select });
    // A flood of logouts keeps the latest: each is checked for every admission in a ticket's life.
    if (this.#logouts.length > MAX_LOGOUTS) this.#logouts.shift();
  }

  /** Where the logouts stand now: an admission takes it before it takes its ticket. */
  logoutMark(): number {
    return this.#logoutSeq;
  }

  /**
   * True when a logout after `mark` picks `session`; also when its predicate throws, which cannot
   * say no (each is asked, so a throwing one hides none after it).
   */
  loggedOutSince(mark: number, session: Session): boolean {
    this.#pruneLogouts();
    let picked = false;
    for (const logout of this.#logouts) {
      if (logout.seq <= mark || picked) continue;
      try {
        picked = logout.select(session);
      } catch {
        picked = true;
      }
    }
    return picked;
  }

  #pruneLogouts(): void {
    const oldest = this.#now() - this.#limits.ttl;
    while (this.#logouts.length > 0 && this.#logouts[0]!.at < oldest) this.#logouts.shift();
  }

  /** Drops every outstanding ticket whose grant `select` picks; returns them. */
  revokeWhere(select: (grant: TicketGrant, address: string) => boolean): string[] {
    const dropped: string[] = [];
    for (const [ticket, entry] of this.#tickets) {
      if (!select(entry.grant, entry.address)) continue;
      this.#remove(ticket, entry);
      dropped.push(ticket);
    }
    return dropped;
  }

  clear(): void {
    this.#tickets.clear();
    this.#perAddress.clear();
    this.#reserved.clear();
  }

  /**
   * The table is full: a few addresses at their own bound fill it (10 × 1,000 = 10,000 by default).
   * So that they do not shut every other client out for a ticket's ttl, an address holding fewer
   * tickets than the largest holder takes the place of that holder's oldest one; the largest holder
   * loses a ticket it had no fair share of, and its client is refused at connect and asks again.
   * Returns the ticket dropped, or `null` when the requester holds its share already.
   */
  #makeRoomFor(fromAddress: number): string | null {
    let largest: string | undefined;
    let most = 0;
    for (const [holder, count] of this.#perAddress) {
      if (count > most) [largest, most] = [holder, count];
    }
    // Evicting from a holder one ticket ahead would only swap the two: no fairer, and a churn.
    if (largest === undefined || most <= fromAddress + 1) return null;
    for (const [ticket, entry] of this.#tickets) {
      if (entry.address === largest) {
        this.#remove(ticket, entry);
        return ticket;
      }
    }
    return null;
  }

  #purge(): void {
    const now = this.#now();
    for (const [ticket, entry] of this.#tickets) {
      if (entry.expiresAt > now) break;
      this.#remove(ticket, entry);
    }
  }

  #remove(ticket: string, entry: Entry): void {
    this.#tickets.delete(ticket);
    const { sid, fresh } = entry.grant;
    const reservation = fresh === true && sid !== null ? this.#reserved.get(sid) : undefined;
    if (reservation && --reservation.tickets === 0) this.#reserved.delete(sid!);
    const left = (this.#perAddress.get(entry.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(entry.address, left);
    else this.#perAddress.delete(entry.address);
  }
}
