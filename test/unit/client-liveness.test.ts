import { describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import { quiet, record, settle, useMockServer } from './client-harness.js';

describe('client liveness (PROTOCOL.md §11)', () => {
  const server = useMockServer();

  it('finds a socket that stays open but silent dead at 2 × hb after the last byte (§11.client-dead)', async () => {
    const client = server.client();
    const peer = await server.accept({ hb: 1_000 });
    const log = record(client, ['error', 'state']);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(client.state).toBe('open');
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT', 'state open>reconnecting HEARTBEAT_TIMEOUT']);
    await settle();
    expect(peer.closeCode).toBe(CloseCode.HeartbeatTimeout);
    client.close();
  });

  it('measures the deadline from the last frame received, whatever frame it was (§11.client-dead)', async () => {
    const client = server.client();
    const log = record(client, ['error']);
    const peer = await server.accept({ hb: 1_000 });
    await vi.advanceTimersByTimeAsync(1_500);
    peer.send({ t: 'ack', s: 0 });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    client.close();
  });

  it('stays open under a steady trickle of frames, with one timer and no reset per message', async () => {
    const client = server.client();
    const log = record(client, ['error']);
    const peer = await server.accept({ hb: 1_000 });
    const timers = vi.getTimerCount();
    for (let i = 0; i < 100; i++) {
      await vi.advanceTimersByTimeAsync(700);
      peer.send(i % 2 ? { t: 'hb' } : { t: 'msg', id: `e1-${i}`, d: i });
      expect(vi.getTimerCount()).toBe(timers);
    }
    expect(log).toEqual([]);
    expect(client.state).toBe('open');
    client.close();
  });

  it('fails with CONNECT_TIMEOUT when no hello arrives within connectTimeout of the attempt start', async () => {
    const client = server.client({ connectTimeout: 2_500, random: () => 0 });
    const log = record(client, ['error', 'state']);
    await settle(0);
    const started = server.opened[0]!.at;
    const peer = await server.nextPeer();
    const failed = new Promise<number>((resolve) => client.once('error', () => resolve(Date.now())));
    await vi.advanceTimersByTimeAsync(2_500);
    expect(await failed).toBe(started + 2_500);
    expect(log).toEqual(['error CONNECT_TIMEOUT', 'state connecting>reconnecting CONNECT_TIMEOUT']);
    await settle();
    expect(peer.closeCode).toBe(4000);
    client.close();
  });

  describe('ping()', () => {
    it('resolves with the round-trip time of a ping/pong', async () => {
      const client = server.client();
      const peer = await server.accept();
      const rtt = client.ping();
      await settle();
      const ping = peer.frames().at(-1);
      expect(ping).toMatchObject({ t: 'ping', n: expect.any(Number) });
      await vi.advanceTimersByTimeAsync(37);
      peer.send({ t: 'pong', n: (ping as { n: number }).n });
      await expect(rtt).resolves.toBe(42);
      client.close();
    });

    it('rejects with TRANSPORT_ERROR when not open', async () => {
      const client = server.client();
      await expect(client.ping()).rejects.toMatchObject({ code: 'TRANSPORT_ERROR' });
      client.close();
    });

    it('rejects with the error that broke the link before the pong', async () => {
      const client = server.client();
      const peer = await server.accept();
      const rtt = quiet(client.ping());
      peer.close(CloseCode.Superseded);
      await settle();
      await expect(rtt).rejects.toMatchObject({ code: 'SUPERSEDED' });
      client.close();
    });

    it('rejects with CLIENT_CLOSED when close() is called before the pong', async () => {
      const client = server.client();
      await server.accept();
      const rtt = client.ping();
      client.close();
      await expect(rtt).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    });
  });

  it('checks the deadline against the clock when timers were throttled (background tab)', async () => {
    // A clock whose timers never fire, as in a throttled tab; only its time moves.
    let now = 1_000_000;
    const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
    const client = server.client({ clock });
    const log = record(client, ['error']);
    await server.accept({ hb: 1_000 });
    now += 2_000;
    await expect(client.ping()).rejects.toMatchObject({ code: 'TRANSPORT_ERROR' });
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    expect(client.state).toBe('reconnecting');
    client.close();
  });

  it('finds the link dead when a send is flushed after the deadline passed by the clock', async () => {
    let now = 1_000_000;
    const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
    const client = server.client({ clock });
    const log = record(client, ['error']);
    const peer = await server.accept({ hb: 1_000 });
    now += 5_000;
    void quiet(client.send('into a dead link'));
    await settle();
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    expect(peer.frames()).toEqual([]);
    client.close();
  });
});
