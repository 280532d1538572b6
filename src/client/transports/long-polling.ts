import { Endpoint, QueryParam } from '../../protocol/index.js';
import type { FetchLike, TransportFactory } from '../transport.js';
import { httpLink } from './http-link.js';

/**
 * The long-polling transport (PROTOCOL.md §7.4): one `GET P/poll` in flight, never on an interval;
 * `POST P/send` upstream (§7.3).
 *
 * The next poll starts once the core has handled the previous answer, so its URL carries the cursor
 * that answer moved. The server continues a connection only for the cursor its answers left the
 * client at, and only for polls carrying this transport's own connection id `c` — a new attempt is a
 * new connection even when its cursor is the same. The server answers any other poll with a new
 * connection's `hello`; a `hello` after the first poll thus means the link was replaced under this
 * attempt: it fails, and the core starts afresh.
 */
export const longPolling =
  (fetch: FetchLike): TransportFactory =>
  (url, handlers) => {
    const link = httpLink(fetch, url, handlers, () => {});
    const id = Math.random().toString(36).slice(2);
    const poll = (later: boolean): void => {
      link
        .request(`${url(Endpoint.poll)}&${QueryParam.connection}=${id}`, undefined, () => later || handlers.onOpen())
        .then((text) => {
          link.deliver(text, later);
          if (link.live()) poll(true);
        })
        .catch(link.fail);
    };
    poll(false);
    return link.transport;
  };
