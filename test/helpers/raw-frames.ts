/**
 * The frame log shared by the raw conformance clients (raw-ws.ts, raw-http.ts).
 *
 * A raw client appends every frame the server sent, in arrival order, with the batch that carried
 * it. A test then awaits "the next frame that matches" with a deadline: when the deadline passes,
 * or the connection ends first, the promise rejects with a message that names what was awaited and
 * lists what did arrive. Deadlines only turn a hang into a readable failure; they never stand in
 * for an assertion that something did not happen (see `RawWs.sync()` for that).
 */
import {
  isValidEventName,
  isValidId,
  type HelloFrame,
  type ServerFrame,
  type ServerMessageFrame,
} from '../../src/protocol/index.js';
import { rememberKeys } from './raw-ticket.js';

/** The frame of type `T`. */
export type FrameOf<T extends ServerFrame['t']> = Extract<ServerFrame, { t: T }>;

export interface Received<F extends ServerFrame = ServerFrame> {
  readonly frame: F;
  /** Position of the carrying batch (WebSocket message, SSE event, HTTP body) on the connection, from 0. */
  readonly batch: number;
  /** Position of the frame among every frame of the connection, from 0. */
  readonly index: number;
  /** True when the frame came as a binary WebSocket frame (§4.3). */
  readonly binary: boolean;
  /** The payload of a binary message frame; absent otherwise. */
  readonly bytes?: Uint8Array;
  /** The whole binary WebSocket frame as it arrived, for byte-level checks; absent otherwise. */
  readonly raw?: Uint8Array;
  /** `Date.now()` when the batch arrived. */
  readonly at: number;
}

/** Default deadline of a wait, in ms: long enough for a loaded CI machine, short enough to read. */
/**
 * Message data whose UTF-8 is more than its length, and that JSON escapes: accents, CJK, an emoji
 * (a surrogate pair), the line and paragraph separators, quotes and a backslash. Sent in one turn, it
 * makes a batch of several frames, which the server writes as its UTF-8 bytes.
 */
export const MIXED_TEXTS: readonly string[] = ['plain', 'déjà vu, 日本語, 🎉', 'separators \u2028\u2029 and "quotes" \\'];

export const DEFAULT_DEADLINE = 4_000;

interface Waiter {
  check(): boolean;
  fail(reason: string): void;
}

export function describeFrame(received: Received): string {
  const { frame } = received;
  const shown = received.binary ? { ...frame, bytes: received.bytes?.length } : frame;
  const text = JSON.stringify(shown);
  return `#${received.index}(batch ${received.batch}) ${text.length > 160 ? `${text.slice(0, 157)}...` : text}`;
}

/**
 * Validates the header of a binary message frame (§4.3): a `msg` frame without `d` and `b`.
 * Returns a reason when it is not one.
 */
export function binaryHeaderProblem(header: unknown): string | undefined {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return 'the header is not a JSON object';
  const fields = header as Record<string, unknown>;
  if (fields.t !== 'msg') return `the header has t ${JSON.stringify(fields.t)}, not "msg"`;
  if (typeof fields.id !== 'string' || !isValidId(fields.id)) return 'the header has no valid id';
  if (fields.e !== undefined && (typeof fields.e !== 'string' || !isValidEventName(fields.e))) return 'the header has an invalid e';
  if ('d' in fields || 'b' in fields) return 'the header carries d or b besides the payload';
  return undefined;
}

export class FrameLog {
  /** Every frame received, in order. */
  readonly frames: Received[] = [];
  /** Batches that broke the protocol (§4.1): the server sent something a client must reject. */
  readonly violations: string[] = [];
  /** Set when the connection ended; `describeEnd` says how. */
  ended = false;
  private batches = 0;
  private readPosition = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly label: string) {}

  /** Appends the frames of one batch. */
  pushBatch(frames: readonly ServerFrame[], binary?: { bytes: Uint8Array; raw: Uint8Array }): void {
    rememberKeys(frames);
    const batch = this.batches++;
    const at = Date.now();
    for (const frame of frames) {
      this.frames.push({ frame, batch, index: this.frames.length, at, binary: binary !== undefined, ...binary });
    }
    this.changed();
  }

  /** Records a batch the server should never have sent; every pending and later wait fails. */
  pushViolation(reason: string): void {
    this.batches++;
    this.violations.push(reason);
    this.changed();
  }

  /** Marks the end of the connection; pending waits that did not match fail at once. */
  end(): void {
    this.ended = true;
    this.changed();
  }

  /** Re-evaluates every pending wait (called on each event of the connection). */
  changed(): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.check()) this.waiters.delete(waiter);
    }
    if (this.ended) {
      for (const waiter of [...this.waiters]) {
        this.waiters.delete(waiter);
        waiter.fail(`the connection ended (${this.describeEnd()}) first`);
      }
    }
  }

  /** How the connection ended, for failure messages. Transports override it. */
  describeEnd(): string {
    return 'ended';
  }

  /** A listing of everything received, for failure messages. */
  transcript(from = 0): string {
    const lines = this.frames.slice(from).map(describeFrame);
    const shown = lines.length > 30 ? [...lines.slice(0, 10), `... ${lines.length - 20} more ...`, ...lines.slice(-10)] : lines;
    return [`${this.label} received ${this.frames.length} frame(s):`, ...shown.map((line) => `  ${line}`)].join('\n');
  }

  /**
   * Resolves with `check()`'s first value that is not `undefined`, re-checking on every event of the
   * connection. Rejects after `deadline` ms, or when the connection ends first (unless
   * `whileEnded`), with `what` and the transcript.
   */
  waitFor<T>(what: string, check: () => T | undefined, deadline = DEFAULT_DEADLINE, whileEnded = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const fail = (reason: string): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        reject(new Error(`${this.label}: expected ${what}, but ${reason}.\n${this.transcript()}`));
      };
      const waiter: Waiter = {
        check: () => {
          if (this.violations.length > 0) {
            fail(`the server sent an invalid batch: ${this.violations.join('; ')}`);
            return true;
          }
          const value = check();
          if (value === undefined) return false;
          clearTimeout(timer);
          resolve(value);
          return true;
        },
        fail,
      };
      if (waiter.check()) return;
      if (this.ended && !whileEnded) {
        fail(`the connection had already ended (${this.describeEnd()})`);
        return;
      }
      this.waiters.add(waiter);
      timer = setTimeout(() => fail(`nothing matching arrived within ${deadline} ms`), deadline);
    });
  }

  /**
   * The next frame of type `t` (matching `predicate`) after the read position; moves the read
   * position past it. Frames skipped on the way stay in `frames` for later inspection.
   */
  next<T extends ServerFrame['t']>(
    t: T,
    predicate: (frame: FrameOf<T>) => boolean = () => true,
    deadline = DEFAULT_DEADLINE,
  ): Promise<Received<FrameOf<T>>> {
    const what = `a "${t}" frame${predicate.length > 0 ? ` matching ${predicate.toString()}` : ''}`;
    return this.waitFor(
      what,
      () => {
        for (let i = this.readPosition; i < this.frames.length; i++) {
          const received = this.frames[i]!;
          if (received.frame.t === t && predicate(received.frame as FrameOf<T>)) {
            this.readPosition = i + 1;
            return received as Received<FrameOf<T>>;
          }
        }
        return undefined;
      },
      deadline,
    );
  }

  /** Waits until `count` frames of type `t` arrived after the read position, and consumes them. */
  async take<T extends ServerFrame['t']>(t: T, count: number, deadline = DEFAULT_DEADLINE): Promise<Received<FrameOf<T>>[]> {
    const found = await this.waitFor(
      `${count} "${t}" frames`,
      () => {
        const matching = this.frames.slice(this.readPosition).filter((r) => r.frame.t === t);
        return matching.length >= count ? (matching.slice(0, count) as Received<FrameOf<T>>[]) : undefined;
      },
      deadline,
    );
    this.readPosition = found[found.length - 1]!.index + 1;
    return found;
  }

  /** The `hello` frame (awaited like any other; the tests check that it came first). */
  async hello(): Promise<HelloFrame> {
    return (await this.next('hello')).frame;
  }

  /** Frames from index `from` (inclusive) to `to` (exclusive). */
  between(from: number, to: number = this.frames.length): Received[] {
    return this.frames.slice(from, to);
  }

  /** The read position: index of the first frame `next` has not passed yet. */
  get position(): number {
    return this.readPosition;
  }

  /** The message frames received so far (optionally from an index on). */
  messages(from = 0): Received<ServerMessageFrame>[] {
    return this.frames.slice(from).filter((r): r is Received<ServerMessageFrame> => r.frame.t === 'msg');
  }
}

/** Resolves when `condition()` holds, polling every 5 ms; rejects after `deadline` ms saying `what`. */
export async function waitUntil(what: string, condition: () => boolean, deadline = DEFAULT_DEADLINE): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > deadline) throw new Error(`expected ${what} within ${deadline} ms, but it did not happen`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Rejects with `what` when `promise` does not settle within `deadline` ms. */
export function within<T>(what: string, promise: Promise<T>, deadline = DEFAULT_DEADLINE): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`expected ${what} within ${deadline} ms, but it did not happen`)), deadline);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
