/**
 * When the client leaves an open transport without a failure (PROTOCOL.md §13.3): back up to the
 * upgrade transport after a probe succeeded (§7.1.1), or on to the next one when the stream check
 * finds the open stream held back. The client core makes the move; this decides when.
 */
import type { Attempt } from './attempt.js';
import type { ScheduleEvent } from './events.js';
import type { Liveness } from './liveness.js';
import type { ResolvedOptions } from './options.js';
import { StreamCheck } from './stream-check.js';
import { UPGRADE_ROUTE, bufferedRoute, type Route, type TransportSelector } from './transport-selector.js';

/** What the moves need from the client core. */
export interface MovesHost {
  readonly options: ResolvedOptions;
  /** The base URL of the endpoint. */
  readonly url: string;
  readonly selector: TransportSelector;
  readonly liveness: Liveness;
  /** Whether `a` is the open attempt. */
  isOpen(a: Attempt): boolean;
  /** Leaves the open attempt `a` for `route` at once; the session carries over. */
  moveTo(a: Attempt, route: Route, cause: 'upgrade' | 'buffered'): void;
  /** Emits a `schedule` event. */
  scheduled(event: ScheduleEvent): void;
}

/** The upgrade probe and the stream check of one client's open attempts. */
export class Moves {
  readonly #host: MovesHost;
  /** Delay of the next upgrade probe. */
  #probeDelay: number;

  constructor(host: MovesHost) {
    this.#host = host;
    this.#probeDelay = host.options.upgradeInterval;
  }

  /**
   * While on a fallback, probes the upgrade transport now and then with a session-less round trip
   * (§7.1.1), and moves the session back to it only after one succeeded.
   */
  scheduleProbe(a: Attempt): void {
    const host = this.#host;
    const { upgradeInterval, connectTimeout, clock } = host.options;
    const probe = host.selector.upgradeProbe(a.name, host.options.environment());
    if (!upgradeInterval || !probe) return;
    const delay = this.#probeDelay;
    a.schedule(
      'probe',
      () => {
        a.stopProbe = probe(host.url, connectTimeout, clock, (worked) => {
          a.stopProbe = undefined;
          if (!host.isOpen(a)) return;
          if (worked) {
            this.#probeDelay = upgradeInterval;
            host.moveTo(a, UPGRADE_ROUTE, 'upgrade');
          } else {
            this.#probeDelay = Math.min(this.#probeDelay * 2, upgradeInterval * 16);
            this.scheduleProbe(a);
          }
        });
      },
      delay,
    );
    host.scheduled({ kind: 'upgrade-probe', delay, at: clock.now() + delay });
  }

  /** Checks that the open stream of `a` is live, not held back by a proxy (§13.3). */
  checkStream(a: Attempt): void {
    const host = this.#host;
    const check = new StreamCheck({
      clock: host.options.clock,
      ping: (pong, answered) => void host.liveness.sendPing(a, pong, () => {}, answered),
      heldBack: () => {
        if (!host.isOpen(a)) return;
        const route = bufferedRoute(a.name, host.selector.available(host.options.environment()));
        // With no transport left to try, a late stream is still better than none.
        if (route) host.moveTo(a, route, 'buffered');
      },
    });
    a.streamCheck = check;
    check.start();
  }
}
