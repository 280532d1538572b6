/**
 * The client's public vocabulary: its states and the legal moves between them (PROTOCOL.md §13.1),
 * and every event with its payload.
 */
import type { CheckedData, ErrorCode, GapReason, JsonValue, TransportName } from '../protocol/index.js';
import type { UnbrokenError } from './errors.js';

/** The state of a client (PROTOCOL.md §13.1). `closed` is final. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/**
 * Why the state changed: `connected` (a `hello` arrived), `close-called` (the application called
 * `close()`), `upgrade` (the client moves its session back to WebSocket after a successful probe),
 * `buffered` (the client leaves an SSE stream a proxy holds back, §13.3), or the code of the failure.
 */
export type StateCause = 'connected' | 'close-called' | 'upgrade' | 'buffered' | ErrorCode;

/**
 * Why the transport in use was chosen (PROTOCOL.md §13.3): `initial` (the first of the list worked),
 * `remembered` (it worked last time for this endpoint), or why the one before it was left —
 * `refused` (it failed or was refused before its `hello`), `timeout` (its link never came up in
 * time), `silent` (a WebSocket opened and then passed nothing), `buffered` (a proxy held an SSE
 * stream's events back, before or after its `hello`), `upgrade` (a WebSocket probe succeeded while
 * on a fallback). After a race (§13.3, "Racing") the event names the winner, with what the client saw
 * of the attempt it raced: `timeout`, `silent` or `buffered`, or `refused` when that one failed.
 */
export type TransportChangeReason = 'initial' | 'remembered' | 'refused' | 'timeout' | 'silent' | 'buffered' | 'upgrade';

/**
 * The legal moves of the state machine, as data (PROTOCOL.md §13.1): `TRANSITIONS[from]` lists the
 * states `from` may go to. Any other move is a bug and throws.
 */
export const TRANSITIONS: { readonly [S in ConnectionState]: readonly ConnectionState[] } = {
  connecting: ['open', 'reconnecting', 'closed'],
  open: ['reconnecting', 'closed'],
  reconnecting: ['open', 'closed'],
  closed: [],
};

/** Bytes `send()` takes. */
type SendableBytes = ArrayBuffer | ArrayBufferView;

/**
 * What `send()` takes. `Sendable` alone is a JSON value or bytes; `Sendable<T>` holds `T` exactly when
 * every value of `T` can be sent, `interface` types included (`interface Chat { text: string }`,
 * which has no index signature), and rejects at any depth what JSON cannot carry: functions (so
 * `Date`, `Map` and instances with methods), `symbol`, `bigint`, `undefined` but as an object
 * property. Use it as `T extends Sendable<T>`, as `connect<Incoming, Outgoing>()` does.
 */
export type Sendable<T = JsonValue | SendableBytes> = CheckedData<T, JsonValue | SendableBytes, SendableBytes>;

/**
 * What `send()` of a client whose messages are `Outgoing` takes: an `Outgoing`; and, while `Outgoing`
 * is the default (any JSON value or bytes), any `T` that {@link Sendable} holds — `interface` types
 * included, which the default's index signature would refuse; `undefined` is no JSON value.
 */
export type SendArgument<Outgoing, T> = [JsonValue | SendableBytes] extends [Outgoing] ? Outgoing | (T & Sendable<T> & ({} | null)) : Outgoing;

/** A message of the stream, as the application receives it. */
export interface UnbrokenMessage<T = unknown> {
  /** The parsed JSON data, or the bytes (`Uint8Array`) of a binary message. */
  data: T;
  /** The message id; the client's {@link Client.lastEventId} after this message. */
  id: string;
  /** The event name, when the server gave one. */
  event: string | undefined;
}

/** Payload of the `state` event. */
export interface StateEvent {
  from: ConnectionState;
  to: ConnectionState;
  cause: StateCause;
}

/** Payload of the `open` event. */
export interface OpenEvent {
  transport: TransportName;
  sessionId: string;
  /** True when the server still had the session: nothing was lost upstream. */
  resumed: boolean;
}

/** Payload of the `close` event. */
export interface ClosedEvent {
  /** The fatal error that closed the client, or `null` when `close()` was called. */
  error: UnbrokenError | null;
}

/** Payload of the `transport` event. */
export interface TransportEvent {
  transport: TransportName;
  previous: TransportName | null;
  reason: TransportChangeReason;
}

/** Payload of the `gap` event: the messages after `lastEventId` up to and including `resumeEventId` are lost. */
export interface GapEvent {
  /** The server's reason (§6.3), or `too-large`: the client skipped a unit over `maxMessageSize` (§13.5). */
  reason: GapReason | 'too-large';
  /** The cursor the client presented. */
  lastEventId: string;
  /** The stream continues after this id. */
  resumeEventId: string;
}

/** Payload of the `schedule` event: the client set a timer for its next step. */
export interface ScheduleEvent {
  /** `reconnect`: the next connection attempt; `upgrade-probe`: the next WebSocket probe while on a fallback transport. */
  kind: 'reconnect' | 'upgrade-probe';
  /** Ms from now. */
  delay: number;
  /** When it fires, on the client's clock (`clock.now()`, Date.now by default). */
  at: number;
}

/** Events of a {@link Client}, by name, with their payloads. */
export interface ClientEvents<T = unknown> {
  /** Every message of the stream, once, in order. */
  message: UnbrokenMessage<T>;
  /** Messages with the event name after the colon, e.g. `message:chat`; after `message`. */
  [name: `message:${string}`]: UnbrokenMessage<T>;
  /** Every state change. */
  state: StateEvent;
  /** A connection opened: a `hello` arrived. */
  open: OpenEvent;
  /** The client closed for good. */
  close: ClosedEvent;
  /** The transport in use differs from the one before. */
  transport: TransportEvent;
  /** The server could not replay everything after the cursor; emitted before any later message. */
  gap: GapEvent;
  /** A connection failed or broke the protocol; emitted before the state change it causes. */
  error: UnbrokenError;
  /** The client set a timer for its next connection attempt or WebSocket probe, e.g. to show a countdown. */
  schedule: ScheduleEvent;
}
