/**
 * What a connection queues, encoded (docs/PROTOCOL.md §4.3): the queued item and its byte count, and
 * the encodings of stored messages, made once per message and kind and shared by every connection
 * (broadcast fan-out).
 */
import {
  MAX_DATA_DEPTH,
  bytesToBase64,
  encodeBinaryFrame,
  messageFrameText,
  nestsDeeperThan,
  isValidEventName,
  type Payload,
} from '../protocol/index.js';
import { UnbrokenTypeError } from './errors.js';
import type { StoredMessage } from './store.js';

/** A message or control frame waiting in a connection's queue, encoded for that connection. */
export type QueuedItem =
  /**
   * `bytes`: the UTF-8 length of `text`, counted once (§12 bounds bytes, not UTF-16 units). `alone`:
   * the item as a batch of its own (`[text]`), made by the first connection that writes it so and
   * shared by the others — a broadcast sent one per tick reaches every connection that way;
   * `aloneBytes`: the same as UTF-8 bytes, made by the second connection that takes it (`link-queue.ts`),
   * `null` when its byte count is high and the text serves.
   */
  | { readonly kind: 'text'; readonly text: string; readonly bytes: number; readonly id: string | undefined; alone: string | undefined; aloneBytes: Uint8Array | null | undefined }
  | { readonly kind: 'binary'; readonly frame: Uint8Array; readonly id: string };

/**
 * Byte length of a string's UTF-8 encoding. The server counts every frame it queues: Node's native
 * count beats the protocol's portable loop (src/protocol), which showed in profiles of a push.
 */
function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** A text item of a control frame. */
export function textQueueItem(text: string): QueuedItem & { readonly kind: 'text' } {
  // Every text item has the same fields, `id` included, so the code that reads them sees one shape.
  return { kind: 'text', text, bytes: utf8Length(text), id: undefined, alone: undefined, aloneBytes: undefined };
}

/** The UTF-8 bytes of `text` past one per UTF-16 unit. */
function extraUtf8(text: string): number {
  return utf8Length(text) - text.length;
}

/** The bytes an item takes on the wire. */
export function itemBytes(item: QueuedItem): number {
  return item.kind === 'text' ? item.bytes : item.frame.length;
}

/**
 * The encodings of one stored message, each made when a connection first needs it and then shared by
 * every connection (broadcast fan-out), with its byte count, also counted once.
 */
export class MessageEncodings {
  readonly message: StoredMessage;
  #text: (QueuedItem & { readonly kind: 'text' }) | undefined;
  #binary: (QueuedItem & { readonly kind: 'binary' }) | undefined;

  /** `dataText`: the JSON text of the message's data when it was serialised already (at the send). */
  constructor(message: StoredMessage, dataText?: string) {
    this.message = message;
    if (dataText !== undefined) this.#text = textItem(message, dataText);
  }

  /**
   * The message as a connection queues it: a binary frame for bytes on a connection that takes them,
   * else a text frame. Throws when the data cannot be encoded (changed by the application after it
   * was sent).
   */
  item(binaryFrames: boolean): QueuedItem {
    const { data } = this.message;
    if (data instanceof Uint8Array) {
      if (binaryFrames) {
        return (this.#binary ??= { kind: 'binary', frame: encodeBinaryFrame(messageHeader(this.message), data), id: this.message.id });
      }
      return (this.#text ??= textItem(this.message, bytesToBase64(data), true));
    }
    return (this.#text ??= textItem(this.message, JSON.stringify(data)));
  }
}

/**
 * Checks that `data` can be sent and returns its JSON text (undefined for bytes). The text is kept
 * for the message's encoding, so a message is serialised once, however many sessions it reaches.
 */
export function encodeData(data: Payload): string | undefined {
  if (data instanceof Uint8Array) return undefined;
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) {
    throw new UnbrokenTypeError('INVALID_DATA', 'expects data to be JSON-serialisable or a Uint8Array/Buffer, got another binary type');
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (error) {
    throw new UnbrokenTypeError('INVALID_DATA', `expects data to be JSON-serialisable: ${String(error)}`, { cause: error });
  }
  if (text === undefined) {
    throw new UnbrokenTypeError('INVALID_DATA', `expects data to be JSON-serialisable or a Uint8Array/Buffer, got ${typeof data}`);
  }
  if (nestsDeeperThan(text, MAX_DATA_DEPTH)) {
    // A client refuses such a batch (§4.4): it would reconnect and be refused again, forever.
    throw new UnbrokenTypeError('INVALID_DATA', `expects data nested at most ${MAX_DATA_DEPTH} levels deep`);
  }
  return text;
}

/** A message frame queued as text, built around data that is already JSON or base64 text (§4.3). */
function textItem(message: StoredMessage, dataText: string, binary = false): QueuedItem & { readonly kind: 'text' } {
  const text = messageFrameText(message, dataText, binary);
  // Counted over the parts, not the frame: the frame is a string joined from them, which a count
  // would first copy into one. JSON escapes only into ASCII, so the parts' bytes past their length
  // are the frame's: exact, or high where JSON escaped a lone surrogate, never low — the link queue
  // encodes a batch to bytes by these counts (`link-queue.ts`).
  const { id, event } = message;
  const bytes = text.length + extraUtf8(dataText) + extraUtf8(id) + (event === undefined ? 0 : extraUtf8(event));
  return { kind: 'text', text, bytes, id, alone: undefined, aloneBytes: undefined };
}

function messageHeader(message: StoredMessage): { t: 'msg'; id: string; e?: string } {
  return message.event === undefined ? { t: 'msg', id: message.id } : { t: 'msg', id: message.id, e: message.event };
}

/**
 * The encodings of stored messages read back from the store (replays), by message, while the message
 * is referenced: the clients that resume together share them. Live delivery needs no entry here: it
 * encodes each message once as it is dispatched (see `SessionHub`).
 */
export class EncodingCache {
  readonly #encodings = new WeakMap<StoredMessage, MessageEncodings>();

  /**
   * The encodings of a stored message, made once per message that several sessions read. A message
   * to one session is read by its own connections only: an entry would keep its encoding for as
   * long as the store keeps the message, to be reused by nobody.
   */
  of(message: StoredMessage): MessageEncodings {
    if (message.to.kind === 'session') return new MessageEncodings(message);
    let encodings = this.#encodings.get(message);
    if (!encodings) this.#encodings.set(message, (encodings = new MessageEncodings(message)));
    return encodings;
  }
}

/**
 * Checks what `broadcast()`, `session.send()` and `to().send()` were given, and returns its JSON
 * text (`undefined` for bytes).
 * @throws {UnbrokenTypeError} `INVALID_EVENT_NAME` for an event name that breaks §4.2,
 * `INVALID_DATA` for data that cannot be encoded or that no connection may buffer.
 */
export function checkOutgoing(data: Payload, event: string | undefined, maxBufferedBytes: number): string | undefined {
  if (event !== undefined && (typeof event !== 'string' || !isValidEventName(event))) {
    throw new UnbrokenTypeError(
      'INVALID_EVENT_NAME',
      `expects an event name of 1–128 characters without CR, LF or NUL, got ${JSON.stringify(event)}`,
    );
  }
  const text = encodeData(data);
  // A message no connection may buffer would cut every client it reaches with BACKPRESSURE, and
  // again on every resume: refuse it here instead (§12). Base64 makes bytes a third larger on HTTP.
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most texts need no count at all.
  const size =
    text === undefined
      ? Math.ceil(((data as Uint8Array).byteLength * 4) / 3)
      : text.length * 3 <= maxBufferedBytes
        ? 0
        : utf8Length(text);
  if (size > maxBufferedBytes) {
    throw new UnbrokenTypeError('INVALID_DATA', `expects data of at most maxBufferedBytes (${maxBufferedBytes} bytes) once encoded, got ${size}`);
  }
  return text;
}
