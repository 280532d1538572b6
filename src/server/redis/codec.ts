/**
 * How a message is kept in the feed stream: one entry, fields
 * `e` epoch · `t` address (JSON) · `n` event name (only when there is one) · `k` kind of data
 * (`j` JSON text, `b` bytes) · `d` the data. Bytes are stored as they are (Redis strings are binary):
 * no base64, and replies that carry messages are read as Buffers for that reason.
 *
 * The epoch is in every entry so that the blocking reader, which sees nothing but the feed, tells at
 * once a message of a new epoch (the history was lost and begun again) from one of its own.
 */
import type { Address, NewMessage, Payload, StoredMessage } from '../index.js';
import { formatId } from './ids.js';

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

/** A feed entry: its epoch and the message it holds. Throws on an entry this store did not write. */
export function decodeEntry(entry: RawEntry): { epoch: string; message: StoredMessage } {
  const [rawId, rawFields] = entry;
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < rawFields.length; i += 2) fields.set(rawFields[i]!.toString('latin1'), rawFields[i + 1]!);
  const epoch = fields.get('e')?.toString('utf8');
  const to: unknown = JSON.parse(fields.get('t')?.toString('utf8') ?? 'null');
  const kind = fields.get('k')?.toString('latin1');
  const data = fields.get('d');
  if (epoch === undefined || !isAddress(to) || (kind !== 'j' && kind !== 'b') || data === undefined) {
    throw new Error(`feed entry ${rawId.toString('latin1')} is not a message of this store`);
  }
  const payload: Payload = kind === 'b' ? new Uint8Array(data) : (JSON.parse(data.toString('utf8')) as Payload);
  const id = formatId(epoch, rawId.toString('latin1'));
  const event = fields.get('n')?.toString('utf8');
  return { epoch, message: event === undefined ? { id, to, data: payload } : { id, to, event, data: payload } };
}
