/**
 * Replay (docs/PROTOCOL.md §6): a new connection reads its stream from the store, page by page, after
 * its `hello`, and meets live delivery at the seam (§6.3, placed by `Downlink.settle()`); a parked
 * long-polling link reads it again when its client comes back (§12.1).
 */
import type { GapFrame, HelloFrame } from '../protocol/index.js';
import type { ConnectParams } from './connection.js';
import type { Downlink } from './downlink.js';
import { UnbrokenServerError } from './errors.js';
import type { SessionHub } from './hub.js';
import type { ReadResult } from './store.js';

/**
 * §3.3.same-id-fresh: the store forgets what it holds addressed to the id of a session being created
 * (the id is no secret). Before the session is registered: when it fails at once, the connection
 * closes and no session is made, so none can later be resumed unforgotten; `null` then. When it fails
 * later, the session ends with it. A store shared by processes forgets as it creates the session.
 */
export function forgetEarlier(hub: SessionHub, link: Downlink): Promise<void> | undefined | null {
  const { session } = link;
  let forgotten: void | Promise<void>;
  try {
    forgotten = hub.options.store.forget?.(session.id);
  } catch (error) {
    replayFailed(hub, link, error);
    return null;
  }
  if (!forgotten) return undefined;
  // Told first, then ended: the client reads why (INTERNAL_ERROR) before its session goes.
  return forgotten.then(undefined, (error: unknown) => {
    replayFailed(hub, link, error);
    session.end('closed');
    throw TOLD;
  });
}

/** The rejection of a start whose failure was reported and acted on already. */
const TOLD = Symbol('told');

/** Messages per store read while replaying. */
const REPLAY_PAGE = 500;

/** Opens `link`: its `hello` (and `gap`) once the stream's start is known, then the replay from there. */
export async function openStream(hub: SessionHub, link: Downlink, params: ConnectParams, resumed: boolean, start: Promise<string>): Promise<void> {
  const { store } = hub.options;
  const session = link.session;
  try {
    // The link is already subscribed (it is the session's link): live messages wait in its seam
    // buffer while the store is read.
    const after = await start;
    if (link.isClosed) return;
    const mark = link.seamLength;
    const page = await store.read(session.id, after, REPLAY_PAGE);
    if (link.isClosed) return;
    const hello: HelloFrame = {
      t: 'hello',
      v: params.version,
      sid: session.id,
      key: session.key,
      resumed,
      ack: session.processed,
      hb: hub.options.heartbeatInterval,
      retry: hub.options.retry,
      max: hub.options.maxMessageSize,
      cursor: page.cursor,
    };
    const gap: GapFrame | undefined = page.gap && { t: 'gap', reason: page.gap, after, cursor: page.cursor };
    link.open(hello, gap);
    await replayPages(hub, link, page, mark);
  } catch (error) {
    if (error !== TOLD) replayFailed(hub, link, error);
  }
}

/**
 * A parked link's client came back (§12.1): replays its stream from `after`, the cursor the client
 * stands at, as a resume would — without a new `hello`, since the connection goes on.
 */
export function replayFrom(hub: SessionHub, link: Downlink, after: string): void {
  const mark = link.seamLength;
  const n = link.replayCount;
  hub.options.store
    .read(link.session.id, after, REPLAY_PAGE)
    .then((page) => {
      if (link.replayStopped(n)) return;
      if (page.gap) {
        // Retention overtook the parked client: it resumes and is told the gap in its hello.
        link.close({ kind: 'error', code: 'BACKPRESSURE', message: 'the stream moved past this connection; resume' });
        return;
      }
      return replayPages(hub, link, page, mark);
    })
    .catch((error: unknown) => replayFailed(hub, link, error));
}

/** Queues the messages of `page` and the pages after it, then ends the replay at the seam (§6.3). */
async function replayPages(hub: SessionHub, link: Downlink, first: ReadResult, firstMark: number): Promise<void> {
  const session = link.session;
  const n = link.replayCount;
  let page = first;
  let mark = firstMark;
  let after = page.cursor;
  let lastReplayed: string | undefined;
  for (;;) {
    for (const message of page.messages) {
      if (link.pressure() > link.lowWater) await link.room();
      if (link.replayStopped(n)) return;
      link.enqueueMessage(message);
      lastReplayed = after = message.id;
    }
    if (link.replayStopped(n)) return;
    if (!page.more && link.settle(lastReplayed, mark)) return;
    mark = link.seamLength;
    page = await hub.options.store.read(session.id, after, REPLAY_PAGE);
    if (link.replayStopped(n)) return;
    if (page.gap) {
      // Retention overtook this replay. The client resumes and is told the gap in its hello.
      link.close({ kind: 'error', code: 'BACKPRESSURE', message: 'the stream moved past this replay; resume' });
      return;
    }
  }
}

function replayFailed(hub: SessionHub, link: Downlink, error: unknown): void {
  hub.fail(new UnbrokenServerError('STORE_ERROR', `reading the stream of session ${link.session.id} failed`, { cause: error }));
  link.close({ kind: 'error', code: 'INTERNAL_ERROR', message: 'the server could not read the stream' });
}
