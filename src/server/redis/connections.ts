/**
 * The store's connections to Redis: one for commands (the client given, or one made from the url), and
 * duplicates made on first use for what holds a connection to itself — the blocking reader of the feed
 * and the pub/sub subscriber of signals. Each one's losses and recoveries are reported in plain words.
 */
import { Redis } from 'ioredis';
import type { ServerErrorCode } from '../index.js';
import { defineScripts } from './commands.js';

/** Reports a problem of the store: a plain message, what caused it, and its code (`STORE_ERROR` unless given). */
export type Report = (message: string, cause?: unknown, code?: ServerErrorCode) => void;

/** What a connection is for, as reports name it. */
type Role = 'commands' | 'blocking reader' | 'signals';

export interface ConnectionOptions {
  readonly url: string | undefined;
  readonly client: Redis | undefined;
  readonly connectTimeout: number;
}

export const DEFAULT_URL = 'redis://localhost:6379';

/** Where Redis is, for messages: never the username or password a url may carry. */
export function describe(url: string | undefined, client: Redis | undefined): string {
  if (client) {
    const { path, host, port, db, tls } = client.options;
    if (path) return path;
    return `${tls ? 'rediss' : 'redis'}://${host ?? 'localhost'}:${port ?? 6379}${db ? `/${db}` : ''}`;
  }
  const given = url ?? DEFAULT_URL;
  try {
    const parsed = new URL(given);
    parsed.username = '';
    parsed.password = '';
    return parsed.href.replace(/\/$/, '');
  } catch {
    // Not a URL (ioredis also takes a bare host or a socket path): drop what precedes an `@`.
    return given.replace(/^.*@/, '');
  }
}

/** Watches one connection's events and reports its outages, once each. */
class Monitor {
  readonly #redis: Redis;
  readonly #role: Role;
  readonly #where: string;
  readonly #report: Report;
  #connected: boolean;
  /** When the last outage began; undefined while connected or before the first connection. */
  #lostAt: number | undefined;
  /** An outage was reported: ioredis reports every failed attempt while it retries, once says enough. */
  #reported = false;
  /** The last error seen since the connection was last ready. */
  lastError: Error | undefined;

  constructor(redis: Redis, role: Role, where: string, report: Report) {
    this.#redis = redis;
    this.#role = role;
    this.#where = where;
    this.#report = report;
    this.#connected = redis.status === 'ready';
    redis.on('ready', this.#onReady).on('close', this.#onClose).on('error', this.#onError);
  }

  detach(): void {
    this.#redis.off('ready', this.#onReady).off('close', this.#onClose).off('error', this.#onError);
  }

  readonly #onReady = (): void => {
    if (this.#lostAt !== undefined) {
      this.#report(`reconnected to Redis at ${this.#where} (${this.#role}) after ${Date.now() - this.#lostAt} ms`);
    }
    this.#connected = true;
    this.#lostAt = undefined;
    this.#reported = false;
    this.lastError = undefined;
  };

  readonly #onClose = (): void => {
    if (!this.#connected) return;
    this.#connected = false;
    this.#lostAt = Date.now();
    this.#reported = true;
    this.#report(`lost the connection to Redis at ${this.#where} (${this.#role}); reconnecting`, this.lastError);
  };

  readonly #onError = (error: Error): void => {
    this.lastError = error;
    if (this.#reported) return;
    this.#reported = true;
    this.#report(`cannot reach Redis at ${this.#where} (${this.#role}): ${error.message}`, error);
  };
}

export class Connections {
  readonly main: Redis;
  /** Where Redis is, for messages. */
  readonly where: string;
  readonly #options: ConnectionOptions;
  readonly #report: Report;
  readonly #owned: Redis[] = [];
  readonly #monitors: Monitor[] = [];
  readonly #mainMonitor: Monitor;
  #reader: Redis | undefined;
  #subscriber: Redis | undefined;

  constructor(options: ConnectionOptions, report: Report) {
    this.#options = options;
    this.#report = report;
    this.where = describe(options.url, options.client);
    if (options.client) {
      this.main = options.client;
    } else {
      this.main = new Redis(options.url ?? DEFAULT_URL, { connectTimeout: options.connectTimeout });
      this.#owned.push(this.main);
    }
    defineScripts(this.main);
    this.#mainMonitor = this.#watch(this.main, 'commands');
  }

  /** The last error the command connection saw while not connected. */
  get lastError(): Error | undefined {
    return this.#mainMonitor.lastError;
  }

  /** The connection of the blocking reader (made on first use). */
  get reader(): Redis {
    this.#reader ??= this.#duplicate('blocking reader');
    return this.#reader;
  }

  /** The connection subscribed to signals (made on first use). */
  get subscriber(): Redis {
    this.#subscriber ??= this.#duplicate('signals');
    return this.#subscriber;
  }

  /**
   * Closes the connections the store made: the command connection once its pending commands are
   * answered (at most `timeout` ms: a stalled Redis must not hold a shutdown), the others at once. A
   * client the application gave is left open.
   */
  async close(timeout: number): Promise<void> {
    for (const monitor of this.#monitors) monitor.detach();
    await Promise.all(
      this.#owned.map(async (redis) => {
        if (redis !== this.main || redis.status !== 'ready') {
          redis.disconnect();
          return;
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)));
        await Promise.race([redis.quit().catch(() => undefined), late]);
        clearTimeout(timer);
        redis.disconnect();
      }),
    );
  }

  #duplicate(role: Role): Redis {
    // Commands wait for the connection rather than fail at once, whatever the given client does.
    const redis = this.main.duplicate({ lazyConnect: false, enableOfflineQueue: true, connectTimeout: this.#options.connectTimeout });
    this.#owned.push(redis);
    defineScripts(redis);
    this.#watch(redis, role);
    return redis;
  }

  #watch(redis: Redis, role: Role): Monitor {
    const monitor = new Monitor(redis, role, this.where, this.#report);
    this.#monitors.push(monitor);
    return monitor;
  }
}
