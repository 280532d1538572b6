/**
 * The seam between a replay and live delivery (docs/PROTOCOL.md §6.3): the live messages of a
 * session's stream that arrive while its link reads the store, held until the replay ends and then
 * placed after it, each once.
 */
import { itemBytes, type QueuedItem } from './encoding.js';

export class ReplaySeam {
  #items: QueuedItem[] = [];
  /** Bytes of the held items on the wire (they count against the link's bound, §12). */
  bytes = 0;

  get length(): number {
    return this.#items.length;
  }

  add(item: QueuedItem): void {
    this.#items.push(item);
    this.bytes += itemBytes(item);
  }

  /**
   * What follows the replay, or null when it cannot be placed yet. Every message of the stream that
   * the last read could see was returned by it, so: a held message up to the last replayed one is a
   * repeat, and one held before the last read began (`mark`, the length then) but not returned lies
   * at or before where the stream continues. Messages held while that read ran, with nothing
   * replayed, cannot be placed: they stay held (alone) and the caller reads once more.
   */
  place(lastReplayed: string | undefined, mark: number): readonly QueuedItem[] | null {
    const items = this.#items;
    if (lastReplayed !== undefined) {
      const index = items.findIndex((item) => item.id === lastReplayed);
      // Not found: the last replayed message was appended before the link subscribed, so every held
      // one came after it.
      return index >= 0 ? items.slice(index + 1) : items;
    }
    const unplaced = items.slice(mark);
    if (unplaced.length === 0) return unplaced;
    this.#items = unplaced;
    this.bytes = 0;
    for (const item of unplaced) this.bytes += itemBytes(item);
    return null;
  }
}
