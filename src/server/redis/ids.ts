/**
 * Message ids of the Redis store (docs/PROTOCOL.md §4.2, §6.2): `<epoch>-<ms>-<seq>`, where
 * `<ms>-<seq>` is the id Redis gave the message in the feed stream. Stream ids are strictly ordered
 * by Redis itself, one order for every process; the epoch, stored in Redis, changes whenever the
 * history is lost, so an id from before is told apart.
 */
import { randomBytes } from 'node:crypto';

/** A stream id of Redis: `<ms>-<seq>`, both unsigned 64-bit integers in canonical decimal. */
export type StreamId = string;

/** The largest unsigned 64-bit integer, the bound of both parts of a stream id. */
const U64_MAX = '18446744073709551615';

const ID_PATTERN = /^([0-9a-z]{1,32})-(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})$/;

/** A message id taken apart, or `null` when it is not one this store could issue. */
export interface ParsedId {
  readonly epoch: string;
  readonly position: StreamId;
}

/**
 * A fresh candidate epoch: 10 random lower-case base36 characters (36^10 ≈ 3.7e15 values). A Lua
 * script cannot make randomness, so every call that may create the epoch proposes its own candidate
 * and Redis keeps the first one (`HSETNX`-like, inside the script).
 */
export function candidateEpoch(): string {
  let epoch = '';
  for (const byte of randomBytes(10)) epoch += (byte % 36).toString(36);
  return epoch;
}

export function formatId(epoch: string, position: StreamId): string {
  return `${epoch}-${position}`;
}

function fitsU64(digits: string): boolean {
  return digits.length < U64_MAX.length || (digits.length === U64_MAX.length && digits <= U64_MAX);
}

/** Takes `id` apart; `null` for anything that is not `<epoch>-<ms>-<seq>` with both parts in range. */
export function parseId(id: string): ParsedId | null {
  const match = ID_PATTERN.exec(id);
  if (!match || !fitsU64(match[2]!) || !fitsU64(match[3]!)) return null;
  return { epoch: match[1]!, position: `${match[2]}-${match[3]}` };
}

/** Compares two canonical unsigned decimals of any length without losing precision. */
function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** Orders two stream ids as Redis does: negative, zero or positive. */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  const [aMs = '0', aSeq = '0'] = a.split('-');
  const [bMs = '0', bSeq = '0'] = b.split('-');
  return compareDecimal(aMs, bMs) || compareDecimal(aSeq, bSeq);
}
