/**
 * The seam between a replay and live delivery (PROTOCOL.md §6.3): which live messages held during a
 * replay follow it, and when the replay must read once more.
 */
import { describe, expect, it } from 'vitest';
import { textQueueItem, type QueuedItem } from '../../src/server/encoding.js';
import { ReplaySeam } from '../../src/server/replay-seam.js';

const live = (id: string) => ({ ...textQueueItem(`{"t":"msg","id":"${id}","d":0}`), id });

function seamOf(...ids: string[]): ReplaySeam {
  const seam = new ReplaySeam();
  for (const id of ids) seam.add(live(id));
  return seam;
}

const idsOf = (items: readonly QueuedItem[] | null): (string | undefined)[] | null => items && items.map((item) => item.id);

describe('ReplaySeam', () => {
  it('drops what the replay already gave, up to its last message, and keeps the rest in order', () => {
    expect(idsOf(seamOf('e-3', 'e-4', 'e-5').place('e-4', 0))).toEqual(['e-5']);
  });

  it('keeps every held message when the last replayed one came before any of them', () => {
    expect(idsOf(seamOf('e-7', 'e-8').place('e-6', 2))).toEqual(['e-7', 'e-8']);
  });

  it('places messages held before a read that returned nothing, and asks for another read for those held during it', () => {
    expect(idsOf(seamOf('e-1', 'e-2').place(undefined, 2))).toEqual([]);
    const seam = seamOf('e-1', 'e-2', 'e-3');
    expect(seam.place(undefined, 1)).toBeNull();
    expect(seam.length).toBe(2);
    expect(seam.bytes).toBe(2 * live('e-2').bytes);
    expect(idsOf(seam.place('e-3', 0))).toEqual([]);
  });
});
