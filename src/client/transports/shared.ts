import { CloseCode, Endpoint } from '../../protocol/index.js';
import { UnbrokenError } from '../errors.js';
import { CARRIER_WAIT, groupFor, type GroupEnvironment } from '../tab-group.js';
import type { Transport, TransportCloseInfo, TransportEnvironment, TransportFactory } from '../transport.js';
import { UPSTREAM_HEADERS, httpLink } from './http-link.js';

/**
 * How a link ends when the carrier of its tabs changes hands (§7.5): no fault of the network, so the
 * client reconnects at once, on the group's next carrier. 1006: closed without a protocol reason.
 */
const handover = (message: string): TransportCloseInfo => ({ code: 1006, error: new UnbrokenError('TRANSPORT_ERROR', message), handover: true });

/**
 * An SSE or long-polling link whose downstream is a channel of the carrier its tab group shares
 * (PROTOCOL.md §7.5): the ticket and upstream requests are this tab's own, as on a stream of its own;
 * `POST P/attach` opens the session's connection on the carrier with the attempt's ticket, and the
 * session's batches arrive from the holder tab. When the group has no carrier to offer (none opened,
 * a version-1 server, a carrier on another server process), the attempt connects on its own through
 * `own`, as if sharing were off.
 */
export const shared =
  (transport: 'sse' | 'long-polling', env: Omit<GroupEnvironment, 'clock'>, own: TransportFactory): TransportFactory =>
  (url, handlers, context) => {
    const group = groupFor({ ...env, clock: context.clock }, url('').split('?')[0]!, transport);
    const channel = group.channel();
    const stop = group.join();
    /** Set when the link ends because the carrier changed hands (§7.5). */
    let handedOver = false;
    /**
     * Ends this attempt's use of the group; after a handover only CARRIER_WAIT ms later. Its client
     * comes back at once, and its tab keeps its place meanwhile — its turn in line, or the carrier
     * it holds: leaving at once made the holder's lock pass from tab to tab as their links ended and
     * came back, each new holder opening a carrier it gave up at once.
     */
    const leave = (): unknown => (handedOver ? context.clock.setTimeout(stop, CARRIER_WAIT) : stop());
    let carrier: string | null = null;
    let stopListening = (): void => {};
    let alone: Transport | undefined;
    const link = httpLink(env.fetch, url, handlers, context, () => {
      stopListening();
      // A tab that goes on alone stays in the group: in line to hold the carrier, and told when one opens.
      if (alone === undefined) leave();
      if (carrier !== null) group.detach(carrier, channel);
    });
    /**
     * Goes on without the group: the link above ends silently, its ticket still unused. When a carrier
     * other than `refused` opens later, the link of its own gives way to it: the session reconnects at
     * once, through the group, and the connection it held goes back to the browser's pool.
     */
    const connectAlone = (refused: string | null): void => {
      const mine = own(url, handlers, context);
      alone = mine;
      link.transport.close(CloseCode.Reconnecting);
      const stopWatching = group.watch((id) => {
        if (id === refused || alone !== mine) return;
        stopWatching();
        mine.close(CloseCode.Reconnecting);
        handedOver = true;
        handlers.onClose(handover('the tabs share a connection again'));
      });
      stopAlone = stopWatching;
    };
    let stopAlone = (): void => {};

    void group.carrier(() => link.live() && handlers.onOpen()).then((id) => {
      if (!link.live()) return;
      if (id === null) return connectAlone(null);
      carrier = id;
      stopListening = group.listen(channel, id, {
        deliver: link.deliver,
        gone: () => {
          carrier = null;
          handedOver = true;
          link.fail(handover('the shared connection ended'));
        },
      });
      const body = JSON.stringify({ carrier: id, channel });
      const heard = group.heard;
      const attached = (): void => {
        handlers.onOpen();
        group.watchHolder(id, heard, () => carrier === id && link.live());
      };
      link.request(url(Endpoint.attach, context.ticket), { method: 'POST', headers: UPSTREAM_HEADERS, body }, attached).catch((error: unknown) => {
        // The carrier ended meanwhile, or lives on another server process: the ticket was not used.
        if (error instanceof UnbrokenError && error.code === 'UNKNOWN_SESSION' && link.live()) {
          carrier = null;
          connectAlone(id);
          // It may also have ended because its holder hung and stopped polling it (§13.6).
          group.suspect(id);
        } else link.fail(error);
      });
    });

    return {
      binary: false,
      send: (data, answered) => (alone ?? link.transport).send(data, answered),
      close: (code) => {
        stopAlone();
        (alone ?? link.transport).close(code);
        leave();
      },
      sharing: () => (alone || carrier === null ? null : group.holding ? 'holder' : 'follower'),
    };
  };

/**
 * The HTTP transports hold one of the browser's six connections per host each: where Web Locks and
 * BroadcastChannel exist, the tabs share one (§7.5), and `own` serves when they cannot. A WebSocket
 * does not count against that limit, so each tab keeps its own.
 */
export function shareable(transport: 'sse' | 'long-polling', env: TransportEnvironment, own: TransportFactory): TransportFactory {
  const { locks, BroadcastChannel, EventSource, fetch } = env;
  return locks && BroadcastChannel && fetch ? shared(transport, { locks, BroadcastChannel, EventSource, fetch }, own) : own;
}
