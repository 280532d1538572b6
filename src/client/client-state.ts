/**
 * The client's state as a union whose variants hold what each state owns (PROTOCOL.md §13.1), and
 * the one place it changes: every change of kind is checked against {@link TRANSITIONS} and emitted.
 */
import type { Attempt } from './attempt.js';
import type { ErrorCode } from '../protocol/index.js';
import type { UnbrokenError } from './errors.js';
import { TRANSITIONS, type ConnectionState, type StateCause, type StateEvent } from './events.js';

/**
 * What the client holds in each state: an attempt under way (and the attempt racing it on the next
 * transport, §13.3) or the timer of the next one while connecting or reconnecting (with the code of
 * the failure it follows), the attempt that said `hello` while open, and the error that closed
 * it (`null`: `close()` was called) once closed.
 */
export type ClientState =
  | { readonly kind: 'connecting' | 'reconnecting'; readonly attempt: Attempt; readonly rival?: Attempt }
  | { readonly kind: 'connecting' | 'reconnecting'; readonly timer: unknown; readonly after?: ErrorCode }
  | { readonly kind: 'open'; readonly attempt: Attempt }
  | { readonly kind: 'closed'; readonly error: UnbrokenError | null };

/** `a` unless it was disposed: a disposed attempt is nobody's current attempt. */
const notDisposed = (a: Attempt | undefined): Attempt | undefined => (a?.disposed ? undefined : a);

/** Holds a client's {@link ClientState}. Its queries change nothing; {@link StateMachine.enter} is the only change. */
export class StateMachine {
  #state: ClientState = { kind: 'connecting', timer: undefined };
  readonly #emit: (event: StateEvent) => void;

  constructor(emit: (event: StateEvent) => void) {
    this.#emit = emit;
  }

  get current(): ClientState {
    return this.#state;
  }

  get kind(): ConnectionState {
    return this.#state.kind;
  }

  // The two queries below read a field that only some states have, as an optional one: `'attempt' in
  // state` would narrow the same, but a name written as a string cannot be shortened in the bundle.

  /** The current attempt, if one is under way or open and not disposed. */
  attempt(): Attempt | undefined {
    return notDisposed((this.#state as { attempt?: Attempt }).attempt);
  }

  /** The attempt racing the current one on the next transport (§13.3, "Racing"), if any and not disposed. */
  rival(): Attempt | undefined {
    return notDisposed((this.#state as { rival?: Attempt }).rival);
  }

  /** Whether `a` is the current attempt or its rival: the handlers of any other attempt do nothing. */
  holds(a: Attempt): boolean {
    return this.attempt() === a || this.rival() === a;
  }

  /** The attempt that said `hello`, while open. */
  openAttempt(): Attempt | undefined {
    return this.#state.kind === 'open' ? this.attempt() : undefined;
  }

  /**
   * Moves to `next`; a change of kind is checked against {@link TRANSITIONS} and emitted with `cause`
   * (`null`: the kind stays, e.g. the next attempt of the same reconnection). An illegal move is a bug
   * and throws.
   */
  enter(next: ClientState, cause: StateCause | null): void {
    const from = this.#state.kind;
    if (from !== next.kind && (cause === null || !TRANSITIONS[from].includes(next.kind))) {
      throw new Error(`unbroken: illegal transition from ${from} to ${next.kind}`);
    }
    this.#state = next;
    if (from !== next.kind) this.#emit({ from, to: next.kind, cause: cause! });
  }
}
