/**
 * The fallback policy (PROTOCOL.md §13.3), the remembered transport and the page-lifecycle checks
 * (§13.4), on a mock socket and a fake clock. The fallback chain itself, across real transports and a
 * real misbehaving proxy, is covered by test/integration/fallback.test.ts.
 */
import { MapMemory } from '../helpers/memory.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TransportMemory } from '../../src/client/index.js';
import { classify } from '../../src/client/reconnect-policy.js';
import { ERROR_CODES, type ErrorCode } from '../../src/protocol/index.js';
import { record, settle, useMockServer } from './client-harness.js';

const KEY = 'unbroken:transport:http://example.test/realtime';

describe('classify() and fallback (§13.3)', () => {
  it('§13.3 falls back only when an attempt failed to connect or to say hello', () => {
    expect(classify('TRANSPORT_ERROR', { opened: false })).toBe('fallback');
    expect(classify('CONNECT_TIMEOUT', { opened: false })).toBe('fallback');
    expect(classify('TRANSPORT_ERROR', { opened: true })).toBe('retry');
    expect(classify('HEARTBEAT_TIMEOUT', { opened: true })).toBe('retry');
  });

  it('never falls back on a code the server signalled, and never past a fatal one', () => {
    const serverCodes = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((code) => code !== 'TRANSPORT_ERROR' && code !== 'CONNECT_TIMEOUT');
    for (const code of serverCodes) expect(classify(code, { opened: false })).toBe(ERROR_CODES[code].action);
  });
});

describe('client fallback details', () => {
  const server = useMockServer();
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('starts on a remembered transport and says so', async () => {
    const storage = new MapMemory();
    storage.setItem(KEY, JSON.stringify({ name: 'websocket', until: Date.now() + 60_000 }));
    const client = server.client({ storage });
    const log = record(client, ['transport']);
    await server.accept();
    expect(log).toEqual(['transport null>websocket remembered']);
    client.close();
  });

  it('ignores a remembered transport that expired or is not in the list', async () => {
    for (const remembered of [
      { name: 'websocket', until: Date.now() - 1 },
      { name: 'long-polling', until: Date.now() + 60_000 },
    ]) {
      const storage = new MapMemory();
      storage.setItem(KEY, JSON.stringify(remembered));
      const client = server.client({ storage });
      const log = record(client, ['transport']);
      await server.accept();
      expect(log).toEqual(['transport null>websocket initial']);
      client.close();
    }
  });

  it('forgets the memory once the first transport of the list works again', async () => {
    const storage = new MapMemory();
    storage.setItem(KEY, JSON.stringify({ name: 'websocket', until: Date.now() + 60_000 }));
    const client = server.client({ storage });
    await server.accept();
    expect(storage.items.has(KEY)).toBe(false);
    client.close();
  });

  it('works the same when the storage throws', async () => {
    const storage: TransportMemory = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('denied');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    };
    const client = server.client({ storage });
    await server.accept();
    expect(client.state).toBe('open');
    client.close();
  });
});

describe('page lifecycle (§13.4)', () => {
  const server = useMockServer();
  let page: EventTarget;
  let document: EventTarget & { visibilityState: string };
  beforeEach(() => {
    page = new EventTarget();
    document = Object.assign(new EventTarget(), { visibilityState: 'hidden' });
    vi.stubGlobal('addEventListener', page.addEventListener.bind(page));
    vi.stubGlobal('removeEventListener', page.removeEventListener.bind(page));
    vi.stubGlobal('document', document);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it.each(['online', 'pageshow', 'visible'])('pings at once on %s and drops a link that does not answer within the connect deadline', async (moment) => {
    const client = server.client({ connectTimeout: 1_000 });
    const peer = await server.accept({ hb: 60_000 });
    const log = record(client, ['error']);
    if (moment === 'visible') {
      document.visibilityState = 'visible';
      document.dispatchEvent(new Event('visibilitychange'));
    } else page.dispatchEvent(new Event(moment));
    await settle();
    expect(peer.frames().at(-1)).toEqual({ t: 'ping', n: expect.any(Number) });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    client.close();
  });

  it('keeps a link that answers the check', async () => {
    const client = server.client({ connectTimeout: 1_000 });
    const peer = await server.accept({ hb: 60_000 });
    const log = record(client, ['error']);
    page.dispatchEvent(new Event('online'));
    await settle();
    const ping = peer.frames().at(-1);
    peer.send({ t: 'pong', n: ping?.t === 'ping' ? ping.n : -1 });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(log).toEqual([]);
    expect(client.state).toBe('open');
    client.close();
  });

  it('reconnects at once when the network comes back, instead of waiting out the backoff', async () => {
    const client = server.client({ reconnectDelay: 60_000, random: () => 1 });
    const peer = await server.accept({ retry: 0 });
    peer.close(4000);
    await settle();
    expect(client.state).toBe('reconnecting');
    const connections = server.opened.length;
    page.dispatchEvent(new Event('online'));
    await settle();
    expect(server.opened.length).toBe(connections + 1);
    client.close();
  });

  it('does not take a batch other than the pong as the answer', async () => {
    const client = server.client({ connectTimeout: 1_000 });
    const peer = await server.accept({ hb: 60_000 });
    const log = record(client, ['error']);
    page.dispatchEvent(new Event('online'));
    await settle();
    // Data sent before the link died can still arrive after the ping: it proves nothing.
    peer.send({ t: 'msg', id: 'e1-1', d: 'late' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    client.close();
  });

  it('stops listening to the page once closed', async () => {
    const client = server.client();
    await server.accept();
    client.close();
    const connections = server.opened.length;
    page.dispatchEvent(new Event('online'));
    await settle();
    expect(server.opened.length).toBe(connections);
  });
});
