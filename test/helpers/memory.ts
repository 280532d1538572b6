import type { TransportMemory } from '../../src/client/index.js';

/** An in-memory stand-in for `localStorage`, for the client's `storage` option. */
export class MapMemory implements TransportMemory {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}
