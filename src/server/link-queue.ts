/**
 * What one connection has queued and not yet written, and how it is cut into writes
 * (docs/PROTOCOL.md §4.1): consecutive text items join into one batch up to {@link MAX_BATCH_CHARS};
 * a binary message frame goes alone. It also says when it holds more than a link that cannot write
 * may keep (§12.1).
 */
import { itemBytes, type QueuedItem } from './encoding.js';

/** A batch is split before it grows past this many characters (§4.1: never past the receiver's limit). */
export const MAX_BATCH_CHARS = 256 * 1024;
/**
 * …and a poll's answer past this many: each answer costs its client a request, so a burst leaves in
 * fewer, larger answers (about a fifth more messages a second in a 20,000-message push in Node). A
 * stream is better served by the smaller batches above, which its client reads as they come. Never
 * past the receiver's limit either: the reference client reads 4 MiB by default (§4.1.size).
 */
export const MAX_POLL_BATCH_CHARS = 1024 * 1024;

/**
 * §12.1: a link that cannot write (long polling between two polls) keeps at most this much queued.
 * Past it the queue is dropped and the link parks: its next poll reads the stream from the store
 * again, from where the client stands. So an idle client costs the same whatever is broadcast.
 */
export const PARK_AFTER_BYTES = 32 * 1024;
/** …or this many queued items (each a reference to a shared broadcast encoding). */
export const PARK_AFTER_ITEMS = 64;

/** No bound on a batch's bytes past {@link MAX_BATCH_CHARS} (a client that stated none, §3.4), as a small integer. */
const NO_BYTE_BOUND = 2 ** 30;

/**
 * The next write: a text batch (with the id of its last message, if any), the same as its UTF-8
 * bytes (see {@link LinkQueue.take}), or one binary frame.
 */
export type NextWrite =
  | { readonly kind: 'batch'; readonly text: string; readonly lastMessageId: string | undefined }
  | { readonly kind: 'batch-bytes'; readonly bytes: Uint8Array; readonly lastMessageId: string | undefined }
  | (QueuedItem & { readonly kind: 'binary' });

export class LinkQueue {
  /**
   * Queued items are `#items[#head…]`: taking from the front moves `#head`, nothing is copied. Null
   * while empty, which an idle connection's queue nearly always is.
   */
  #items: QueuedItem[] | null = null;
  #head = 0;
  /** Bytes of the queued items on the wire (§12 bounds bytes). */
  bytes = 0;
  /** The largest batch its client reads, in bytes (§4.1.size): a batch stops before it grows past it. */
  readonly #maxBytes: number;

  constructor(maxBytes = NO_BYTE_BOUND) {
    this.#maxBytes = maxBytes;
  }

  get length(): number {
    return this.#items === null ? 0 : this.#items.length - this.#head;
  }

  /** Whether it holds more than a link that cannot write may keep (see {@link PARK_AFTER_BYTES}). */
  get pastIdleBound(): boolean {
    return this.length > PARK_AFTER_ITEMS || this.bytes > PARK_AFTER_BYTES;
  }

  push(item: QueuedItem): void {
    (this.#items ??= []).push(item);
    this.bytes += itemBytes(item);
  }

  /** Puts `items` ahead of everything queued (the hello, §4). */
  unshift(items: readonly QueuedItem[]): void {
    this.#items = this.#items === null ? [...items] : [...items, ...this.#items.slice(this.#head)];
    this.#head = 0;
    for (const item of items) this.bytes += itemBytes(item);
  }

  /** The item at the front, the next to be taken. */
  first(): QueuedItem | undefined {
    return this.#items?.[this.#head];
  }

  clear(): void {
    this.#items = null;
    this.#head = 0;
    this.bytes = 0;
  }

  /**
   * Takes the next write off the front; undefined when nothing is queued. With `asBytes`, a batch of
   * more than one frame comes as its UTF-8 bytes, each frame encoded straight into one buffer: cheaper
   * than joining a string of them that the socket then encodes (about 0.3 against 0.7–1.1 µs per
   * frame of ~130 B in a batch of 1,500, measured in Node 20). A batch of one comes as text the first
   * time its item is taken, and as bytes shared by every queue that takes it after (a broadcast). A
   * batch stops before it grows past the client's limit (§4.1.size); a frame larger than that goes
   * alone, for the client to skip, and past `maxChars` characters.
   */
  take(asBytes = false, maxChars = MAX_BATCH_CHARS): NextWrite | undefined {
    const items = this.#items;
    if (items === null) return undefined;
    const first = items[this.#head];
    if (first === undefined) return undefined;
    if (first.kind === 'binary') {
      this.#advance(items, 1, first.frame.length);
      return first;
    }
    const from = this.#head;
    let index = from;
    let chars = 2;
    let bytes = 0;
    let lastMessageId: string | undefined;
    for (; index < items.length; index++) {
      const next = items[index]!;
      // `bytes` and the brackets and commas so far, and this item with its comma: the batch's size if it joins.
      if (next.kind !== 'text' || (index > from && (chars + next.text.length + 1 > maxChars || bytes + next.bytes + (index - from) + 2 > this.#maxBytes))) break;
      chars += next.text.length + 1;
      bytes += next.bytes;
      if (next.id !== undefined) lastMessageId = next.id;
    }
    const count = index - from;
    this.#advance(items, count, bytes);
    if (count === 1) {
      if (asBytes && first.alone !== undefined) {
        // A second connection writes this item alone (a broadcast, sent one per tick): it and the
        // ones after it share one buffer, rather than each socket encoding the string again. Not
        // from Node's pool: an item a replay cache keeps would keep a whole pool chunk alive. `null`:
        // its count is high, the text serves (below).
        if (first.aloneBytes === undefined) first.aloneBytes = encodeBatchBytes([first], bytes, Buffer.allocUnsafeSlow) ?? null;
        if (first.aloneBytes) return { kind: 'batch-bytes', bytes: first.aloneBytes, lastMessageId };
      }
      // Joined from pieces, so that the text is one flat string (see below).
      first.alone ??= ['[', first.text, ']'].join('');
      return { kind: 'batch', text: first.alone, lastMessageId };
    }
    // The loop took text items only.
    const batch = items.slice(from, index) as TextItem[];
    if (asBytes) {
      const encoded = encodeBatchBytes(batch, bytes);
      if (encoded) return { kind: 'batch-bytes', bytes: encoded, lastMessageId };
    }
    const parts = batch.map((item) => item.text);
    // The brackets join the first and last frames rather than the joined text: `[` + text + `]` would
    // be a string of three pieces that every later reader (the byte count, the socket) copies into one.
    parts[0] = `[${parts[0]!}`;
    parts[parts.length - 1] += ']';
    return { kind: 'batch', text: parts.join(','), lastMessageId };
  }

  /** Moves past `count` items of `items` (the queued ones) that went out as `bytes`. */
  #advance(items: QueuedItem[], count: number, bytes: number): void {
    this.#head += count;
    this.bytes -= bytes;
    if (this.#head === items.length) {
      // Emptied: the usual case, since a stream writes all it holds at once.
      this.#items = null;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      // Compact now and then instead of shifting on every write: amortised O(1).
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** A text item of the queue. */
type TextItem = QueuedItem & { readonly kind: 'text' };

/**
 * The text items of `batch` as the UTF-8 bytes of a JSON array, `[a,b,…]`, given `bytes`, the sum of
 * their counted UTF-8 lengths. A count is exact or high, never low (`utf8Length` is exact, and JSON
 * escapes only into ASCII, `encoding.ts`), so every item fits; one counted high (a lone surrogate
 * that JSON escaped) leaves the batch to the string join (undefined).
 */
function encodeBatchBytes(batch: readonly TextItem[], bytes: number, allocate = Buffer.allocUnsafe): Uint8Array | undefined {
  const frame = allocate(bytes + batch.length + 1);
  let at = 0;
  frame[at++] = 0x5b; // [
  for (let index = 0; index < batch.length; index++) {
    if (index > 0) frame[at++] = 0x2c; // ,
    const item = batch[index]!;
    const written = frame.write(item.text, at);
    if (written !== item.bytes) return undefined;
    at += written;
  }
  frame[at++] = 0x5d; // ]
  return frame;
}
