/**
 * Long-polling transport (docs/PROTOCOL.md §7.4): `GET P/poll`, one held request at a time, each
 * answered with one batch. Upstream goes through `POST P/send` (send.ts).
 *
 * A connection is a series of polls carrying the same connection id `c`. A poll continues the
 * session's current long-polling connection when its `c` is that connection's and its `last` is the
 * cursor that connection's answers left the client at; any other poll — no `sid`, another transport
 * attached, a new client attempt (a new `c`), or a `last` from before an answer that was lost — opens
 * a new connection, which begins with a `hello` and replays from `last` (§6.3).
 */
import type http from 'node:http';
import { QueryParam } from '../../protocol/index.js';
import { answerBatch, answerError, queryValue } from '../http.js';
import type { CloseReason, Connection, ConnectionHandle, TextBatch } from '../connection.js';
import { admitHttp, type TransportContext } from './context.js';

interface Poll {
  readonly request: http.IncomingMessage;
  readonly response: http.ServerResponse;
}

class LongPollConnection implements Connection {
  readonly transport = 'long-polling';
  /** The client's id for this connection; `null` when it gave none, and then no poll continues it. */
  readonly id: string | null;
  readonly #context: TransportContext;
  #held: Poll | null = null;
  #handle: ConnectionHandle | null = null;
  #closed = false;
  /** When a poll last arrived or was answered (§11: dead after 2 × hb without a poll). */
  #lastSeen: number;

  constructor(context: TransportContext, id: string | null) {
    this.id = id;
    this.#context = context;
    this.#lastSeen = context.now();
  }

  bind(handle: ConnectionHandle): void {
    this.#handle = handle;
  }

  /** Holds a poll of this connection. §7.4: a newer poll answers an older one with SUPERSEDED. */
  hold(request: http.IncomingMessage, response: http.ServerResponse): void {
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
  }

  writable(): boolean {
    return this.#held !== null && !this.#closed;
  }

  write(batch: TextBatch): void {
    const poll = this.#take();
    if (poll) answerBatch(poll.request, poll.response, batch.text);
  }

  bufferedBytes(): number {
    return 0;
  }

  probe(): void {
    if (this.#closed || this.#held) return;
    if (this.#context.now() - this.#lastSeen < 2 * this.#context.heartbeatInterval) return;
    this.#closed = true;
    this.#handle?.closed();
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    const poll = this.#take();
    if (poll) {
      switch (reason.kind) {
        case 'error':
          answerError(poll.request, poll.response, reason.code, reason.message);
          break;
        case 'restart':
          answerError(poll.request, poll.response, 'SERVER_RESTART', 'the server is shutting down');
          break;
        case 'end':
          // The session ended: the client's next poll finds no connection and starts a new one.
          answerBatch(poll.request, poll.response, '[{"t":"hb"}]');
          break;
      }
    }
    // Reported on the next microtask: `close` may run while the hub is still connecting this link.
    queueMicrotask(() => this.#handle?.closed());
  }

  #take(): Poll | null {
    const poll = this.#held;
    this.#held = null;
    this.#lastSeen = this.#context.now();
    return poll;
  }
}

/** Serves `GET P/poll`. */
export function handlePoll(context: TransportContext, request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
  const { hub } = context;
  const version = admitHttp(context, request, response, url);
  if (version === null) return;
  const sid = queryValue(url, QueryParam.sessionId);
  const last = queryValue(url, QueryParam.lastEventId);
  const id = queryValue(url, QueryParam.connection);
  const link = sid === null ? null : (hub.sessions.get(sid)?.link ?? null);
  if (
    link &&
    id !== null &&
    last !== null &&
    link.connection instanceof LongPollConnection &&
    link.connection.id === id &&
    link.cursor === last
  ) {
    link.connection.hold(request, response);
    link.resume();
    return;
  }
  const connection = new LongPollConnection(context, id);
  connection.hold(request, response);
  const handle = hub.connect(connection, { version, sid, last });
  connection.bind(handle);
}
