/**
 * Signals between the processes sharing a store (src/server/shared-state.ts), over Redis pub/sub on
 * `<prefix>:signals`, as JSON. The subscriber connection is made on the first `subscribeSignals`.
 *
 * Pub/sub delivers to those subscribed when the message is published, nothing is kept: right for
 * signals, which concern connections that are open now. A process hears its own signals too, so a
 * publish first waits for this process's subscription to be in place.
 */
import type { Redis } from 'ioredis';
import type { Signal } from '../index.js';
import type { Connections, Report } from './connections.js';

function isSignal(value: unknown): value is Signal {
  if (typeof value !== 'object' || value === null) return false;
  const signal = value as { kind?: unknown; session?: unknown; node?: unknown; frame?: unknown; user?: unknown; born?: unknown };
  if (typeof signal.session !== 'string') return false;
  switch (signal.kind) {
    case 'attached':
      return typeof signal.node === 'string';
    case 'ended':
      return typeof signal.node === 'string' && (signal.born === undefined || typeof signal.born === 'string');
    case 'close':
      return typeof signal.node === 'string' && typeof signal.born === 'string';
    case 'frame':
      return typeof signal.frame === 'object' && signal.frame !== null && typeof (signal.frame as { t?: unknown }).t === 'string';
    case 'user':
      return typeof signal.user === 'object' && signal.user !== null && typeof (signal.user as { id?: unknown }).id === 'string';
    default:
      return false;
  }
}

export class Signals {
  readonly #connections: Connections;
  readonly #channel: string;
  readonly #report: Report;
  readonly #listeners = new Set<(signal: Signal) => void>();
  /** Settles once this process is subscribed; `null` before the first `subscribe`. */
  #subscribed: Promise<void> | null = null;
  #closed = false;

  constructor(connections: Connections, channel: string, report: Report) {
    this.#connections = connections;
    this.#channel = channel;
    this.#report = report;
  }

  async publish(signal: Signal): Promise<void> {
    // Its failure was reported already; the publish still reaches the other processes.
    await this.#subscribed?.catch(() => undefined);
    await this.#connections.main.publish(this.#channel, JSON.stringify(signal));
  }

  subscribe(listener: (signal: Signal) => void): () => void {
    if (this.#closed) return () => undefined;
    const wrapped = (signal: Signal): void => listener(signal);
    this.#listeners.add(wrapped);
    this.#subscribed ??= this.#start(this.#connections.subscriber);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
  }

  #start(subscriber: Redis): Promise<void> {
    subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.#channel) this.#dispatch(text);
    });
    const subscribed = subscriber.subscribe(this.#channel).then(() => undefined);
    subscribed.catch((error: unknown) => this.#report(`subscribing to ${this.#channel} failed`, error));
    return subscribed;
  }

  #dispatch(text: string): void {
    let signal: unknown;
    try {
      signal = JSON.parse(text);
    } catch {
      signal = undefined;
    }
    if (!isSignal(signal)) {
      this.#report(`ignored a message on ${this.#channel} that is not a signal: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`);
      return;
    }
    for (const listener of this.#listeners) {
      try {
        listener(signal);
      } catch (error) {
        this.#report('a signal listener threw', error, 'LISTENER_ERROR');
      }
    }
  }
}
