/**
 * Resource limits (docs/PROTOCOL.md §12.1): who may open how many sessions and connections, how fast,
 * and how fast a session's messages are taken in. The counts live here and nowhere else; the hub
 * reports every link and session it opens and ends, and the shared admission (`admitRequest` in
 * http.ts) asks before anything is created.
 */
import type http from 'node:http';
import type { ErrorCode } from '../protocol/index.js';

/** The limit options of `createServer()`, each resolved to its default. */
export interface LimitSettings {
  /** Sessions alive at once, server-wide. */
  readonly maxSessions: number;
  /** Sessions alive at once that one client address created. */
  readonly maxSessionsPerAddress: number;
  /** Downstream connections (and upgrade probes) open at once, server-wide. */
  readonly maxConnections: number;
  /** Downstream connections (and upgrade probes) open at once from one client address. */
  readonly maxConnectionsPerAddress: number;
  /** New sessions one address may create per second (a token bucket holding one second's worth). */
  readonly sessionsPerSecondPerAddress: number;
  /** Client messages one session may send per second (a token bucket holding one second's worth). */
  readonly messagesPerSecond: number;
  /** Bytes of request bodies being read at once from one client address. */
  readonly maxBodyBytesPerAddress: number;
  /** Bytes of request bodies being read at once, server-wide. */
  readonly maxBodyBytes: number;
  /** The address a request counts against. */
  readonly clientAddress: (request: http.IncomingMessage) => string;
}

/**
 * Whether a connection creates a session: none (it resumes one this process holds), one with a fresh
 * id, one under the id the client kept, or (`held`) a copy of one that existed when its ticket was
 * issued — held by another process of a shared store, or ended since.
 */
export type SessionCreation = 'none' | 'fresh' | 'same-id' | 'held';

/** A refusal: the code of §9 and the message that says which limit was reached. */
export interface LimitRefusal {
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * A token bucket that may go into debt: `take(n)` always succeeds and says how long the taker should
 * wait before coming back, so work already received is never dropped — its sender is only slowed.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  #tokens: number;
  #at: number;

  /** `rate` tokens per second, at most `capacity` saved up; starts full. */
  constructor(rate: number, capacity: number, now: number) {
    this.#rate = rate;
    this.#capacity = capacity;
    this.#tokens = capacity;
    this.#at = now;
  }

  /** Takes `n` tokens; returns the ms until the bucket is out of debt (0 when it is not in debt). */
  take(n: number, now: number): number {
    this.#refill(now);
    this.#tokens -= n;
    return this.wait(now);
  }

  /** Takes one token when there is one; returns whether it did. */
  tryTake(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Ms until the bucket is out of debt; 0 when it is not. Changes nothing. */
  wait(now: number): number {
    const tokens = this.#tokensAt(now);
    return tokens >= 0 ? 0 : Math.ceil((-tokens * 1000) / this.#rate);
  }

  /** True when the bucket is full again: forgetting it loses nothing. Changes nothing. */
  full(now: number): boolean {
    return this.#tokensAt(now) >= this.#capacity;
  }

  #tokensAt(now: number): number {
    // An infinite rate (no limit) is always full; Infinity × 0 ms would be NaN.
    if (this.#rate === Infinity) return this.#capacity;
    return Math.min(this.#capacity, this.#tokens + (Math.max(0, now - this.#at) * this.#rate) / 1000);
  }

  #refill(now: number): void {
    this.#tokens = this.#tokensAt(now);
    this.#at = now;
  }
}

/** What one client address holds. */
interface AddressEntry {
  sessions: number;
  connections: number;
  /** New sessions this address may still create; absent until it created one. */
  creations: TokenBucket | undefined;
  /** Sessions it may still re-create under ids its clients kept; absent until it re-created one. */
  recreations: TokenBucket | undefined;
  /** Bytes of its request bodies being read now. */
  bodyBytes: number;
}

/** Whether forgetting `entry` loses nothing: it holds nothing, and its budgets are full again. */
function forgettable(entry: AddressEntry, now: number): boolean {
  const refilled = (budget: TokenBucket | undefined): boolean => budget === undefined || budget.full(now);
  return entry.sessions <= 0 && entry.connections <= 0 && entry.bodyBytes <= 0 && refilled(entry.creations) && refilled(entry.recreations);
}

/** Counts per address and in total, and the decisions made from them. */
export class Limits {
  readonly settings: LimitSettings;
  readonly #now: () => number;
  readonly #addresses = new Map<string, AddressEntry>();
  #sessions = 0;
  #connections = 0;
  #bodyBytes = 0;

  /** No limit on anything: for a hub built without the server's options (tests). */
  static unlimited(now: () => number): Limits {
    return new Limits(
      {
        maxSessions: Infinity,
        maxSessionsPerAddress: Infinity,
        maxConnections: Infinity,
        maxConnectionsPerAddress: Infinity,
        sessionsPerSecondPerAddress: Infinity,
        messagesPerSecond: Infinity,
        maxBodyBytesPerAddress: Infinity,
        maxBodyBytes: Infinity,
        clientAddress: socketAddress,
      },
      now,
    );
  }

  constructor(settings: LimitSettings, now: () => number) {
    this.settings = settings;
    this.#now = now;
  }

  get sessions(): number {
    return this.#sessions;
  }

  get connections(): number {
    return this.#connections;
  }

  get bodyBytes(): number {
    return this.#bodyBytes;
  }

  /** Addresses with something counted against them (or a session-creation budget not yet refilled). */
  get addresses(): number {
    return this.#addresses.size;
  }

  /**
   * May `address` open one more connection, creating a session as `creates` says? A session with a
   * fresh id takes a token of the address's creation budget. One re-created under the id its client
   * kept (§3.3, after a restart or expiry) takes one of a budget of its own, which holds as many as
   * the address may hold sessions: every client of the address coming back from a restart at once
   * is let in, while ids made up to dodge the creation rate churn sessions no faster than it. Counts
   * nothing itself: the hub reports what it opens.
   */
  check(address: string, creates: SessionCreation): LimitRefusal | null {
    const s = this.settings;
    const entry = this.#addresses.get(address);
    if (this.#connections >= s.maxConnections) {
      return { code: 'TOO_MANY_CONNECTIONS', message: `the server holds its maximum of ${s.maxConnections} connections` };
    }
    if ((entry?.connections ?? 0) >= s.maxConnectionsPerAddress) {
      return { code: 'TOO_MANY_CONNECTIONS', message: `this address holds its maximum of ${s.maxConnectionsPerAddress} connections` };
    }
    if (creates === 'none') return null;
    if (this.#sessions >= s.maxSessions) {
      return { code: 'TOO_MANY_CONNECTIONS', message: `the server holds its maximum of ${s.maxSessions} sessions` };
    }
    if ((entry?.sessions ?? 0) >= s.maxSessionsPerAddress) {
      return { code: 'TOO_MANY_CONNECTIONS', message: `this address holds its maximum of ${s.maxSessionsPerAddress} sessions` };
    }
    // A resume of a session its client held a key of is no re-creation by a made-up id.
    if (creates === 'held') return null;
    const now = this.#now();
    const target = entry ?? this.#entry(address);
    const rate = s.sessionsPerSecondPerAddress;
    const budget =
      creates === 'fresh'
        ? (target.creations ??= new TokenBucket(rate, rate, now))
        : (target.recreations ??= new TokenBucket(rate, Math.max(rate, s.maxSessionsPerAddress), now));
    if (!budget.tryTake(now)) {
      return { code: 'RATE_LIMITED', message: `this address creates more than ${rate} sessions per second` };
    }
    return null;
  }

  connectionOpened(address: string): void {
    this.#connections++;
    this.#entry(address).connections++;
  }

  connectionClosed(address: string): void {
    this.#connections--;
    const entry = this.#addresses.get(address);
    if (entry) entry.connections--;
  }

  sessionOpened(address: string): void {
    this.#sessions++;
    this.#entry(address).sessions++;
  }

  sessionClosed(address: string): void {
    this.#sessions--;
    const entry = this.#addresses.get(address);
    if (entry) entry.sessions--;
  }

  /**
   * Takes `bytes` more of the request bodies being read from `address` (§12.1.bodies): false, taking
   * nothing, when that would pass the address's bound or the server's. Bodies are held whole until
   * they end, so without it one address could pin `maxMessageSize` per request it holds open.
   */
  takeBody(address: string, bytes: number): boolean {
    const entry = this.#entry(address);
    if (entry.bodyBytes + bytes > this.settings.maxBodyBytesPerAddress || this.#bodyBytes + bytes > this.settings.maxBodyBytes) return false;
    entry.bodyBytes += bytes;
    this.#bodyBytes += bytes;
    return true;
  }

  /** Gives back what {@link takeBody} took for a body that ended, was refused or was dropped. */
  releaseBody(address: string, bytes: number): void {
    this.#bodyBytes -= bytes;
    const entry = this.#addresses.get(address);
    if (!entry) return;
    entry.bodyBytes -= bytes;
    // An entry made for a body alone (a ticket request) goes with it, not at the next sweep.
    if (forgettable(entry, this.#now())) this.#addresses.delete(address);
  }

  /** A fresh inbound budget for one session. */
  messageBucket(): TokenBucket {
    const rate = this.settings.messagesPerSecond;
    return new TokenBucket(rate, rate, this.#now());
  }

  /** Forgets addresses that hold nothing and whose creation budgets refilled (run by the hub's sweep). */
  prune(): void {
    const now = this.#now();
    for (const [address, entry] of this.#addresses) if (forgettable(entry, now)) this.#addresses.delete(address);
  }

  #entry(address: string): AddressEntry {
    let entry = this.#addresses.get(address);
    if (!entry) this.#addresses.set(address, (entry = { sessions: 0, connections: 0, creations: undefined, recreations: undefined, bodyBytes: 0 }));
    return entry;
  }
}

/** The socket's peer address: every request of one TCP client counts against it. */
export function socketAddress(request: http.IncomingMessage): string {
  return request.socket.remoteAddress ?? 'unknown';
}
