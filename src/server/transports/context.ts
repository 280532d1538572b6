/** What every transport adapter is given by the server. */
import type http from 'node:http';
import { admit, answerError, type OriginCheck } from '../http.js';
import type { SessionHub } from '../hub.js';

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

/**
 * Admits an HTTP request of any transport: Origin and version (§3.1, §3.2), then shutdown. Answers
 * a refused request itself and returns `null`; else returns the protocol version to speak.
 */
export function admitHttp(
  context: TransportContext,
  request: http.IncomingMessage,
  response: http.ServerResponse,
  url: URL,
): number | null {
  const admission = admit(request, url, context.originAllowed);
  if (!admission.ok) {
    answerError(request, response, admission.code, admission.message);
    return null;
  }
  if (!context.hub.accepting) {
    answerError(request, response, 'SERVER_RESTART', 'the server is shutting down');
    return null;
  }
  return admission.version;
}
