/**
 * One connection of a session, seen from the core: its queue, the replay seam (docs/PROTOCOL.md §6.3),
 * batching (§4.1), acks (§8), heartbeats (§11), the buffer bound (§12) and its part of graceful
 * shutdown (§10.2). It is the {@link ConnectionHandle} its adapter reports through.
 */
import { encodeBatch, type ErrorCode, type GapFrame, type HelloFrame, type ServerFrame } from '../protocol/index.js';
import type http from 'node:http';
import type { CloseReason, Connection, ConnectionHandle, UpstreamFrame } from './connection.js';
import { UnbrokenServerError } from './errors.js';
import { textQueueItem, type MessageEncodings, type QueuedItem } from './encoding.js';
import type { SessionHub } from './hub.js';
import type { ServerSession } from './session.js';
import { receiveUpstream } from './upstream.js';
import type { StoredMessage } from './store.js';
import { LinkQueue, MAX_BATCH_CHARS, MAX_POLL_BATCH_CHARS } from './link-queue.js';
import { ReplaySeam } from './replay-seam.js';
import type { TicketIssue } from './tickets.js';

/** Answers a parked link keeps for its unpark. */
const MAX_PARKED_REPLIES = 8;

/** One connection of a session: its queue, the replay seam and its timers' timestamps. */
export class Downlink implements ConnectionHandle {
  readonly session: ServerSession;
  readonly connection: Connection;
  /** The request that opened the link, for `authenticate` on a WebSocket's `auth` frames (§3.5); null without `authenticate` (it weighs more than an idle link). */
  readonly request: http.IncomingMessage | null;
  readonly #hub: SessionHub;
  readonly #binaryFrames: boolean;
  /**
   * opening: before hello · replaying: hello queued, seam buffer active · live · parked: the queue
   * was dropped, the next `resume()` replays from the cursor (§12.1) · closed
   */
  #state: 'opening' | 'replaying' | 'live' | 'parked' | 'closed' = 'opening';
  /** Counts replays of this link (the first and one per unpark); a replay of an older count stops. */
  #replays = 0;
  readonly #queue: LinkQueue;
  /** Live messages that arrived while the store was read (§6.3); null while none did, as on an idle link. */
  #seam: ReplaySeam | null = null;
  #cursor: string | null = null;
  /** Highest ack this link told its client (hello.ack included). */
  #acked = 0;
  #flushScheduled = false;
  #idleSince: number;
  #probedAt: number;
  #roomWaiter: (() => void) | null = null;
  #gone = false;
  /** Answers that came while parked (see `reply`); made when the first comes. */
  #parkedReplies: ServerFrame[] | null = null;
  /** The ack an unpark queued with no answer beside it; dropped if nothing joins it (`settle`). */
  #unparkAck: QueuedItem | null = null;
  readonly #address: string;
  /** When it attached (ms, the hub's clock): which of two connections of a session is newer (cluster.ts). */
  readonly attachedAt: number;
  /** The place of the ticket that admitted it (§3.3.stale); null for a connection continued from another process. */
  readonly issue: TicketIssue | null;

  constructor(
    session: ServerSession,
    connection: Connection,
    hub: SessionHub,
    address: string,
    request: http.IncomingMessage | null,
    issue: TicketIssue | null = null,
    maxBatchBytes?: number,
  ) {
    this.session = session;
    this.issue = issue;
    this.#queue = new LinkQueue(maxBatchBytes);
    this.#address = address;
    this.connection = connection;
    this.request = hub.options.authenticate === null ? null : request;
    this.#hub = hub;
    this.#binaryFrames = connection.writeBinary !== undefined;
    this.#idleSince = this.#probedAt = this.attachedAt = hub.options.now();
  }

  /**
   * Continues a long-polling connection another process served (cluster.ts): parked at `cursor`,
   * where the client stands, so its poll reads the stream from the store (§12.1), with an ack.
   */
  continueFrom(cursor: string): void {
    this.#cursor = cursor;
    this.#state = 'parked';
    this.#replays++;
  }

  get cursor(): string | null {
    return this.#cursor;
  }

  get isParked(): boolean {
    return this.#state === 'parked';
  }

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** The replay that is current: a replay loop started under another number stops. */
  get replayCount(): number {
    return this.#replays;
  }

  /** True when replay number `n` must stop: the link closed, parked, or began a newer replay. */
  replayStopped(n: number): boolean {
    return this.#state === 'closed' || this.#state === 'parked' || this.#replays !== n;
  }

  /** The client address this link counts against (§12.1). */
  get address(): string {
    return this.#address;
  }

  get seamLength(): number {
    return this.#seam?.length ?? 0;
  }

  /** Replay waits for room below this many buffered bytes. */
  get lowWater(): number {
    return this.#hub.options.maxBufferedBytes / 2;
  }

  /** Bytes this connection holds: queued, in the seam buffer, and in the link's own buffer. */
  pressure(): number {
    return this.#queue.bytes + (this.#seam?.bytes ?? 0) + this.connection.bufferedBytes();
  }

  // -- ConnectionHandle -------------------------------------------------------------------------

  receive(frames: readonly UpstreamFrame[]): void {
    if (this.#state === 'closed') return; // §8: nothing is processed after the close frame
    receiveUpstream(this, this.#hub, frames);
  }

  /** §8: queues an ack of the highest processed, also when this link told its client as much already. */
  acknowledge(): void {
    this.#enqueueAck(true);
  }

  /** §7.3.one-request: an ack of what an upstream request carried, when a write of this link is pending anyway. */
  acknowledgeAlong(): void {
    if (this.#flushScheduled) this.#enqueueAck();
  }

  abort(code: ErrorCode, message: string): void {
    this.close({ kind: 'error', code, message });
  }

  resume(): void {
    if (this.#state === 'closed') return;
    this.#idleSince = this.#hub.options.now();
    if (this.#state === 'parked') {
      this.#unpark();
      return;
    }
    this.flush();
    this.#wakeIfRoom();
  }

  closed(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#detach();
    this.#hub.linkGone(this);
  }

  // -- used by the hub --------------------------------------------------------------------------

  /** A stored message of this session's stream was appended; `encoded` is shared by its recipients. */
  push(encoded: MessageEncodings): void {
    if (this.#state === 'closed' || this.#state === 'parked') return;
    const item = this.#itemOf(encoded);
    if (item === undefined) return;
    if (this.#state !== 'live') {
      (this.#seam ??= new ReplaySeam()).add(item);
      this.#checkBound();
      return;
    }
    this.#enqueue(item);
  }

  /** The hello (and gap) go first, ahead of anything queued meanwhile (§4, §6.3). */
  open(hello: HelloFrame, gap: GapFrame | undefined): void {
    const first: QueuedItem[] = [textQueueItem(JSON.stringify(hello))];
    if (gap) first.push(textQueueItem(JSON.stringify(gap)));
    this.#queue.unshift(first);
    this.#cursor = hello.cursor;
    this.#acked = Math.max(this.#acked, hello.ack);
    this.#state = 'replaying';
    this.#replays++;
    this.#scheduleFlush();
  }

  /** Queues a message the replay read from the store. */
  enqueueMessage(message: StoredMessage): void {
    const item = this.#itemOf(this.#hub.encodings(message));
    if (item !== undefined) this.#enqueue(item);
  }

  /** Ends the replay if the seam can be placed (§6.3, `ReplaySeam.place`); false when the caller must read once more. */
  settle(lastReplayed: string | undefined, mark: number): boolean {
    if (this.#state === 'closed' || this.#state === 'parked') return true;
    const after = this.#seam === null ? [] : this.#seam.place(lastReplayed, mark);
    if (after === null) return false;
    this.#seam = null;
    this.#state = 'live';
    for (const item of after) this.#enqueue(item);
    // What was queued during the replay goes out now, even when the seam added nothing; an unpark's
    // ack alone is dropped (`#unpark`), so the poll waits for a message or the heartbeat, as every poll does.
    if (this.#unparkAck !== null && this.#queue.length === 1 && this.#queue.first() === this.#unparkAck) this.#queue.clear();
    this.#unparkAck = null;
    if (this.#queue.length > 0) this.#scheduleFlush();
    return true;
  }

  /** Queues a control frame that answers the client (a `pong` to a ping that came over HTTP, §7.3). */
  reply(frame: ServerFrame): void {
    if (this.#state === 'parked') {
      // A parked link dropped its queue, but an answer cannot be read again from the store: it waits
      // for the unpark (a few at most: one per ping of the client's, which pings one at a time).
      const replies = (this.#parkedReplies ??= []);
      replies.push(frame);
      if (replies.length > MAX_PARKED_REPLIES) replies.shift();
      return;
    }
    this.#enqueueFrame(frame);
  }

  /** Resolves once the link holds at most `lowWater` bytes, or closed or parked. */
  room(): Promise<void> {
    this.flush();
    if (this.#state === 'closed' || this.#state === 'parked' || this.pressure() <= this.lowWater) return Promise.resolve();
    return new Promise((resolve) => {
      this.#roomWaiter = resolve;
    });
  }

  /** Sweep: heartbeat when idle, liveness probe every `hb` (§7.1, §11). */
  tick(now: number): void {
    if (this.#state === 'closed') return;
    const { heartbeatInterval } = this.#hub.options;
    const due = heartbeatInterval - this.#hub.sweep.interval;
    if (
      this.#state !== 'opening' &&
      this.#queue.length === 0 &&
      this.connection.writable() &&
      now - this.#idleSince >= due
    ) {
      this.#enqueueFrame({ t: 'hb' });
      this.flush();
    }
    if (now - this.#probedAt >= due) {
      this.#probedAt = now;
      this.connection.probe?.();
    }
  }

  /** §10.2: a reconnect notice, everything processed acknowledged (acks are queued already), close. */
  shutdown(ms: number): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'parked') this.#state = 'live'; // nothing is replayed any more: the notice goes out
    if (this.#state === 'opening') {
      this.close({ kind: 'error', code: 'SERVER_RESTART', message: 'the server is shutting down' });
      return;
    }
    this.#enqueueAck();
    const reconnect: ServerFrame = { t: 'reconnect', ms };
    this.#enqueueFrame(reconnect);
    this.flush();
    if (this.isClosed) return; // the flush hit the buffer bound and closed already
    const notice = encodeBatch([{ t: 'ack', s: this.session.processed }, reconnect]);
    // A link that could not write parks when these frames pass its bound, and drops them: not written.
    this.close({ kind: 'restart', notice, written: !this.isParked && this.#queue.length === 0 });
  }

  /**
   * Closes the link. What is queued goes out first, with an ack of everything the session processed
   * (§8: a server acknowledges what it processed before closing) — except when the close is about
   * the buffer bound itself.
   */
  close(reason: CloseReason): void {
    if (this.#state === 'closed') return;
    if (!(reason.kind === 'error' && reason.code === 'BACKPRESSURE')) {
      this.#enqueueAck();
      this.flush();
      if (this.isClosed) return; // the flush hit the buffer bound and closed already
    }
    this.#detach();
    this.connection.close(reason);
  }

  /** Writes what is queued, in as few batches as the size limit allows. */
  flush(): void {
    this.#write(0);
  }

  /** Writes batches while at least `keep` bytes are queued (0: everything). */
  #write(keep: number): void {
    if (this.#state === 'opening' || this.#state === 'closed') return;
    let wrote = false;
    // Only a replay waits for room (`room()`): live writes ask for no completion callback.
    const notify = this.#state === 'replaying';
    const asBytes = this.connection.writeTextBytes !== undefined;
    // A poll's answer may be larger than a stream's batch (see MAX_POLL_BATCH_CHARS).
    const maxChars = this.connection.polled ? MAX_POLL_BATCH_CHARS : MAX_BATCH_CHARS;
    while (this.#queue.length > 0 && this.#queue.bytes >= keep && this.connection.writable()) {
      const next = this.#queue.take(asBytes, maxChars)!;
      if (next.kind === 'binary') {
        this.#cursor = next.id;
        this.connection.writeBinary!(next.frame, notify);
      } else if (next.kind === 'batch-bytes') {
        const { bytes, lastMessageId } = next;
        if (lastMessageId !== undefined) this.#cursor = lastMessageId;
        this.connection.writeTextBytes!(lastMessageId === undefined ? { bytes, notify } : { bytes, lastMessageId, notify });
      } else {
        const { text, lastMessageId } = next;
        if (lastMessageId !== undefined) this.#cursor = lastMessageId;
        this.connection.write(lastMessageId === undefined ? { text, notify } : { text, lastMessageId, notify });
      }
      wrote = true;
      if (this.isClosed) return; // the adapter reported the link gone during the write
    }
    if (wrote) this.#idleSince = this.#hub.options.now();
    this.#checkBound();
  }

  // -- internals --------------------------------------------------------------------------------

  /** Queues a cumulative ack; unless `always`, only when this link has not told its client as much. */
  #enqueueAck(always = false): void {
    const s = this.session.processed;
    if (this.#state === 'closed' || (!always && (s <= this.#acked || this.#state === 'opening'))) return;
    this.#acked = s;
    this.#enqueueFrame({ t: 'ack', s });
  }

  #enqueueFrame(frame: ServerFrame): void {
    if (this.#state === 'closed') return;
    this.#enqueue(textQueueItem(JSON.stringify(frame)));
  }

  #enqueue(item: QueuedItem): void {
    if (this.#state === 'closed' || this.#state === 'parked') return;
    this.#queue.push(item);
    if (this.#parkIfIdle()) return;
    if (this.#checkBound()) return;
    // On a stream, a full batch does not wait for the end of the turn: a burst sent in one loop
    // (thousands of sends) then leaves as it is made, and the client reads it meanwhile, instead of
    // every message and its encoding staying queued until the loop ends (garbage collection pays for
    // that). What is left, less than a batch, goes out at the end of the turn as before. A replay
    // writes only as the connection has room (`room()`). A poll takes one answer: written early,
    // it would leave the rest of the turn to a connection that cannot write, which parks the link
    // (§12.1) and sends the client to the store for what was queued here (`Connection.polled`).
    if (this.#state === 'live' && this.#queue.bytes >= MAX_BATCH_CHARS && !this.connection.polled) {
      this.#write(MAX_BATCH_CHARS);
    }
    if (this.#queue.length > 0) this.#scheduleFlush();
  }

  /**
   * §12.1: a link that cannot write and holds more than a little drops its queue and parks; its next
   * `resume()` reads the stream from the store from `cursor`, where the client stands. Returns true
   * if it parked.
   */
  #parkIfIdle(): boolean {
    if (this.#state !== 'live' && this.#state !== 'replaying') return false;
    if (!this.#queue.pastIdleBound || this.connection.writable()) return false;
    this.#state = 'parked';
    this.#queue.clear();
    this.#seam = null;
    // A replay waiting for room stops (it sees a newer replay count once unparked, or the park).
    this.#wakeIfRoom();
    return true;
  }

  /** A poll came for a parked link: read the stream again from where the client stands. */
  #unpark(): void {
    this.#state = 'replaying';
    this.#replays++;
    // What the dropped queue may have held: the ack of everything processed (a duplicate is harmless),
    // and the answers that came meanwhile, sent with the replay's first batch. The ack alone answers
    // no poll (`settle`): the POSTs' answers gave it (§7.3), and polls a balancer moves between
    // processes (§3.6) would each come back at once, until the client spaced them out (§13.5).
    const frames: ServerFrame[] = this.session.processed > 0 ? [{ t: 'ack', s: this.session.processed }] : [];
    if (this.session.processed > 0) this.#acked = this.session.processed;
    if (this.#parkedReplies) frames.push(...this.#parkedReplies);
    const items = frames.map((frame) => textQueueItem(JSON.stringify(frame)));
    this.#unparkAck = this.#parkedReplies === null && items.length === 1 ? items[0]! : null;
    this.#parkedReplies = null;
    for (const item of items) this.#queue.push(item);
    this.#hub.replay(this, this.#cursor!);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#hub.scheduleFlush(this);
  }

  /** @internal The flush scheduled for this link runs (see `Links.scheduleFlush`). */
  flushScheduled(): void {
    this.#flushScheduled = false;
    this.flush();
    this.#wakeIfRoom();
  }

  /** §12: closes with BACKPRESSURE when the link holds more than the bound. Returns true if it closed. */
  #checkBound(): boolean {
    if (this.#state === 'closed') return true;
    if (this.pressure() <= this.#hub.options.maxBufferedBytes) return false;
    this.close({ kind: 'error', code: 'BACKPRESSURE', message: 'the client read too slowly; resume to get the rest' });
    return true;
  }

  #wakeIfRoom(): void {
    if (this.#roomWaiter && (this.#state === 'closed' || this.#state === 'parked' || this.pressure() <= this.lowWater)) {
      const wake = this.#roomWaiter;
      this.#roomWaiter = null;
      wake();
    }
  }

  /** Closed from now on: nothing queued, a replay waiting for room stops, the session has no link. */
  #detach(): void {
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#queue.clear();
      this.#seam = null;
      this.#wakeIfRoom();
    }
    if (this.session.link === this) {
      this.session.link = null;
      this.session.detachedAt = this.#hub.options.now();
    }
  }

  /** The message as this link queues it; undefined (reported) when it cannot be encoded. */
  #itemOf(encoded: MessageEncodings): QueuedItem | undefined {
    try {
      return encoded.item(this.#binaryFrames);
    } catch (error) {
      // Only data changed by the application after it was sent can fail here.
      const { id } = encoded.message;
      this.#hub.fail(new UnbrokenServerError('ENCODE_ERROR', `message ${id} could not be encoded`, { cause: error }));
      return undefined;
    }
  }
}
