/** What every transport adapter is given by the server. */
import type { AdmissionContext } from '../http.js';
import type { Authenticate } from '../identity.js';
import type { TicketStore } from '../tickets.js';

export interface TransportContext extends AdmissionContext {
  /** Largest frame or request body accepted, in bytes (`hello.max`). */
  readonly maxMessageSize: number;
  /** How long an upstream request body may take to arrive, in ms (§12.1). */
  readonly bodyTimeout: number;
  /** `hello.retry`, also the SSE `retry:` field. */
  readonly retry: number;
  readonly heartbeatInterval: number;
  readonly now: () => number;
  /** Tickets that admit downstream requests (§3.4). */
  readonly tickets: TicketStore;
  /** The application's check of a client (§3.5); null without one. */
  readonly authenticate: Authenticate | null;
}
