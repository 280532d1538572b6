/**
 * Long-polling transport (docs/PROTOCOL.md §7.4): `GET P/poll`, one held request at a time, each
 * answered with one batch. Upstream goes through `POST P/send` (send.ts).
 *
 * A connection is a series of polls carrying the same connection id `c` in the
 * `X-Unbroken-Connection` header (never in the URL: it is a secret, §3.4). A poll with a ticket opens
 * a new connection, which begins with a `hello` and replays from `last` (§6.3). A poll without one
 * continues a connection only when its `c` is that connection's and its `last` is the cursor that
 * connection's answers left the client at; any other is refused with `UNAUTHORIZED`, and the client
 * gets a ticket and opens a new connection.
 *
 * The adapter keeps its own registry of open connections by session and connection id, so that it
 * answers "does this poll continue a connection" from its own objects and the handle the hub gave it.
 */
import type http from 'node:http';
import { CONNECTION_HEADER, QueryParam, encodeBatch, httpStatusFor, type ErrorCode } from '../../protocol/index.js';
import type { CloseReason, Connection, ConnectionHandle, TextBatch, TextBytes } from '../connection.js';
import { admit, admitRequest, answerBatch, answerError, queryValue } from '../http.js';
import type { ServerSession } from '../session.js';
import { SECRET_PATTERN, type TicketGrant } from '../tickets.js';
import type { TransportContext } from './context.js';
import { NO_TICKET, admitByTicket } from './ticket.js';
import type { Cluster, PreparedSession } from '../cluster.js';
import type { PollConnectionRecord } from '../shared-state.js';
import { UnbrokenServerError } from '../errors.js';

interface Poll {
  readonly request: http.IncomingMessage;
  readonly response: http.ServerResponse;
}

/** What a session ended by: the answer to a poll that finds no connection to continue (§7.4). */
const END_OF_CONNECTION = encodeBatch([{ t: 'hb' }]);

class LongPollConnection implements Connection {
  readonly transport = 'long-polling';
  readonly polled = true;
  readonly #context: TransportContext;
  /** Called once the connection can continue no poll: it leaves the adapter's registry. */
  readonly #forget: (connection: LongPollConnection) => void;
  #held: Poll | null = null;
  #handle: ConnectionHandle | null = null;
  #max: number | undefined;
  #closed = false;
  /**
   * What the connection's next continuing poll gets, owed since it closed while no poll was held:
   * - `notice`: §10.2, the `[ack, reconnect]` batch of a shutdown, so the client learns of the restart
   *   at once instead of by its heartbeat deadline;
   * - `refusal`: why it closed with UNAUTHORIZED (an identity that expired, a logout), within `2 × hb`
   *   (`due` forgets it), as a stream of its own would have been told at once (§7.4), rather than a
   *   refusal that names no reason.
   */
  #owed:
    | { readonly kind: 'notice'; readonly batch: string }
    | { readonly kind: 'refusal'; readonly code: ErrorCode; readonly message: string; readonly due: ReturnType<typeof setTimeout> }
    | null = null;
  /** When a poll last arrived or was answered (§11: dead after 2 × hb without a poll). */
  #lastSeen: number;

  constructor(context: TransportContext, forget: (connection: LongPollConnection) => void) {
    this.#context = context;
    this.#forget = forget;
    this.#lastSeen = context.now();
  }

  /** `max`: the largest batch its client reads, from the ticket that opened it (§4.1.size), kept for `grant()`. */
  bind(handle: ConnectionHandle, max?: number): void {
    this.#handle = handle;
    this.#max = max;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** The id of the session this connection belongs to, once connected. */
  get sessionId(): string | null {
    return this.#handle?.session.id ?? null;
  }

  /** What a poll that proved it is this connection's client may open: a new connection of the same session, as the same user. */
  grant(): TicketGrant | null {
    const session = this.#handle?.session as ServerSession | undefined;
    return session ? { sid: session.id, key: session.key, user: session.user, ...(this.#max === undefined ? {} : { max: this.#max }) } : null;
  }

  /** True when a poll with this `last` continues the connection (§7.4), or collects its shutdown notice. */
  continuedBy(last: string): boolean {
    return this.#handle !== null && this.#handle.cursor === last && (!this.#closed || this.#owed !== null);
  }

  /** Holds a poll of this connection. §7.4: a newer poll answers an older one with SUPERSEDED. */
  hold(request: http.IncomingMessage, response: http.ServerResponse): void {
    const owed = this.#owed;
    if (owed !== null) {
      this.#owed = null;
      this.#forget(this);
      if (owed.kind === 'notice') answerBatch(request, response, owed.batch);
      else {
        clearTimeout(owed.due);
        answerError(request, response, owed.code, owed.message);
      }
      return;
    }
    const older = this.#held;
    const poll: Poll = { request, response };
    this.#held = poll;
    this.#lastSeen = this.#context.now();
    if (older) answerError(older.request, older.response, 'SUPERSEDED', 'a newer poll of this session replaced this one');
    response.once('close', () => {
      // The client gave up on the poll (an answered poll is no longer held).
      if (this.#held !== poll) return;
      this.#held = null;
      this.#lastSeen = this.#context.now();
    });
    this.#handle?.resume();
  }

  writable(): boolean {
    return this.#held !== null && !this.#closed;
  }

  write(batch: TextBatch): void {
    const poll = this.#take();
    if (poll) answerBatch(poll.request, poll.response, batch.text);
  }

  writeTextBytes(batch: TextBytes): void {
    const poll = this.#take();
    if (poll) answerBatch(poll.request, poll.response, batch.bytes);
  }

  bufferedBytes(): number {
    return 0;
  }

  probe(): void {
    if (this.#closed || this.#held) return;
    if (this.#context.now() - this.#lastSeen < 2 * this.#context.heartbeatInterval) return;
    this.#closed = true;
    this.#forget(this);
    this.#handle?.closed();
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    const poll = this.#take();
    if (poll) {
      switch (reason.kind) {
        case 'error':
          // A code without a status of its own (BACKPRESSURE: the server holds too much for slow
          // readers, §12.1.total) is a passing unavailability, not a server fault (§9).
          answerError(poll.request, poll.response, reason.code, reason.message, httpStatusFor(reason.code, 503));
          break;
        case 'restart':
          answerError(poll.request, poll.response, 'SERVER_RESTART', 'the server is shutting down');
          break;
        case 'end':
          // The session ended: the client's next poll finds no connection and starts a new one.
          answerBatch(poll.request, poll.response, END_OF_CONNECTION);
          break;
      }
    }
    // A notice the core could not write (no poll held) waits for the next poll; once written, a
    // continuing poll is refused like any other once the server closed (§10.2).
    if (reason.kind === 'restart' && !reason.written && poll === null) this.#owed = { kind: 'notice', batch: reason.notice };
    // Only UNAUTHORIZED is owed: a connection closed for another reason (SUPERSEDED as it moved to
    // another process, say) is continued there, and its client's next poll must not meet the reason.
    else if (reason.kind === 'error' && reason.code === 'UNAUTHORIZED' && poll === null && this.#handle !== null) this.#owe(reason);
    else this.#forget(this);
    // Reported on the next microtask: `close` may run while the hub is still connecting this link.
    queueMicrotask(() => this.#handle?.closed());
  }

  #owe(refusal: { readonly code: ErrorCode; readonly message: string }): void {
    const due = setTimeout(() => {
      if (this.#owed?.kind !== 'refusal') return;
      this.#owed = null;
      this.#forget(this);
    }, Math.min(2 * this.#context.heartbeatInterval, 2 ** 31 - 1));
    due.unref();
    this.#owed = { kind: 'refusal', code: refusal.code, message: refusal.message, due };
  }

  #take(): Poll | null {
    const poll = this.#held;
    this.#held = null;
    this.#lastSeen = this.#context.now();
    return poll;
  }
}

/** Serves `GET P/poll` for one server. */
export class LongPollingTransport {
  readonly #context: TransportContext;
  /**
   * Connections a poll can continue, by connection id `c`. Each leaves when it closes, or, after a
   * shutdown, once its notice was collected.
   */
  readonly #connections = new Map<string, LongPollConnection>();

  constructor(context: TransportContext) {
    this.#context = context;
  }

  /** True when `request` is a poll that continues one of this server's connections, or collects its shutdown notice (§7.4, §10.2). */
  continues(request: http.IncomingMessage, url: URL): boolean {
    const { last, current } = this.#read(request, url);
    return current !== undefined && last !== null && current.continuedBy(last);
  }

  /** What a poll names: its connection id, cursor and ticket, and the connection it would continue. */
  #read(request: http.IncomingMessage, url: URL) {
    const last = queryValue(url, QueryParam.lastEventId);
    const header = request.headers[CONNECTION_HEADER.toLowerCase()];
    // A malformed connection id counts as none: it continues nothing, and nothing can continue it.
    const id = typeof header === 'string' && SECRET_PATTERN.test(header) ? header : null;
    const ticket = queryValue(url, QueryParam.ticket);
    const current = ticket !== null || id === null ? undefined : this.#connections.get(id);
    return { id, last, ticket, current };
  }

  /** Serves `GET P/poll`. */
  handle(request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
    const { hub } = this.#context;
    const admission = admit(request, url, this.#context.originAllowed);
    if (!admission.ok) {
      answerError(request, response, admission.code, admission.message);
      return;
    }
    const { id, last, ticket, current } = this.#read(request, url);
    // Before the shutdown check: a continuing poll collects the notice of a shutdown (§10.2).
    if (current && last !== null && current.continuedBy(last)) {
      current.hold(request, response);
      return;
    }
    // Shutdown, then the limits of §12.1: only a poll that opens a connection is counted.
    const opening = admitRequest(this.#context, request, url, 'connection');
    if (!opening.ok) {
      answerError(request, response, opening.code, opening.message);
      return;
    }
    // §3.4: a poll that continues no connection opens one, and that takes a ticket — or the secret
    // connection id of the session's open long-polling connection, with a `last` from before an
    // answer that was lost (§7.4): the new connection replays from there.
    const open = (grant: TicketGrant, prepared?: PreparedSession): void => {
      const taken = id === null ? undefined : this.#connections.get(id);
      if (taken && taken.sessionId !== grant.sid) {
        // Registering it would let this session's polls continue another's connection.
        answerError(request, response, 'PROTOCOL_ERROR', `expects a connection id no other session uses (${CONNECTION_HEADER})`);
        return;
      }
      const connection = this.#connection(id);
      connection.hold(request, response);
      const handle = hub.connect(connection, { version: admission.version, ...grant, last, request, address: opening.address }, prepared);
      connection.bind(handle, grant.max);
      this.#register(id, connection, { session: handle.session.id, ...(grant.max === undefined ? {} : { max: grant.max }) });
    };
    if (ticket !== null) {
      admitByTicket(
        this.#context,
        url,
        opening.address,
        ({ grant, prepared }) => open(grant, prepared),
        (code, message) => answerError(request, response, code, message),
        () => response.destroyed,
      );
      return;
    }
    const grant = current && !current.isClosed ? current.grant() : null;
    if (grant !== null) {
      open(grant);
      return;
    }
    if (hub.cluster !== null && id !== null && last !== null) {
      this.#continueElsewhere(hub.cluster, id, last, request, response, opening.address);
      return;
    }
    answerError(request, response, NO_TICKET.code, NO_TICKET.message);
  }

  /**
   * With a store shared by several processes (cluster.ts), a poll may continue a connection another
   * process served until now: the store knows the connection's session, and the stream is read from
   * the poll's `last` — where the client stands — as a parked link's is (§7.4, §12.1). No `hello`:
   * for the client it is the same connection.
   */
  #continueElsewhere(cluster: Cluster, id: string, last: string, request: http.IncomingMessage, response: http.ServerResponse, address: string): void {
    const { hub } = this.#context;
    void (async () => {
      let session: ServerSession | null = null;
      let record: PollConnectionRecord | null = null;
      try {
        record = await cluster.state.getConnection(id);
        session = record === null ? null : await cluster.find(record.session, address);
      } catch (error) {
        hub.fail(new UnbrokenServerError('STORE_ERROR', 'a poll could not be served: the store failed', { cause: error }));
        answerError(request, response, 'INTERNAL_ERROR', 'the server could not reach its store; retry later');
        return;
      }
      if (response.destroyed) return;
      if (record === null || session === null || session.ended) {
        answerError(request, response, NO_TICKET.code, NO_TICKET.message);
        return;
      }
      const local = this.#connections.get(id);
      if (local && !local.isClosed) {
        // It came back here meanwhile: the regular rules apply (this poll is a lost answer's repeat).
        answerError(request, response, NO_TICKET.code, NO_TICKET.message);
        return;
      }
      const connection = this.#connection(id);
      connection.hold(request, response);
      // §4.1.size: held to the limit its client named when the connection opened, wherever it did.
      const handle = hub.continueConnection(connection, session, { last, address, request, max: record.max });
      connection.bind(handle, record.max);
      this.#register(id, connection, record);
      handle.resume();
    })();
  }

  #connection(id: string | null): LongPollConnection {
    return new LongPollConnection(this.#context, (gone) => {
      if (id !== null && this.#connections.get(id) === gone) this.#connections.delete(id);
    });
  }

  /** Lists an open connection under its id; with a shared store, the other processes learn it too. */
  #register(id: string | null, connection: LongPollConnection, record: PollConnectionRecord): void {
    if (id === null || connection.isClosed) return;
    this.#connections.set(id, connection);
    const cluster = this.#context.hub.cluster;
    cluster?.state.putConnection(id, record, cluster.ttl).catch((error: unknown) => {
      this.#context.hub.fail(new UnbrokenServerError('STORE_ERROR', 'recording a long-polling connection failed', { cause: error }));
    });
  }
}
