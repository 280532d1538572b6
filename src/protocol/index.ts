/** The wire format of protocol version 1, shared by client and server (docs/PROTOCOL.md). */
export * from './frames.js';
export * from './codes.js';
export * from './codec.js';
export * from './carrier.js';
export type * from './sendable.js';
