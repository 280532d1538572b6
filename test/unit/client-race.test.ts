/**
 * Racing (PROTOCOL.md §13.3) on a fake clock: an attempt without `hello` after its head start gets a
 * rival on the next transport, for the session its ticket answer named (§3.4.name-session); the first
 * `hello` wins, the other attempt is closed, and a winner superseded by the loser recovers at once.
 * The WebSocket and EventSource are driven by hand; every ticket answer names one session.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connect, type Client, type ClientOptions } from '../../src/client/index.js';
import { headStart } from '../../src/client/race.js';
import type { FetchLike, WebSocketLike } from '../../src/client/transport.js';
import type { ServerFrame } from '../../src/protocol/index.js';
import { FakeEventSource } from './client-http-fakes.js';
import { helloFrame, record } from './client-harness.js';

const SID = 'session-of-the-race-01';
const KEY = 'key-of-the-race-000001';

/** A WebSocket the test opens, feeds and closes by hand; until then its upgrade hangs. */
class HandWebSocket implements WebSocketLike {
  static readonly made: HandWebSocket[] = [];
  binaryType = 'blob';
  readyState = 0;
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly url: URL;
  constructor(url: string) {
    this.url = new URL(url);
    HandWebSocket.made.push(this);
  }
  send(): void {}
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  frames(...frames: ServerFrame[]): void {
    this.onmessage?.({ data: JSON.stringify(frames) });
  }
}

/** Ticket requests, with the session each presented; answers name `SID` unless `naming` is off. */
const tickets: { sid?: string; key?: string }[] = [];
let naming = true;
const fetchFake = ((input: RequestInfo | URL, init: RequestInit = {}) => {
  if (!String(input).includes('/ticket')) return new Promise<Response>(() => {});
  tickets.push(JSON.parse(String(init.body)) as { sid?: string; key?: string });
  const body = { ticket: `ticket-of-the-race-${String(tickets.length).padStart(4, '0')}`, ttl: 30_000, ...(naming ? { sid: SID, key: KEY } : {}) };
  return Promise.resolve(new Response(JSON.stringify(body)));
}) as FetchLike;

const OPTIONS: ClientOptions = {
  WebSocket: HandWebSocket,
  EventSource: FakeEventSource,
  fetch: fetchFake,
  share: false,
  storage: null,
  pageLifecycle: false,
  upgradeInterval: 0,
  transports: ['websocket', 'sse'],
};

const sseFrames = (source: FakeEventSource, ...frames: ServerFrame[]): void => source.message(JSON.stringify(frames));
const hello = (fields: Partial<Parameters<typeof helloFrame>[0]> = {}) => helloFrame({ sid: SID, key: KEY, ...fields });

describe('racing the next transport (§13.3)', () => {
  const clients: Client[] = [];
  const client = (options: ClientOptions = {}): Client => {
    const made = connect(`http://example.test/realtime`, { ...OPTIONS, ...options });
    clients.push(made);
    return made;
  };

  beforeEach(() => {
    vi.useFakeTimers();
    HandWebSocket.made.length = 0;
    FakeEventSource.made.length = 0;
    tickets.length = 0;
    naming = true;
  });
  afterEach(() => {
    for (const made of clients.splice(0)) made.close();
    vi.useRealTimers();
  });

  it('§13.3 starts no race when the hello arrives within the head start', async () => {
    const made = client();
    await vi.advanceTimersByTimeAsync(100);
    const ws = HandWebSocket.made[0]!;
    ws.open();
    ws.frames(hello());
    expect(made.state).toBe('open');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeEventSource.made).toHaveLength(0);
    expect(tickets).toHaveLength(1);
  });

  it('§13.3 starts SSE alongside a hanging upgrade once the head start is over, for the session the first ticket named, and keeps the first hello', async () => {
    const made = client();
    const log = record(made, ['state', 'transport', 'open', 'error']);
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeEventSource.made).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    const source = FakeEventSource.latest();
    // One session: the rival presents what the first ticket answer named.
    expect(tickets).toEqual([{ max: 4_194_304 }, { sid: SID, key: KEY, max: 4_194_304 }]);
    source.open();
    sseFrames(source, hello(), { t: 'msg', id: 'e1-1', d: 'first' });
    expect(made.transport).toBe('sse');
    expect(HandWebSocket.made[0]!.closedWith).toBe(4000);
    expect(log).toEqual(['state connecting>open connected', 'transport null>sse timeout', 'open']);
  });

  it('§13.3 keeps the first attempt when its hello comes first, and closes the rival at once', async () => {
    const made = client();
    await vi.advanceTimersByTimeAsync(600);
    const source = FakeEventSource.latest();
    const ws = HandWebSocket.made[0]!;
    ws.open();
    ws.frames(hello());
    expect(made.transport).toBe('websocket');
    expect(source.readyState).toBe(2);
    // A late hello of the loser is nobody's.
    sseFrames(source, hello());
    expect(made.transport).toBe('websocket');
    expect(made.state).toBe('open');
  });

  it('§13.3 recovers when the loser attached after the winner: the superseded winner goes at once to the loser transport and resumes from its cursor', async () => {
    const made = client();
    const got: string[] = [];
    made.on('message', ({ data }) => got.push(data as string));
    const schedules: number[] = [];
    made.on('schedule', ({ delay }) => schedules.push(delay));
    await vi.advanceTimersByTimeAsync(600);
    const rival = FakeEventSource.latest();
    const ws = HandWebSocket.made[0]!;
    ws.open();
    ws.frames(hello(), { t: 'msg', id: 'e1-1', d: 'a' });
    // The rival's request had reached the server: it attached after the WebSocket and superseded it.
    ws.frames({ t: 'error', code: 'SUPERSEDED', message: 'superseded' });
    expect(rival.readyState).toBe(2);
    expect(schedules).toEqual([0]);
    await vi.advanceTimersByTimeAsync(0);
    const resumed = FakeEventSource.latest();
    expect(resumed).not.toBe(rival);
    expect(resumed.url.searchParams.get('last')).toBe('e1-1');
    expect(tickets.at(-1)).toEqual({ sid: SID, key: KEY, max: 4_194_304 });
    resumed.open();
    sseFrames(resumed, hello({ resumed: true, cursor: 'e1-1' }), { t: 'msg', id: 'e1-2', d: 'b' });
    expect(got).toEqual(['a', 'b']);
    expect(made.transport).toBe('sse');
  });

  it('§13.3 recovers when the rival won and the first attempt attached after it: it reconnects at once on the rival transport', async () => {
    const made = client();
    const got: string[] = [];
    made.on('message', ({ data }) => got.push(data as string));
    await vi.advanceTimersByTimeAsync(600);
    const rival = FakeEventSource.latest();
    rival.open();
    sseFrames(rival, hello(), { t: 'msg', id: 'e1-1', d: 'a' });
    sseFrames(rival, { t: 'error', code: 'SUPERSEDED', message: 'superseded' });
    await vi.advanceTimersByTimeAsync(0);
    const again = FakeEventSource.latest();
    expect(again).not.toBe(rival);
    expect(again.url.searchParams.get('last')).toBe('e1-1');
    again.open();
    sseFrames(again, hello({ resumed: true, cursor: 'e1-1' }), { t: 'msg', id: 'e1-1', d: 'a' }, { t: 'msg', id: 'e1-2', d: 'b' });
    expect(got).toEqual(['a', 'b']);
    expect(HandWebSocket.made).toHaveLength(1);
  });

  it('§13.3 lets the rival carry on alone when the first attempt fails, and names the transport after that failure', async () => {
    const made = client();
    const log = record(made, ['transport', 'error']);
    await vi.advanceTimersByTimeAsync(600);
    const ws = HandWebSocket.made[0]!;
    ws.readyState = 3;
    ws.onclose?.({ code: 1006 });
    const source = FakeEventSource.latest();
    source.open();
    sseFrames(source, hello());
    expect(log).toEqual(['error TRANSPORT_ERROR', 'transport null>sse refused']);
    expect(FakeEventSource.made).toHaveLength(1);
  });

  it('§13.3 leaves an SSE stream that opened silent before the race and says hello only once its rival attached: a held-back stream', async () => {
    const made = client({ transports: ['sse', 'long-polling'] });
    const log = record(made, ['transport']);
    await vi.advanceTimersByTimeAsync(10);
    const source = FakeEventSource.latest();
    source.open();
    await vi.advanceTimersByTimeAsync(600);
    // The rival's poll went out; the server ended the held stream, and the proxy released its hello.
    expect(tickets).toHaveLength(2);
    sseFrames(source, hello());
    expect(made.state).toBe('connecting');
    expect(source.readyState).toBe(2);
    expect(log).toEqual([]);
  });

  it('§13.3 starts no race when the ticket answer names no session and the client has none', async () => {
    naming = false;
    client();
    await vi.advanceTimersByTimeAsync(2_990);
    expect(FakeEventSource.made).toHaveLength(0);
    // The connect deadline, then the fallback of old: SSE.
    await vi.advanceTimersByTimeAsync(50);
    expect(FakeEventSource.made).toHaveLength(1);
  });

  it('§13.3 starts no race when raceAfter is 0', async () => {
    client({ raceAfter: 0 });
    await vi.advanceTimersByTimeAsync(2_999);
    expect(FakeEventSource.made).toHaveLength(0);
  });

  it('gives the first attempt a longer head start on a slow network: 4 round trips of its ticket request (§13.3)', () => {
    expect(headStart(500, 50)).toBe(500);
    // The figure PROTOCOL.md §13.3 gives, not the constant: a change of the constant alone fails here.
    expect(headStart(500, 200)).toBe(800);
  });
});
