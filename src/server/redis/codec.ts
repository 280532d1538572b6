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
  | { readonly kind: 'message'; readonly epoch: string; readonly message: StoredMessage }
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

export function encodeMessage(message: NewMessage): EncodedMessage {
  const { data } = message;
  const binary = data instanceof Uint8Array;
  return {
    to: JSON.stringify(message.to),
    event: message.event ?? '',
    kind: binary ? 'b' : 'j',
    data: binary ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : JSON.stringify(data),
  };
}

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

function fieldsOf(rawFields: readonly Buffer[]): Map<string, Buffer> {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < rawFields.length; i += 2) fields.set(rawFields[i]!.toString('latin1'), rawFields[i + 1]!);
  return fields;
}

/** A feed entry: its epoch and what it holds. Throws on an entry this store did not write. */
export function decodeEntry(entry: RawEntry): FeedEntry {
  const [rawId, rawFields] = entry;
  const fields = fieldsOf(rawFields);
  const epoch = fields.get('e')?.toString('utf8');
  const notOurs = (): Error => new Error(`feed entry ${rawId.toString('latin1')} is not an entry of this store`);
  if (epoch === undefined) throw notOurs();
  if (fields.has('b')) return { kind: 'epoch', epoch };
  if (!fields.has('t')) {
    const session = fields.get('s')?.toString('utf8');
    const room = fields.get('r')?.toString('utf8');
    const change = fields.get('m')?.toString('latin1');
    if (session === undefined || room === undefined || (change !== 'j' && change !== 'l')) throw notOurs();
    return { kind: 'membership', epoch, change: { session, room, joined: change === 'j' } };
  }
  const to: unknown = JSON.parse(fields.get('t')!.toString('utf8'));
  const kind = fields.get('k')?.toString('latin1');
  const data = fields.get('d');
  if (!isAddress(to) || (kind !== 'j' && kind !== 'b') || data === undefined) throw notOurs();
  const payload: Payload = kind === 'b' ? new Uint8Array(data) : (JSON.parse(data.toString('utf8')) as Payload);
  const id = formatId(epoch, rawId.toString('latin1'));
  const event = fields.get('n')?.toString('utf8');
  return { kind: 'message', epoch, message: event === undefined ? { id, to, data: payload } : { id, to, event, data: payload } };
}

/** The message of a feed entry a read returned: reads return messages only (see above). */
export function decodeMessage(entry: RawEntry): StoredMessage {
  const decoded = decodeEntry(entry);
  if (decoded.kind !== 'message') throw new Error(`feed entry ${entry[0].toString('latin1')} is not a message`);
  return decoded.message;
}
