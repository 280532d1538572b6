/**
 * The fallback order as data (PROTOCOL.md §13.3): every transport, in the default order, with a
 * probe that returns its factory when it can run in the given environment.
 */
import type { TransportEnvironment, TransportFactory, TransportName } from './transport.js';
import { longPolling } from './transports/long-polling.js';
import { sse } from './transports/sse.js';
import { webSocket } from './transports/websocket.js';

const TRANSPORTS: { readonly [N in TransportName]: (env: TransportEnvironment) => TransportFactory | undefined } = {
  websocket: (env) => env.WebSocket && webSocket(env.WebSocket),
  sse: (env) => env.EventSource && env.fetch && sse(env.EventSource, env.fetch),
  'long-polling': (env) => env.fetch && longPolling(env.fetch),
};

/**
 * What it means when a transport's link came up but no `hello` followed within the deadline: a
 * WebSocket that opens and then passes nothing is `silent`; an SSE response whose events never arrive
 * is held by a `buffered` proxy (PROTOCOL.md §13.3).
 */
export const STALLED: { readonly [N in TransportName]: 'silent' | 'buffered' | 'timeout' } = {
  websocket: 'silent',
  sse: 'buffered',
  'long-polling': 'timeout',
};

/** The default fallback order. */
export const DEFAULT_TRANSPORTS = Object.keys(TRANSPORTS) as TransportName[];

/** Throws a `TypeError` when `names` is empty or names an unknown transport. */
export function checkTransports(names: readonly string[]): void {
  const unknown = names.find((name) => !Object.hasOwn(TRANSPORTS, name));
  if (!names.length || unknown !== undefined) {
    throw new TypeError(`unbroken: transports expects names among ${DEFAULT_TRANSPORTS.join(', ')}, got ${JSON.stringify(names)}`);
  }
}

/** A transport that can run here. */
export interface AvailableTransport {
  name: TransportName;
  make: TransportFactory;
}

/** The transports of `names` that can run in `env`, in the order of `names`. */
export function availableTransports(names: readonly TransportName[], env: TransportEnvironment): AvailableTransport[] {
  const found: AvailableTransport[] = [];
  for (const name of names) {
    const make = TRANSPORTS[name](env);
    if (make) found.push({ name, make });
  }
  return found;
}
