/**
 * Racing (PROTOCOL.md §13.3): an attempt that has not said `hello` when its head start is over gets a
 * rival on the next transport of the list, for the same session; the first to say `hello` is kept
 * and the other closed at once. A healthy link never meets its race: the timer is set when its ticket
 * arrives and cleared by its `hello`.
 *
 * Both attempts name one session: the rival presents the session the first attempt's ticket answer
 * named (§3.4.name-session), which the server counts as one new session whichever ticket creates it
 * (§3.4.one-session). A server that names no session gets no race from a client without a session.
 */
import { CloseCode } from '../protocol/index.js';
import { Attempt } from './attempt.js';
import type { StateMachine } from './client-state.js';
import type { UnbrokenError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { SessionName, Ticket } from './ticket.js';
import type { TransportFactory } from './transport.js';
import type { TransportChangeReason } from './events.js';
import { nextTransport, type FailedConnect, type TransportSelector } from './transport-selector.js';

/**
 * The head start of an attempt, from its ticket's arrival, is at least this many round trips of the
 * ticket request: a WebSocket's `hello` takes about three more (TCP, TLS, the upgrade), so a slow but
 * healthy network does not start a race its first transport would win.
 */
export const RACE_ROUND_TRIPS = 4;

/** Ms from the arrival of an attempt's ticket to the start of its rival: `raceAfter`, or more on a slow network. */
export function headStart(raceAfter: number, ticketRoundTrip: number): number {
  return Math.max(raceAfter, RACE_ROUND_TRIPS * ticketRoundTrip);
}

/** How an attempt that said no `hello` failed, from its code: what the `transport` event's reason is made of. */
export function howFailed(a: Attempt, code: UnbrokenError['code']): FailedConnect {
  return code === 'CONNECT_TIMEOUT' ? { kind: 'timeout', linkUp: a.linkUpAt !== undefined } : { kind: 'refused' };
}

/** What a {@link Race} needs of the client core. */
export interface RaceHost {
  readonly options: ResolvedOptions;
  readonly selector: TransportSelector;
  readonly state: StateMachine;
  /** Starts attempt `a`: its connect deadline, its ticket for `session`, then its link made by `make`. */
  begin(a: Attempt, make: TransportFactory, session: SessionName | null): void;
  /** Reports the failure of an attempt that was dropped while the other one carries on. */
  dropped(error: UnbrokenError): void;
}

/** Starts, settles and breaks off the races of one client. Changes the client state only through {@link RaceHost.state}. */
export class Race {
  readonly #host: RaceHost;

  constructor(host: RaceHost) {
    this.#host = host;
  }

  /**
   * The ticket of `a` arrived: when `a` is the client's only attempt, sets the end of its head start,
   * unless racing is off, no session is named, or the connect deadline would come first.
   */
  arm(a: Attempt, ticket: Ticket, presented: SessionName | null): void {
    const { state, options } = this.#host;
    const current = state.current;
    a.named = ticket.session ?? presented ?? undefined;
    if (current.kind === 'open' || state.attempt() !== a || state.rival() || options.raceAfter <= 0 || !a.named) return;
    const { connectTimeout } = options;
    const wait = headStart(options.raceAfter, ticket.roundTrip);
    if (a.ticketAt !== undefined && a.ticketAt - a.startedAt + wait >= connectTimeout) return;
    a.schedule('race', () => this.#startRival(a, a), wait);
  }

  /** Starts a rival of `primary` on the transport after `after`'s, presenting the session `primary` named. */
  #startRival(primary: Attempt, after: Attempt): void {
    const { state, options, selector } = this.#host;
    const current = state.current;
    const next = nextTransport(after.name, selector.available(options.environment()));
    if (!next || current.kind === 'open' || current.kind === 'closed' || state.attempt() !== primary) return;
    const rival = new Attempt(next.name, next.bufferable, options.clock, primary.after);
    state.enter({ kind: current.kind, attempt: primary, rival }, null);
    this.#host.begin(rival, next.make, primary.named ?? null);
  }

  /**
   * `a` failed before its `hello`. While it races another attempt, drops it and returns true: the
   * other carries on alone (after a rival failed to connect, the transport after the rival's starts
   * in its place). Returns false when `a` races nothing: the client fails as it would without races.
   */
  drop(a: Attempt, error: UnbrokenError): boolean {
    const { state } = this.#host;
    const current = state.current;
    const rival = state.rival();
    const primary = state.attempt();
    if (!rival || !primary || current.kind === 'open' || current.kind === 'closed' || (a !== rival && a !== primary)) return false;
    if (a === primary) {
      // The rival takes over; if it says `hello`, it is there because of how the first one failed.
      this.#takeOver(primary, rival, this.#host.selector.leftReason(primary.name, howFailed(primary, error.code)));
      this.#host.dropped(error);
      return true;
    }
    a.dispose(CloseCode.Reconnecting);
    state.enter({ kind: current.kind, attempt: primary }, null);
    this.#host.dropped(error);
    // A rival whose transport failed to connect (not its ticket request) hands over to the next one.
    const connectFailure = error.code === 'TRANSPORT_ERROR' || error.code === 'CONNECT_TIMEOUT';
    if (connectFailure && a.ticketAt !== undefined) this.#startRival(primary, a);
    return true;
  }

  /** Drops `primary` for `rival`, which becomes the client's only attempt and its route, with `reason`. */
  #takeOver(primary: Attempt, rival: Attempt, reason: TransportChangeReason): void {
    const { state, selector } = this.#host;
    const kind = state.kind;
    if (kind !== 'connecting' && kind !== 'reconnecting') return;
    primary.dispose(CloseCode.Reconnecting);
    selector.follow({ name: rival.name, reason });
    state.enter({ kind, attempt: rival }, null);
  }

  /**
   * `a` said `hello`: the other attempt of the race, if any, is closed at once, and the client keeps
   * `a` as its only attempt; returns true. A rival that won becomes the route, named after what the
   * first attempt showed until then (§13.3).
   *
   * Returns false, and drops `a` for its rival, when `a` is a stream a proxy may hold back whose link
   * was up, silent, when the race began: such a stream is held back, and its `hello` arrives now
   * because the rival attached and the server ended it (§3.3.supersede), which released the buffer.
   */
  settle(a: Attempt): boolean {
    const { state, selector } = this.#host;
    const current = state.current;
    const rival = state.rival();
    const primary = state.attempt();
    if (!rival || !primary || current.kind === 'open' || current.kind === 'closed') return true;
    if (a === primary && a.bufferable && a.linkUpAt !== undefined && a.linkUpAt <= rival.startedAt) {
      this.#takeOver(primary, rival, selector.leftReason(primary.name, { kind: 'timeout', linkUp: true }));
      return false;
    }
    const reason = selector.leftReason(primary.name, { kind: 'timeout', linkUp: primary.linkUpAt !== undefined });
    const loser = a === rival ? primary : rival;
    if (a === rival) selector.follow({ name: a.name, reason });
    // The loser's request may still attach and supersede `a` (a held-back stream is released by
    // exactly that): then the loser's transport got through, and the client goes there at once.
    a.ifSuperseded = a === rival ? null : { name: rival.name, reason };
    loser.dispose(CloseCode.Reconnecting);
    state.enter({ kind: current.kind, attempt: a }, null);
    return true;
  }
}
