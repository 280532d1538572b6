import type { ErrorCode } from '../protocol/index.js';

/**
 * The one error class of the client. Every failure carries a stable {@link ErrorCode} from the table
 * in docs/PROTOCOL.md §9; branch on `code`, not on `message`.
 *
 * `cause` holds what went wrong underneath, when there is something: the `ProtocolViolation` of a
 * malformed frame, the `TypeError` of `JSON.stringify`, or, for `CLIENT_CLOSED`, the fatal error that
 * closed the client.
 */
export class UnbrokenError extends Error {
  override readonly name = 'UnbrokenError';

  constructor(
    /** Stable, machine-readable code (PROTOCOL.md §9). */
    readonly code: ErrorCode,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/**
 * True for an {@link UnbrokenError}, also one thrown by another copy of the library (it checks the
 * name, not the prototype).
 */
export function isUnbrokenError(value: unknown): value is UnbrokenError {
  return value instanceof Error && value.name === 'UnbrokenError';
}
