/**
 * unbroken: a browser real-time client whose connection stays unbroken (docs/PROTOCOL.md).
 */
export { BaseClient } from './client.js';
export { Client, connect, longPollingTransport, sseTransport, webSocketTransport } from './connect.js';
export {
  TRANSITIONS,
  type ClientEvents,
  type ClosedEvent,
  type ConnectionState,
  type GapEvent,
  type OpenEvent,
  type ScheduleEvent,
  type Sendable,
  type StateCause,
  type StateEvent,
  type TransportChangeReason,
  type TransportEvent,
  type UnbrokenMessage,
} from './events.js';
export type { BaseClientOptions, ClientOptions, Clock, TransportMemory } from './options.js';
export { UnbrokenError, isUnbrokenError } from './errors.js';
export type {
  EventSourceConstructor,
  EventSourceLike,
  ClientTransport,
  FetchLike,
  TransportName,
  WebSocketConstructor,
  WebSocketLike,
} from './transport.js';
export type { ErrorCode, GapReason, JsonValue } from '../protocol/index.js';
