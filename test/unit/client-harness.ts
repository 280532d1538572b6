/**
 * Test harness of the client unit tests: a mock-socket server the test drives by hand (the test is
 * the server: it sends protocol frames itself), a WebSocket that records when and where it was
 * made, and a recorder of client events. Use with `vi.useFakeTimers()`.
 */
import { Server, WebSocket as MockWebSocket, type Client as ServerSocket } from 'mock-socket';
import { afterEach, beforeEach, vi } from 'vitest';
import { connect, type Client, type ClientEvents, type ClientOptions } from '../../src/client/index.js';
import {
  decodeBinaryFrame,
  decodeClientBatch,
  validateClientFrame,
  type ClientFrame,
  type HelloFrame,
  type ServerFrame,
} from '../../src/protocol/index.js';

/** The endpoint the clients connect to. */
export const ENDPOINT = 'http://example.test/realtime';
const WS_ENDPOINT = 'ws://example.test/realtime/ws';

/** What the client wrote on a connection, one entry per WebSocket message. */
export type Upstream =
  | { kind: 'text'; frames: ClientFrame[]; bytes: number }
  | { kind: 'binary'; frame: ClientFrame; payload: Uint8Array; bytes: number };

/** One connection, as the server sees it. */
export interface Peer {
  readonly socket: ServerSocket;
  /** The URL the client opened. */
  readonly url: URL;
  /** Everything the client wrote, in order. */
  readonly upstream: Upstream[];
  /** The close code, once the connection closed (either side). */
  closeCode: number | undefined;
  /** Sends frames as one text batch. */
  send(...frames: ServerFrame[]): void;
  /** Sends a raw WebSocket message. */
  sendRaw(data: string | ArrayBuffer): void;
  /** Sends a `hello`; every field can be overridden. */
  hello(fields?: Partial<HelloFrame>): void;
  /** Closes the connection from the server side. */
  close(code: number): void;
  /** Every frame the client wrote, flattened, with binary frames as their header plus `payload`. */
  frames(): ClientFrame[];
}

/** A `hello` with realistic defaults. */
export function helloFrame(fields: Partial<HelloFrame> = {}): HelloFrame {
  return {
    t: 'hello',
    v: 1,
    sid: 'session-000000000001',
    key: 'key-of-session-000000001',
    resumed: false,
    ack: 0,
    hb: 15_000,
    retry: 1_000,
    max: 1_048_576,
    cursor: 'e1-0',
    ...fields,
  };
}

/** Times the client made a WebSocket, and the URL it used. */
export interface Opened {
  at: number;
  url: string;
}

/** One `POST P/ticket` a client made (§3.4). */
export interface TicketCall {
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body: { sid?: string; key?: string; credentials?: unknown };
}

/** How the mock server answers a ticket request: a status and a body. */
export type TicketAnswer = (call: TicketCall) => { status: number; body: string };

/** Answers every ticket request with a new ticket, `ticket-000…1`, `ticket-000…2`, … */
let issued = 0;
export const freshTicket: TicketAnswer = () => ({
  status: 200,
  body: JSON.stringify({ ticket: `ticket-${String(++issued).padStart(16, '0')}`, ttl: 30_000 }),
});

/** The mock server, plus the WebSocket class and the ticket-answering fetch to inject into clients. */
export class MockServer {
  readonly peers: Peer[] = [];
  /** Every ticket request, in order. */
  readonly tickets: TicketCall[] = [];
  /** How ticket requests are answered; by default with a fresh ticket. */
  answerTicket: TicketAnswer = freshTicket;
  /** A fetch that answers `POST P/ticket` by {@link MockServer.answerTicket}. */
  readonly fetch = (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const call: TicketCall = {
      url: new URL(String(input)),
      headers: { ...(init.headers as Record<string, string>) },
      body: JSON.parse(String(init.body)) as TicketCall['body'],
    };
    if (!call.url.pathname.endsWith('/ticket')) return Promise.reject(new TypeError(`unexpected request to ${call.url.pathname}`));
    this.tickets.push(call);
    const { status, body } = this.answerTicket(call);
    return Promise.resolve(new Response(body, { status }));
  };
  /** Every WebSocket the clients made, in order, also those that never connected. */
  readonly opened: Opened[] = [];
  readonly WebSocket: typeof MockWebSocket;
  #server: Server | undefined;

  /** @param start - accept connections at once (a server made by {@link useMockServer} starts per test) */
  constructor(start = true) {
    const opened = this.opened;
    this.WebSocket = class RecordingWebSocket extends MockWebSocket {
      constructor(url: string | URL) {
        super(url);
        opened.push({ at: Date.now(), url: String(url) });
      }
    };
    if (start) this.start();
  }

  /** Forgets every peer and socket made so far and accepts connections again: fresh for the next test. */
  reset(): void {
    this.stop();
    this.peers.length = 0;
    this.opened.length = 0;
    this.tickets.length = 0;
    this.answerTicket = freshTicket;
    this.start();
  }

  /** Starts accepting connections (the server is started by the constructor). */
  start(): void {
    const server = new Server(WS_ENDPOINT, { mock: false });
    server.on('connection', (socket) => this.peers.push(makePeer(socket)));
    this.#server = server;
  }

  /** Stops accepting connections: new ones are refused. Open ones stay as they are. */
  stop(): void {
    this.#server?.stop();
    this.#server = undefined;
  }

  /** Makes a client of this server: WebSocket only, with no memory of transports. */
  client<T = unknown>(options: ClientOptions = {}): Client<T> {
    return connect<T>(ENDPOINT, { WebSocket: this.WebSocket, fetch: this.fetch, transports: ['websocket'], storage: null, ...options });
  }

  /** Advances the fake clock, timer by timer, until the next connection arrives. */
  async nextPeer(): Promise<Peer> {
    const count = this.peers.length;
    for (let i = 0; i < 10_000 && this.peers.length === count; i++) {
      await vi.advanceTimersToNextTimerAsync();
    }
    const peer = this.peers[count];
    if (!peer) throw new Error('no connection arrived');
    return peer;
  }

  /** Accepts the next connection and says hello on it. */
  async accept(fields: Partial<HelloFrame> = {}): Promise<Peer> {
    const peer = await this.nextPeer();
    peer.hello(fields);
    return peer;
  }
}

function makePeer(socket: ServerSocket): Peer {
  const upstream: Upstream[] = [];
  const peer: Peer = {
    socket,
    url: new URL(socket.url),
    upstream,
    closeCode: undefined,
    send: (...frames) => socket.send(JSON.stringify(frames)),
    sendRaw: (data) => socket.send(data),
    hello: (fields) => peer.send(helloFrame(fields)),
    close: (code) => socket.close({ code, reason: '', wasClean: true }),
    frames: () => upstream.flatMap((unit) => (unit.kind === 'text' ? unit.frames : [unit.frame])),
  };
  socket.on('message', (data) => {
    if (typeof data === 'string') {
      upstream.push({ kind: 'text', frames: decodeClientBatch(data), bytes: Buffer.byteLength(data) });
    } else {
      const bytes = new Uint8Array(data as ArrayBuffer);
      const { header, payload } = decodeBinaryFrame(bytes);
      upstream.push({ kind: 'binary', frame: validateClientFrame({ ...(header as object), b: '' }), payload, bytes: bytes.length });
    }
  });
  // The listener is called with the close event, although mock-socket types it without arguments.
  socket.on('close', ((event: CloseEvent) => {
    peer.closeCode ??= event.code;
  }) as () => void);
  return peer;
}

/**
 * Fake timers and a fresh mock server around every test of the calling `describe`: the one setup
 * every client unit test shares.
 */
export function useMockServer(): MockServer {
  const server = new MockServer(false);
  beforeEach(() => {
    vi.useFakeTimers();
    server.reset();
  });
  afterEach(() => {
    server.stop();
    vi.useRealTimers();
  });
  return server;
}

/** Lets pending microtasks and mock-socket's 4 ms deliveries run, without reaching other timers. */
export async function settle(ms = 5): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

/** A seeded pseudo-random source (mulberry32), in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** One recorded event, e.g. `state connecting>open connected`, `error HEARTBEAT_TIMEOUT`, `open`. */
export function record<T>(client: Client<T>, names: (keyof ClientEvents<T>)[] = ['state', 'error', 'open', 'close', 'gap', 'transport']): string[] {
  const log: string[] = [];
  for (const name of names) {
    client.on(name, (payload: unknown) => log.push(describe(String(name), payload)));
  }
  return log;
}

function describe(name: string, payload: unknown): string {
  const p = payload as Record<string, unknown>;
  switch (name) {
    case 'state':
      return `state ${String(p.from)}>${String(p.to)} ${String(p.cause)}`;
    case 'error':
      return `error ${String(p.code)}`;
    case 'close':
      return `close ${p.error === null ? 'null' : String((p.error as { code: string }).code)}`;
    case 'transport':
      return `transport ${String(p.previous)}>${String(p.transport)} ${String(p.reason)}`;
    default:
      return name;
  }
}

/** Marks a promise's rejection as handled (e.g. a send that close() will reject); returns it unchanged. */
export function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
