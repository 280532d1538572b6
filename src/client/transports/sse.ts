import { Endpoint } from '../../protocol/index.js';
import type { EventSourceConstructor, FetchLike, TransportDefinition, TransportFactory } from '../transport.js';
import { httpLink } from './http-link.js';
import { shareable } from './shared.js';

/**
 * The SSE transport (PROTOCOL.md §7.2): an EventSource downstream, one batch per event; `POST P/send`
 * upstream (§7.3). The core owns reconnection: the EventSource is closed at its first error, so its
 * own reconnection (with a `Last-Event-ID` the core did not choose, and a used ticket) never runs.
 */
export const sse =
  (EventSource: EventSourceConstructor, fetch: FetchLike): TransportFactory =>
  (url, handlers, context) => {
    const source = new EventSource(url(Endpoint.sse, context.ticket));
    const link = httpLink(fetch, url, handlers, context, () => source.close());
    // `open` means the response headers arrived: the core tells a buffering proxy by a missing hello.
    source.onopen = () => link.live() && handlers.onOpen();
    source.onmessage = ({ data }) => link.deliver(data);
    // A browser's EventSource does not say why (no status): every error is a TRANSPORT_ERROR.
    source.onerror = () => link.fail();
    return link.transport;
  };

/** SSE (§7.2): a proxy may hold its stream back while letting it open, so an open stream is checked (§13.3). */
export const sseTransport: TransportDefinition = {
  name: 'sse',
  make: (env) => env.EventSource && env.fetch && shareable('sse', env, sse(env.EventSource, env.fetch)),
  stalled: 'buffered',
  bufferable: true,
};
