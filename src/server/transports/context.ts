/** What every transport adapter is given by the server. */
import type { OriginCheck } from '../http.js';
import type { SessionHub } from '../session.js';

export interface TransportContext {
  readonly hub: SessionHub;
  readonly originAllowed: OriginCheck;
  /** Largest frame or request body accepted, in bytes (`hello.max`). */
  readonly maxMessageSize: number;
  /** `hello.retry`, also the SSE `retry:` field. */
  readonly retry: number;
  readonly heartbeatInterval: number;
  readonly now: () => number;
}
