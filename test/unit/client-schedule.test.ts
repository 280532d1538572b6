/**
 * The `schedule` event: the client says when its next connection attempt and its next WebSocket
 * upgrade probe will happen, on its own clock, so that a page can show a countdown. Checked against
 * when the client really opened its next connection, on a mock socket and a fake clock.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Client, ScheduleEvent } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import { FakeFetch } from './client-http-fakes.js';
import { helloFrame, settle, useMockServer } from './client-harness.js';

/** Every `schedule` event of `client`, with the client's state when it was emitted. */
function schedules<T>(client: Client<T>): (ScheduleEvent & { state: string })[] {
  const seen: (ScheduleEvent & { state: string })[] = [];
  client.on('schedule', (event) => seen.push({ ...event, state: client.state }));
  return seen;
}

describe('the schedule event', () => {
  const server = useMockServer();

  it('announces the reconnect delay of the backoff, and the next attempt starts at the announced time', async () => {
    const client = server.client({ random: () => 0.5, reconnectDelay: 100, maxReconnectDelay: 1_000 });
    const seen = schedules(client);
    const peer = await server.accept({ retry: 200 });
    expect(seen).toEqual([]);
    let droppedAt = 0;
    client.on('error', () => (droppedAt = Date.now()));
    peer.close(CloseCode.InternalError);
    await settle();
    // floor 200 (hello.retry) + 0.5 × 100
    expect(seen).toEqual([{ kind: 'reconnect', delay: 250, at: droppedAt + 250, state: 'reconnecting' }]);
    await server.nextPeer();
    expect(server.opened[1]!.at).toBe(seen[0]!.at);
    client.close();
  });

  it('announces each further attempt with its own, growing delay', async () => {
    const client = server.client({ random: () => 0.5, reconnectDelay: 100, maxReconnectDelay: 1_000 });
    const seen = schedules(client);
    const peer = await server.accept({ retry: 0 });
    server.stop();
    peer.close(CloseCode.InternalError);
    await vi.advanceTimersByTimeAsync(2_000);
    const reconnects = seen.filter((event) => event.kind === 'reconnect');
    expect(reconnects.slice(0, 4).map((event) => event.delay)).toEqual([50, 100, 200, 400]);
    // Each attempt was made when the one before it said it would be.
    const attempts = server.opened.slice(1).map(({ at }) => at);
    expect(attempts.slice(0, 4)).toEqual(reconnects.slice(0, 4).map((event) => event.at));
    client.close();
  });

  it('announces an upgrade probe while on a fallback transport, and a later one after a failed probe', async () => {
    const net = new FakeFetch();
    // No WebSocket server: the upgrade is refused, so the client falls back to long polling.
    server.stop();
    const client = server.client({ transports: ['websocket', 'long-polling'], fetch: net.fetch, upgradeInterval: 2_000 });
    const seen = schedules(client);
    let openedAt = 0;
    client.on('open', () => (openedAt = Date.now()));
    await vi.advanceTimersByTimeAsync(20);
    expect(client.transport).toBeNull();
    net.last('/poll').frames(helloFrame({ hb: 60_000 }));
    await settle();
    expect(client.state).toBe('open');
    expect(client.transport).toBe('long-polling');
    const probes = (): ScheduleEvent[] => seen.filter((event) => event.kind === 'upgrade-probe');
    expect(probes()).toEqual([{ kind: 'upgrade-probe', delay: 2_000, at: openedAt + 2_000, state: 'open' }]);

    // The probe is made at the announced time, fails (nothing listens), and the next one is twice as far off.
    const before = server.opened.length;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(server.opened.length).toBe(before + 1);
    expect(server.opened.at(-1)).toEqual({ at: openedAt + 2_000, url: expect.stringContaining('probe=1') });
    await settle(20);
    expect(probes()).toHaveLength(2);
    expect(probes()[1]!.delay).toBe(4_000);
    expect(probes()[1]!.at - probes()[1]!.delay).toBeGreaterThanOrEqual(openedAt + 2_000);
    client.close();
  });

  it('announces no probe on the first transport of the list, nor with probing turned off', async () => {
    const onWebSocket = server.client();
    const seen = schedules(onWebSocket);
    await server.accept({ hb: 600_000 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(seen).toEqual([]);
    onWebSocket.close();

    const net = new FakeFetch();
    const noProbes = server.client({ transports: ['websocket', 'long-polling'], fetch: net.fetch, WebSocket: undefined, upgradeInterval: 0 });
    const seenToo = schedules(noProbes);
    await settle();
    net.last('/poll').frames(helloFrame({ hb: 60_000 }));
    await settle();
    expect(noProbes.transport).toBe('long-polling');
    expect(seenToo).toEqual([]);
    noProbes.close();
  });

  it('uses the client clock for `at`', async () => {
    const offset = 1_000_000;
    const clock = {
      now: () => Date.now() + offset,
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    const client = server.client({ clock, random: () => 0, reconnectDelay: 100 });
    const seen = schedules(client);
    const peer = await server.accept({ retry: 300 });
    let droppedAt = 0;
    client.on('error', () => (droppedAt = Date.now()));
    peer.close(CloseCode.InternalError);
    await settle();
    expect(seen).toEqual([{ kind: 'reconnect', delay: 300, at: droppedAt + offset + 300, state: 'reconnecting' }]);
    client.close();
  });

  it('announces nothing after a fatal failure or close()', async () => {
    const client = server.client();
    const seen = schedules(client);
    const peer = await server.accept();
    peer.close(CloseCode.UnsupportedVersion);
    await settle(60_000);
    expect(client.state).toBe('closed');
    expect(seen).toEqual([]);

    const closing = server.client();
    const seenToo = schedules(closing);
    // A listener that closes the client when it starts reconnecting: no attempt is left to announce.
    closing.on('state', ({ to }) => {
      if (to === 'reconnecting') closing.close();
    });
    const second = await server.accept();
    second.close(CloseCode.InternalError);
    await settle(60_000);
    expect(closing.state).toBe('closed');
    expect(seenToo).toEqual([]);
  });
});
