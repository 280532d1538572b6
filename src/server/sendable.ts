/**
 * Which application types can be message data (docs/PROTOCOL.md §4.3): JSON values and bytes, checked
 * at compile time. Types only; nothing here exists at run time.
 */
import type { Payload } from '../protocol/index.js';

/** What JSON cannot hold: `JSON.stringify` throws on these, drops them, or turns them into `null`. */
type Unsendable = undefined | void | symbol | bigint | ((...args: never) => unknown);

/**
 * A type that holds `T` exactly when every value of `T` can be message data: a JSON value or bytes.
 * Use it as `T extends Sendable<T>`.
 *
 * Unlike {@link Payload}, it takes `interface` types, which have no index signature: `interface Chat
 * { text: string }` is sendable. It rejects, at any depth, functions (and so class instances with
 * methods, `Date`, `Map`), `symbol`, `bigint`, and `undefined` where JSON would not leave it out: at
 * the top level and as an array element (where it would arrive as `null`). An optional or `undefined`
 * object property is fine: JSON leaves the key out, and the receiver reads `undefined` all the same.
 *
 * What no type can show is checked when sending (`INVALID_DATA`): cycles, and nesting deeper than
 * `MAX_DATA_DEPTH`.
 *
 * @example
 * function relay<T extends Sendable<T>>(server: UnbrokenServer<unknown, T>, data: T) {
 *   return server.broadcast(data);
 * }
 */
// Written so that `T extends Sendable<T>` is a legal constraint: no conditional type here has `T`
// itself as a branch, which would make the constraint circular (TS2313). Members are checked by a
// homomorphic mapped type instead, which maps scalars to themselves and arrays to arrays. Payload
// types are taken as they are: mapping the recursive `JsonValue` would go too deep (TS2589).
export type Sendable<T> = [T] extends [Payload]
  ? Payload
  : SendableMembers<T> & ([Extract<T, Unsendable>] extends [never] ? unknown : never);

/** `T` with every member checked: bytes as they are, array elements, object properties. */
type SendableMembers<T> = {
  [K in keyof T]: T extends Uint8Array ? T[K] : T extends readonly unknown[] ? Sendable<T[K]> : SendableProperty<T[K]>;
};

/** An object property may be `undefined`: JSON leaves the key out. */
type SendableProperty<V> = V extends undefined ? V : Sendable<V>;
