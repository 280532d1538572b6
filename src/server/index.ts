/**
 * `unbroken-realtime/server`: the Node reference server of the unbroken protocol (docs/PROTOCOL.md).
 */
export { createServer, type SendOptions, type UnbrokenServer } from './server.js';
export type { ServerOptions } from './options.js';
export type { Sendable } from './sendable.js';
export type { RoomTarget, ServerEvents, Session, SessionEndReason } from './session.js';
export type { ServerStats } from './hub.js';
export type { Authenticate, Identity } from './identity.js';
export { MemoryStore, type MemoryStoreOptions, type Address, type MembershipChange, type MessageStore, type StoreEvents, type NewMessage, type ReadResult, type StoredMessage } from './store.js';
export { UnbrokenServerError, UnbrokenTypeError, type ArgumentErrorCode, type ServerErrorCode } from './errors.js';
export type { Listener } from './emitter.js';
export type { PollConnectionRecord, SessionState, SharedSession, SharedStore, Signal } from './shared-state.js';
export type { TicketGrant } from './tickets.js';
// Only the protocol's types a server's user meets; the wire format's helpers are the package's own
// (docs/PROTOCOL.md describes the format for anyone who writes another implementation).
export type { ErrorCode, GapReason, JsonValue, Payload, TransportName } from '../protocol/index.js';
