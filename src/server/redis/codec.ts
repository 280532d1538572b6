/**
 * The entries of the feed stream. Two kinds, told apart by their fields:
 *
 * - a message: `e` epoch · `t` address (JSON) · `n` event name (only when there is one) · `k` kind of
 *   data (`j` JSON text, `b` bytes) · `d` the data. Bytes are stored as they are (Redis strings are
 *   binary): no base64, and replies that carry messages are read as Buffers for that reason.
 * - a membership change: `e` epoch · `s` session · `r` room · `m` `j` for a join, `l` for a leave.
 *   Written by the join, leave and end-of-session scripts, so that the blocking reader tells
 *   subscribers of memberships in append order with the messages (§6.5).
 * - the beginning of an epoch: `e` epoch · `b` empty. Written when a script creates the epoch, so
 *   that a blocking reader meets an entry of the new epoch at once (it carries nothing else).
 *
 * Only the reader sees the last two kinds: a read takes message ids from the index streams, which
 * list messages alone.
 *
 * The epoch is in every entry so that the blocking reader, which sees nothing but the feed, tells at
 * once an entry of a new epoch (the history was lost and begun again) from one of its own.
 */
import type { Address, MembershipChange, NewMessage, Payload, StoredMessage } from '../index.js';
import { formatId } from './ids.js';

/** A feed entry decoded: a message, or a change of membership. */
export type FeedEntry =
  /** `dataText`: the JSON text of the message's data as stored (undefined for bytes). */
  | { readonly kind: 'message'; readonly epoch: string; readonly message: StoredMessage; readonly dataText: string | undefined }
  | { readonly kind: 'membership'; readonly epoch: string; readonly change: MembershipChange }
  | { readonly kind: 'epoch'; readonly epoch: string };

/** The fields of a feed entry after the epoch, as the append script takes them (ARGV). */
export interface EncodedMessage {
  readonly to: string;
  /** The event name, `''` for none (a valid event name is never empty, §4.2). */
  readonly event: string;
  readonly kind: 'j' | 'b';
  readonly data: string | Buffer;
}

/** A stream entry as ioredis returns it with Buffer replies: `[id, [field, value, …]]`. */
export type RawEntry = [id: Buffer, fields: Buffer[]];

/** `dataText`: `JSON.stringify(message.data)` when the caller made it already. */
export function encodeMessage(message: NewMessage, dataText?: string): EncodedMessage {
  const { data } = message;
  const binary = data instanceof Uint8Array;
  return {
    to: addressText(message.to),
    event: message.event ?? '',
    kind: binary ? 'b' : 'j',
    data: binary ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : (dataText ?? JSON.stringify(data)),
  };
}

const ALL_TEXT = JSON.stringify({ kind: 'all' } satisfies Address);

function addressText(to: Address): string {
  return to.kind === 'all' ? ALL_TEXT : JSON.stringify(to);
}

/**
 * The address of a stored `t` field. Messages to everyone, the most frequent by far, share one
 * object (addresses are read-only).
 */
function addressOf(field: Buffer): unknown {
  const text = field.toString('utf8');
  return text === ALL_TEXT ? ALL : JSON.parse(text);
}
const ALL: Address = Object.freeze({ kind: 'all' });

/** The message as `append` returns it: a private copy of bytes, as {@link MemoryStore} keeps. */
export function storedMessage(id: string, message: NewMessage): StoredMessage {
  const data: Payload = message.data instanceof Uint8Array ? new Uint8Array(message.data) : message.data;
  return message.event === undefined ? { id, to: message.to, data } : { id, to: message.to, event: message.event, data };
}

function isAddress(value: unknown): value is Address {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { kind?: unknown; session?: unknown; rooms?: unknown };
  switch (candidate.kind) {
    case 'all':
      return true;
    case 'session':
      return typeof candidate.session === 'string';
    case 'rooms':
      return Array.isArray(candidate.rooms) && candidate.rooms.every((room) => typeof room === 'string');
    default:
      return false;
  }
}

/** The fields of an entry by their one-letter names (above); a field this store does not write is skipped. */
interface Fields {
  e?: Buffer;
  b?: Buffer;
  t?: Buffer;
  n?: Buffer;
  k?: Buffer;
  d?: Buffer;
  s?: Buffer;
  r?: Buffer;
  m?: Buffer;
}
const FIELD_NAMES = new Set<string>(['e', 'b', 't', 'n', 'k', 'd', 's', 'r', 'm']);

function fieldsOf(rawFields: readonly Buffer[]): Fields {
  // A plain object and one-byte names read by their byte: this runs for every entry the reader sees,
  // and a Map and a string per field showed in profiles of a push through Redis.
  const fields: Record<string, Buffer> = {};
  for (let i = 0; i + 1 < rawFields.length; i += 2) {
    const name = rawFields[i]!;
    if (name.length !== 1) continue;
    const letter = String.fromCharCode(name[0]!);
    if (FIELD_NAMES.has(letter)) fields[letter] = rawFields[i + 1]!;
  }
  return fields;
}

/** A feed entry: its epoch and what it holds. Throws on an entry this store did not write. */
export function decodeEntry(entry: RawEntry): FeedEntry {
  const [rawId, rawFields] = entry;
  const fields = fieldsOf(rawFields);
  const epoch = fields.e?.toString('utf8');
  const notOurs = (): Error => new Error(`feed entry ${rawId.toString('latin1')} is not an entry of this store`);
  if (epoch === undefined) throw notOurs();
  if (fields.b !== undefined) return { kind: 'epoch', epoch };
  if (fields.t === undefined) {
    const session = fields.s?.toString('utf8');
    const room = fields.r?.toString('utf8');
    const change = fields.m?.toString('latin1');
    if (session === undefined || room === undefined || (change !== 'j' && change !== 'l')) throw notOurs();
    return { kind: 'membership', epoch, change: { session, room, joined: change === 'j' } };
  }
  const to = addressOf(fields.t);
  const kind = fields.k?.toString('latin1');
  const data = fields.d;
  if (!isAddress(to) || (kind !== 'j' && kind !== 'b') || data === undefined) throw notOurs();
  const dataText = kind === 'j' ? data.toString('utf8') : undefined;
  // Parsed even when the text goes out as it is: the parse checks it is JSON, and the message's
  // data is its value.
  const payload: Payload = dataText === undefined ? new Uint8Array(data) : (JSON.parse(dataText) as Payload);
  const id = formatId(epoch, rawId.toString('latin1'));
  const event = fields.n?.toString('utf8');
  const message: StoredMessage = event === undefined ? { id, to, data: payload } : { id, to, event, data: payload };
  return { kind: 'message', epoch, message, dataText };
}

/** The message of a feed entry a read returned: reads return messages only (see above). */
export function decodeMessage(entry: RawEntry): StoredMessage {
  const decoded = decodeEntry(entry);
  if (decoded.kind !== 'message') throw new Error(`feed entry ${entry[0].toString('latin1')} is not a message`);
  return decoded.message;
}
