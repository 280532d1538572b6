/**
 * The reference server as the conformance suite drives it: started on 127.0.0.1 port 0 through
 * start-server.ts, with a record of what it handed to the application, so a test can check that a
 * message was processed once, or not at all.
 */
import type http from 'node:http';
import {
  MemoryStore,
  type MessageStore,
  type NewMessage,
  type Payload,
  type ReadResult,
  type ServerOptions,
  type Session,
  type StoredMessage,
  type StoreEvents,
} from '../../src/server/index.js';
import { startServer } from './start-server.js';
import { RawWs, type RawWsOptions } from './raw-ws.js';

export type StartedServer = Awaited<ReturnType<typeof startServer>>;

/** One message the server handed to its application. */
export interface Processed {
  readonly sid: string;
  readonly data: Payload;
}

export interface Harness {
  readonly started: StartedServer;
  readonly server: StartedServer['server'];
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`: the base `RawWs` appends `/ws` to. */
  readonly wsBase: string;
  /** `http://127.0.0.1:<port><path>`: the base the HTTP endpoints hang off. */
  readonly httpBase: string;
  /** Every message the application received, in order. */
  readonly processed: Processed[];
  /** Session ids for which the server emitted `connection`, in order. */
  readonly connections: string[];
  /** Session ids for which the server emitted `close` (the session ended), in order. */
  readonly ended: string[];
  /** Every request line the server received (`GET /realtime/ws?v=1&ticket=…`), upgrades included, in order. */
  readonly requestLines: string[];
  /** Called for every message the application receives, after it is recorded. */
  onProcessed: ((message: Processed, session: Session) => void) | undefined;
  /** Messages processed for one session. */
  processedFor(sid: string): Payload[];
  /**
   * Resolves once the server has handled the next request for `P<endpoint>` (e.g. `/poll`): the
   * explicit signal that a poll is held, rather than a round trip that could be answered first.
   */
  handled(endpoint: string): Promise<void>;
  /** Opens a raw WebSocket client; closed by `close()`. */
  connect(options?: RawWsOptions): Promise<RawWs>;
  /** Stops the HTTP server (not gracefully: no `reconnect` notice) and terminates open raw clients. */
  close(): Promise<void>;
}

/** Short timers so that liveness tests run in well under a second. */
export const FAST: ServerOptions = {
  heartbeatInterval: 200,
  retry: 50,
  shutdownJitter: 50,
  sessionTimeout: 10_000,
};

export type HarnessOptions = ServerOptions & { port?: number };

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const started = await startServer({ ...FAST, ...options });
  const path = options.path ?? '/realtime';
  const clients = new Set<RawWs>();
  const harness: Harness = {
    started,
    server: started.server,
    port: started.port,
    wsBase: `ws://127.0.0.1:${started.port}${path}`,
    httpBase: `http://127.0.0.1:${started.port}${path}`,
    processed: [],
    connections: [],
    ended: [],
    requestLines: [],
    onProcessed: undefined,
    processedFor(sid) {
      return harness.processed.filter((message) => message.sid === sid).map((message) => message.data);
    },
    handled(endpoint) {
      return new Promise((resolve) => {
        // Added after the server's own listener, so it runs once the server handled the request.
        const onRequest = (request: http.IncomingMessage): void => {
          if (!request.url?.startsWith(`${path}${endpoint}?`) && request.url !== `${path}${endpoint}`) return;
          started.http.off('request', onRequest);
          resolve();
        };
        started.http.on('request', onRequest);
      });
    },
    async connect(connectOptions = {}) {
      const client = await RawWs.open(harness.wsBase, connectOptions);
      clients.add(client);
      return client;
    },
    async close() {
      for (const client of clients) client.terminate();
      await started.close();
    },
  };
  // Prepended, so every request is recorded before any listener answers it.
  const record = (request: http.IncomingMessage): void => {
    harness.requestLines.push(`${request.method ?? '?'} ${request.url ?? ''}`);
  };
  started.http.prependListener('request', record);
  started.http.prependListener('upgrade', record);
  started.server.on('message', (data: Payload, session: Session) => {
    const message = { sid: session.id, data };
    harness.processed.push(message);
    harness.onProcessed?.(message, session);
  });
  started.server.on('connection', (session: Session) => {
    harness.connections.push(session.id);
  });
  started.server.on('close', (session: Session) => {
    harness.ended.push(session.id);
  });
  return harness;
}

/** Closes every harness a test started, even when the test failed half-way. */
export class Harnesses {
  private readonly open: Harness[] = [];

  async start(options: HarnessOptions = {}): Promise<Harness> {
    const harness = await startHarness(options);
    this.open.push(harness);
    return harness;
  }

  async closeAll(): Promise<void> {
    const closing = this.open.splice(0).map((harness) => harness.close());
    await Promise.allSettled(closing);
  }
}

/**
 * A store whose reads the test can hold: the stand-in for a database with latency, so messages are
 * appended while the server reads a stream back and the seam between replay and live (§6.3) is
 * exercised on purpose rather than by luck. It delegates to a real {@link MemoryStore}.
 *
 * `snapshot: 'at-call'` computes a held read when it is made (messages appended meanwhile are not in
 * it); `'at-release'` computes it when released (they are, and also reach the connection live).
 */
export class GatedStore implements MessageStore {
  readonly inner: MemoryStore;
  private held = false;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly snapshot: 'at-call' | 'at-release',
    inner: MemoryStore = new MemoryStore(),
  ) {
    this.inner = inner;
  }

  /** Reads (and head lookups) made from now on wait for `release()`. */
  hold(): void {
    this.held = true;
  }

  /** Lets every held read finish, and the later ones run at once. */
  release(): void {
    this.held = false;
    for (const resume of this.waiting.splice(0)) resume();
  }

  /** Reads and head lookups waiting for `release()`. */
  get pending(): number {
    return this.waiting.length;
  }

  append(message: NewMessage): Promise<StoredMessage> {
    return this.inner.append(message);
  }

  head(): Promise<string> {
    return this.gated(() => this.inner.head());
  }

  join(sessionId: string, room: string): Promise<string> {
    return this.inner.join(sessionId, room);
  }

  leave(sessionId: string, room: string): Promise<string | null> {
    return this.inner.leave(sessionId, room);
  }

  members(room: string): Promise<string[]> {
    return this.inner.members(room);
  }

  roomsOf(sessionId: string): Promise<string[]> {
    return this.inner.roomsOf(sessionId);
  }

  read(sessionId: string, after: string, limit: number): Promise<ReadResult> {
    return this.gated(() => this.inner.read(sessionId, after, limit));
  }

  subscribe(listener: (message: StoredMessage) => void, events?: StoreEvents): () => void {
    return this.inner.subscribe(listener, events);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async gated<T>(operation: () => Promise<T>): Promise<T> {
    if (!this.held) return operation();
    const early = this.snapshot === 'at-call' ? operation() : undefined;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    return early ?? operation();
  }
}
