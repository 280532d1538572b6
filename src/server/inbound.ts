/**
 * A session's upstream batches taken in at its message rate (docs/PROTOCOL.md §12.1.slow). A batch
 * with more messages than the session's budget holds (`messagesPerSecond`, a second's worth) is
 * handed over in slices of that many, each once the budget is out of debt; batches that arrive
 * meanwhile wait behind it, in order (§8). Without this, one batch of `maxMessageSize` bytes — tens of
 * thousands of minimal messages — went to the application in one turn of the event loop, holding up
 * every other client for a fifth of a second, and spent at once what the rate allows in minutes. A
 * batch within the budget, with nothing waiting, is handed over at once in the caller's turn, as
 * before: the common case costs nothing more.
 */
import type { UpstreamFrame } from './connection.js';

/** Hands one slice over; `last` for the batch's last. A promise when the hand-over waits on the store. */
export type SliceStep = (slice: readonly UpstreamFrame[], last: boolean) => unknown;

/** A batch in line: its slices still to hand over, how, and whether anybody still waits for them. */
interface Waiting {
  readonly slices: UpstreamFrame[][];
  readonly step: SliceStep;
  /** False once its link or request went away: its slices are dropped, and its client sends them again. */
  readonly live: () => boolean;
}

/** `frames` cut after every `perSlice` messages; the other frames (pings, `auth`, `bye`) keep their place. */
export function slicesOf(frames: readonly UpstreamFrame[], perSlice: number): UpstreamFrame[][] {
  const slices: UpstreamFrame[][] = [];
  let slice: UpstreamFrame[] = [];
  let messages = 0;
  for (const frame of frames) {
    if (frame.t === 'msg' && messages === perSlice) {
      slices.push(slice);
      slice = [];
      messages = 0;
    }
    slice.push(frame);
    if (frame.t === 'msg') messages++;
  }
  slices.push(slice);
  return slices;
}

export class InboundLine {
  readonly #waiting: Waiting[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;

  /**
   * @param perSlice messages per slice: the session's budget, `messagesPerSecond`.
   * @param debt ms until the session's budget is out of debt (the slices before spent it).
   */
  constructor(
    readonly perSlice: number,
    readonly debt: () => number,
  ) {}

  /** Ms the messages in line take at the rate, past the budget's debt: how long the client should wait. */
  behind(): number {
    let messages = 0;
    for (const waiting of this.#waiting) for (const slice of waiting.slices) for (const frame of slice) if (frame.t === 'msg') messages++;
    return Math.ceil((messages * 1000) / this.perSlice);
  }

  /** Takes in a batch: its first slice now when nothing waits, the rest as the budget allows. */
  take(frames: readonly UpstreamFrame[], step: SliceStep, live: () => boolean): void {
    const slices = this.perSlice === Infinity ? [frames as UpstreamFrame[]] : slicesOf(frames, this.perSlice);
    const first = this.#waiting.length === 0 ? slices.shift() : undefined;
    // In line before the first slice runs, so that its step sees how much is behind it.
    if (slices.length > 0) this.#waiting.push({ slices, step, live });
    if (first) step(first, slices.length === 0);
    this.#schedule();
  }

  /** Drops what waits (the session ended). */
  clear(): void {
    this.#waiting.length = 0;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#timer !== null || this.#waiting.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#next();
    }, this.debt());
    this.#timer.unref?.();
  }

  #next(): void {
    while (this.#waiting.length > 0 && !this.#waiting[0]!.live()) this.#waiting.shift();
    const head = this.#waiting[0];
    if (!head) return;
    const slice = head.slices.shift()!;
    if (head.slices.length === 0) this.#waiting.shift();
    head.step(slice, head.slices.length === 0);
    this.#schedule();
  }
}
