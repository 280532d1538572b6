/**
 * The entry point of the client: {@link connect} makes a {@link Client} and starts connecting.
 */
import { Client } from './client.js';
import type { Sendable } from './events.js';
import type { ClientOptions } from './options.js';

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
export function connect<Incoming = unknown, Outgoing extends Sendable = Sendable>(
  url: string,
  options?: ClientOptions,
): Client<Incoming, Outgoing> {
  return new Client<Incoming, Outgoing>(url, options);
}
