/**
 * Which application types can be message data (docs/PROTOCOL.md §4.3): JSON values and bytes, checked
 * at compile time. Types only; nothing here exists at run time.
 */
import type { CheckedData, Payload } from '../protocol/index.js';

/**
 * A type that holds `T` exactly when every value of `T` can be message data: a JSON value or bytes.
 * Use it as `T extends Sendable<T>`.
 *
 * Unlike {@link Payload}, it takes `interface` types, which have no index signature: `interface Chat
 * { text: string }` is sendable. It rejects, at any depth, functions (and so class instances with
 * methods, `Date`, `Map`), `symbol`, `bigint`, and `undefined` where JSON would not leave it out: at
 * the top level and as an array element (where it would arrive as `null`). An optional or `undefined`
 * object property is fine: JSON leaves the key out, and the receiver reads `undefined` all the same.
 * The client's `Sendable` makes the same check (`CheckedData` in the protocol's types).
 *
 * What no type can show is checked when sending (`INVALID_DATA`): cycles, and nesting deeper than
 * `MAX_DATA_DEPTH`.
 *
 * @example
 * function relay<T extends Sendable<T>>(server: UnbrokenServer<unknown, T>, data: T) {
 *   return server.broadcast(data);
 * }
 */
export type Sendable<T> = CheckedData<T, Payload, Uint8Array>;

/**
 * What `broadcast()` and `send()` of a server whose messages are `Outgoing` take: an `Outgoing`; and,
 * while `Outgoing` is the default ({@link Payload}), any `T` that {@link Sendable} holds — `interface`
 * types included, which the default's index signature would refuse.
 */
export type SendArgument<Outgoing, T> = [Payload] extends [Outgoing] ? Outgoing | (T & Sendable<T> & ({} | null)) : Outgoing;
