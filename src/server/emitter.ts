/**
 * A typed event emitter. `on()` returns its own unsubscribe function, and a listener that throws
 * never stops the others: its exception goes to `onListenerError`.
 */

/** Event name → the arguments its listeners receive. */
export type EventMap = { [event: string]: unknown[] };

export type Listener<Args extends unknown[]> = (...args: Args) => void;

/** How listeners are stored: each is only ever called with the arguments of its own event. */
type Stored = (...args: never[]) => void;

export class Emitter<Events extends EventMap> {
  /** Per event: listener → whether it is a `once` listener. Adding a listener twice keeps one. */
  readonly #listeners = new Map<keyof Events, Map<Stored, boolean>>();
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
    this.#listeners.get(event)?.delete(listener as unknown as Stored);
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` in the order they were added. */
  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    const listeners = this.#listeners.get(event);
    if (!listeners) return;
    for (const [listener, once] of [...listeners]) {
      if (once) listeners.delete(listener);
      try {
        (listener as unknown as Listener<Events[E]>)(...args);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
  }

  #add<E extends keyof Events>(event: E, listener: Listener<Events[E]>, once: boolean): () => void {
    let listeners = this.#listeners.get(event);
    if (!listeners) this.#listeners.set(event, (listeners = new Map()));
    // Stored under a wider type; `emit` only ever calls it with Events[E].
    listeners.set(listener as unknown as Stored, once);
    return () => this.off(event, listener);
  }
}
