/**
 * Fresh credentials from a client's `auth` frame (docs/PROTOCOL.md §3.5), checked with the
 * application's `authenticate`, one check per session at a time.
 */
import type http from 'node:http';
import type { JsonValue } from '../protocol/index.js';
import type { Downlink } from './downlink.js';
import { asServerError, type UnbrokenServerError } from './errors.js';
import { authenticateRequest, identityId, type Authenticate, type Identity } from './identity.js';
import type { ServerSession } from './session.js';

/** Fresh credentials waiting for `authenticate` (§3.5). */
export interface Reauthentication {
  /** The connection that asked; it is closed when they are refused and it is still the session's. */
  readonly link: Downlink | null;
  readonly request: http.IncomingMessage;
  readonly credentials: JsonValue | undefined;
}

/** The checks of fresh credentials running now, by session. */
export class Reauthentications {
  /** Per session, the credentials checked after the ones `authenticate` is checking now: one at a time, the latest wins. */
  readonly #running = new Map<ServerSession, { next: Reauthentication | undefined }>();
  readonly #authenticate: Authenticate | null;
  readonly #now: () => number;
  /** Takes a fresh identity for the session (the hub's, which also tells other processes). */
  readonly #adopt: (session: ServerSession, identity: Identity) => void;
  /** Reports an `AUTH_UNAVAILABLE` or `INVALID_IDENTITY` error (the server's `error` event, a few at most). */
  readonly #fail: (error: UnbrokenServerError) => void;
  /** Has the session's connection asked again for fresh credentials, here or at the process that holds it. */
  readonly #askAgain: (session: ServerSession) => void;

  constructor(
    authenticate: Authenticate | null,
    now: () => number,
    adopt: (session: ServerSession, identity: Identity) => void,
    fail: (error: UnbrokenServerError) => void,
    askAgain: (session: ServerSession) => void,
  ) {
    this.#authenticate = authenticate;
    this.#now = now;
    this.#adopt = adopt;
    this.#fail = fail;
    this.#askAgain = askAgain;
  }

  /**
   * §3.5: checks the fresh credentials of a client `auth` frame with `authenticate` and, for the same
   * user, adopts the identity; otherwise closes the connection that carried them with UNAUTHORIZED.
   * One check per session runs at a time; credentials arriving meanwhile wait, only the latest kept,
   * so a client cannot pile up calls to the application's hook.
   */
  start(session: ServerSession, job: Reauthentication): void {
    const authenticate = this.#authenticate;
    // Without `authenticate` there is nothing to refresh: the frame has no effect.
    if (authenticate === null) return;
    const running = this.#running.get(session);
    if (running) {
      running.next = job;
      return;
    }
    const state: { next: Reauthentication | undefined } = { next: undefined };
    this.#running.set(session, state);
    void (async () => {
      for (let current: Reauthentication | undefined = job; current; current = state.next, state.next = undefined) {
        let identity: Identity | null;
        try {
          identity = await authenticateRequest(authenticate, current.request, current.credentials, this.#now, this.#fail);
        } catch (error) {
          // AUTH_UNAVAILABLE: no refusal. The connection goes on with the identity it has and is asked
          // again while it lasts; at its expiry it closes as an unanswered refresh does, and the client
          // reconnects, its ticket request checked again (answered INTERNAL_ERROR while the check fails).
          this.#fail(error as UnbrokenServerError);
          if (session.ended) break;
          if (state.next === undefined) this.#askAgain(session);
          continue;
        }
        if (session.ended) break;
        if (identity !== null && identity.id === identityId(session.user)) this.#adopt(session, identity);
        else if (current.link !== null && session.link === current.link) {
          current.link.close({ kind: 'error', code: 'UNAUTHORIZED', message: 'the fresh credentials were refused' });
        }
      }
    })()
      // An identity whose getters throw on a later read, say: reported, and the next frame is checked.
      .catch((error: unknown) => this.#fail(asServerError('INTERNAL_ERROR', `checking fresh credentials of session ${session.id} failed`, error)))
      .finally(() => this.#running.delete(session));
  }
}
