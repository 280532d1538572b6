/**
 * Fakes for the unit tests of the HTTP transports: a fetch whose requests the test answers by hand,
 * an EventSource the test drives event by event, and a recorder of what a transport reports. The
 * transports are made directly from their factories, with a `url()` that reads a cursor the test (or
 * the recorder's onFrames) moves, as the core's does.
 */
import type {
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  InboundFrame,
  LinkContext,
  TransportCloseInfo,
  TransportHandlers,
} from '../../src/client/transport.js';
import { endpointUrl } from '../../src/client/options.js';
import type { ServerFrame } from '../../src/protocol/index.js';
import { helloFrame } from './client-harness.js';

export const BASE = 'http://example.test/realtime';

/** The ticket every transport made by these tests gets. */
export const TICKET = 'ticket-of-the-test-0001';

/** What an attempt gives its transport: the ticket, the default size limit, the (fakeable) global timers. */
export const CONTEXT: LinkContext = {
  ticket: TICKET,
  maxMessageSize: 4_194_304,
  clock: { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as number) },
};

/** One request the transport made; the test answers it. */
export interface FakeRequest {
  readonly url: URL;
  readonly init: RequestInit;
  /** The request body, for POSTs. */
  readonly body: string | undefined;
  /** Whether the transport aborted it. */
  readonly aborted: boolean;
  /** Answers with a status and a body. */
  answer(status: number, body: string): void;
  /** Answers 200 with frames as one batch. */
  frames(...frames: ServerFrame[]): void;
  /** Answers 200 with headers only; the returned function sends the body, `frames` as one batch, and ends it. */
  headers(): (...frames: ServerFrame[]) => void;
  /** Fails as a network error does. */
  fail(): void;
}

/** A fetch that records its requests, refuses to be called as a method, and honours abort signals. */
export class FakeFetch {
  readonly requests: FakeRequest[] = [];

  readonly fetch: FetchLike;

  constructor() {
    const requests = this.requests;
    // `this` is checked as a browser's fetch does: called as another object's method, it throws.
    function fakeFetch(this: unknown, input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
      if (this !== undefined && this !== globalThis) throw new TypeError('Illegal invocation');
      return new Promise<Response>((resolve, reject) => {
        // Ticket requests (§3.4) are answered at once, so tests of a whole client start on their transport.
        const ticket = String(input).includes('/realtime/ticket?');
        if (ticket) resolve(new Response(JSON.stringify({ ticket: `${TICKET}-${requests.length}`, ttl: 30_000 })));
        let aborted = false;
        const abort = (): void => {
          aborted = true;
          reject(new DOMException('This operation was aborted', 'AbortError'));
        };
        if (init.signal?.aborted) abort();
        init.signal?.addEventListener('abort', abort);
        requests.push({
          url: new URL(String(input)),
          init,
          body: typeof init.body === 'string' ? init.body : undefined,
          get aborted() {
            return aborted;
          },
          answer: (status, body) => resolve(new Response(body, { status })),
          frames: (...frames) => resolve(new Response(JSON.stringify(frames), { status: 200 })),
          headers: () => {
            let body: ReadableStreamDefaultController<Uint8Array> | undefined;
            resolve(new Response(new ReadableStream<Uint8Array>({ start: (controller) => void (body = controller) }), { status: 200 }));
            return (...frames) => {
              body?.enqueue(new TextEncoder().encode(JSON.stringify(frames)));
              body?.close();
            };
          },
          fail: () => reject(new TypeError('fetch failed')),
        });
      });
    }
    this.fetch = fakeFetch as FetchLike;
  }

  /** Requests to an endpoint (`/send`, `/poll`), in order. */
  to(endpoint: string): FakeRequest[] {
    return this.requests.filter((request) => request.url.pathname === `/realtime${endpoint}`);
  }

  /** The last request to an endpoint. */
  last(endpoint: string): FakeRequest {
    const request = this.to(endpoint).at(-1);
    if (!request) throw new Error(`no request to ${endpoint}`);
    return request;
  }
}

/** An EventSource the test drives. */
export class FakeEventSource implements EventSourceLike {
  static readonly made: FakeEventSource[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly url: URL;

  constructor(url: string) {
    this.url = new URL(url);
    FakeEventSource.made.push(this);
  }

  close(): void {
    this.readyState = 2;
  }

  /** The response headers arrived. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** One event with `data`. */
  message(data: string): void {
    this.onmessage?.({ data });
  }

  /** The stream failed; a real EventSource would now reconnect unless closed. */
  error(): void {
    if (this.readyState !== 2) this.readyState = 0;
    this.onerror?.({});
  }

  static latest(): FakeEventSource {
    const source = FakeEventSource.made.at(-1);
    if (!source) throw new Error('no EventSource was made');
    return source;
  }
}
export const FakeEventSourceClass: EventSourceConstructor = FakeEventSource;

/** What a transport reported, in order, plus the core's `url()` with a `cursor` the test moves. */
export class Recorder {
  readonly log: string[] = [];
  readonly batches: InboundFrame[][] = [];
  closes: TransportCloseInfo[] = [];
  sid: string | undefined;
  cursor: string | undefined;
  /** Called after a batch was recorded, e.g. to move the cursor as the core does. */
  afterFrames: (frames: InboundFrame[]) => void = () => {};

  /** The core's own URL builder (§3), with the cursor the test moves. */
  readonly url = (endpoint: string, ticket?: string): string => endpointUrl(BASE, endpoint, this.cursor ?? null, ticket);

  readonly handlers: TransportHandlers = {
    onOpen: () => this.log.push('open'),
    onFrames: (frames) => {
      this.log.push(`frames ${frames.map((f) => f.t).join(',')}`);
      this.batches.push(frames);
      this.afterFrames(frames);
    },
    onReply: (ack) => this.log.push(`reply ack ${ack.s}`),
    onClose: (info) => {
      this.log.push(`close ${info.code} ${info.error?.code ?? ''}`.trimEnd());
      this.closes.push(info);
    },
  };

  /** Moves sid and cursor as the core does: hello.sid and hello.cursor, then each message's id. */
  followCursor(): void {
    this.afterFrames = (frames) => {
      for (const f of frames) {
        if (f.t === 'hello') {
          this.sid = f.sid;
          this.cursor = f.cursor;
        }
        if (f.t === 'gap') this.cursor = f.cursor;
        if (f.t === 'msg') this.cursor = f.id;
      }
    };
  }
}

/** A `hello` with realistic defaults (the one the WebSocket harness uses). */
export const hello = helloFrame;

/** Lets every pending promise reaction and response-body read run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
