/**
 * The periodic pass over a hub's sessions (§3.3, §7.1, §11): each link sends a heartbeat when idle
 * and probes its peer, a visitor session another process serves is dropped when unused, a session
 * detached for longer than the session timeout ends; then the limits and the buffers get their
 * upkeep (§12.1). It runs only while the hub holds sessions, so an idle server keeps no timer.
 */
import type { SessionHub } from './hub.js';

export class SessionSweep {
  /**
   * How often it runs: an eighth of the shorter of `hb` and the session timeout (a link idle for
   * `hb` minus one sweep gets an `hb` frame, so none waits longer than `hb`), at least 5 ms.
   */
  readonly interval: number;
  readonly #hub: SessionHub;
  /** What else each pass does: the buffers' bound across every connection (links.ts). */
  readonly #upkeep: () => void;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(hub: SessionHub, upkeep: () => void) {
    const { heartbeatInterval, sessionTimeout } = hub.options;
    this.interval = Math.max(5, Math.floor(Math.min(heartbeatInterval, sessionTimeout) / 8));
    this.#hub = hub;
    this.#upkeep = upkeep;
  }

  /** Runs from now on, if it does not already (cluster.ts adds sessions without a link). */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#run(), this.interval);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #run(): void {
    const hub = this.#hub;
    const now = hub.options.now();
    for (const session of [...hub.sessions.values()]) {
      if (session.link) session.link.tick(now);
      else if (session.residency === 'visitor') hub.cluster?.sweep(session, now);
      else if (now - session.detachedAt >= hub.options.sessionTimeout) session.end('timeout');
    }
    hub.limits.prune();
    this.#upkeep();
  }
}
