/**
 * Which application types can be message data (PROTOCOL.md §4.3), checked at compile time, for the
 * client's `send()` and the server's messages alike. Types only; nothing here exists at run time.
 */

/** What JSON cannot hold: `JSON.stringify` throws on these, drops them, or turns them into `null`. */
type Unsendable = undefined | void | symbol | bigint | ((...args: never) => unknown);

/**
 * A type that holds `T` exactly when every value of `T` can be sent: `Base` as it is (JSON values and
 * the side's kinds of `Bytes`), or an `interface` or object type whose members all can, at any depth.
 * What it rejects, and why, the public types that use it say: the client's and the server's
 * `Sendable`. Used as `T extends CheckedData<T, …>`.
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
