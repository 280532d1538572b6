/** What every transport adapter is given by the server. */
import type { AdmissionContext } from '../http.js';

export interface TransportContext extends AdmissionContext {
  /** Largest frame or request body accepted, in bytes (`hello.max`). */
  readonly maxMessageSize: number;
  /** How long an upstream request body may take to arrive, in ms (§12.1). */
  readonly bodyTimeout: number;
  /** `hello.retry`, also the SSE `retry:` field. */
  readonly retry: number;
  readonly heartbeatInterval: number;
  readonly now: () => number;
}
