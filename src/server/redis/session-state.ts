/**
 * The shared session state of the Redis store (src/server/shared-state.ts): sessions, the upstream
 * sequence (§8), tickets (§3.4) and long-polling connections (§7.4), each in keys that expire by
 * themselves (see session-scripts.ts), so that a process that crashed leaks nothing.
 */
import type { Redis } from 'ioredis';
import { UnbrokenTypeError, type Identity, type PollConnectionRecord, type SharedSession, type TicketGrant } from '../index.js';
import { items, runScript, scriptLabel, text, type ScriptArg, type ScriptName } from './commands.js';
import { candidateEpoch } from './ids.js';
import type { Keys } from './keys.js';
import type { Watchdog } from './watchdog.js';

/** Longest ticket looked up: a longer value from a URL is no ticket this store issued. */
const MAX_TICKET_LENGTH = 256;

function checkTtl(method: string, ttl: number): number {
  if (!Number.isSafeInteger(ttl) || ttl < 1) {
    throw new UnbrokenTypeError('INVALID_OPTION', `RedisStore.${method}: expects ttl to be an integer ≥ 1 ms, got ${ttl}`);
  }
  return ttl;
}

function checkSequence(first: number, last: number): void {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 1 || last < first) {
    throw new UnbrokenTypeError('INVALID_OPTION', `RedisStore.advance: expects integers 1 ≤ first ≤ last, got ${first} and ${last}`);
  }
}

/** A session id as read back from the store: base64url, at most as long as the server makes them. */
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A long-polling connection's record as stored: `{"session", "max"?}` in JSON, or the session id
 * alone as a process of an older version wrote it (before §4.1.size's `max` was kept). A value that
 * is neither (a key another program wrote) reads as no connection, as an expired one does: its poll
 * then opens a connection of its own with its ticket.
 */
function pollRecordOf(stored: string | null): PollConnectionRecord | null {
  if (stored === null) return null;
  if (!stored.startsWith('{')) return SESSION_ID.test(stored) ? { session: stored } : null;
  let record: unknown;
  try {
    record = JSON.parse(stored);
  } catch {
    return null;
  }
  const { session, max } = record as { session?: unknown; max?: unknown };
  if (typeof session !== 'string' || !SESSION_ID.test(session)) return null;
  if (max === undefined) return { session };
  return Number.isSafeInteger(max) && (max as number) >= 1 ? { session, max: max as number } : null;
}

function userOf(stored: string): Identity | null {
  return stored === '' ? null : (JSON.parse(stored) as Identity);
}

export class SharedSessions {
  /** The connection for commands: the store's, once its pending appends are sent (append-batch.ts). */
  readonly #connection: () => Redis;
  readonly #keys: Keys;
  readonly #watchdog: Watchdog;
  /** How long a session's closed memberships are kept once it ended: see scripts.ts. */
  readonly #retention: number;

  constructor(connection: () => Redis, keys: Keys, watchdog: Watchdog, retention: number) {
    this.#connection = connection;
    this.#keys = keys;
    this.#watchdog = watchdog;
    this.#retention = retention;
  }

  get #redis(): Redis {
    return this.#connection();
  }

  async create(session: { id: string; key: string; user: Identity | null }, ttl: number): Promise<{ session: SharedSession; created: boolean }> {
    checkTtl('createSession', ttl);
    const user = session.user === null ? '' : JSON.stringify(session.user);
    // The incarnation's mark (shared-state.ts): random, so that a session created anew under the id differs.
    const born = candidateEpoch();
    const reply = items(
      await this.#run('unbrokenCreateSession', [this.#keys.session(session.id), this.#keys.sessionIndex(session.id), this.#keys.rooms(session.id), session.key, user, ttl, born]),
      4,
    );
    return {
      session: { id: session.id, key: text(reply[1]), user: userOf(text(reply[2])), processed: Number(text(reply[3])), ...bornOf(reply[4]) },
      created: reply[0] === 1,
    };
  }

  async get(id: string): Promise<SharedSession | null> {
    const [key, user, processed, born] = await this.#watchdog.track('getSession', this.#redis.hmget(this.#keys.session(id), 'key', 'user', 'processed', 'born'));
    if (key === null || key === undefined) return null;
    return { id, key, user: userOf(user ?? ''), processed: Number(processed ?? 0), ...bornOf(born) };
  }

  async setUser(id: string, user: Identity): Promise<void> {
    await this.#run('unbrokenSetUser', [this.#keys.session(id), JSON.stringify(user)]);
  }

  async touch(ids: readonly string[], ttl: number): Promise<void> {
    checkTtl('touchSessions', ttl);
    if (ids.length === 0) return;
    // One round trip for all: a process touches every session it holds at each sweep.
    const pipeline = this.#redis.pipeline();
    const touch = pipeline as unknown as Record<string, (...args: ScriptArg[]) => unknown>;
    for (const id of ids) {
      touch.unbrokenTouch!.call(pipeline, this.#keys.session(id), this.#keys.rooms(id), this.#keys.pollsOf(id), ttl, this.#keys.pollPrefix);
    }
    const results = await this.#watchdog.track('touchSessions', pipeline.exec());
    const failed = results?.find(([error]) => error !== null)?.[0];
    if (failed) throw failed;
  }

  async delete(id: string): Promise<void> {
    const keys = this.#keys;
    await this.#run('unbrokenEndSession', [
      keys.meta,
      keys.feed,
      keys.session(id),
      keys.rooms(id),
      keys.ticketsOf(id),
      keys.pollsOf(id),
      candidateEpoch(),
      keys.membersPrefix,
      keys.ticketPrefix,
      keys.pollPrefix,
      this.#retention,
      id,
    ]);
  }

  async advance(id: string, first: number, last: number, claim: { node: string; lease: number }): Promise<{ base: number } | { busy: number } | null> {
    checkSequence(first, last);
    checkTtl('advance', claim.lease);
    const reply = await this.#run('unbrokenAdvance', [this.#keys.session(id), first, last, claim.node, claim.lease]);
    if (reply === null) return null;
    const [kind, value] = items(reply, 2);
    const n = Number(text(value));
    return text(kind) === 'busy' ? { busy: n } : { base: n };
  }

  async confirm(id: string, upTo: number): Promise<void> {
    if (!Number.isSafeInteger(upTo) || upTo < 0) {
      throw new UnbrokenTypeError('INVALID_OPTION', `RedisStore.confirm: expects an integer ≥ 0, got ${upTo}`);
    }
    await this.#run('unbrokenConfirm', [this.#keys.session(id), upTo]);
  }

  async putTicket(ticket: string, grant: TicketGrant, ttl: number): Promise<void> {
    checkTtl('putTicket', ttl);
    const keys = grant.sid === null ? [this.#keys.ticket(ticket)] : [this.#keys.ticket(ticket), this.#keys.ticketsOf(grant.sid)];
    await this.#run('unbrokenPutTicket', [keys.length, ...keys, JSON.stringify(grant), ttl, ticket]);
  }

  async takeTicket(ticket: string): Promise<TicketGrant | null> {
    if (ticket.length === 0 || ticket.length > MAX_TICKET_LENGTH) return null;
    const grant = await this.#watchdog.track('takeTicket', this.#redis.getdel(this.#keys.ticket(ticket)));
    return grant === null ? null : (JSON.parse(grant) as TicketGrant);
  }

  async putConnection(connection: string, record: PollConnectionRecord, ttl: number): Promise<void> {
    checkTtl('putConnection', ttl);
    const stored = JSON.stringify(record.max === undefined ? { session: record.session } : { session: record.session, max: record.max });
    await this.#run('unbrokenPutPoll', [this.#keys.poll(connection), this.#keys.pollsOf(record.session), stored, ttl, connection]);
  }

  async getConnection(connection: string): Promise<PollConnectionRecord | null> {
    return pollRecordOf(await this.#watchdog.track('getConnection', this.#redis.get(this.#keys.poll(connection))));
  }

  #run(name: ScriptName, args: readonly ScriptArg[]): Promise<unknown> {
    return this.#watchdog.track(scriptLabel(name), runScript(this.#redis, name, args));
  }
}

/** The `born` field of a session the store read: none for one an older version made without it. */
function bornOf(value: unknown): { born?: string } {
  const born = value === null || value === undefined ? '' : text(value);
  return born === '' ? {} : { born };
}
