/**
 * What a client sends on its downstream connection (a WebSocket): batches of messages, pings, `auth`
 * and `bye` frames, processed in order (docs/PROTOCOL.md §5, §8, §12.1). The same rules for `POST
 * P/send` live in the hub (`processUpstream`); both hand messages over through `ServerSession.process`.
 */
import { ProtocolViolation } from '../protocol/index.js';
import type { UpstreamFrame } from './connection.js';
import type { Downlink } from './downlink.js';
import { UnbrokenServerError } from './errors.js';
import type { SessionHub } from './hub.js';
import { countMessages } from './session.js';

/** Processes a batch that arrived on `link`. */
export function receiveUpstream(link: Downlink, hub: SessionHub, frames: readonly UpstreamFrame[]): void {
  const cluster = hub.cluster;
  if (cluster === null) {
    process(link, hub, frames, () => link.isClosed);
    return;
  }
  // §8 across processes: the batch's messages are claimed in the store before any is handed over —
  // and once claimed they are handed over even if the link closed meanwhile.
  cluster.claim(link.session, frames, () => process(link, hub, frames, () => false)).then(
    (known) => {
      if (!known) cluster.lost(link.session);
    },
    (error: unknown) => {
      if (error instanceof ProtocolViolation) {
        link.close({ kind: 'error', code: 'PROTOCOL_ERROR', message: error.message });
        return;
      }
      hub.fail(new UnbrokenServerError('STORE_ERROR', `a batch of session ${link.session.id} could not be marked processed`, { cause: error }));
      link.close({ kind: 'error', code: 'INTERNAL_ERROR', message: 'the server could not reach its store; resume' });
    },
  );
}

function process(link: Downlink, hub: SessionHub, frames: readonly UpstreamFrame[], stop: () => boolean): void {
  const session = link.session;
  let result: { messages: boolean; bye: boolean };
  try {
    const request = link.request;
    result = session.process(
      frames,
      (frame) => link.reply(frame),
      stop,
      (credentials) => request && hub.reauthenticate(session, { link, request, credentials }),
    );
  } catch (error) {
    const message = error instanceof ProtocolViolation ? error.message : 'the batch could not be processed';
    link.close({ kind: 'error', code: 'PROTOCOL_ERROR', message });
    return;
  }
  // §8: after every batch with messages, duplicates included, an ack of the highest processed.
  if (result.messages) link.acknowledge();
  if (result.bye) {
    session.end('bye');
    return;
  }
  // §12.1: past its inbound rate the session is slowed, not refused: the adapter stops reading
  // this link until the budget is back, so the client's outbox simply waits.
  const wait = session.takeInbound(countMessages(frames), hub.options.now());
  if (wait > 0) link.connection.pauseReading?.(wait);
}
