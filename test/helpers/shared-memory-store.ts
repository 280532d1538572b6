/**
 * A store several servers in one process share, as server processes share Redis: the in-memory
 * message store plus the shared session state of shared-state.ts, with expiry and with signals
 * delivered asynchronously (as pub/sub delivers them). It lets the suites run the multi-process
 * rules — no sticky sessions, exactly once across processes — fast and without Redis.
 */
import { randomUUID } from 'node:crypto';
import { MemoryStore, type MemoryStoreOptions, type PollConnectionRecord, type SessionState, type SharedSession, type Signal, type TicketGrant } from '../../src/server/index.js';
import type { Identity } from '../../src/server/identity.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

export class SharedMemoryStore extends MemoryStore implements SessionState {
  readonly #sessions = new Map<string, Expiring<{ id: string; key: string; user: Identity | null; processed: number; born: string; claim?: { upTo: number; node: string; until: number } }>>();
  readonly #tickets = new Map<string, Expiring<TicketGrant>>();
  readonly #connections = new Map<string, Expiring<PollConnectionRecord>>();
  readonly #signalListeners = new Set<(signal: Signal) => void>();
  readonly #clock: () => number;
  /** Every signal published, for tests that check what the servers told each other. */
  readonly signals: Signal[] = [];

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
    this.#clock = options.now ?? Date.now;
  }

  async createSession(session: { id: string; key: string; user: Identity | null }, ttl: number): Promise<{ session: SharedSession; created: boolean }> {
    const existing = this.#live(this.#sessions, session.id);
    if (existing) return { session: this.#public(existing), created: false };
    const created = { ...session, processed: 0, born: randomUUID() };
    // As RedisStore's script: nothing addressed to an earlier session of the id is part of this one.
    this.forget(session.id);
    this.#sessions.set(session.id, { value: created, expiresAt: this.#clock() + ttl });
    return { session: this.#public(created), created: true };
  }

  async getSession(id: string): Promise<SharedSession | null> {
    const found = this.#live(this.#sessions, id);
    return found ? this.#public(found) : null;
  }

  async setUser(id: string, user: Identity): Promise<void> {
    const found = this.#live(this.#sessions, id);
    if (found) found.user = user;
  }

  async touchSessions(ids: readonly string[], ttl: number): Promise<void> {
    for (const id of ids) {
      const entry = this.#sessions.get(id);
      if (entry && entry.expiresAt > this.#clock()) entry.expiresAt = this.#clock() + ttl;
    }
  }

  async deleteSession(id: string): Promise<void> {
    this.#sessions.delete(id);
  }

  async advance(id: string, first: number, last: number, claim: { node: string; lease: number }): Promise<{ base: number } | { busy: number } | null> {
    const found = this.#live(this.#sessions, id);
    if (!found) return null;
    const now = this.#clock();
    let base = found.processed;
    const held = found.claim;
    if (held && held.upTo > found.processed) {
      if (held.node === claim.node) base = held.upTo;
      else if (held.until > now) return { busy: held.until - now };
    }
    if (first <= base + 1 && last > base) found.claim = { upTo: last, node: claim.node, until: now + claim.lease };
    return { base };
  }

  async confirm(id: string, upTo: number): Promise<void> {
    const found = this.#live(this.#sessions, id);
    if (found && upTo > found.processed) found.processed = upTo;
  }

  async putTicket(ticket: string, grant: TicketGrant, ttl: number): Promise<void> {
    this.#tickets.set(ticket, { value: grant, expiresAt: this.#clock() + ttl });
  }

  async takeTicket(ticket: string): Promise<TicketGrant | null> {
    const grant = this.#live(this.#tickets, ticket);
    this.#tickets.delete(ticket);
    return grant ?? null;
  }

  async putConnection(connection: string, record: PollConnectionRecord, ttl: number): Promise<void> {
    this.#connections.set(connection, { value: record, expiresAt: this.#clock() + ttl });
  }

  async getConnection(connection: string): Promise<PollConnectionRecord | null> {
    return this.#live(this.#connections, connection) ?? null;
  }

  async publish(signal: Signal): Promise<void> {
    this.signals.push(signal);
    // Pub/sub delivers later, never during the publisher's call.
    setImmediate(() => {
      for (const listener of this.#signalListeners) listener(signal);
    });
  }

  subscribeSignals(listener: (signal: Signal) => void): () => void {
    const wrapped = (signal: Signal) => listener(signal);
    this.#signalListeners.add(wrapped);
    return () => {
      this.#signalListeners.delete(wrapped);
    };
  }

  /** Forgets every session, ticket and connection, as a Redis restarted without persistence would. */
  loseState(): void {
    this.#sessions.clear();
    this.#tickets.clear();
    this.#connections.clear();
  }

  #public(session: { id: string; key: string; user: Identity | null; processed: number; born: string }): SharedSession {
    return { id: session.id, key: session.key, user: session.user, processed: session.processed, born: session.born };
  }

  #live<T>(map: Map<string, Expiring<T>>, key: string): T | undefined {
    const entry = map.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#clock()) {
      map.delete(key);
      return undefined;
    }
    return entry.value;
  }
}
