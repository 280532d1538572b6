/**
 * The transport-agnostic session core (src/server/hub.ts, session.ts, downlink.ts), driven through fake in-memory
 * connections: hello, replay and the live/replay seam (also with a store whose reads are slow),
 * batching, upstream exactly-once, supersede, the buffer bound, heartbeats, timeouts and shutdown.
 * Every wait is on an explicit signal (a frame written, a close); timers only move under fake time.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  decodeBinaryFrame,
  decodeServerBatch,
  type HelloFrame,
  type Payload,
  type ServerFrame,
} from '../../src/protocol/index.js';
import { Emitter } from '../../src/server/emitter.js';
import {
  MemoryStore,
  UnbrokenServerError,
  UnbrokenTypeError,
  type MessageStore,
  type NewMessage,
  type ReadResult,
  type ServerEvents,
  type Session,
  type SessionEndReason,
  type StoredMessage,
  type StoreEvents,
} from '../../src/server/index.js';
import type { CloseReason, ConnectParams, Connection, ConnectionHandle, TextBatch } from '../../src/server/connection.js';
import { MAX_BATCH_CHARS, MAX_POLL_BATCH_CHARS, PARK_AFTER_ITEMS } from '../../src/server/link-queue.js';
import { SessionHub, type HubOptions } from '../../src/server/hub.js';
import type { TransportName } from '../../src/protocol/index.js';
import { deferred, type Deferred } from '../helpers/signals.js';

// ---------------------------------------------------------------------------------------------
// A fake connection that records what the core writes

interface Written {
  readonly frames: ServerFrame[];
  readonly lastMessageId?: string;
  readonly binary: boolean;
  readonly at: number;
}

interface FakeOptions {
  transport?: TransportName;
  /** Offer binary frames (as WebSocket does). */
  binary?: boolean;
  /** One write per "poll", as long polling: not writable again until `poll()`. */
  polling?: boolean;
  /** Count written bytes as buffered until `drain()`. */
  buffering?: boolean;
  /** Report `closed()` to the core on the next microtask after `close()` (default true). */
  reportClose?: boolean;
}

class FakeConnection implements Connection {
  readonly transport: TransportName;
  readonly polled: boolean;
  readonly writes: Written[] = [];
  /** The text of every batch written, as the adapter got it. */
  readonly texts: string[] = [];
  writeBinary?: (frame: Uint8Array) => void;
  closedWith: CloseReason | null = null;
  /** Whether the session still had a connection when this one was told to close (§3.3 order). */
  sessionConnectedAtClose: boolean | undefined;
  probes = 0;
  buffered = 0;
  handle!: ConnectionHandle;
  #open = true;
  readonly #polling: boolean;
  readonly #buffering: boolean;
  readonly #reportClose: boolean;
  readonly #waiters = new Set<() => void>();

  constructor(options: FakeOptions = {}) {
    this.transport = options.transport ?? (options.polling ? 'long-polling' : 'websocket');
    this.#polling = options.polling ?? false;
    this.polled = this.#polling;
    this.#buffering = options.buffering ?? false;
    this.#reportClose = options.reportClose ?? true;
    if (options.binary) {
      this.writeBinary = (frame) => {
        const { header, payload } = decodeBinaryFrame(frame);
        this.#record({ frames: [{ ...(header as ServerFrame), b: Buffer.from(payload).toString('base64') } as ServerFrame], binary: true });
        if (this.#buffering) this.buffered += frame.length;
      };
    }
  }

  /** Every frame written so far, in order. */
  get frames(): ServerFrame[] {
    return this.writes.flatMap((write) => write.frames);
  }

  get hello(): HelloFrame {
    const first = this.writes[0]?.frames[0];
    if (first?.t !== 'hello') throw new Error(`expects a hello first, got ${JSON.stringify(first)}`);
    return first;
  }

  messageIds(): string[] {
    return this.frames.flatMap((frame) => (frame.t === 'msg' ? [frame.id] : []));
  }

  messageData(): unknown[] {
    return this.frames.flatMap((frame) => (frame.t === 'msg' ? [frame.d ?? frame.b] : []));
  }

  writable(): boolean {
    return this.#open && this.closedWith === null;
  }

  write(batch: TextBatch): void {
    // Every batch the core writes must be a valid server batch (§4.1).
    const frames = decodeServerBatch(batch.text);
    this.texts.push(batch.text);
    if (this.#buffering) this.buffered += batch.text.length;
    if (this.#polling) this.#open = false;
    this.#record(batch.lastMessageId === undefined ? { frames, binary: false } : { frames, lastMessageId: batch.lastMessageId, binary: false });
  }

  bufferedBytes(): number {
    return this.buffered;
  }

  probe(): void {
    this.probes++;
  }

  close(reason: CloseReason): void {
    this.sessionConnectedAtClose = this.handle?.session.connected;
    this.closedWith = reason;
    this.#wake();
    if (this.#reportClose) queueMicrotask(() => this.handle.closed());
  }

  /** A new poll arrived (long polling). */
  poll(): void {
    this.#open = true;
    this.handle.resume();
  }

  /** The link's buffer emptied. */
  drain(): void {
    this.buffered = 0;
    this.handle.resume();
  }

  /** Resolves once `condition()` holds, checked after every write and close. */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }

  untilFrame(predicate: (frame: ServerFrame) => boolean): Promise<void> {
    return this.until(() => this.frames.some(predicate));
  }

  untilMessage(id: string): Promise<void> {
    return this.untilFrame((frame) => frame.t === 'msg' && frame.id === id);
  }

  untilClosed(): Promise<void> {
    return this.until(() => this.closedWith !== null);
  }

  #record(write: Omit<Written, 'at'>): void {
    this.writes.push({ ...write, at: Date.now() });
    this.#wake();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

// ---------------------------------------------------------------------------------------------
// Stores with slow reads, to put appends between a read's call, its snapshot and its result

/**
 * Wraps a MemoryStore. While `gate` is set, a read waits on it: `late` reads take their snapshot
 * after the gate opens (what they return includes appends made meanwhile), `early` ones before (they
 * do not).
 */
class GatedStore implements MessageStore {
  readonly inner: MemoryStore;
  readonly snapshot: 'early' | 'late';
  gate: Deferred<void> | null = null;
  #readStarted: Deferred<void> | null = null;

  constructor(inner: MemoryStore, snapshot: 'early' | 'late') {
    this.inner = inner;
    this.snapshot = snapshot;
  }

  append(message: NewMessage): Promise<StoredMessage> {
    return this.inner.append(message);
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

  head(): Promise<string> {
    return this.inner.head();
  }

  /** Resolves when the next read is called. */
  nextRead(): Promise<void> {
    this.#readStarted = deferred();
    return this.#readStarted.promise;
  }

  async read(sessionId: string, after: string, limit: number): Promise<ReadResult> {
    this.#readStarted?.resolve();
    const gate = this.gate;
    if (gate && this.snapshot === 'late') {
      await gate.promise;
      return this.inner.read(sessionId, after, limit);
    }
    const result = await this.inner.read(sessionId, after, limit);
    if (gate) await gate.promise;
    return result;
  }

  subscribe(listener: (message: StoredMessage) => void, events?: StoreEvents): () => void {
    return this.inner.subscribe(listener, events);
  }
}

/** A MemoryStore that hands its subscribers a JSON text of each message's data, made by `textOf`. */
class TextStore extends MemoryStore {
  constructor(readonly textOf: (message: StoredMessage) => string) {
    super({ epoch: 'e' });
  }

  override subscribe(listener: (message: StoredMessage, dataText?: string) => void, events?: StoreEvents): () => void {
    return super.subscribe((message) => listener(message, this.textOf(message)), events);
  }
}

// ---------------------------------------------------------------------------------------------
// The hub under test

interface Harness {
  hub: SessionHub;
  store: MessageStore;
  messages: { data: Payload; session: Session }[];
  connections: Session[];
  ended: { session: Session; reason: SessionEndReason }[];
  errors: Error[];
  emitter: Emitter<ServerEvents>;
  connect(params?: Partial<ConnectParams>, options?: FakeOptions): FakeConnection;
  /** Connects and waits for the hello. */
  open(params?: Partial<ConnectParams>, options?: FakeOptions): Promise<FakeConnection>;
  /** A session whose connection went away: its hello. */
  dropped(): Promise<HelloFrame>;
  broadcast(data: Payload): Promise<string>;
}

const harnesses: Harness[] = [];

function setup(options: Partial<HubOptions> = {}): Harness {
  const errors: Error[] = [];
  const emitter = new Emitter<ServerEvents>((error) => errors.push(error instanceof Error ? error : new Error(String(error))));
  const store = options.store ?? new MemoryStore({ epoch: 'e' });
  const hub = new SessionHub(
    {
      store,
      heartbeatInterval: 1_000,
      retry: 100,
      maxMessageSize: 4_096,
      sessionTimeout: 60_000,
      shutdownJitter: 1_000,
      maxBufferedBytes: 1 << 20,
      now: () => Date.now(),
      random: () => 0.5,
      authenticate: null,
      ...options,
    },
    emitter,
  );
  const harness: Harness = {
    hub,
    store,
    messages: [],
    connections: [],
    ended: [],
    errors,
    emitter,
    connect(params = {}, connectionOptions = {}) {
      const connection = new FakeConnection(connectionOptions);
      connection.handle = hub.connect(connection, {
        version: 1,
        sid: null,
        // The session's own key unless the test names one: these tests are about the core, which
        // trusts what a ticket granted (§3.4); the key check has its own tests.
        key: params.sid ? (hub.sessions.get(params.sid)?.key ?? null) : null,
        user: null,
        last: null,
        ...params,
      });
      return connection;
    },
    async open(params = {}, connectionOptions = {}) {
      const connection = harness.connect(params, connectionOptions);
      await connection.untilFrame((frame) => frame.t === 'hello');
      return connection;
    },
    async dropped() {
      const connection = await harness.open();
      connection.handle.closed();
      return connection.hello;
    },
    broadcast(data) {
      return hub.append({ kind: 'all' }, data);
    },
  };
  emitter.on('message', (data, session) => harness.messages.push({ data, session }));
  emitter.on('connection', (session) => harness.connections.push(session));
  emitter.on('close', (session, reason) => harness.ended.push({ session, reason }));
  emitter.on('error', (error) => errors.push(error));
  harnesses.push(harness);
  return harness;
}

afterEach(async () => {
  vi.useRealTimers();
  // Every hub shuts down, so no sweep timer outlives its test.
  await Promise.all(harnesses.splice(0).map((harness) => harness.hub.close()));
});

const dataOf = (harness: Harness): Payload[] => harness.messages.map((message) => message.data);

// ---------------------------------------------------------------------------------------------

describe('hello (§3.3, §4, §6.4)', () => {
  it('begins a connection with exactly one hello, the first frame of the first batch', async () => {
    const t = setup({ heartbeatInterval: 1_234, retry: 55, maxMessageSize: 2_048 });
    const connection = await t.open();
    expect(connection.hello).toEqual({
      t: 'hello',
      v: 1,
      sid: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      key: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      resumed: false,
      ack: 0,
      hb: 1_234,
      retry: 55,
      max: 2_048,
      cursor: 'e-0',
    });
    expect(connection.frames.filter((frame) => frame.t === 'hello')).toHaveLength(1);
    expect(t.connections.map((session) => session.id)).toEqual([connection.hello.sid]);
  });

  it('starts a stream without last at the store head, and adopts a well-formed unknown sid', async () => {
    const t = setup();
    await t.broadcast('old');
    const connection = await t.open({ sid: 'W'.repeat(20) });
    expect(connection.hello).toMatchObject({ sid: 'W'.repeat(20), resumed: false, ack: 0, cursor: 'e-1' });
  });

  it('replaces a malformed sid with a fresh one', async () => {
    const t = setup();
    const connection = await t.open({ sid: 'short' });
    expect(connection.hello.sid).not.toBe('short');
    expect(connection.hello.sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('delivers a message the application sends from its connection listener, once', async () => {
    const t = setup();
    t.emitter.on('connection', (session) => void session.send('welcome'));
    const connection = t.connect();
    await connection.untilFrame((frame) => frame.t === 'msg');
    const more = await t.broadcast('after');
    await connection.untilMessage(more);
    expect(connection.messageData()).toEqual(['welcome', 'after']);
  });

  it('resumes a session it holds with resumed true, ack the highest processed s and cursor last', async () => {
    const t = setup();
    const first = await t.open();
    first.handle.receive([
      { t: 'msg', s: 1, data: 'a' },
      { t: 'msg', s: 2, data: 'b' },
    ]);
    const seen = await t.broadcast('seen');
    await first.untilMessage(seen);
    first.handle.closed();
    const second = await t.open({ sid: first.hello.sid, last: seen });
    expect(second.hello).toMatchObject({ sid: first.hello.sid, resumed: true, ack: 2, cursor: seen });
    expect(t.connections).toHaveLength(1);
  });

  it('puts a gap in the hello batch and continues from its cursor', async () => {
    const t = setup();
    const ids = [await t.broadcast(1), await t.broadcast(2)];
    const connection = t.connect({ sid: 'G'.repeat(22), last: 'zz-5' });
    await connection.untilMessage(ids[1]!);
    expect(connection.writes[0]!.frames.slice(0, 2)).toEqual([
      { t: 'hello', v: 1, sid: 'G'.repeat(22), key: expect.any(String), resumed: false, ack: 0, hb: 1_000, retry: 100, max: 4_096, cursor: 'e-0' },
      { t: 'gap', reason: 'unknown-epoch', after: 'zz-5', cursor: 'e-0' },
    ]);
    expect(connection.messageIds()).toEqual(ids);
  });
});

describe('replay and the live seam (§6.3)', () => {
  it('replays every message after last in order, then the live stream', async () => {
    const t = setup();
    const hello = await t.dropped();
    const missed = [await t.broadcast('m1'), await t.hub.append({ kind: 'session', session: hello.sid }, 'private'), await t.broadcast('m2')];
    await t.hub.append({ kind: 'session', session: 'another-session-id' }, 'not yours');
    const connection = t.connect({ sid: hello.sid, last: hello.cursor });
    await connection.untilMessage(missed[2]!);
    const live = await t.broadcast('live');
    await connection.untilMessage(live);
    expect(connection.messageIds()).toEqual([...missed, live]);
  });

  it('replays more than a page of messages, all of them, in order', async () => {
    const t = setup();
    const hello = await t.dropped();
    const ids: string[] = [];
    for (let i = 0; i < 1_234; i++) ids.push(await t.broadcast(i));
    const connection = t.connect({ sid: hello.sid, last: hello.cursor });
    await connection.untilMessage(ids.at(-1)!);
    expect(connection.messageIds()).toEqual(ids);
  });

  it.each(['early', 'late'] as const)(
    'loses and repeats nothing at the seam when messages are appended while a slow read runs (%s snapshot)',
    async (snapshot) => {
      const store = new GatedStore(new MemoryStore({ epoch: 'e' }), snapshot);
      const t = setup({ store });
      const hello = await t.dropped();
      const before = [await t.broadcast('b1'), await t.hub.append({ kind: 'session', session: hello.sid }, 's1')];
      store.gate = deferred();
      const reading = store.nextRead();
      const connection = t.connect({ sid: hello.sid, last: hello.cursor });
      await reading;
      const during = [await t.broadcast('b2'), await t.hub.append({ kind: 'session', session: hello.sid }, 's2')];
      await t.hub.append({ kind: 'session', session: 'another-session-id' }, 'not in this stream');
      store.gate.resolve();
      await connection.untilMessage(during[1]!);
      const after = await t.broadcast('b3');
      await connection.untilMessage(after);
      expect(connection.hello.cursor).toBe(hello.cursor);
      expect(connection.messageIds()).toEqual([...before, ...during, after]);
    },
  );

  it.each(['early', 'late'] as const)(
    'delivers exactly the messages after hello.cursor when the cursor is the head a slow read found (%s snapshot)',
    async (snapshot) => {
      const store = new GatedStore(new MemoryStore({ epoch: 'e' }), snapshot);
      const t = setup({ store });
      await t.broadcast('old');
      store.gate = deferred();
      const reading = store.nextRead();
      const connection = t.connect({ sid: 'I'.repeat(22), last: 'nonsense' });
      await reading;
      await t.broadcast('during 1');
      await t.broadcast('during 2');
      store.gate.resolve();
      await connection.untilFrame((frame) => frame.t === 'hello');
      const live = await t.broadcast('live');
      await connection.untilMessage(live);
      const { cursor } = connection.hello;
      expect(connection.frames[1]).toEqual({ t: 'gap', reason: 'invalid-id', after: 'nonsense', cursor });
      // The stream continues after the cursor: exactly what the store holds after it, nothing before.
      const expected = await store.inner.read('I'.repeat(22), cursor, 100);
      expect(connection.messageIds()).toEqual(expected.messages.map((message) => message.id));
      expect(connection.messageIds()).toContain(live);
    },
  );

  it('closes with BACKPRESSURE when retention overtakes a replay between pages', async () => {
    const inner = new MemoryStore({ epoch: 'e' });
    let reads = 0;
    const store: MessageStore = {
      append: (message) => inner.append(message),
      head: () => inner.head(),
      join: (sessionId, room) => inner.join(sessionId, room),
      leave: (sessionId, room) => inner.leave(sessionId, room),
      members: (room) => inner.members(room),
      roomsOf: (sessionId) => inner.roomsOf(sessionId),
      subscribe: (listener, events) => inner.subscribe(listener, events),
      async read(sessionId, after, limit) {
        reads++;
        return reads === 2 ? { cursor: 'e-900', gap: 'expired', messages: [], more: false } : inner.read(sessionId, after, limit);
      },
    };
    const t = setup({ store });
    for (let i = 0; i < 600; i++) await t.broadcast(i);
    const connection = t.connect({ sid: 'P'.repeat(22), last: 'e-0' });
    await connection.untilClosed();
    expect(connection.closedWith).toMatchObject({ kind: 'error', code: 'BACKPRESSURE' });
    expect(connection.frames.filter((frame) => frame.t === 'gap')).toEqual([]);
  });

  it('closes with INTERNAL_ERROR and reports STORE_ERROR when the store fails', async () => {
    const inner = new MemoryStore({ epoch: 'e' });
    const store: MessageStore = {
      append: (message) => inner.append(message),
      head: () => inner.head(),
      join: (sessionId, room) => inner.join(sessionId, room),
      leave: (sessionId, room) => inner.leave(sessionId, room),
      members: (room) => inner.members(room),
      roomsOf: (sessionId) => inner.roomsOf(sessionId),
      subscribe: (listener, events) => inner.subscribe(listener, events),
      read: () => Promise.reject(new Error('store down')),
    };
    const t = setup({ store });
    const connection = t.connect();
    await connection.untilClosed();
    expect(connection.closedWith).toMatchObject({ kind: 'error', code: 'INTERNAL_ERROR' });
    expect(t.errors).toHaveLength(1);
    expect(t.errors[0]).toBeInstanceOf(UnbrokenServerError);
    expect(t.errors[0]).toMatchObject({ code: 'STORE_ERROR', cause: expect.objectContaining({ message: 'store down' }) });
  });
});

describe('batching and encoding (§4.1, §4.3)', () => {
  it('puts every message appended in one tick into one batch, with the id of its last message', async () => {
    const t = setup();
    const connection = await t.open();
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => t.broadcast(i)));
    await connection.untilMessage(ids.at(-1)!);
    const batches = connection.writes.filter((write) => write.frames.some((frame) => frame.t === 'msg'));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.lastMessageId).toBe(ids.at(-1));
    expect(connection.writes.every((write) => write.frames.some((frame) => frame.t === 'msg') || write.lastMessageId === undefined)).toBe(true);
  });

  it('splits a batch before it grows past the size limit (§4.1.size)', async () => {
    const t = setup();
    const connection = await t.open();
    const chunk = 'x'.repeat(MAX_BATCH_CHARS / 4);
    const ids = await Promise.all(Array.from({ length: 10 }, () => t.broadcast(chunk)));
    await connection.untilMessage(ids.at(-1)!);
    const batches = connection.writes.slice(1);
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches) expect(JSON.stringify(batch.frames).length).toBeLessThanOrEqual(MAX_BATCH_CHARS);
    expect(connection.messageIds()).toEqual(ids);
  });

  it('writes a full batch at once, and the rest of the turn at its end', async () => {
    const t = setup();
    const connection = await t.open();
    const messageWrites = () => connection.writes.filter((write) => write.frames.some((frame) => frame.t === 'msg'));
    const chunk = 'x'.repeat(MAX_BATCH_CHARS / 8);
    const sending: Promise<string>[] = [];
    for (let i = 0; i < 12; i++) sending.push(t.broadcast(chunk));
    // Still in the turn of the sends: the first full batch went out, the rest waits for the turn's end.
    const early = messageWrites();
    expect(early).toHaveLength(1);
    const earlyCount = early[0]!.frames.length;
    expect(earlyCount).toBeGreaterThan(1);
    expect(earlyCount).toBeLessThan(12);
    const ids = await Promise.all(sending);
    await connection.untilMessage(ids.at(-1)!);
    const batches = messageWrites();
    expect(batches).toHaveLength(2);
    expect(batches[0]!.lastMessageId).toBe(ids[earlyCount - 1]);
    for (const batch of batches) expect(JSON.stringify(batch.frames).length).toBeLessThanOrEqual(MAX_BATCH_CHARS);
    expect(connection.messageIds()).toEqual(ids);
  });

  it('serialises the data of a message once, at the send, however many connections it reaches', async () => {
    const t = setup();
    const connections = [await t.open(), await t.open(), await t.open()];
    let serialised = 0;
    const id = await t.broadcast({ toJSON: () => ++serialised } as unknown as Payload);
    for (const connection of connections) await connection.untilMessage(id);
    expect(serialised).toBe(1);
    for (const connection of connections) expect(connection.messageData()).toEqual([1]);
  });

  it("sends a message's data as the JSON text its store hands over, without serialising it again", async () => {
    const t = setup({ store: new TextStore(() => '{ "a": 1 }') });
    const connection = await t.open();
    const id = await t.broadcast({ a: 1 });
    await connection.untilMessage(id);
    expect(connection.texts.at(-1)).toContain('"d":{ "a": 1 }');
    expect(connection.messageData()).toEqual([{ a: 1 }]);
  });

  it("serialises the data itself when the store's text holds a line break, which would cut a carrier's line (§7.5)", async () => {
    const t = setup({ store: new TextStore((message) => JSON.stringify(message.data, null, 1)) });
    const connection = await t.open();
    const id = await t.broadcast({ a: [1, 2] });
    await connection.untilMessage(id);
    expect(connection.texts.at(-1)).toContain('"d":{"a":[1,2]}');
    expect(connection.texts.join('')).not.toMatch(/[\r\n]/);
  });

  it('sends bytes as a binary frame where the connection has them, else as base64 b', async () => {
    const t = setup();
    const binary = await t.open({}, { binary: true });
    const text = await t.open({}, { transport: 'sse' });
    const id = await t.hub.append({ kind: 'all' }, new Uint8Array([0xde, 0xad]));
    await binary.untilMessage(id);
    await text.untilMessage(id);
    expect(binary.writes.at(-1)).toMatchObject({ binary: true, frames: [{ t: 'msg', id, b: '3q0=' }] });
    expect(text.writes.at(-1)).toMatchObject({ binary: false, frames: [{ t: 'msg', id, b: '3q0=' }] });
  });

  it('counts the UTF-8 bytes of a message frame, with non-ASCII data and event name', async () => {
    const t = setup();
    const message = await t.store.append({ to: { kind: 'all' }, event: 'café', data: { text: 'héllo 😀 \u2028' } });
    const item = t.hub.encodings(message).item(false);
    expect(item.kind).toBe('text');
    if (item.kind === 'text') expect(item.bytes).toBe(Buffer.byteLength(item.text));
  });

  it('answers a send at once from a store that appends synchronously, and rejects what it refuses', async () => {
    const t = setup();
    const connection = await t.open();
    // "At once": the send's promise is settled by the first microtask after the call. A store that
    // appends asynchronously settles it a turn of the microtask queue later.
    const sent = t.hub.append({ kind: 'all' }, { n: 1 });
    let settled = false;
    void sent.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(true);
    const id = await sent;
    await connection.untilMessage(id);
    await t.store.close?.();
    await expect(t.hub.append({ kind: 'all' }, { n: 2 })).rejects.toThrow(/after close/);
  });

  it('encodes a stored message once for every connection', async () => {
    const t = setup();
    const message = await t.store.append({ to: { kind: 'all' }, data: new Uint8Array([1]) });
    expect(t.hub.encodings(message).item(true)).toEqual(t.hub.encodings(message).item(true));
    const first = t.hub.encodings(message).item(true);
    const second = t.hub.encodings(message).item(true);
    expect(first.kind === 'binary' && second.kind === 'binary' && first.frame === second.frame).toBe(true);
  });

  it('keeps no encoding of a message to one session once its replay took it', async () => {
    const t = setup();
    const message = await t.store.append({ to: { kind: 'session', session: 'only-one-reader' }, data: { n: 1 } });
    expect(t.hub.encodings(message)).not.toBe(t.hub.encodings(message));
    expect(t.hub.encodings(message).item(false)).toEqual(t.hub.encodings(message).item(false));
  });
});

describe('upstream (§5, §8)', () => {
  it('processes each message once, in order, and acks the highest processed after each batch', async () => {
    const t = setup();
    const connection = await t.open();
    connection.handle.receive([
      { t: 'msg', s: 1, data: 'one' },
      { t: 'msg', s: 2, data: 'two' },
    ]);
    await connection.untilFrame((frame) => frame.t === 'ack' && frame.s === 2);
    connection.handle.receive([{ t: 'msg', s: 1, data: 'one' }]);
    await connection.until(() => connection.frames.filter((frame) => frame.t === 'ack').length === 2);
    connection.handle.receive([
      { t: 'msg', s: 2, data: 'two' },
      { t: 'msg', s: 3, data: 'three' },
      { t: 'msg', s: 3, data: 'three' },
    ]);
    await connection.untilFrame((frame) => frame.t === 'ack' && frame.s === 3);
    expect(dataOf(t)).toEqual(['one', 'two', 'three']);
    expect(connection.frames.filter((frame) => frame.t === 'ack')).toEqual([
      { t: 'ack', s: 2 },
      { t: 'ack', s: 2 },
      { t: 'ack', s: 3 },
    ]);
  });

  it('closes with PROTOCOL_ERROR on a hole and processes nothing of that batch', async () => {
    const t = setup();
    const connection = await t.open();
    connection.handle.receive([
      { t: 'msg', s: 1, data: 'one' },
      { t: 'msg', s: 3, data: 'three' },
    ]);
    await connection.untilClosed();
    expect(connection.closedWith).toMatchObject({ kind: 'error', code: 'PROTOCOL_ERROR', message: expect.stringContaining('s=3') });
    expect(dataOf(t)).toEqual([]);
    expect(t.hub.sessions.has(connection.hello.sid)).toBe(true);
  });

  it('answers ping with pong at once, in the same batch as the ack (§5.pong)', async () => {
    const t = setup();
    const connection = await t.open();
    connection.handle.receive([
      { t: 'ping', n: 7 },
      { t: 'msg', s: 1, data: 'x' },
      { t: 'ping', n: 8 },
    ]);
    await connection.untilFrame((frame) => frame.t === 'ack');
    expect(connection.writes.at(-1)!.frames).toEqual([
      { t: 'pong', n: 7 },
      { t: 'pong', n: 8 },
      { t: 'ack', s: 1 },
    ]);
  });

  it('ends the session on bye, after acking what came before it', async () => {
    const t = setup();
    const connection = await t.open();
    connection.handle.receive([{ t: 'msg', s: 1, data: 'last words' }, { t: 'bye' }, { t: 'msg', s: 2, data: 'ignored' }]);
    await connection.untilClosed();
    expect(connection.closedWith).toEqual({ kind: 'end' });
    expect(connection.frames.at(-1)).toEqual({ t: 'ack', s: 1 });
    expect(dataOf(t)).toEqual(['last words']);
    expect(t.ended.map(({ reason }) => reason)).toEqual(['bye']);
    expect(t.hub.sessions.size).toBe(0);
  });

  it('counts a message whose listener threw as processed, acks it and reports the error', async () => {
    const t = setup();
    t.emitter.on('message', () => {
      throw new Error('listener bug');
    });
    const connection = await t.open();
    connection.handle.receive([{ t: 'msg', s: 1, data: 'x' }]);
    await connection.untilFrame((frame) => frame.t === 'ack' && frame.s === 1);
    expect(dataOf(t)).toEqual(['x']);
    expect(t.errors.map((error) => error.message)).toEqual(['listener bug']);
  });

  it('acks what it processed before closing when the application ends the session mid-batch', async () => {
    const t = setup();
    t.emitter.on('message', (data, session) => {
      if (data === 'two') session.close();
    });
    const connection = await t.open();
    connection.handle.receive([
      { t: 'msg', s: 1, data: 'one' },
      { t: 'msg', s: 2, data: 'two' },
      { t: 'msg', s: 3, data: 'three' },
    ]);
    await connection.untilClosed();
    expect(dataOf(t)).toEqual(['one', 'two']);
    expect(connection.frames.at(-1)).toEqual({ t: 'ack', s: 2 });
    expect(t.ended.map(({ reason }) => reason)).toEqual(['closed']);
  });

  it('processes frames that arrive before the hello, and puts the hello first anyway', async () => {
    const store = new GatedStore(new MemoryStore({ epoch: 'e' }), 'early');
    store.gate = deferred();
    const t = setup({ store });
    const reading = store.nextRead();
    const connection = t.connect();
    await reading;
    connection.handle.receive([
      { t: 'msg', s: 1, data: 'early' },
      { t: 'ping', n: 1 },
    ]);
    store.gate.resolve();
    await connection.untilFrame((frame) => frame.t === 'hello');
    expect(connection.writes[0]!.frames[0]).toMatchObject({ t: 'hello', ack: 1 });
    expect(connection.frames.slice(1)).toEqual([
      { t: 'pong', n: 1 },
      { t: 'ack', s: 1 },
    ]);
  });

  it('answers an HTTP upstream batch with its ack alone, and its pings with pongs on the downstream connection', async () => {
    const t = setup();
    const connection = await t.open({}, { transport: 'sse' });
    const sid = connection.hello.sid;
    expect(t.hub.upstream(sid, [{ t: 'ping', n: 3 }])).toEqual([{ t: 'ack', s: 0 }]);
    await connection.untilFrame((frame) => frame.t === 'pong');
    expect(connection.frames.slice(1)).toEqual([{ t: 'pong', n: 3 }]);
    expect(t.hub.upstream(sid, [{ t: 'msg', s: 1, data: 'a' }])).toEqual([{ t: 'ack', s: 1 }]);
    expect(t.hub.upstream(sid, [{ t: 'msg', s: 1, data: 'a' }])).toEqual([{ t: 'ack', s: 1 }]);
    expect(() => t.hub.upstream(sid, [{ t: 'msg', s: 5, data: 'hole' }])).toThrow(/hole/);
    expect(t.hub.upstream('U'.repeat(22), [{ t: 'ping', n: 1 }])).toBeNull();
    expect(t.hub.upstream(sid, [{ t: 'bye' }])).toEqual([{ t: 'ack', s: 1 }]);
    expect(dataOf(t)).toEqual(['a']);
    expect(t.ended.map(({ reason }) => reason)).toEqual(['bye']);
  });

  it('processes nothing a connection sends after it was closed', async () => {
    const t = setup();
    const older = await t.open();
    await t.open({ sid: older.hello.sid, last: older.hello.cursor });
    older.handle.receive([{ t: 'msg', s: 1, data: 'too late' }]);
    expect(dataOf(t)).toEqual([]);
  });
});

describe('connections of a session (§3.3)', () => {
  it('closes the older connection with SUPERSEDED after the newer one is attached', async () => {
    const t = setup();
    const older = await t.open();
    const newer = await t.open({ sid: older.hello.sid, last: older.hello.cursor });
    expect(older.closedWith).toMatchObject({ kind: 'error', code: 'SUPERSEDED' });
    expect(older.sessionConnectedAtClose).toBe(true);
    expect(newer.hello.resumed).toBe(true);
    const id = await t.broadcast('to the newer one');
    await newer.untilMessage(id);
    expect(older.messageIds()).toEqual([]);
    expect(t.ended).toEqual([]);
  });

  it('reports the transport of the current connection, and none while away', async () => {
    const t = setup();
    const connection = await t.open({}, { transport: 'sse' });
    const session = t.hub.sessions.get(connection.hello.sid)!;
    expect([session.transport, session.connected]).toEqual(['sse', true]);
    connection.handle.closed();
    expect([session.transport, session.connected]).toEqual([null, false]);
  });

  it('holds frames for a polling connection until it polls, then answers one batch', async () => {
    const t = setup();
    const connection = await t.open({}, { polling: true });
    expect(connection.handle.cursor).toBe('e-0');
    const ids = [await t.broadcast('a'), await t.broadcast('b')];
    expect(connection.writes).toHaveLength(1);
    connection.poll();
    await connection.untilMessage(ids[1]!);
    expect(connection.writes).toHaveLength(2);
    expect(connection.writes[1]!.frames.map((frame) => frame.t)).toEqual(['msg', 'msg']);
    expect(connection.handle.cursor).toBe(ids[1]);
  });

  it('answers a held poll at the end of the turn, not with the first full batch, and keeps the rest queued for the next poll', async () => {
    // Room for the whole turn (1.5 MiB): a held poll takes its answer only at the end of the turn.
    const t = setup({ maxBufferedBytes: 4 * 1024 * 1024 });
    const connection = await t.open({}, { polling: true });
    connection.poll();
    const reads = vi.spyOn(t.store, 'read');
    const chunk = 'x'.repeat(MAX_POLL_BATCH_CHARS / 8);
    const sending: Promise<string>[] = [];
    for (let i = 0; i < 12; i++) sending.push(t.broadcast(chunk));
    expect(connection.writes).toHaveLength(1); // the hello alone: a full batch did not answer the poll
    const ids = await Promise.all(sending);
    await connection.untilFrame((frame) => frame.t === 'msg');
    expect(connection.writes).toHaveLength(2);
    connection.poll();
    await connection.untilMessage(ids.at(-1)!);
    expect(connection.writes).toHaveLength(3);
    expect(connection.messageIds()).toEqual(ids);
    // A poll's answer is larger than a stream's batch (a request per answer), and still bounded.
    const answer = JSON.stringify(connection.writes[1]!.frames).length;
    expect(answer).toBeGreaterThan(MAX_BATCH_CHARS);
    expect(answer).toBeLessThanOrEqual(MAX_POLL_BATCH_CHARS);
    // Served from the link's queue: the link never parked, so nothing was read back from the store.
    expect(reads).not.toHaveBeenCalled();
  });

  it('sends nothing to a session after it ended (SESSION_ENDED): a session created under its id later is not this one (§3.3.same-id-fresh)', async () => {
    const t = setup();
    const connection = await t.open();
    const session = t.hub.sessions.get(connection.hello.sid)!;
    session.close();
    await expect(session.send('for later')).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    const kept = await t.store.read(session.id, connection.hello.cursor, 10);
    expect(kept.messages).toEqual([]);
  });
});

describe('the API refuses invalid arguments (§4.2)', () => {
  it.each(['', 'e'.repeat(129), 'a\nb', 'a\rb', 'a\0b'])('throws INVALID_EVENT_NAME synchronously for the event name %j (§4.2.refuse-event)', (event) => {
    const t = setup();
    expect(() => t.hub.append({ kind: 'all' }, 'x', { event })).toThrow(UnbrokenTypeError);
    expect(() => t.hub.append({ kind: 'all' }, 'x', { event })).toThrow(expect.objectContaining({ code: 'INVALID_EVENT_NAME' }));
  });

  it('throws INVALID_DATA synchronously for data that is neither JSON nor bytes', () => {
    const t = setup();
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    for (const data of [undefined, () => 1, 10n, cyclic, new ArrayBuffer(2), new Uint16Array(2)]) {
      expect(() => t.hub.append({ kind: 'all' }, data as unknown as Payload)).toThrow(expect.objectContaining({ code: 'INVALID_DATA' }));
    }
  });

  it('rejects with SERVER_CLOSED once closed', async () => {
    const t = setup();
    await t.hub.close();
    await expect(t.broadcast('late')).rejects.toMatchObject({ code: 'SERVER_CLOSED' });
  });
});

describe('the buffer bound (§12)', () => {
  it('closes with BACKPRESSURE when a live connection holds more than the bound, without writing what is queued', async () => {
    const t = setup({ maxBufferedBytes: 10_000 });
    const connection = await t.open();
    const writes = connection.writes.length;
    connection.buffered = 9_990;
    await t.broadcast('x'.repeat(100));
    await connection.untilClosed();
    expect(connection.closedWith).toMatchObject({ kind: 'error', code: 'BACKPRESSURE' });
    expect(connection.writes).toHaveLength(writes);
    expect(t.hub.sessions.get(connection.hello.sid)?.connected).toBe(false);
    expect(t.ended).toEqual([]);
  });

  it('paces a replay larger than the bound by the connection draining, instead of closing', async () => {
    const t = setup({ maxBufferedBytes: 64 * 1024 });
    const hello = await t.dropped();
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(await t.broadcast(`${i}:${'y'.repeat(1_000)}`));
    const connection = t.connect({ sid: hello.sid, last: hello.cursor }, { buffering: true });
    let drains = 0;
    while (connection.messageIds().length < ids.length) {
      await connection.until(() => connection.buffered > 32 * 1024 || connection.messageIds().length === ids.length);
      if (connection.messageIds().length < ids.length) {
        drains++;
        connection.drain();
      }
    }
    expect(connection.closedWith).toBeNull();
    expect(drains).toBeGreaterThan(2);
    expect(connection.messageIds()).toEqual(ids);
  });
});

describe('the total buffer bound (§12.1)', () => {
  it('§12.1.total cuts the connections that hold the most first, with BACKPRESSURE, until the rest fit', async () => {
    const t = setup({ maxBufferedBytes: 1 << 20, maxTotalBufferedBytes: 45_000 });
    const slowest = await t.open({}, { buffering: true });
    const slow = await t.open({}, { buffering: true });
    const quick = await t.open({}, { buffering: true });
    slowest.buffered = 30_000;
    slow.buffered = 20_000;
    quick.buffered = 5_000;
    // A broadcast makes the hub look at the total once its writes went out.
    await t.broadcast('tick');
    await slowest.untilClosed();
    expect(slowest.closedWith).toMatchObject({ kind: 'error', code: 'BACKPRESSURE' });
    // Without the slowest, the rest fit: nobody else is cut, and no session ended.
    await t.broadcast('tock');
    await quick.until(() => quick.messageData().includes('tock'));
    expect(slow.closedWith).toBeNull();
    expect(quick.closedWith).toBeNull();
    expect(t.ended).toEqual([]);
    expect(t.hub.stats().connections).toBe(2);
  });
});

describe('heartbeats, liveness and session timeout (§3.3, §7.1, §11)', () => {
  it('writes a frame at least every hb ms: hb when idle', async () => {
    vi.useFakeTimers();
    const t = setup({ heartbeatInterval: 1_000 });
    const connection = await t.open();
    await vi.advanceTimersByTimeAsync(5_000);
    const beats = connection.frames.filter((frame) => frame.t === 'hb');
    expect(beats.length).toBeGreaterThanOrEqual(5);
    const times = connection.writes.map((write) => write.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(1_000);
  });

  it('sends no hb while other frames keep the connection busy', async () => {
    vi.useFakeTimers();
    const t = setup({ heartbeatInterval: 1_000 });
    const connection = await t.open();
    for (let i = 0; i < 10; i++) {
      await t.broadcast(i);
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(connection.frames.filter((frame) => frame.t === 'hb')).toEqual([]);
  });

  it('answers a held poll with hb after about hb ms', async () => {
    vi.useFakeTimers();
    const t = setup({ heartbeatInterval: 1_000 });
    const connection = await t.open({}, { polling: true });
    await vi.advanceTimersByTimeAsync(3_000);
    expect(connection.writes).toHaveLength(1);
    connection.poll();
    await vi.advanceTimersByTimeAsync(800);
    expect(connection.writes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(connection.writes.at(-1)!.frames).toEqual([{ t: 'hb' }]);
  });

  it('probes each connection about every hb ms', async () => {
    vi.useFakeTimers();
    const t = setup({ heartbeatInterval: 1_000 });
    const connection = await t.open();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(connection.probes).toBeGreaterThanOrEqual(10);
    expect(connection.probes).toBeLessThanOrEqual(12);
  });

  it('ends a session without connection after the session timeout, and never one that has a connection', async () => {
    vi.useFakeTimers();
    const t = setup({ heartbeatInterval: 1_000, sessionTimeout: 3_000 });
    const kept = await t.open();
    const hello = await t.dropped();
    await vi.advanceTimersByTimeAsync(2_900);
    expect(t.hub.sessions.has(hello.sid)).toBe(true);
    await vi.advanceTimersByTimeAsync(500);
    expect(t.ended.map(({ session, reason }) => [session.id, reason])).toEqual([[hello.sid, 'timeout']]);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(t.hub.sessions.has(kept.hello.sid)).toBe(true);
  });
});

describe('graceful shutdown (§10.2)', () => {
  it('tells the adapter whether the notice went out: a link that cannot write now gives it with its close', async () => {
    const t = setup({ shutdownJitter: 1_000, random: () => 0.5 });
    // Long polling that answered its hello: nothing more goes out until the next poll.
    const connection = await t.open({}, { polling: true });
    await t.hub.close();
    expect(connection.frames.map(({ t: type }) => type)).toEqual(['hello']);
    expect(connection.closedWith).toEqual({ kind: 'restart', notice: '[{"t":"ack","s":0},{"t":"reconnect","ms":500}]', written: false });
  });

  it('says the notice did not go out when queueing it parked a link that cannot write (§12.1)', async () => {
    const t = setup({ shutdownJitter: 1_000, random: () => 0.5 });
    const connection = await t.open({}, { polling: true });
    // The bound's worth of messages waits for the next poll; the notice is one item past it.
    await Promise.all(Array.from({ length: PARK_AFTER_ITEMS }, (_, n) => t.broadcast(n)));
    await t.hub.close();
    expect(connection.frames.map(({ t: type }) => type)).toEqual(['hello']);
    expect(connection.closedWith).toMatchObject({ kind: 'restart', written: false });
  });

  it('acks what was processed, sends reconnect with a jittered ms, then closes, and processes nothing after', async () => {
    const t = setup({ shutdownJitter: 1_000, random: () => 0.25 });
    const connection = await t.open();
    let closing: Promise<void> | undefined;
    t.emitter.on('message', (data) => {
      if (data === 'two') closing = t.hub.close();
    });
    connection.handle.receive([
      { t: 'msg', s: 1, data: 'one' },
      { t: 'msg', s: 2, data: 'two' },
      { t: 'msg', s: 3, data: 'three' },
    ]);
    await connection.untilClosed();
    expect(connection.frames.slice(1)).toEqual([
      { t: 'ack', s: 2 },
      { t: 'reconnect', ms: 250 },
    ]);
    expect(connection.closedWith).toEqual({ kind: 'restart', notice: '[{"t":"ack","s":2},{"t":"reconnect","ms":250}]', written: true });
    connection.handle.receive([{ t: 'msg', s: 3, data: 'three' }]);
    await closing;
    expect(dataOf(t)).toEqual(['one', 'two']);
    expect(t.ended.map(({ reason }) => reason)).toEqual(['shutdown']);
    expect(t.hub.accepting).toBe(false);
  });

  it('draws the delay per connection and resolves once every connection is gone', async () => {
    const draws = [0, 0.5, 0.999];
    let draw = 0;
    const t = setup({ shutdownJitter: 1_000, random: () => draws[draw++]! });
    const connections = [
      await t.open({}, { reportClose: false }),
      await t.open({}, { reportClose: false }),
      await t.open({}, { reportClose: false }),
    ];
    let settled = false;
    const closing = t.hub.close().then(() => {
      settled = true;
    });
    await Promise.all(connections.map((connection) => connection.untilClosed()));
    expect(connections.map((connection) => connection.frames.at(-1))).toEqual([
      { t: 'reconnect', ms: 0 },
      { t: 'reconnect', ms: 500 },
      { t: 'reconnect', ms: 999 },
    ]);
    for (const connection of connections.slice(0, 2)) connection.handle.closed();
    await Promise.resolve();
    expect(settled).toBe(false);
    connections[2]!.handle.closed();
    await closing;
    expect(settled).toBe(true);
  });

  it('refuses a connection that arrives during shutdown with SERVER_RESTART, creating no session', async () => {
    const t = setup();
    const held = await t.open({}, { reportClose: false });
    const closing = t.hub.close();
    const late = t.connect({ sid: 'L'.repeat(22) });
    expect(late.closedWith).toMatchObject({ kind: 'error', code: 'SERVER_RESTART' });
    expect(t.hub.sessions.has('L'.repeat(22))).toBe(false);
    late.handle.closed();
    held.handle.closed();
    await closing;
  });
});

describe('rooms in the hub (§6.5)', () => {
  it('§6.5.session keeps a membership across a transport switch and replays the room on the new transport', async () => {
    const t = setup();
    const first = await t.open({}, { transport: 'websocket' });
    const sid = first.hello.sid;
    const session = t.hub.sessions.get(sid)!;
    await session.join('lobby');
    const live = await t.hub.to('lobby').send('live');
    await first.untilMessage(live);
    first.handle.closed();
    const missed = [await t.hub.to('lobby').send('missed 1'), await t.broadcast('all'), await t.hub.to(['lobby', 'x']).send('missed 2')];
    const second = await t.open({ sid, last: live }, { transport: 'long-polling' });
    await second.untilMessage(missed[2]!);
    expect(second.messageIds()).toEqual(missed);
    expect([...session.rooms]).toEqual(['lobby']);
  });

  it('§6.5.session ends the membership with the session: a new session under the same id is in no room', async () => {
    const t = setup();
    const first = await t.open();
    const sid = first.hello.sid;
    const left: string[] = [];
    t.emitter.on('leave', (session, room) => left.push(`${session.id === sid} ${room}`));
    await t.hub.sessions.get(sid)!.join('lobby');
    t.hub.sessions.get(sid)!.close();
    expect(left).toEqual(['true lobby']);
    const after = await t.hub.to('lobby').send('after the end');
    const again = await t.open({ sid });
    const marker = await t.hub.sessions.get(sid)!.send('marker');
    await again.untilMessage(marker);
    expect(again.messageIds()).not.toContain(after);
    expect(await t.hub.to('lobby').sessions()).toEqual([]);
    expect(await t.store.members('lobby')).toEqual([]);
  });
});
