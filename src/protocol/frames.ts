/**
 * Frames of protocol version 1 (docs/PROTOCOL.md §4–§5). Pure types and constants: no DOM, no `node:`.
 *
 * Keys are one or two letters because every message pays for them on the wire; the table in
 * PROTOCOL.md §4 spells each one out.
 */

/**
 * The version a client offers on a connection of its own (PROTOCOL.md §3.1): all it uses is in
 * version 1, so a version-1 server serves it.
 */
export const PROTOCOL_VERSION = 1;
/** Versions the server accepts, and the client accepts in `hello.v`. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2];
/** The version that adds carriers, streams that several sessions share (§7.5): a carrier request offers it. */
export const CARRIER_VERSION = 2;

/** The transports, in the default fallback order (PROTOCOL.md §3, §13.3). */
export type TransportName = 'websocket' | 'sse' | 'long-polling';

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Message payloads: a JSON value of whatever shape, or bytes. */
export type Payload = JsonValue | Uint8Array;

/** Why the server could not resume a stream (PROTOCOL.md §6.3). */
export type GapReason =
  /** The id was issued by another epoch of the store: the server restarted or lost its store. */
  | 'unknown-epoch'
  /** The id is older than what the store retains. */
  | 'expired'
  /** The id is not one this store could have issued. */
  | 'invalid-id';

// ---------------------------------------------------------------------------------------------
// Server → client (PROTOCOL.md §4)

/** First frame of every connection: the session and the limits the client must respect. */
export interface HelloFrame {
  t: 'hello';
  /** Protocol version in use. */
  v: number;
  /** Session id: a name, no secret; the client sends it with `key` in its ticket requests (§3.4). */
  sid: string;
  /**
   * Session key (at least 128 random bits, base64url): what proves the client owns the session. It
   * travels only in `POST P/ticket` bodies and the `X-Unbroken-Session` header, never in a URL (§3.4).
   */
  key: string;
  /** True when `sid` named a session the server still had. */
  resumed: boolean;
  /** Highest client sequence number processed in this session (cumulative acknowledgement). */
  ack: number;
  /** Heartbeat interval in ms: the server sends a frame at least this often. */
  hb: number;
  /** Server-set reconnect delay floor in ms (SSE `retry:` semantics). */
  retry: number;
  /** Largest frame the server accepts, in bytes (UTF-8 text or binary). */
  max: number;
  /**
   * Where this connection's stream starts: the client's resume id, the position after a gap, or
   * the store's head for a new stream. The client adopts it as its last event id, so a client that
   * drops before its first message still resumes without a hole (PROTOCOL.md §6.4).
   */
  cursor: string;
}

/** One message of the stream, with JSON data (`d`) or base64 binary data (`b`, HTTP transports). */
export interface ServerMessageFrame {
  t: 'msg';
  /** Opaque id chosen by the store; the client presents the last one it delivered to resume. */
  id: string;
  /** Optional event name. */
  e?: string;
  d?: JsonValue;
  b?: string;
}

/** The server cannot replay everything after the client's last id; sent before any newer message. */
export interface GapFrame {
  t: 'gap';
  reason: GapReason;
  /** The id the client presented. */
  after: string;
  /** The stream continues after this id: messages after `after` up to and including `cursor` are lost. */
  cursor: string;
}

/** Cumulative acknowledgement: every client message with sequence ≤ `s` was processed. */
export interface AckFrame {
  t: 'ack';
  s: number;
}

/** A new reconnect delay floor in ms. */
export interface RetryFrame {
  t: 'retry';
  ms: number;
}

/** Graceful shutdown: reconnect after `ms` (already jittered for this client); the server closes next. */
export interface ReconnectFrame {
  t: 'reconnect';
  ms: number;
}

/** Answer to a client `ping` with the same nonce. */
export interface PongFrame {
  t: 'pong';
  n: number;
}

/** Heartbeat: sent when nothing else was sent for `hb` ms. */
export interface HeartbeatFrame {
  t: 'hb';
}

/** Why the server is about to close the connection (or refuses a request). */
export interface ErrorFrame {
  t: 'error';
  code: string;
  message: string;
}

/** The session's identity expires in `ms`: the client sends fresh credentials upstream (§3.5). */
export interface AuthRequestFrame {
  t: 'auth';
  ms: number;
}

export type ServerFrame =
  | HelloFrame
  | ServerMessageFrame
  | GapFrame
  | AckFrame
  | RetryFrame
  | ReconnectFrame
  | PongFrame
  | HeartbeatFrame
  | AuthRequestFrame
  | ErrorFrame;

// ---------------------------------------------------------------------------------------------
// Client → server (PROTOCOL.md §5)

/** An application message with its sequence number in the session (1, 2, 3, …). */
export interface ClientMessageFrame {
  t: 'msg';
  s: number;
  d?: JsonValue;
  b?: string;
}

/** Round-trip probe; the server answers `pong` with the same `n` at once. */
export interface PingFrame {
  t: 'ping';
  n: number;
}

/** The client is closing for good: the server ends the session now. */
export interface ByeFrame {
  t: 'bye';
}

/** Fresh credentials for the session's identity, checked by the server's `authenticate` (§3.5). */
export interface AuthFrame {
  t: 'auth';
  /** What the application's `auth` option returned; absent without one. */
  c?: JsonValue;
}

export type ClientFrame = ClientMessageFrame | PingFrame | ByeFrame | AuthFrame;

/** Query parameters of every connection (PROTOCOL.md §3). */
export const QueryParam = {
  version: 'v',
  /**
   * The single-use ticket that admits a downstream request (§3.4): the only thing in a URL that
   * names a session, and worthless once used or expired.
   */
  ticket: 'ticket',
  lastEventId: 'last',
  /** `1` on a WebSocket upgrade probe: no session, only ping → pong (PROTOCOL.md §7.1.1). */
  probe: 'probe',
} as const;

/** Sub-paths under the server's `path` (PROTOCOL.md §3). */
export const Endpoint = {
  websocket: '/ws',
  sse: '/sse',
  poll: '/poll',
  send: '/send',
  /** `POST P/ticket`: a single-use ticket for one downstream connection attempt (§3.4). */
  ticket: '/ticket',
  /** `GET P/carrier`: a carrier as an SSE stream (§7.5). */
  carrier: '/carrier',
  /** `GET P/carrier-poll`: a carrier as long polls (§7.5). */
  carrierPoll: '/carrier-poll',
  /** `POST P/attach`: a session's connection opened on a carrier, with a ticket (§7.5). */
  attach: '/attach',
  /** `POST P/detach`: channels of a carrier closed (§7.5). */
  detach: '/detach',
} as const;

/** Header an HTTP upstream request must carry; a cross-site form cannot set it (PROTOCOL.md §7.3). */
export const UPSTREAM_HEADER = 'X-Unbroken';

/** Header that carries the long-polling connection id `c` on every poll: it is a secret, so never in a URL (§3.4, §7.4). */
export const CONNECTION_HEADER = 'X-Unbroken-Connection';

/** Header of `POST P/send` naming its session as `<sid>.<key>` (§3.4, §7.3). */
export const SESSION_HEADER = 'X-Unbroken-Session';

/**
 * Deepest nesting of arrays and objects in message data (`d`), counting the outermost value as 1
 * (PROTOCOL.md §4.4): deep enough for any real document, shallow enough that no receiver spends
 * noticeable time or stack on a hostile one.
 */
export const MAX_DATA_DEPTH = 64;

/** Longest id or event name, in characters (PROTOCOL.md §4.2). */
export const MAX_ID_LENGTH = 256;
export const MAX_EVENT_LENGTH = 128;
