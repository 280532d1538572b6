/**
 * The entry point of the client: {@link connect} makes a {@link Client} — a {@link BaseClient} with
 * every transport, chosen by name — and starts connecting.
 */
import { BaseClient } from './client.js';
import type { Sendable } from './events.js';
import type { BaseClientOptions, ClientOptions } from './options.js';
import type { ClientTransport, TransportDefinition } from './transport.js';
import { longPollingTransport as longPollingDefinition } from './transports/long-polling.js';
import { sseTransport as sseDefinition } from './transports/sse.js';
import { webSocketTransport as webSocketDefinition } from './transports/websocket.js';

// What an application gives a `BaseClient`: the transports, as the opaque `ClientTransport` (its
// brand exists in types only, so that no other object type-checks as one).
/** WebSocket (PROTOCOL.md §7.1), for a {@link BaseClient}'s `transports`. */
export const webSocketTransport = webSocketDefinition as unknown as ClientTransport;
/** Server-Sent Events with `POST` upstream (§7.2), for a {@link BaseClient}'s `transports`. */
export const sseTransport = sseDefinition as unknown as ClientTransport;
/** HTTP long polling with `POST` upstream (§7.4), for a {@link BaseClient}'s `transports`. */
export const longPollingTransport = longPollingDefinition as unknown as ClientTransport;

/** Every transport, in the default fallback order (PROTOCOL.md §13.3). */
const BUILT_IN: readonly TransportDefinition[] = [webSocketDefinition, sseDefinition, longPollingDefinition];

/**
 * A real-time connection that stays unbroken, on every transport: WebSocket first, falling back to
 * SSE and long polling (or the ones `options.transports` names). Made by {@link connect}.
 *
 * @typeParam Incoming - the data of the messages the application receives (not checked at run time)
 * @typeParam Outgoing - what `send()` accepts: JSON values or bytes, or a narrower type of them
 */
export class Client<Incoming = unknown, Outgoing extends Sendable<Outgoing> = Sendable> extends BaseClient<Incoming, Outgoing> {
  /** Same as {@link connect}. */
  constructor(url: string, options: ClientOptions = {}) {
    // `?.`: plain JavaScript may pass `null`, which the default does not replace.
    const listed = options?.transports;
    // A name becomes its definition; an imported transport is one already. What is neither (an
    // unknown name) stays as it is, for the check of the transports to name it (a TypeError), as
    // does what is not a list (a single name).
    const definitions = listed === undefined ? BUILT_IN : Array.isArray(listed) ? listed.map((entry) => BUILT_IN.find((t) => t.name === entry) ?? entry) : listed;
    // The application's object stays the one read, through the prototype: the implementations
    // (`WebSocket`, `fetch`…) are looked up on it at each attempt, getters and later changes included.
    super(url, Object.create(options, { transports: { value: definitions } }) as BaseClientOptions);
  }
}

/**
 * Connects to an unbroken server and keeps the connection: WebSocket first, falling back to SSE and
 * long polling, resuming the stream after every reconnection. Starts connecting at once.
 *
 * @param url - the http(s) URL of the server's endpoint, e.g. `https://example.com/realtime`, or a
 * path resolved against the page's location, e.g. `/realtime`. The WebSocket URL is derived from it.
 * @typeParam Incoming - the data of the messages received (not checked at run time)
 * @typeParam Outgoing - what `send()` accepts; JSON values and bytes by default
 *
 * @example
 * ```ts
 * import { connect } from 'unbroken-realtime';
 *
 * const client = connect<{ text: string }, { text: string }>('/realtime');
 * client.on('message:chat', ({ data }) => console.log(data.text));
 * client.on('state', ({ to, cause }) => console.log(to, cause));
 * await client.send({ text: 'hello' }); // resolves once the server processed it
 * ```
 */
export function connect<Incoming = unknown, Outgoing extends Sendable<Outgoing> = Sendable>(
  url: string,
  options?: ClientOptions,
): Client<Incoming, Outgoing> {
  return new Client<Incoming, Outgoing>(url, options);
}
