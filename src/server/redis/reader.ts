/**
 * Live delivery of the Redis store: ONE blocking reader per store (`XREAD BLOCK` on the feed, from the
 * last id it saw, on a connection of its own) that hands every message and every change of membership,
 * made by any process, to every subscriber in append order (codec.ts: the feed holds both). One reader
 * per store instead of one per session: the feed is read once per process however many sessions
 * listen. When it finds that the store began a new epoch, it tells every subscriber the history was
 * lost before anything of the new epoch.
 *
 * It also keeps the promise `read` makes (store.ts, `subscribe`): a read waits until the reader has
 * delivered everything up to the head the read saw, so the server's replay/live seam holds.
 */
import type { Redis } from 'ioredis';
import type { StoreEvents, StoredMessage } from '../index.js';
import { decodeEntry, type FeedEntry, type RawEntry } from './codec.js';
import { items } from './commands.js';
import type { Report } from './connections.js';
import { compareStreamIds, type StreamId } from './ids.js';
import type { Watchdog } from './watchdog.js';

/** Where the feed stands, as the head script tells it. */
export interface FeedPosition {
  readonly epoch: string;
  /** The last message. */
  readonly head: StreamId;
  /** The position the epoch began after. */
  readonly start: StreamId;
  /** The feed's last entry: the head, or a change of membership after it. */
  readonly tail: StreamId;
}

export interface ReaderOptions {
  /** The reader's own connection (made when the reader starts). */
  readonly connection: () => Redis;
  readonly feed: string;
  /** The hash that holds `trimmed`, the newest message retention evicted. */
  readonly meta: string;
  /** Runs the head script on `redis`. */
  readonly position: (redis: Redis) => Promise<FeedPosition>;
  /** The command connection: where the first position is asked, in order with this process's appends. */
  readonly main: Redis;
  readonly watchdog: Watchdog;
  readonly report: Report;
  /** Longest an `XREAD` blocks before it returns empty, in ms. */
  readonly blockTime: number;
  /** Reported past this many ms beyond `blockTime`: a stalled Redis says nothing otherwise. */
  readonly slowCommandWarning: number;
}

/** Entries per `XREAD`: large enough for bursts, small enough to keep each reply modest. */
const BATCH = 1000;
/** Epochs the reader has left behind, remembered so that a read of one of them does not wait. */
const PAST_EPOCHS = 16;
const MAX_RETRY_DELAY = 5_000;

/** One `subscribe` call: what it is told. */
interface Subscriber {
  readonly message: (message: StoredMessage, dataText?: string) => void;
  readonly events: StoreEvents | undefined;
}

interface Waiter {
  readonly epoch: string;
  readonly position: StreamId;
  readonly resolve: () => void;
}

/**
 * The entries of an `XREAD` reply for one stream: `[[key, entries]]`, or null when the block time ran
 * out (ioredis gives RESP3 maps the same shape by default).
 */
function entriesOf(reply: unknown): RawEntry[] {
  if (reply === null) return [];
  const streams = items(reply, 1);
  const entries = items(streams[0], 2)[1];
  return items(entries, 0) as RawEntry[];
}

export class FeedReader {
  readonly #options: ReaderOptions;
  readonly #subscribers = new Set<Subscriber>();
  #state: 'idle' | 'running' | 'failing' | 'stopped' = 'idle';
  /** The epoch being read, `null` until the first position is known. */
  #epoch: string | null = null;
  /** The last feed id delivered (or skipped). */
  #last: StreamId = '0-0';
  readonly #pastEpochs: string[] = [];
  #waiters: Waiter[] = [];
  /** Set when the feed's epoch must be asked again: after a reconnection, a failure, a foreign entry. */
  #recheck = false;
  /** The id of an entry of another epoch than the one being read, met in the feed. */
  #foreign: StreamId | null = null;

  constructor(options: ReaderOptions) {
    this.#options = options;
  }

  /** Adds a subscriber; the first one starts the reader. */
  subscribe(listener: (message: StoredMessage, dataText?: string) => void, events?: StoreEvents): () => void {
    if (this.#state === 'stopped') return () => undefined;
    // An object per call, so the same function subscribed twice is two subscriptions.
    const subscriber: Subscriber = { message: listener, events };
    this.#subscribers.add(subscriber);
    if (this.#state === 'idle') this.#start();
    return () => {
      this.#subscribers.delete(subscriber);
    };
  }

  /**
   * Resolves once every message up to `position` of `epoch` was delivered — at once when the reader
   * is not running (no subscriber yet, stopped, or failing: a read must not wait on a broken reader).
   */
  caughtUp(epoch: string, position: StreamId): Promise<void> {
    if (this.#passed(epoch, position)) return Promise.resolve();
    // An epoch the reader does not know: it is behind a history lost meanwhile, and asks the feed's
    // epoch again after its current `XREAD` (whose wait the new epoch's first entry normally ends).
    if (this.#epoch !== null && epoch !== this.#epoch) this.#recheck = true;
    return new Promise((resolve) => this.#waiters.push({ epoch, position, resolve }));
  }

  /** Stops reading (the caller closes the connection, which ends a pending `XREAD`). */
  stop(): void {
    this.#state = 'stopped';
    this.#subscribers.clear();
    this.#release(() => true);
  }

  #start(): void {
    this.#state = 'running';
    // Asked now, on the command connection: every append this process makes after subscribing is
    // ordered after it, so the reader starts before it.
    const first = this.#options.position(this.#options.main);
    first.catch(() => undefined);
    const connection = this.#options.connection();
    connection.on('ready', () => {
      // A reconnection: Redis may have restarted without its data (a new epoch).
      this.#recheck = true;
    });
    void this.#run(connection, first);
  }

  async #run(connection: Redis, first: Promise<FeedPosition>): Promise<void> {
    const { watchdog, feed, blockTime, slowCommandWarning, position } = this.#options;
    let pending: Promise<FeedPosition> | null = first;
    let failures = 0;
    while (this.#state === 'running' || this.#state === 'failing') {
      try {
        if (pending !== null || this.#recheck) {
          this.#recheck = false;
          const found: FeedPosition = await (pending ?? watchdog.track('the head of the feed', position(connection)));
          pending = null;
          if (this.#stopped()) return;
          this.#adopt(found);
        }
        const reply: unknown = await watchdog.track(
          'the blocking read of the feed',
          connection.xreadBuffer('COUNT', BATCH, 'BLOCK', blockTime, 'STREAMS', feed, this.#last),
          blockTime + slowCommandWarning,
        );
        if (this.#stopped()) return;
        if (this.#state === 'failing') this.#state = 'running';
        failures = 0;
        const entries = entriesOf(reply);
        if (entries.length > 0 && (await this.#overtaken(connection))) {
          // Retention evicted messages this reader had not read: they were never delivered live.
          // Every live stream resumes, and each client learns from its resume what it missed.
          this.#tell({ kind: 'overrun' });
        }
        if (this.#stopped()) return;
        this.#deliver(entries);
      } catch (error) {
        if (this.#stopped()) return;
        pending = null;
        this.#recheck = true;
        this.#state = 'failing';
        // Reads waiting for the reader would wait as long as it fails: let them go.
        this.#release(() => true);
        this.#options.report('the blocking reader of the feed failed; it retries', error);
        const delay = Math.min(MAX_RETRY_DELAY, 100 * 2 ** failures++);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  /**
   * Takes the feed's position: its tail when there is no epoch yet (a subscriber hears what comes
   * after it subscribed), the new epoch's start after a change — told to subscribers first.
   */
  #adopt(found: FeedPosition): void {
    if (this.#epoch === null) {
      this.#epoch = found.epoch;
      this.#last = found.tail;
    } else if (found.epoch !== this.#epoch) {
      // The history was lost and begun again: the new epoch is read from its start.
      this.#pastEpochs.push(this.#epoch);
      if (this.#pastEpochs.length > PAST_EPOCHS) this.#pastEpochs.shift();
      this.#epoch = found.epoch;
      this.#last = found.start;
      this.#tell({ kind: 'history-lost' });
    } else if (this.#foreign !== null) {
      // An entry of another epoch in this epoch's feed: not this store's doing. Skip it.
      this.#options.report(`skipped feed entry ${this.#foreign}: it belongs to another epoch than the feed's`);
      this.#last = this.#foreign;
    }
    this.#foreign = null;
    // A read of another epoch than the feed's, as just found, straddles a loss of history: its epoch
    // is past, never to be delivered, or the next, whose `historyLost` ends every live stream anyway.
    // It waits no longer.
    this.#release((waiter) => waiter.epoch !== this.#epoch || this.#passed(waiter.epoch, waiter.position));
  }

  #deliver(entries: readonly RawEntry[]): void {
    for (const entry of entries) {
      const id = entry[0].toString('latin1');
      let decoded: FeedEntry;
      try {
        decoded = decodeEntry(entry);
      } catch (error) {
        this.#options.report(`skipped feed entry ${id}: it is not an entry of this store`, error);
        this.#last = id;
        continue;
      }
      if (decoded.epoch !== this.#epoch) {
        // Delivered so far; the rest waits until the feed's epoch is known again.
        this.#foreign = id;
        this.#recheck = true;
        break;
      }
      this.#last = id;
      this.#tell(decoded);
    }
    this.#release((waiter) => this.#passed(waiter.epoch, waiter.position));
  }

  /**
   * True when retention evicted a message after the last one read: appends ran more than the
   * retention ahead of this reader (a burst faster than the process reads, or a process paused).
   */
  async #overtaken(connection: Redis): Promise<boolean> {
    const trimmed = await connection.hget(this.#options.meta, 'trimmed');
    return trimmed !== null && compareStreamIds(trimmed, this.#last) > 0;
  }

  /** Tells every subscriber one thing, each call guarded: a throwing subscriber keeps no other from hearing. */
  #tell(what: FeedEntry | { readonly kind: 'history-lost' } | { readonly kind: 'overrun' }): void {
    for (const { message, events } of this.#subscribers) {
      try {
        switch (what.kind) {
          case 'message':
            message(what.message, what.dataText);
            break;
          case 'membership':
            events?.membership?.(what.change);
            break;
          case 'history-lost':
            events?.historyLost?.();
            break;
          case 'overrun':
            events?.overrun?.();
            break;
          case 'epoch':
            // It only wakes the reader: a new epoch is learnt by asking the feed's position (#adopt).
            break;
        }
      } catch (error) {
        this.#options.report('a subscriber of the store threw', error, 'LISTENER_ERROR');
      }
    }
  }

  /** A method, not a field read: the state changes across the awaits of the loop. */
  #stopped(): boolean {
    return this.#state === 'stopped';
  }

  #passed(epoch: string, position: StreamId): boolean {
    if (this.#state !== 'running') return true;
    if (this.#pastEpochs.includes(epoch)) return true;
    return epoch === this.#epoch && compareStreamIds(this.#last, position) >= 0;
  }

  #release(done: (waiter: Waiter) => boolean): void {
    if (this.#waiters.length === 0) return;
    const waiting: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (done(waiter)) waiter.resolve();
      else waiting.push(waiter);
    }
    this.#waiters = waiting;
  }
}
