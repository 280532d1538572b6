import { CONNECTION_HEADER, Endpoint } from '../../protocol/index.js';
import { randomHex, type FetchLike, type TransportDefinition, type TransportFactory } from '../transport.js';
import { httpLink } from './http-link.js';
import { shareable } from './shared.js';

/**
 * Answers in a row that came at once with no message, after which polls are spaced (§13.5): a
 * server answering every poll at once must not drive the client into a busy loop.
 */
export const QUICK_ANSWERS = 3;
/** An answer within this many ms of its poll counts as at once. */
export const QUICK_ANSWER_MS = 100;
/** Least ms between the starts of two polls after {@link QUICK_ANSWERS} quick, empty answers in a row. */
export const POLL_GAP = 1_000;

/**
 * The long-polling transport (PROTOCOL.md §7.4): one `GET P/poll` in flight, never on an interval;
 * `POST P/send` upstream (§7.3).
 *
 * The next poll starts once the core has handled the previous answer, so its URL carries the cursor
 * that answer moved. The first poll carries the attempt's ticket (§3.4); every poll carries this
 * transport's own connection id in the `X-Unbroken-Connection` header, never in the URL. The server
 * continues a connection only for that id and the cursor its answers left the client at; it answers
 * any other poll with a new connection's `hello`, so a `hello` after the first poll means the link
 * was replaced under this attempt: it fails, and the core starts afresh.
 */
export const longPolling =
  (fetch: FetchLike): TransportFactory =>
  (url, handlers, context) => {
    const { clock } = context;
    let wait: unknown;
    const link = httpLink(fetch, url, handlers, context, () => clock.clearTimeout(wait));
    // A secret: whoever holds it could read this connection's stream (§3.4). 128 random bits.
    const id = randomHex(16);
    const headers = { [CONNECTION_HEADER]: id };
    let quick = 0;
    const poll = (later: boolean): void => {
      const startedAt = clock.now();
      link
        .request(url(Endpoint.poll, later ? undefined : context.ticket), { headers }, () => later || handlers.onOpen())
        .then((text) => {
          const empty = !text.includes('"msg"');
          link.deliver(text, later);
          quick = empty && clock.now() - startedAt < QUICK_ANSWER_MS ? quick + 1 : 0;
          if (!link.live()) return;
          if (quick < QUICK_ANSWERS) return poll(true);
          wait = clock.setTimeout(() => link.live() && poll(true), Math.max(0, startedAt + POLL_GAP - clock.now()));
        })
        .catch(link.fail);
    };
    poll(false);
    return link.transport;
  };

/** Long polling (§7.4). A poll answer is a whole response: a buffering proxy passes it on when it ends. */
export const longPollingTransport: TransportDefinition = {
  name: 'long-polling',
  make: (env) => env.fetch && shareable('long-polling', env, longPolling(env.fetch)),
  stalled: 'timeout',
  bufferable: false,
};
