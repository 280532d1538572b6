/**
 * The contract between the client core and its transports. The core never branches on a transport's
 * name: it makes one through a {@link TransportFactory}, talks to it through {@link Transport}, and
 * hears from it through {@link TransportHandlers}.
 */
import {
  CloseCode,
  MAX_ID_LENGTH,
  base64ToBytes,
  decodeBinaryFrame,
  decodeBinaryMessage,
  decodeServerBatch,
  isValidId,
  utf8Length,
  type AckFrame,
  type ServerFrame,
  type ServerMessageFrame,
} from '../protocol/index.js';
import { UnbrokenError } from './errors.js';
import type { Clock } from './options.js';

import type { TransportName } from '../protocol/index.js';

export type { TransportName } from '../protocol/index.js';

declare const clientTransport: unique symbol;

/**
 * A transport a `BaseClient` can be given: `webSocketTransport`, `sseTransport` or
 * `longPollingTransport`. Only its name is public; the rest is the client's own business, and no
 * other object type-checks as one.
 */
export interface ClientTransport {
  readonly name: TransportName;
  readonly [clientTransport]: true;
}

/**
 * A transport as the core knows it: how to make one where it can run, and what its failures mean
 * (PROTOCOL.md §13.3). The client uses only the definitions it is given, so an application that
 * imports fewer transports ships less code (`BaseClient`).
 */
export interface TransportDefinition {
  readonly name: TransportName;
  /** Its factory, when it can run in `env`. */
  make(env: TransportEnvironment): TransportFactory | undefined;
  /** What it means when its link came up but no `hello` followed in time (§13.3). */
  readonly stalled: 'silent' | 'buffered' | 'timeout';
  /**
   * Whether a proxy may hold its stream back while letting it open: then the client checks an open
   * stream with pings whose pongs must come down it (§13.3, "Checking an open stream").
   */
  readonly bufferable: boolean;
  /** The upgrade probe (§7.1.1), on the transport a client on a fallback moves back to. */
  makeProbe?(env: TransportEnvironment): UpgradeProbe | undefined;
}

/** Timers a probe uses: the client's clock. */
export interface ProbeTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * An upgrade probe (PROTOCOL.md §7.1.1): a session-less WebSocket round trip to the endpoint at
 * `base` (its http(s) URL). Calls `done(true)` once a `pong` came back, `done(false)` when the socket
 * fails, closes or answers anything else, or nothing came within `timeout` ms; `done` is called once.
 * Returns the function that stops the probe without calling `done`.
 */
export type UpgradeProbe = (base: string, timeout: number, timers: ProbeTimers, done: (worked: boolean) => void) => () => void;

/**
 * A server frame as a transport hands it over: already validated, and a message's binary data already
 * decoded into bytes (`b`), whether it came as a binary WebSocket frame or as base64 in a text batch.
 */
export type InboundFrame =
  | Exclude<ServerFrame, ServerMessageFrame>
  | (Omit<ServerMessageFrame, 'b'> & { b?: Uint8Array });

/** How a link closed. */
export interface TransportCloseInfo {
  /** WebSocket close code, or the one matching the HTTP status (PROTOCOL.md §9). */
  code: number;
  /** Set when the transport itself found the fault, e.g. a malformed batch (`PROTOCOL_ERROR`). */
  error?: UnbrokenError;
  /**
   * With `MESSAGE_TOO_LARGE`: the id of the last message the refused unit held. The client skips to
   * it, so the next connection resumes after it instead of meeting it again (§13.5).
   */
  skipTo?: string | undefined;
  /**
   * The link ended because the tab holding the shared carrier went away (§7.5): no fault of the
   * network, so the client reconnects at once, on the group's next carrier.
   */
  handover?: boolean;
}

/** What a transport reports. A transport calls none of these after its `close()` was called. */
export interface TransportHandlers {
  /** The link is up (the socket opened, the stream started); the `hello` is still to come. */
  onOpen(): void;
  /**
   * One batch arrived on the server's stream (the WebSocket, the SSE response, a poll answer),
   * validated as a whole (PROTOCOL.md §4.1). Only these prove the stream is alive (§11).
   */
  onFrames(frames: InboundFrame[]): void;
  /**
   * The answer to an upstream request (`POST P/send`, §7.3): its acknowledgement. It says nothing of
   * the stream, so it comes through this handler, which has no way to move the liveness deadline.
   */
  onReply(ack: AckFrame): void;
  /** The link is gone. Called once. */
  onClose(info: TransportCloseInfo): void;
}

/** One live link to the server. */
export interface Transport {
  /** True when `send` takes binary frames; otherwise binary data travels as base64 in text batches. */
  readonly binary: boolean;
  /**
   * Sends one text batch, or one binary message frame (PROTOCOL.md §4.3). Dropped when not open.
   * `answered` is called when the server answered the request that carried it, on transports whose
   * upstream has answers (§7.3); never on WebSocket.
   */
  send(data: string | ArrayBuffer, answered?: () => void): void;
  /**
   * The stream acknowledged every message written on this link (§7.3.one-request): an upstream
   * request that carries messages only was processed, and no longer holds the next one back.
   */
  settled?(): void;
  /** Closes the link with a WebSocket close code (1000 ends the session, PROTOCOL.md §9). */
  close(code: number): void;
  /** On a carrier the tabs share (§7.5): whether this tab holds it. Absent on a link of its own. */
  sharing?(): 'holder' | 'follower' | null;
}

/** What one attempt gives its transport besides the URL. */
export interface LinkContext {
  /** The attempt's single-use ticket (§3.4): for its first downstream request only. */
  readonly ticket: string;
  /** Largest inbound unit accepted, in bytes (§13.5). */
  readonly maxMessageSize: number;
  readonly clock: Clock;
}

/**
 * Makes a transport. `url(endpoint, ticket)` gives the http(s) URL of an endpoint under the server's
 * path (`/ws`, `/sse`, `/poll`, `/send`) with the query of PROTOCOL.md §3 as of the moment it is
 * called, and the ticket when given.
 */
export type TransportFactory = (
  url: (endpoint: string, ticket?: string) => string,
  handlers: TransportHandlers,
  context: LinkContext,
) => Transport;

// Event handler properties compare bivariantly, so both the DOM WebSocket and the `ws` package fit.
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The part of the WHATWG WebSocket the client uses; the DOM `WebSocket` and the `ws` package fit. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number }> | null;
  onerror: Handler<unknown> | null;
  send(data: string | ArrayBuffer): void;
  close(code?: number): void;
}

/** A WebSocket constructor, e.g. `globalThis.WebSocket` or the default export of `ws`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The part of the WHATWG EventSource the SSE transport uses. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: string; lastEventId?: string }> | null;
  onerror: Handler<unknown> | null;
  close(): void;
}

/** An EventSource constructor, e.g. `globalThis.EventSource` or the `eventsource` package's. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** A WHATWG `fetch`. */
export type FetchLike = typeof fetch;

/** The part of the Web Locks API (`navigator.locks`) that sharing a connection between tabs uses. */
export interface LockManagerLike {
  /** Web Locks forbid a `signal` with `steal` (https://w3c.github.io/web-locks/#dom-lockmanager-request). */
  request(name: string, options: { signal?: AbortSignal; steal?: never } | { steal: true; signal?: never }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** The part of the WHATWG BroadcastChannel that sharing a connection between tabs uses. */
export interface BroadcastChannelLike {
  onmessage: Handler<{ data: unknown }> | null;
  postMessage(message: unknown): void;
  close(): void;
}

/** A BroadcastChannel constructor, e.g. `globalThis.BroadcastChannel`. */
export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** The implementations transports are made from, resolved when each attempt starts. */
export interface TransportEnvironment {
  WebSocket?: WebSocketConstructor | undefined;
  EventSource?: EventSourceConstructor | undefined;
  /** With `BroadcastChannel`: the tabs of the origin share one connection on SSE and long polling (§7.5). */
  locks?: LockManagerLike | undefined;
  BroadcastChannel?: BroadcastChannelConstructor | undefined;
  /** Call it as a plain function, never as a method of this object: a browser's fetch throws then. */
  fetch?: FetchLike | undefined;
}

/**
 * Decodes one inbound unit for the core: a text batch, validated whole, with every base64 `b` decoded
 * into bytes; or a binary WebSocket frame, a message header and its bytes (PROTOCOL.md §4.3). Throws a
 * `PROTOCOL_ERROR` caused by the `ProtocolViolation` before any frame is handed over.
 */
export function decodeUnit(data: string | ArrayBuffer): InboundFrame[] {
  try {
    if (typeof data !== 'string') {
      const { header, payload } = decodeBinaryMessage(new Uint8Array(data), 'server');
      return [{ ...header, b: payload }];
    }
    // Built by `push`, not `map`: one elements kind before and after V8 optimises this, so the
    // code the frames go to is not deoptimised by the change (src/protocol/codec.ts, `decodeBatch`).
    const frames: InboundFrame[] = [];
    for (const f of decodeServerBatch(data)) frames.push(f.t === 'msg' && f.b !== undefined ? { ...f, b: base64ToBytes(f.b) } : (f as InboundFrame));
    return frames;
  } catch (cause) {
    throw new UnbrokenError('PROTOCOL_ERROR', (cause as Error).message, cause);
  }
}

/** The fields of the JSON object in `text`: none when it is no JSON, or not an object. */
export function readObject(text: string): Record<string, unknown> {
  try {
    return Object(JSON.parse(text)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** `bytes` random bytes from the platform's cryptographic source, in hex. */
export const randomHex = (bytes: number): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (byte) => byte.toString(16).padStart(2, '0')).join('');

/**
 * The id of the last message frame of a text batch, found without parsing the batch: the last string
 * value of an `id` key of a frame (only `msg` frames have one, §4). One pass, no recursion.
 */
export function lastMessageId(text: string): string | undefined {
  let depth = 0;
  let last = '';
  let idKey = false;
  let found: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22 /* " */) {
      const start = i;
      while (++i < text.length && text.charCodeAt(i) !== 0x22) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      if (depth !== 2) continue;
      // Longer than any id, even fully escaped: only its length matters.
      last = i - start < 6 * MAX_ID_LENGTH ? text.slice(start, i + 1) : '';
      if (idKey) {
        try {
          found = JSON.parse(last) as string;
        } catch {}
      }
      idKey = false;
    } else if (code === 0x3a /* : */) idKey = depth === 2 && last === '"id"';
    else if (code === 0x5b || code === 0x7b) depth++;
    else if (code === 0x5d || code === 0x7d) depth--;
  }
  return found !== undefined && isValidId(found) ? found : undefined;
}

/**
 * The close of a link whose inbound unit (`data`: a WebSocket message, an SSE event's data, a poll
 * answer) exceeds `max` bytes, with the id to skip to; `undefined` when it fits (§13.5).
 */
export function oversize(data: string | ArrayBuffer, max: number): TransportCloseInfo | undefined {
  let size: number;
  let skipTo: string | undefined;
  if (typeof data === 'string') {
    // UTF-8 takes 1–3 bytes per UTF-16 unit: count exactly only when the length leaves a doubt.
    size = data.length * 3 <= max ? 0 : utf8Length(data);
    if (size <= max) return undefined;
    skipTo = lastMessageId(data);
  } else {
    size = data.byteLength;
    if (size <= max) return undefined;
    const bytes = new Uint8Array(data);
    try {
      const headerLength = new DataView(data).getUint32(0);
      const { header } = decodeBinaryFrame(bytes.subarray(0, headerLength < 4096 ? 4 + headerLength : 0));
      const id = (header as { id?: unknown }).id;
      if (typeof id === 'string' && isValidId(id)) skipTo = id;
    } catch {}
  }
  const skip = skipTo === undefined ? '' : `: skipped up to message ${skipTo}`;
  const error = new UnbrokenError('MESSAGE_TOO_LARGE', `received ${size} bytes, over maxMessageSize ${max}${skip}`);
  return { code: CloseCode.MessageTooBig, error, skipTo };
}
