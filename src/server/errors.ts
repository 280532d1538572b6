/**
 * Errors of the server API. Every one has a stable string `code` to branch on; the wire codes of
 * docs/PROTOCOL.md §9 are a separate table (`ErrorCode` in src/protocol).
 */

/** Codes of {@link UnbrokenTypeError}: a call was given something it cannot use. */
export type ArgumentErrorCode =
  /** An event name that breaks PROTOCOL.md §4.2 (1–128 characters, no CR, LF or NUL). */
  | 'INVALID_EVENT_NAME'
  /** Data that is neither JSON-serialisable nor a Uint8Array/Buffer. */
  | 'INVALID_DATA'
  /** A server option out of its range. */
  | 'INVALID_OPTION'
  /** A room name that is empty, longer than 128 characters or holds a control character (§6.5). */
  | 'INVALID_ROOM'
  /** `session.join()` past the server's `maxRoomsPerSession`. */
  | 'TOO_MANY_ROOMS';

/** Codes of {@link UnbrokenServerError}. */
export type ServerErrorCode =
  /** `broadcast()` or `send()` after `close()`. */
  | 'SERVER_CLOSED'
  /**
   * `send()` on a session that ended: a session created under its id later is another client's
   * (§3.3.same-id-fresh), so nothing reaches it.
   */
  | 'SESSION_ENDED'
  /** A listener of the server's events threw; `cause` is what it threw. */
  | 'LISTENER_ERROR'
  /** The store failed while the server replayed a stream; `cause` is the store's error. */
  | 'STORE_ERROR'
  /**
   * A stored message could not be encoded for the wire (its data was changed into something that is
   * not JSON after it was sent) and was skipped; `cause` is the encoder's error.
   */
  | 'ENCODE_ERROR'
  /**
   * Thrown by the application's `authenticate` when it cannot check a client now (its user database
   * is down): the client is answered `INTERNAL_ERROR` and tries again with its backoff, instead of
   * being refused, and the server reports the error on its `error` event. Any other throw refuses.
   */
  | 'AUTH_UNAVAILABLE'
  /**
   * `authenticate` returned something that is neither an identity (`{ id, expiresAt? }`, `id` a
   * string of 1–256 characters, `expiresAt` in ms since the epoch) nor a refusal (`null`,
   * `undefined`): a number as `id`, an `expiresAt` in seconds, as a duration or as a `Date`. The client is refused
   * as if `authenticate` had refused it, and the server reports it (a few at most).
   */
  | 'INVALID_IDENTITY'
  /** The server failed on its own while it delivered a message or handled a signal of another process (a defect); `cause` is what was thrown. */
  | 'INTERNAL_ERROR';

/** Thrown synchronously by a call given an invalid argument (a programmer error). */
export class UnbrokenTypeError extends TypeError {
  override readonly name = 'UnbrokenTypeError';
  readonly code: ArgumentErrorCode;

  constructor(code: ArgumentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A failure of the server at run time: a rejected call, or what the server's `error` event reports. */
export class UnbrokenServerError extends Error {
  override readonly name = 'UnbrokenServerError';
  readonly code: ServerErrorCode;

  constructor(code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** What was thrown or rejected with, as text: `String()` itself throws on some values (`Object.create(null)`). */
export function describeThrown(thrown: unknown): string {
  try {
    return String(thrown);
  } catch {
    return Object.prototype.toString.call(thrown);
  }
}

/**
 * `thrown` as the server's `error` event reports it: itself when it is an {@link UnbrokenServerError},
 * else an error with `code` whose message ends with what was thrown and whose `cause` it is.
 */
export function asServerError(code: ServerErrorCode, what: string, thrown: unknown): UnbrokenServerError {
  return thrown instanceof UnbrokenServerError ? thrown : new UnbrokenServerError(code, `${what}: ${describeThrown(thrown)}`, { cause: thrown });
}
