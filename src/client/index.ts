/**
 * unbroken: a browser real-time client whose connection stays unbroken (docs/PROTOCOL.md).
 */
export {
  Client,
  connect,
  type ClientEvents,
  type ClientOptions,
  type Clock,
  type ClosedEvent,
  type ConnectionState,
  type GapEvent,
  type OpenEvent,
  type ScheduleEvent,
  type StateCause,
  type StateEvent,
  type TransportChangeReason,
  type TransportMemory,
  type TransportEvent,
  type UnbrokenMessage,
} from './client.js';
export { UnbrokenError, isUnbrokenError } from './errors.js';
export type {
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  TransportName,
  WebSocketConstructor,
  WebSocketLike,
} from './transport.js';
export type { ErrorCode, GapReason, JsonValue } from '../protocol/index.js';
