/** What every transport adapter is given by the server. */
import type http from 'node:http';
import { admit, type Admission, type OriginCheck } from '../http.js';
import type { SessionHub } from '../hub.js';
import type { Authenticate } from '../identity.js';
import type { TicketStore } from '../tickets.js';

export interface TransportContext {
  readonly hub: SessionHub;
  readonly originAllowed: OriginCheck;
  /** Largest frame or request body accepted, in bytes (`hello.max`). */
  readonly maxMessageSize: number;
  /** `hello.retry`, also the SSE `retry:` field. */
  readonly retry: number;
  readonly heartbeatInterval: number;
  readonly now: () => number;
  /** Tickets that admit downstream requests (§3.4). */
  readonly tickets: TicketStore;
  /** The application's check of a client (§3.5); null without one. */
  readonly authenticate: Authenticate | null;
}

/**
 * Admits a request of any transport: Origin and version (§3.1, §3.2), then shutdown (§10.2). The
 * caller answers a refusal in its transport's way.
 */
export function admitRequest(context: TransportContext, request: http.IncomingMessage, url: URL): Admission {
  const admission = admit(request, url, context.originAllowed);
  if (admission.ok && !context.hub.accepting) {
    return { ok: false, code: 'SERVER_RESTART', message: 'the server is shutting down' };
  }
  return admission;
}
