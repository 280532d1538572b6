/**
 * Encoding and validation of protocol frames (docs/PROTOCOL.md §4–§5, §8). Pure: no DOM, no `node:`.
 *
 * A text frame (WebSocket text frame, SSE `data`, HTTP body) is always a JSON array of frames: a
 * batch of one costs two bytes and saves every reader a branch. A batch is validated whole before
 * any of it is used, so a receiver never acts on half of a malformed batch.
 */
import {
  MAX_DATA_DEPTH,
  MAX_EVENT_LENGTH,
  MAX_ID_LENGTH,
  type ClientFrame,
  type ClientMessageFrame,
  type GapReason,
  type ServerMessageFrame,
  type JsonValue,
  type Payload,
  type ServerFrame,
} from './frames.js';

/** A frame broke the protocol. `message` says what was expected and what arrived. */
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

/** Field kinds of the validation table: s string, n finite number, i integer ≥ 0, b boolean,
 * j any JSON value. A `?` suffix makes the field optional. */
type FieldKind = 's' | 'n' | 'i' | 'b' | 'j' | 's?' | 'j?';
type Schema = Readonly<Record<string, FieldKind>>;

/** The reasons of a `gap` frame (§6.3). */
const GAP_REASONS: readonly GapReason[] = ['unknown-epoch', 'expired', 'invalid-id'];

const SERVER_SCHEMAS: Readonly<Record<ServerFrame['t'], Schema>> = {
  hello: { v: 'i', sid: 's', key: 's', resumed: 'b', ack: 'i', hb: 'i', retry: 'i', max: 'i', cursor: 's' },
  msg: { id: 's', e: 's?', d: 'j?', b: 's?' },
  gap: { reason: 's', after: 's', cursor: 's' },
  ack: { s: 'i' },
  retry: { ms: 'i' },
  reconnect: { ms: 'i' },
  pong: { n: 'n' },
  hb: {},
  auth: { ms: 'i' },
  error: { code: 's', message: 's' },
};

const CLIENT_SCHEMAS: Readonly<Record<ClientFrame['t'], Schema>> = {
  msg: { s: 'i', d: 'j?', b: 's?' },
  ping: { n: 'n' },
  bye: {},
  auth: { c: 'j?' },
};

function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

function checkField(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 's':
      return typeof value === 'string';
    case 'n':
      return typeof value === 'number' && Number.isFinite(value);
    case 'i':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'b':
      return typeof value === 'boolean';
    case 's?':
      return value === undefined || typeof value === 'string';
    default:
      return true; // 'j' and 'j?': JSON.parse only yields JSON values
  }
}

function validate<F extends { t: string }>(
  schemas: Readonly<Record<string, Schema>>,
  value: unknown,
  index: number,
): F {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolViolation(`frame ${index}: expects an object, got ${kindOf(value)}`);
  }
  const frame = value as Record<string, unknown>;
  const type = frame.t;
  const schema = typeof type === 'string' && Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (!schema) {
    throw new ProtocolViolation(
      `frame ${index}: expects t to be one of ${Object.keys(schemas).join(', ')}, got ${JSON.stringify(type) ?? 'undefined'}`,
    );
  }
  for (const field in schema) {
    const kind = schema[field]!;
    if (!checkField(kind, frame[field])) {
      throw new ProtocolViolation(`frame ${index} (${type}): expects ${field} of kind ${kind}, got ${kindOf(frame[field])}`);
    }
  }
  if (type === 'gap') {
    // A value from the network reaches the application and the next URL only when it is one the protocol allows (§4.2, §6.3).
    if (!GAP_REASONS.includes(frame.reason as GapReason)) {
      throw new ProtocolViolation(`frame ${index} (gap): expects reason to be one of ${GAP_REASONS.join(', ')}, got ${JSON.stringify(frame.reason)}`);
    }
    if (!isValidId(frame.after as string) || !isValidId(frame.cursor as string)) {
      throw new ProtocolViolation(`frame ${index} (gap): expects after and cursor to be ids of 1–${MAX_ID_LENGTH} characters without CR, LF or NUL`);
    }
  }
  if (type === 'msg') {
    // A message carries exactly one of JSON data (d) and binary data (b).
    if (('d' in frame) === ('b' in frame)) {
      throw new ProtocolViolation(`frame ${index} (msg): expects exactly one of d and b`);
    }
    if (typeof frame.id === 'string' && !isValidId(frame.id)) {
      throw new ProtocolViolation(`frame ${index} (msg): expects an id of 1–${MAX_ID_LENGTH} characters without CR, LF or NUL`);
    }
    if (typeof frame.e === 'string' && !isValidEventName(frame.e)) {
      throw new ProtocolViolation(`frame ${index} (msg): expects an event name of 1–${MAX_EVENT_LENGTH} characters without CR, LF or NUL`);
    }
    if (typeof frame.s === 'number' && frame.s < 1) {
      throw new ProtocolViolation(`frame ${index} (msg): expects s ≥ 1, got ${frame.s}`);
    }
  }
  return value as F;
}

/**
 * Deepest nesting of arrays and objects a batch may have: the batch array and a frame object take two
 * levels, so application data keeps {@link MAX_DATA_DEPTH}. A deeper text is refused before it is parsed.
 */
export const MAX_BATCH_DEPTH = MAX_DATA_DEPTH + 2;

/**
 * True when JSON `text` nests arrays and objects deeper than `max`. One pass over the characters with
 * a counter, no recursion and no allocation, so a hostile megabyte of `[[[[…` costs a scan, not a
 * parse (and never a stack overflow in the receiver's own code). Brackets inside strings do not count:
 * a string is skipped to its closing quote with `indexOf`, in native code, since most of a batch is
 * strings; a quote after an odd run of backslashes is escaped and does not close it.
 *
 * Most texts are answered without the pass: each level of JSON takes an opening and a closing
 * bracket, so a text of at most `2 × max` characters cannot nest deeper, and nesting never exceeds the
 * count of opening brackets (strings included), which a few native searches find (the pass cost a
 * round trip over WebSocket 2–3k instructions on each side; docs/PERFORMANCE.md, "Fewer passes over
 * a message").
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  if (text.length <= 2 * max) return false;
  let openers = 0;
  for (let at = text.indexOf('{'); at >= 0 && openers <= max; at = text.indexOf('{', at + 1)) openers++;
  for (let at = text.indexOf('['); at >= 0 && openers <= max; at = text.indexOf('[', at + 1)) openers++;
  if (openers <= max) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22 /* " */) {
      for (;;) {
        i = text.indexOf('"', i + 1);
        // Unterminated: not JSON, which the parse refuses.
        if (i < 0) return false;
        let start = i;
        while (text.charCodeAt(start - 1) === 0x5c /* \ */) start--;
        if ((i - start) % 2 === 0) break;
      }
    } else if (code === 0x5b /* [ */ || code === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (code === 0x5d /* ] */ || code === 0x7d /* } */) depth--;
  }
  return false;
}

function decodeBatch<F extends { t: string }>(schemas: Readonly<Record<string, Schema>>, text: string): F[] {
  if (nestsDeeperThan(text, MAX_BATCH_DEPTH)) {
    throw new ProtocolViolation(`expects JSON nested at most ${MAX_DATA_DEPTH} levels deep in message data`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ProtocolViolation('expects a JSON array of frames, got text that is not JSON');
  }
  if (!Array.isArray(parsed)) throw new ProtocolViolation(`expects a JSON array of frames, got ${kindOf(parsed)}`);
  if (parsed.length === 0) throw new ProtocolViolation('expects at least one frame, got an empty array');
  // Checked in place, and the parsed array itself returned: `map` would make a copy whose elements
  // kind changes once V8 optimises this function (packed from the builtin, holey from optimised
  // code), which deoptimised every function the frames are handed to, mid-warm-up
  // (docs/PERFORMANCE.md, "Arrays of one shape").
  for (let index = 0; index < parsed.length; index++) validate<F>(schemas, parsed[index], index);
  return parsed as F[];
}

/** Decodes a batch the server sent (used by the client). Throws {@link ProtocolViolation}. */
export function decodeServerBatch(text: string): ServerFrame[] {
  return decodeBatch<ServerFrame>(SERVER_SCHEMAS, text);
}

/** Decodes a batch a client sent (used by the server). Throws {@link ProtocolViolation}. */
export function decodeClientBatch(text: string): ClientFrame[] {
  return decodeBatch<ClientFrame>(CLIENT_SCHEMAS, text);
}

/** Validates one header decoded from a binary frame. */
export function validateServerFrame(value: unknown): ServerFrame {
  return validate<ServerFrame>(SERVER_SCHEMAS, value, 0);
}
export function validateClientFrame(value: unknown): ClientFrame {
  return validate<ClientFrame>(CLIENT_SCHEMAS, value, 0);
}

/** Encodes frames as one text batch. */
export function encodeBatch(frames: readonly object[]): string {
  return `[${frames.map((frame) => JSON.stringify(frame)).join(',')}]`;
}

/** Joins frames that are already JSON-encoded into one text batch, without encoding them again. */
export function joinEncoded(encodedFrames: readonly string[]): string {
  return `[${encodedFrames.join(',')}]`;
}

const CONTROL_CHARACTERS = /[\r\n\0]/;
const NON_ASCII = /[^\0-\x7f]/;

/** Ids are 1–256 characters without CR, LF or NUL, so they fit an SSE `id:` line (PROTOCOL.md §4.2). */
export function isValidId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_ID_LENGTH && !CONTROL_CHARACTERS.test(id);
}

/** Event names are 1–128 characters without CR, LF or NUL (PROTOCOL.md §4.2). */
export function isValidEventName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_EVENT_LENGTH && !CONTROL_CHARACTERS.test(name);
}

// ---------------------------------------------------------------------------------------------
// Binary frames over WebSocket (PROTOCOL.md §4.3): [uint32 BE header length][UTF-8 JSON header][payload]

const textEncoder = /* @__PURE__ */ new TextEncoder();
const textDecoder = /* @__PURE__ */ new TextDecoder('utf-8', { fatal: true });

/** Packs a message header (a frame without `d`/`b`) and its bytes into one binary WebSocket frame. */
export function encodeBinaryFrame(header: object, payload: Uint8Array): Uint8Array {
  const headerBytes = textEncoder.encode(JSON.stringify(header));
  const frame = new Uint8Array(4 + headerBytes.length + payload.length);
  new DataView(frame.buffer).setUint32(0, headerBytes.length);
  frame.set(headerBytes, 4);
  frame.set(payload, 4 + headerBytes.length);
  return frame;
}

/**
 * Decodes a binary message frame (§4.3) sent by the server (`from: 'server'`, read by the client) or
 * by a client (`from: 'client'`, read by the server). The header MUST be a `msg` frame without `d` and
 * `b`; it is validated as the message it stands for, with the payload in the place of `b`. Returns
 * the validated header (its `b` is the empty string) and the payload. Throws {@link ProtocolViolation}.
 */
export function decodeBinaryMessage(frame: Uint8Array, from: 'server'): { header: ServerMessageFrame; payload: Uint8Array };
export function decodeBinaryMessage(frame: Uint8Array, from: 'client'): { header: ClientMessageFrame; payload: Uint8Array };
export function decodeBinaryMessage(
  frame: Uint8Array,
  from: 'server' | 'client',
): { header: ServerMessageFrame | ClientMessageFrame; payload: Uint8Array } {
  const { header, payload } = decodeBinaryFrame(frame);
  if (typeof header !== 'object' || header === null || Array.isArray(header) || 'd' in header || 'b' in header) {
    throw new ProtocolViolation('binary frame: expects a msg header object without d or b');
  }
  const schemas: Readonly<Record<string, Schema>> = from === 'server' ? SERVER_SCHEMAS : CLIENT_SCHEMAS;
  const validated = validate<ServerFrame | ClientFrame>(schemas, { ...header, b: '' }, 0);
  if (validated.t !== 'msg') throw new ProtocolViolation(`binary frame: expects a msg header, got ${validated.t}`);
  return { header: validated, payload };
}

/**
 * The JSON text of a message frame, built around data that is already encoded: `data` is the JSON
 * text of `d`, or, with `binary`, the base64 text of `b`. `key` is the frame's `id` (server → client)
 * or `s` (client → server); `event` only downstream. The one place message frames are written by hand,
 * so data is serialised once however many times the frame is written (§4).
 */
export function messageFrameText(
  key: { readonly id: string; readonly event?: string | undefined } | { readonly s: number },
  data: string,
  binary = false,
): string {
  const head =
    'id' in key
      ? `{"t":"msg","id":${JSON.stringify(key.id)}${key.event === undefined ? '' : `,"e":${JSON.stringify(key.event)}`}`
      : `{"t":"msg","s":${key.s}`;
  return binary ? `${head},"b":"${data}"}` : `${head},"d":${data}}`;
}

/** Splits a binary WebSocket frame into its parsed header and payload. Throws {@link ProtocolViolation}. */
export function decodeBinaryFrame(frame: Uint8Array): { header: unknown; payload: Uint8Array } {
  if (frame.length < 4) throw new ProtocolViolation(`binary frame: expects at least 4 bytes, got ${frame.length}`);
  const headerLength = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0);
  if (4 + headerLength > frame.length) {
    throw new ProtocolViolation(`binary frame: expects a header of ${headerLength} bytes, got ${frame.length - 4}`);
  }
  let header: unknown;
  try {
    const text = textDecoder.decode(frame.subarray(4, 4 + headerLength));
    // A header is one flat object: anything nested is refused before it is parsed.
    header = nestsDeeperThan(text, 1) ? undefined : JSON.parse(text);
  } catch {
    throw new ProtocolViolation('binary frame: expects a UTF-8 JSON header');
  }
  if (header === undefined) throw new ProtocolViolation('binary frame: expects a flat JSON header object');
  return { header, payload: frame.subarray(4 + headerLength) };
}

// ---------------------------------------------------------------------------------------------
// Binary data on text transports (PROTOCOL.md §4.3): standard base64 with padding.

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk) as unknown as number[]);
  }
  return btoa(binary);
}

/** Throws {@link ProtocolViolation} on text that is not base64. */
export function base64ToBytes(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new ProtocolViolation('expects b to be base64');
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** True for the payloads that travel as bytes. */
export function isBinary(data: Payload | unknown): data is Uint8Array {
  return data instanceof Uint8Array;
}

/** Byte length of a string's UTF-8 encoding, without allocating it. */
export function utf8Length(text: string): number {
  // ASCII, most texts, is one byte per unit: a native regular expression finds that about three
  // times faster than the loop below (docs/PERFORMANCE.md, "Fewer passes over a message").
  if (!NON_ASCII.test(text)) return text.length;
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) length += 1;
    else if (code < 0x800) length += 2;
    else if (code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      length += 4; // a surrogate pair: one code point
      i++;
    } else length += 3; // the rest of the BMP, and a lone surrogate (sent as U+FFFD)
  }
  return length;
}

export type { JsonValue };
