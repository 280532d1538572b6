/**
 * Which application types can be message data (PROTOCOL.md §4.3), checked at compile time, for the
 * client's `send()` and the server's messages alike. Types only; nothing here exists at run time.
 */

/** What JSON cannot hold: `JSON.stringify` throws on these, drops them, or turns them into `null`. */
type Unsendable = undefined | void | symbol | bigint | ((...args: never) => unknown);

/**
 * A type that holds `T` exactly when every value of `T` is `Base` (the data one side takes as it is:
 * JSON values and its kinds of `Bytes`), or can be sent as it. Used as `T extends CheckedData<T, …>`.
 *
 * Unlike `Base`, it takes `interface` types, which have no index signature: `interface Chat { text:
 * string }` is sendable. It rejects, at any depth, functions (and so class instances with methods,
 * `Date`, `Map`), `symbol`, `bigint`, and `undefined` where JSON would not leave it out: at the top
 * level and as an array element (where it would arrive as `null`). An optional or `undefined` object
 * property is fine: JSON leaves the key out, and the receiver reads `undefined` all the same.
 */
// Written so that `T extends CheckedData<T, …>` is a legal constraint: no conditional type here has
// `T` itself as a branch, which would make the constraint circular (TS2313). Members are checked by a
// homomorphic mapped type instead, which maps scalars to themselves and arrays to arrays. `Base` types
// are taken as they are: mapping the recursive `JsonValue` would go too deep (TS2589).
export type CheckedData<T, Base, Bytes> = [T] extends [Base]
  ? Base
  : CheckedMembers<T, Base, Bytes> & ([Extract<T, Unsendable>] extends [never] ? unknown : never);

/** `T` with every member checked: bytes as they are, array elements, object properties. */
type CheckedMembers<T, Base, Bytes> = {
  [K in keyof T]: T extends Bytes ? T[K] : T extends readonly unknown[] ? CheckedData<T[K], Base, Bytes> : CheckedProperty<T[K], Base, Bytes>;
};

/** An object property may be `undefined`: JSON leaves the key out. */
type CheckedProperty<V, Base, Bytes> = V extends undefined ? V : CheckedData<V, Base, Bytes>;
