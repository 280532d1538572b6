/** A listener of one event. */
export type Listener<P> = (payload: P) => void;

/**
 * A tiny typed event emitter: an event map type gives every event one payload object.
 *
 * A listener that throws does not stop the others and does not break the caller: its error is thrown
 * again in a microtask, where the host reports it as uncaught.
 */
export class Emitter<E> {
  // Listener lists are replaced, never changed in place: an emit in progress keeps the list it started with.
  #l = new Map<keyof E, Listener<never>[]>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    this.#l.set(event, [...this.#get(event), listener]);
    return () => this.off(event, listener);
  }

  /** Adds a listener for the next event only; returns the function that removes it. */
  once<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Removes a listener added with {@link Emitter.on}. */
  off<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    this.#l.set(event, this.#get(event).filter((l) => l !== listener));
  }

  /** Calls every listener of `event` with `payload`, in the order they were added. */
  emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const listener of this.#get(event)) {
      try {
        listener(payload);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #get<K extends keyof E>(event: K): Listener<E[K]>[] {
    return (this.#l.get(event) ?? []) as Listener<E[K]>[];
  }
}
