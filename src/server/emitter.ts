/**
 * A typed event emitter. `on()` returns its own unsubscribe function, and a listener that throws
 * never stops the others: its exception goes to `onListenerError`, as does the rejection of an
 * `async` listener's promise, which Node would otherwise take as an unhandled rejection that ends
 * the process.
 */

import { types } from 'node:util';

/** Event name → the arguments its listeners receive. */
export type EventMap = { [event: string]: unknown[] };

export type Listener<Args extends unknown[]> = (...args: Args) => void;

/** How listeners are stored: each is only ever called with the arguments of its own event. */
type Stored = (...args: never[]) => void;

/** One listener of an event, and whether it is a `once` listener. */
interface Entry {
  readonly listener: Stored;
  readonly once: boolean;
}

export class Emitter<Events extends EventMap> {
  /**
   * Per event, its listeners in the order they were first added. A list is replaced, never changed in
   * place: an emit in progress goes on with the list it started with, and an emit copies nothing (it
   * runs for every message a client sends).
   */
  readonly #listeners = new Map<keyof Events, readonly Entry[]>();
  readonly #onListenerError: (error: unknown, event: keyof Events) => void;

  constructor(onListenerError: (error: unknown, event: keyof Events) => void) {
    this.#onListenerError = onListenerError;
  }

  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    return this.#add(event, listener, false);
  }

  once<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    return this.#add(event, listener, true);
  }

  off<E extends keyof Events>(event: E, listener: Listener<Events[E]>): void {
    this.#remove(event, listener as unknown as Stored);
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls every listener of `event` in the order they were added. */
  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    const entries = this.#listeners.get(event);
    if (entries === undefined) return;
    for (const { listener, once } of entries) {
      // Removed before it runs, as a `once` listener that throws or emits again must not run twice.
      if (once) this.#remove(event, listener);
      try {
        const result: unknown = (listener as unknown as Listener<Events[E]>)(...args);
        // A native promise only (what an `async` listener returns), also of another realm (`vm`),
        // which `instanceof Promise` misses: calling `then` on another thenable may start it (a
        // query builder runs its query when awaited).
        if (types.isPromise(result)) result.catch((error: unknown) => this.#onListenerError(error, event));
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
  }

  #add<E extends keyof Events>(event: E, listener: Listener<Events[E]>, once: boolean): () => void {
    // Stored under a wider type; `emit` only ever calls it with Events[E].
    const stored = listener as unknown as Stored;
    const next = [...(this.#listeners.get(event) ?? [])];
    const at = next.findIndex((entry) => entry.listener === stored);
    // Adding a listener twice keeps one, in its first place, with the last call's `once`.
    next[at < 0 ? next.length : at] = { listener: stored, once };
    this.#listeners.set(event, next);
    return () => this.off(event, listener);
  }

  #remove(event: keyof Events, listener: Stored): void {
    const entries = this.#listeners.get(event);
    if (entries === undefined) return;
    const next = entries.filter((entry) => entry.listener !== listener);
    if (next.length === 0) this.#listeners.delete(event);
    else if (next.length !== entries.length) this.#listeners.set(event, next);
  }
}
