/**
 * The bounded outbox of upstream messages (PROTOCOL.md §8, §12, §13.2): numbers messages, keeps them
 * until acknowledged, resends them after a reconnection, and batches what one tick produced.
 */
import {
  MAX_DATA_DEPTH,
  bytesToBase64,
  encodeBinaryFrame,
  joinEncoded,
  messageFrameText,
  nestsDeeperThan,
  utf8Length,
} from '../protocol/index.js';
import { UnbrokenError } from './errors.js';

interface Entry {
  /** Sequence number in the session. */
  s: number;
  /** JSON text of the data, encoded once. */
  j?: string;
  /** Bytes of binary data, copied at `send()`. */
  b?: Uint8Array;
  /** Base64 of `b`, made once when a text transport needs it. */
  x?: string;
  /**
   * UTF-8 bytes of `j` past its UTF-16 units, counted once: the rest of a message frame is ASCII, so
   * its bytes are its length plus these (base64 has none).
   */
  extraBytes: number;
  resolve(): void;
  reject(error: UnbrokenError): void;
}

/** One unit to write: a text batch, or a binary message frame. */
export type Wire = string | ArrayBuffer;

/**
 * The outbox of one client. Each entry keeps its encoded data, so writing it again never serialises
 * the value again; only its sequence number is spliced in.
 */
export class Outbox {
  /** Unacknowledged entries, oldest first. */
  #queue: Entry[] = [];
  /** The last sequence number assigned. */
  #seq = 0;
  /** How many entries of `#queue` were written on the current link. */
  #written = 0;
  /** `hello.max`; 0 until the first `hello`. */
  #max = 0;
  /** The current link takes binary frames. */
  #binary = false;

  /** Most entries held at once. */
  #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * Queues `data` (a JSON value, or bytes as `ArrayBuffer` / `ArrayBufferView`); the promise settles on
   * its acknowledgement. Rejects at once with `OUTBOX_FULL`, `INVALID_DATA` or `MESSAGE_TOO_LARGE`.
   */
  add(data: unknown): Promise<void> {
    const view = ArrayBuffer.isView(data) ? data : data instanceof ArrayBuffer ? new DataView(data) : undefined;
    const e = { s: this.#seq + 1, extraBytes: 0 } as Entry;
    let cause: unknown;
    if (view) e.b = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
    else {
      try {
        e.j = JSON.stringify(data);
        if (e.j !== undefined) e.extraBytes = utf8Length(e.j) - e.j.length;
      } catch (error) {
        cause = error;
      }
    }
    const refusal =
      this.#queue.length >= this.#limit
        ? new UnbrokenError('OUTBOX_FULL', `the outbox holds ${this.#limit} messages`)
        : !e.b && e.j === undefined
          ? new UnbrokenError('INVALID_DATA', 'expects a JSON value or bytes', cause)
          : !e.b && nestsDeeperThan(e.j!, MAX_DATA_DEPTH)
            ? // The server would refuse the batch, and the client would send it again forever (§4.4).
              new UnbrokenError('INVALID_DATA', `expects JSON nested at most ${MAX_DATA_DEPTH} levels deep`)
            : this.#tooLarge(e);
    if (refusal) return Promise.reject(refusal);
    this.#seq = e.s;
    return new Promise((resolve, reject) => {
      e.resolve = resolve;
      e.reject = reject;
      this.#queue.push(e);
    });
  }

  /**
   * Resolves every message with a sequence number ≤ `s` (cumulative acknowledgement). Returns whether
   * every message written on the current link is acknowledged now.
   */
  ack(s: number): boolean {
    for (let e = this.#queue[0]; e && e.s <= s; e = this.#queue[0]) {
      this.#queue.shift();
      e.resolve();
      if (this.#written) this.#written--;
    }
    return !this.#written;
  }

  /**
   * A new link said `hello`: resolves what `ack` covers, refuses what no longer fits `max` on this
   * link, and numbers the rest again after `ack`, or from 1 when the session is new (§8). Nothing
   * after `ack` was processed, so renumbering it is safe. Everything left is written again.
   */
  hello(ack: number, resumed: boolean, max: number, binary: boolean): void {
    this.#max = max;
    this.#binary = binary;
    this.ack(ack);
    this.#seq = resumed ? ack : 0;
    this.#written = 0;
    this.#queue = this.#queue.filter((e) => {
      e.s = this.#seq + 1;
      const refusal = this.#tooLarge(e);
      if (refusal) e.reject(refusal);
      else this.#seq++;
      return !refusal;
    });
  }

  /**
   * Takes what was not written on this link yet, as units to write in order: JSON messages joined in
   * text batches no larger than `max`, binary messages as binary frames when the link takes them.
   */
  take(): Wire[] {
    const out: Wire[] = [];
    let batch: string[] = [];
    let length = 1;
    const cut = (): void => {
      if (batch.length) out.push(joinEncoded(batch));
      batch = [];
      length = 1;
    };
    for (const e of this.#queue.slice(this.#written)) {
      if (e.b && this.#binary) {
        cut();
        // The frame is a fresh array over a buffer of its own size: its buffer is the frame.
        out.push(encodeBinaryFrame({ t: 'msg', s: e.s }, e.b).buffer as ArrayBuffer);
      } else {
        const text = this.#text(e);
        // Each frame adds itself and one separator (`,` or the closing `]`) to the batch.
        const add = text.length + e.extraBytes + 1;
        if (length + add > this.#max) cut();
        batch.push(text);
        length += add;
      }
    }
    cut();
    this.#written = this.#queue.length;
    return out;
  }

  /** Rejects every message with `error` and empties the outbox. */
  fail(error: UnbrokenError): void {
    for (const e of this.#queue) e.reject(error);
    this.#queue = [];
  }

  #text(e: Entry): string {
    return e.b ? messageFrameText({ s: e.s }, (e.x ??= bytesToBase64(e.b)), true) : messageFrameText({ s: e.s }, e.j!);
  }

  /** `MESSAGE_TOO_LARGE` when `e`, alone in a batch, exceeds `max` on the current link (§12). */
  #tooLarge(e: Entry): UnbrokenError | undefined {
    if (!this.#max) return undefined;
    // A binary frame: 4 length bytes, an ASCII header, the bytes; a text batch: the frame in `[` `]`.
    const size = e.b && this.#binary ? 4 + `{"t":"msg","s":${e.s}}`.length + e.b.length : this.#text(e).length + e.extraBytes + 2;
    return size > this.#max
      ? new UnbrokenError('MESSAGE_TOO_LARGE', `a message of ${size} bytes exceeds hello.max, ${this.#max}`)
      : undefined;
  }
}
