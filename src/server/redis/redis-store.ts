/**
 * The Redis store: the message store (src/server/store.ts) and the shared session state
 * (src/server/shared-state.ts) of several server processes, on Redis Streams. Layout and scripts:
 * scripts.ts and session-scripts.ts; ids: ids.ts; live delivery: reader.ts.
 */
import type { Redis } from 'ioredis';
import {
  UnbrokenServerError,
  UnbrokenTypeError,
  type GapReason,
  type Identity,
  type MessageStore,
  type NewMessage,
  type PollConnectionRecord,
  type ReadResult,
  type ServerErrorCode,
  type SessionState,
  type StoreEvents,
  type SharedSession,
  type Signal,
  type StoredMessage,
  type TicketGrant,
} from '../index.js';
import { AppendBatch } from './append-batch.js';
import { decodeMessage, type RawEntry } from './codec.js';
import { items, runScript, scriptLabel, text, type ScriptArg, type ScriptName } from './commands.js';
import { Connections } from './connections.js';
import { candidateEpoch, formatId, parseId } from './ids.js';
import { Keys } from './keys.js';
import { FeedReader, type FeedPosition } from './reader.js';
import { SharedSessions } from './session-state.js';
import { Signals } from './signals.js';
import { Watchdog } from './watchdog.js';

export interface RedisStoreOptions {
  /**
   * Where Redis is, as ioredis takes it (`redis://[user:password@]host:port[/db]`, `rediss://…` for
   * TLS). Not with `client`.
   * @default 'redis://localhost:6379'
   */
  url?: string;
  /**
   * An ioredis client to use instead of a url. The store sends its commands on it and defines its Lua
   * scripts on it (commands named `unbroken…`); it makes its own duplicates for what needs a
   * connection to itself (the blocking reader, the signal subscriber). `close()` leaves it open.
   * Must not have a `keyPrefix`: use `prefix`.
   */
  client?: Redis;
  /**
   * Every key of the store is under `<prefix>:`; stores with different prefixes share nothing. For
   * Redis Cluster, give a hash tag (`'{unbroken}'`) so that every key is in one slot.
   * @default 'unbroken'
   */
  prefix?: string;
  /**
   * Most messages retained; the oldest are evicted first. Only messages count: the changes of
   * membership the store also keeps in its feed (for live delivery in order) never evict one, and go
   * with the messages before them or once older than `maxAge`.
   * @default 10_000
   */
  maxMessages?: number;
  /**
   * Longest a message is retained, in ms, measured with Redis's clock.
   * @default 300_000
   */
  maxAge?: number;
  /**
   * How long `ready()` waits for Redis to answer, in ms (also each connection attempt's timeout).
   * @default 5_000
   */
  connectTimeout?: number;
  /**
   * A command Redis has not answered after this many ms is reported to `onError` listeners. The
   * command keeps waiting: it completes when Redis answers.
   * @default 1_000
   */
  slowCommandWarning?: number;
}

/** How long the blocking reader's `XREAD` blocks before it asks again, in ms. */
const BLOCK_TIME = 2_000;

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UnbrokenTypeError('INVALID_OPTION', `RedisStore: expects ${name} to be an integer ≥ 1, got ${value}`);
  }
  return value;
}

function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 256 || /[\u0000-\u001f\u007f]/.test(prefix)) {
    throw new UnbrokenTypeError('INVALID_OPTION', `RedisStore: expects prefix to be 1–256 characters without control characters, got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/**
 * A store on Redis (6.2 or later) that several server processes share: one append order for all,
 * resume from any process, and the session state that lets a load balancer send any request
 * anywhere. It implements {@link MessageStore} and {@link SessionState}.
 *
 * Ids are `<epoch>-<ms>-<seq>`: the Redis Streams id of the message and an epoch kept in Redis, which
 * changes when Redis loses its data (a restart without persistence, `FLUSHALL`), so a client that
 * resumes from before is told `unknown-epoch`. Retention is bounded by count and by age (Redis's
 * clock). Reading a session's stream costs in proportion to the messages addressed to it. Every
 * join and leave is one Lua script, and so is every batch of appends (those called in one microtask
 * turn, append-batch.ts), so all processes see them in one order.
 *
 * Live delivery is one blocking reader per store, whatever the number of sessions: subscribers hear
 * of a message when the reader sees it, which may be after the `append` that stored it resolved, and
 * of every join and leave — by any process — in the same order, as the feed holds them too. When the
 * reader finds a new epoch, subscribers hear that the history was lost before anything of it.
 * Redis should run with `maxmemory-policy noeviction`: an evicted key is a silently lost message.
 *
 * @example
 * import { createServer } from 'unbroken-realtime/server';
 * import { RedisStore } from 'unbroken-realtime/redis';
 *
 * const store = new RedisStore({ url: process.env.REDIS_URL, maxMessages: 50_000 });
 * store.onError((error) => console.warn(error.message));
 * await store.ready();
 * const server = createServer({ store });
 */
export class RedisStore implements MessageStore, SessionState {
  readonly #keys: Keys;
  readonly #maxMessages: number;
  readonly #maxAge: number;
  readonly #connectTimeout: number;
  /** How long index streams and ended sessions' memberships outlive their last use: see scripts.ts. */
  readonly #retention: number;
  readonly #connections: Connections;
  readonly #watchdog: Watchdog;
  readonly #reader: FeedReader;
  readonly #signals: Signals;
  readonly #sessions: SharedSessions;
  readonly #appends: AppendBatch;
  readonly #errorListeners = new Set<(error: Error) => void>();
  #closed: Promise<void> | null = null;

  constructor(options: RedisStoreOptions = {}) {
    const { url, client, prefix = 'unbroken', maxMessages = 10_000, maxAge = 300_000, connectTimeout = 5_000, slowCommandWarning = 1_000 } = options;
    if (url !== undefined && client !== undefined) {
      throw new UnbrokenTypeError('INVALID_OPTION', 'RedisStore: expects url or client, not both');
    }
    if (client?.options.keyPrefix) {
      throw new UnbrokenTypeError('INVALID_OPTION', `RedisStore: expects a client without keyPrefix, got ${JSON.stringify(client.options.keyPrefix)}; use the prefix option`);
    }
    this.#keys = new Keys(checkPrefix(prefix));
    this.#maxMessages = positiveInteger('maxMessages', maxMessages);
    this.#maxAge = positiveInteger('maxAge', maxAge);
    this.#connectTimeout = positiveInteger('connectTimeout', connectTimeout);
    positiveInteger('slowCommandWarning', slowCommandWarning);
    this.#retention = 2 * this.#maxAge;

    const report = (message: string, cause?: unknown, code: ServerErrorCode = 'STORE_ERROR'): void => this.#report(message, cause, code);
    this.#connections = new Connections({ url, client, connectTimeout: this.#connectTimeout }, report);
    const { main, where } = this.#connections;
    this.#watchdog = new Watchdog(slowCommandWarning, where, report);
    this.#reader = new FeedReader({
      connection: () => this.#connections.reader,
      feed: this.#keys.feed,
      meta: this.#keys.meta,
      position: (redis) => this.#position(redis),
      main,
      watchdog: this.#watchdog,
      report,
      blockTime: BLOCK_TIME,
      slowCommandWarning,
    });
    this.#appends = new AppendBatch({
      fixedKeys: [this.#keys.meta, this.#keys.feed, this.#keys.messages],
      indexKeys: (to) => this.#keys.indexesOf(to),
      settings: [this.#maxMessages, this.#maxAge, this.#retention],
      run: (args) => this.#watchdog.track('append', runScript(main, 'unbrokenAppend', args)),
    });
    // Every other command goes out after the appends called before it (append-batch.ts).
    const commands = (): Redis => {
      this.#appends.flush();
      return main;
    };
    this.#signals = new Signals(this.#connections, this.#keys.signals, report);
    this.#sessions = new SharedSessions(commands, this.#keys, this.#watchdog, this.#retention);
  }

  /**
   * Resolves once Redis answers a `PING`; rejects with `STORE_ERROR` ("cannot reach Redis at …: why")
   * when it has not within `connectTimeout`. The store goes on trying to connect until `close()`.
   * Once connected, it reports to `onError` when Redis may evict keys (`maxmemory-policy`).
   */
  async ready(): Promise<void> {
    if (this.#closed) throw new UnbrokenServerError('STORE_ERROR', 'RedisStore: ready() after close()');
    const { main, where } = this.#connections;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ping = main.ping();
    ping.catch(() => undefined);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const cause = this.#connections.lastError ?? new Error(`no answer within ${this.#connectTimeout} ms`);
        reject(new UnbrokenServerError('STORE_ERROR', `cannot reach Redis at ${where}: ${cause.message}`, { cause }));
      }, this.#connectTimeout);
    });
    try {
      await Promise.race([ping, timeout]);
    } catch (error) {
      if (error instanceof UnbrokenServerError) throw error;
      throw new UnbrokenServerError('STORE_ERROR', `cannot reach Redis at ${where}: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
    void this.#checkEviction();
  }

  /**
   * Calls `listener` with an `UnbrokenServerError` (`STORE_ERROR`) for each of: a lost connection and
   * its reconnection (each connection of the store: commands, blocking reader, signals), a Redis that
   * cannot be reached, a command not answered after `slowCommandWarning` ms and its answer at last,
   * a failed blocking read, and a Redis that may evict keys; `LISTENER_ERROR` for a subscriber that
   * threw. Returns the unsubscribe function.
   */
  onError(listener: (error: Error) => void): () => void {
    const wrapped = (error: Error): void => listener(error);
    this.#errorListeners.add(wrapped);
    return () => {
      this.#errorListeners.delete(wrapped);
    };
  }

  async append(message: NewMessage, dataText?: string): Promise<StoredMessage> {
    if (this.#closed) throw new UnbrokenServerError('STORE_ERROR', 'RedisStore: append after close()');
    return this.#appends.add(message, dataText);
  }

  async head(): Promise<string> {
    const { epoch, head } = await this.#position(this.#commands);
    return formatId(epoch, head);
  }

  async join(sessionId: string, room: string): Promise<string> {
    const reply = items(await this.#run('unbrokenJoin', this.#membershipArgs(sessionId, room)), 2);
    return formatId(text(reply[0]), text(reply[1]));
  }

  async leave(sessionId: string, room: string): Promise<string | null> {
    const reply = await this.#run('unbrokenLeave', this.#membershipArgs(sessionId, room));
    if (reply === null) return null;
    const [epoch, position] = items(reply, 2);
    return formatId(text(epoch), text(position));
  }

  async members(room: string): Promise<string[]> {
    const reply = await this.#run('unbrokenMembers', [this.#keys.members(room), this.#keys.roomsPrefix, room]);
    return items(reply, 0).map(text);
  }

  async roomsOf(sessionId: string): Promise<string[]> {
    const intervals = await this.#watchdog.track('roomsOf', this.#commands.hgetall(this.#keys.rooms(sessionId)));
    // An odd number of positions: the last membership is open (scripts.ts).
    return Object.entries(intervals)
      .filter(([, positions]) => positions.split(' ').length % 2 === 1)
      .map(([room]) => room);
  }

  async read(sessionId: string, after: string, limit: number): Promise<ReadResult> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`RedisStore.read: expects limit to be an integer ≥ 1, got ${limit}`);
    }
    const parsed = parseId(after);
    const keys = this.#keys;
    const reply = items(
      await this.#run(
        'unbrokenRead',
        [
          keys.meta,
          keys.feed,
          keys.messages,
          keys.all,
          keys.sessionIndex(sessionId),
          keys.rooms(sessionId),
          candidateEpoch(),
          this.#maxAge,
          limit,
          parsed?.epoch ?? '',
          parsed?.position ?? '',
          keys.roomIndexPrefix,
        ],
        true,
      ),
      6,
    );
    const epoch = text(reply[0]);
    const gap = text(reply[2]) as GapReason | '';
    const messages = items(reply[5], 0).map((entry) => decodeMessage(entry as RawEntry));
    // Subscribers hear of every message this read could see before it resolves (store.ts, subscribe).
    await this.#reader.caughtUp(epoch, text(reply[4]));
    const more = reply[3] === 1;
    if (gap === '') return { cursor: after, messages, more };
    return { cursor: formatId(epoch, text(reply[1])), gap, messages, more };
  }

  /**
   * See {@link MessageStore.subscribe}. The first subscriber starts the store's blocking reader at the
   * end of the feed as of the call; a listener added while it runs hears from where the reader
   * stands, which may include messages and membership changes made just before the call that the
   * reader had not yet delivered. `events.membership` hears of every join and leave that changed a
   * membership, the ends of a session's memberships by `deleteSession` included; memberships that
   * expire with a session whose process crashed are not told. `events.historyLost` hears of each new
   * epoch the reader finds (Redis restarted without persistence, `FLUSHALL`) once. A message of JSON
   * data comes with its text as stored (`dataText`), so that the server sends it on as it is.
   */
  subscribe(listener: (message: StoredMessage, dataText?: string) => void, events?: StoreEvents): () => void {
    if (this.#closed) return () => undefined;
    return this.#reader.subscribe(listener, events);
  }

  createSession(session: { id: string; key: string; user: Identity | null }, ttl: number): Promise<{ session: SharedSession; created: boolean }> {
    return this.#sessions.create(session, ttl);
  }

  getSession(id: string): Promise<SharedSession | null> {
    return this.#sessions.get(id);
  }

  setUser(id: string, user: Identity): Promise<void> {
    return this.#sessions.setUser(id, user);
  }

  touchSessions(ids: readonly string[], ttl: number): Promise<void> {
    return this.#sessions.touch(ids, ttl);
  }

  /**
   * Ends a session: its entry, its tickets and its long-polling connections are gone, and its open
   * room memberships end at the head as of the call (§6.5) — here, in the same script, so a process
   * that never saw the session's rooms ends them too, and subscribers hear of each as a leave; a
   * `leave` afterwards returns `null`. Its closed
   * memberships and its messages stay for the retention, until a session is created under its id
   * (§3.3.same-id-fresh): that one starts without them.
   */
  deleteSession(id: string): Promise<void> {
    return this.#sessions.delete(id);
  }

  advance(id: string, first: number, last: number, claim: { node: string; lease: number }): Promise<{ base: number } | { busy: number } | null> {
    return this.#sessions.advance(id, first, last, claim);
  }

  confirm(id: string, upTo: number): Promise<void> {
    return this.#sessions.confirm(id, upTo);
  }

  putTicket(ticket: string, grant: TicketGrant, ttl: number): Promise<void> {
    return this.#sessions.putTicket(ticket, grant, ttl);
  }

  takeTicket(ticket: string): Promise<TicketGrant | null> {
    return this.#sessions.takeTicket(ticket);
  }

  putConnection(connection: string, record: PollConnectionRecord, ttl: number): Promise<void> {
    return this.#sessions.putConnection(connection, record, ttl);
  }

  getConnection(connection: string): Promise<PollConnectionRecord | null> {
    return this.#sessions.getConnection(connection);
  }

  publish(signal: Signal): Promise<void> {
    return this.#signals.publish(signal);
  }

  subscribeSignals(listener: (signal: Signal) => void): () => void {
    return this.#signals.subscribe(listener);
  }

  /**
   * Stops the reader and closes the connections the store made, once pending commands are answered
   * (at most `connectTimeout` later). A client given as `client` stays open.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Appends called before close() are sent, as they were before appends went in batches.
      this.#appends.flush();
      this.#reader.stop();
      this.#signals.close();
      await this.#connections.close(this.#connectTimeout);
      this.#errorListeners.clear();
    })();
    return this.#closed;
  }

  #membershipArgs(sessionId: string, room: string): ScriptArg[] {
    const keys = this.#keys;
    return [
      keys.meta,
      keys.feed,
      keys.messages,
      keys.rooms(sessionId),
      keys.members(room),
      keys.session(sessionId),
      keys.roomIndex(room),
      candidateEpoch(),
      room,
      sessionId,
      this.#retention,
      this.#maxAge,
    ];
  }

  async #position(redis: Redis): Promise<FeedPosition> {
    const reply = items(await this.#watchdog.track('head', runScript(redis, 'unbrokenHead', [this.#keys.meta, this.#keys.feed, candidateEpoch()])), 4);
    return { epoch: text(reply[0]), head: text(reply[1]), start: text(reply[2]), tail: text(reply[3]) };
  }

  #run(name: ScriptName, args: readonly ScriptArg[], buffers = false): Promise<unknown> {
    return this.#watchdog.track(scriptLabel(name), runScript(this.#commands, name, args, buffers));
  }

  /** The connection for commands, once the appends called before are on their way (append-batch.ts). */
  get #commands(): Redis {
    this.#appends.flush();
    return this.#connections.main;
  }

  /** Warns when Redis may evict keys: an evicted stream or session is lost without a trace. */
  async #checkEviction(): Promise<void> {
    try {
      const info = await this.#connections.main.info('memory');
      const maxmemory = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
      const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'noeviction';
      if (maxmemory > 0 && policy !== 'noeviction') {
        this.#report(`Redis at ${this.#connections.where} may evict keys (maxmemory-policy ${policy}): messages and sessions can be lost; set maxmemory-policy noeviction`);
      }
    } catch {
      // INFO may be refused (managed Redis, ACLs): nothing to warn about then.
    }
  }

  #report(message: string, cause?: unknown, code: ServerErrorCode = 'STORE_ERROR'): void {
    const error = new UnbrokenServerError(code, message, cause === undefined ? undefined : { cause });
    for (const listener of this.#errorListeners) {
      try {
        listener(error);
      } catch {
        // A throwing listener must not keep the others from hearing of it.
      }
    }
  }
}
