/**
 * Where a carrier's lines go (docs/PROTOCOL.md §7.5): the SSE response of `GET P/carrier`, or the
 * poll of `GET P/carrier-poll` the carrier holds.
 */
import type http from 'node:http';
import { noticeLine } from '../../protocol/index.js';
import { corsHeaders, endStream } from '../http.js';
import type { TransportContext } from './context.js';

/** What an outlet tells its carrier. */
export interface OutletOwner {
  /** There is room again: its channels write what they held back. */
  resume(): void;
  /** The outlet is gone (the response closed, or no poll came): the carrier ends without a word. */
  end(why: null): void;
  /** The last answer of an ended carrier went out: nothing of it is left to find. */
  answeredLast(): void;
}

/** Where a carrier's lines go: an SSE response, or the poll it holds. */
export interface Outlet {
  /** Whether a line written now goes out at once (long polling: only while a poll is held). */
  writable(): boolean;
  /**
   * Writes a line: `line`, then `batch` when given, the UTF-8 bytes of a batch the core encoded
   * (`Connection.writeTextBytes`), written as they are rather than joined into the line's text.
   */
  push(line: string, batch?: Uint8Array): void;
  buffered(): number;
  /**
   * Ends the outlet, with `notice` as its last line. True when what it has left to say waits for a
   * poll (long polling between two polls): the carrier must stay findable by that poll, which takes
   * the sessions' shutdown notices (§10.2.missed-notice); `answeredLast` tells when it came.
   */
  end(notice: string | null): boolean;
}

/** The SSE outlet: one event per line, on a response that stays open. */
export function sseOutlet(carrier: OutletOwner, response: http.ServerResponse): Outlet {
  let awaitingDrain = false;
  const writable = (): boolean => !response.writableEnded && !response.destroyed;
  return {
    writable,
    push(line, batch) {
      if (!writable()) return;
      let room: boolean;
      if (batch === undefined) room = response.write(`data: ${line}\n\n`);
      else {
        // Corked, so that the pieces of the event leave in one write to the socket.
        response.cork();
        response.write(`data: ${line}`);
        response.write(batch);
        room = response.write('\n\n');
        response.uncork();
      }
      if (room || awaitingDrain) return;
      awaitingDrain = true;
      response.once('drain', () => {
        awaitingDrain = false;
        carrier.resume();
      });
    },
    buffered: () => response.writableLength,
    end(notice) {
      if (writable()) endStream(response, notice === null ? undefined : `data: ${notice}\n\n`);
      return false;
    },
  };
}

/**
 * The long-polling outlet: lines wait for the poll the carrier holds, and the answer goes out at the
 * end of the tick, so the lines of every channel written meanwhile share it. Between two polls lines
 * wait here, up to `maxMessageSize` bytes and one channel's batch past it (a channel is writable while
 * they fit; a poll's batch holds up to `MAX_POLL_BATCH_CHARS`), so a session's
 * `hello` goes out at once even when the holder's next poll is a round trip away. Each poll names the
 * number of answers its client received (`n`): a lost answer ends the carrier, and every session on
 * it resumes from its own cursor on the next one.
 */
export class PollOutlet implements Outlet {
  #held: http.ServerResponse | null = null;
  /** The lines waiting for a poll, in pieces: text, and the bytes of encoded batches, with `\n` between lines. */
  #pieces: (string | Uint8Array)[] = [];
  /** Whether a piece is bytes: the answer is then put together as bytes. */
  #hasBytes = false;
  #bytes = 0;
  #answering = false;
  #answered = 0;
  #lastSeen: number;
  #ended = false;

  constructor(
    readonly carrier: OutletOwner,
    readonly context: TransportContext,
  ) {
    this.#lastSeen = context.now();
  }

  /** Holds `response`, the poll after `answers` answers; false when the carrier cannot go on (an answer was lost, or two polls overlap). */
  hold(response: http.ServerResponse, answers: number): boolean {
    if (this.#held !== null || answers !== this.#answered) return false;
    this.#held = response;
    this.#lastSeen = this.context.now();
    response.once('close', () => {
      // The client gave up on its poll: the holder tab went away, or its carrier is being replaced.
      if (this.#held === response) this.carrier.end(null);
    });
    // Every channel flushes what waited for a poll first: a line written now must not pass it.
    this.carrier.resume();
    if (this.#pieces.length > 0) this.#answerSoon();
    return true;
  }

  writable(): boolean {
    return this.#bytes < this.context.maxMessageSize;
  }

  push(line: string, batch?: Uint8Array): void {
    if (this.#pieces.length > 0) this.#pieces.push('\n');
    this.#pieces.push(line);
    this.#bytes += line.length + 1;
    if (batch !== undefined) {
      this.#pieces.push(batch);
      this.#bytes += batch.byteLength;
      this.#hasBytes = true;
    }
    this.#answerSoon();
  }

  buffered(): number {
    // Bounded by `writable()` itself: past the bound the channels stop writing and park (§12.1.idle-poll).
    return 0;
  }

  /** Answers the held poll with a heartbeat when it waited `hb`; true when no poll came for 2 × `hb` (§11). */
  heartbeat(now: number): boolean {
    if (this.#held === null) return now - this.#lastSeen >= 2 * this.context.heartbeatInterval;
    if (now - this.#lastSeen >= this.context.heartbeatInterval && this.#pieces.length === 0) this.push(noticeLine({ kind: 'hb' }));
    return false;
  }

  end(notice: string | null): boolean {
    this.#ended = true;
    if (notice !== null) this.push(notice);
    // Ended without a word (no poll came, an answer was lost): nothing is left for a poll to take.
    if (this.#held === null) return notice !== null;
    this.#answer();
    return false;
  }

  #answerSoon(): void {
    if (this.#answering || this.#held === null) return;
    this.#answering = true;
    setImmediate(() => this.#answer());
  }

  #answer(): void {
    this.#answering = false;
    const response = this.#held;
    if (response === null) return;
    this.#held = null;
    this.#lastSeen = this.context.now();
    const pieces = this.#pieces;
    const body = this.#hasBytes ? Buffer.concat(pieces.map((piece) => (typeof piece === 'string' ? Buffer.from(piece) : piece))) : pieces.join('');
    this.#pieces = [];
    this.#hasBytes = false;
    this.#bytes = 0;
    this.#answered++;
    // Room again: what the channels held back for want of it goes out with the next poll.
    if (this.#ended) this.carrier.answeredLast();
    else this.carrier.resume();
    if (response.destroyed) return;
    response.writeHead(200, {
      ...corsHeaders(response.req),
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength),
    });
    response.end(body);
  }
}
