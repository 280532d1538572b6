import { describe, expect, it, vi } from 'vitest';
import { backoff, classify, nextStart, type EndedAttempt } from '../../src/client/reconnect-policy.js';
import type { Route } from '../../src/client/transport-selector.js';
import { CloseCode, ERROR_CODES, type ErrorCode } from '../../src/protocol/index.js';
import { record, seededRandom, settle, useMockServer, type MockServer } from './client-harness.js';

const OPTIONS = { reconnectDelay: 500, maxReconnectDelay: 30_000 };

describe('nextStart(): when and where the attempt after a failure starts', () => {
  const TIMING = { connectTimeout: 3_000, minUptime: 5_000 };
  const NEXT: Route = { name: 'sse', reason: 'refused' };
  /** Calls nextStart at t = 10,000 and says what it returned, followed and reset. */
  function start(code: ErrorCode, verdict: ReturnType<typeof classify>, a: EndedAttempt | undefined, fallback: Route | null = NEXT) {
    const followed: (Route | null)[] = [];
    let steady = false;
    let asked = false;
    const delay = nextStart(
      code,
      verdict,
      a,
      10_000,
      TIMING,
      () => {
        asked = true;
        return fallback;
      },
      (route) => followed.push(route),
      () => (steady = true),
    );
    return { delay, followed, steady, asked };
  }

  it('keeps the time the server or a handover set (§10.2, §7.5), and never a negative one', () => {
    expect(start('SERVER_RESTART', 'retry', { reconnectAt: 12_500, helloAt: 0 })).toEqual({ delay: 2_500, followed: [], steady: false, asked: false });
    expect(start('TRANSPORT_ERROR', 'fallback', { reconnectAt: 9_000 }).delay).toBe(0);
  });

  it('goes at once where the newer connection got through when a race it won is superseded soon after (§13.3)', () => {
    expect(start('SUPERSEDED', 'retry', { helloAt: 9_000, ifSuperseded: NEXT })).toEqual({ delay: 0, followed: [NEXT], steady: false, asked: false });
    expect(start('SUPERSEDED', 'retry', { helloAt: 9_000, ifSuperseded: null })).toMatchObject({ delay: 0, followed: [] });
    // Past the connect deadline, a SUPERSEDED is an ordinary retry with backoff.
    expect(start('SUPERSEDED', 'retry', { helloAt: 6_000, ifSuperseded: NEXT })).toMatchObject({ delay: undefined, followed: [], steady: false });
  });

  it('reauthenticates at once, but only once in a row (§3.5)', () => {
    expect(start('UNAUTHORIZED', 'reauthenticate', { helloAt: 9_000 }).delay).toBe(0);
    expect(start('UNAUTHORIZED', 'reauthenticate', { after: 'UNAUTHORIZED' }).delay).toBeUndefined();
  });

  it('falls back at once to the route the selector gives, and backs off to start over when there is none (§13.3)', () => {
    expect(start('CONNECT_TIMEOUT', 'fallback', {})).toEqual({ delay: 0, followed: [NEXT], steady: false, asked: true });
    expect(start('CONNECT_TIMEOUT', 'fallback', {}, null)).toEqual({ delay: undefined, followed: [null], steady: false, asked: true });
    expect(start('CONNECT_TIMEOUT', 'fallback', undefined)).toMatchObject({ delay: undefined, asked: false });
  });

  it('backs off otherwise, and starts the count of failures over after minUptime open (§10.1)', () => {
    expect(start('HEARTBEAT_TIMEOUT', 'retry', { helloAt: 5_000 })).toEqual({ delay: undefined, followed: [], steady: true, asked: false });
    expect(start('HEARTBEAT_TIMEOUT', 'retry', { helloAt: 5_001 }).steady).toBe(false);
    expect(start('TRANSPORT_ERROR', 'retry', {}).steady).toBe(false);
  });
});

describe('backoff()', () => {
  it('is the floor plus full jitter over initialDelay × 2^attempt (§10.1.jitter)', () => {
    const random = seededRandom(42);
    const expected = seededRandom(42);
    for (let attempt = 0; attempt < 6; attempt++) {
      expect(backoff(attempt, 1_000, OPTIONS, random)).toBe(1_000 + expected() * 500 * 2 ** attempt);
    }
  });

  it('spans [floor, floor + range) as random spans [0, 1)', () => {
    expect(backoff(3, 250, OPTIONS, () => 0)).toBe(250);
    expect(backoff(3, 250, OPTIONS, () => 0.999_999)).toBeCloseTo(250 + 4_000, 0);
  });

  it('caps the range at maxReconnectDelay, however many attempts failed', () => {
    expect(backoff(6, 0, OPTIONS, () => 1)).toBe(30_000);
    expect(backoff(60, 0, OPTIONS, () => 1)).toBe(30_000);
    expect(backoff(5_000, 2_000, OPTIONS, () => 0.5)).toBe(2_000 + 15_000);
  });

  it('never goes below the floor', () => {
    const random = seededRandom(7);
    for (let attempt = 0; attempt < 20; attempt++) {
      expect(backoff(attempt, 3_000, OPTIONS, random)).toBeGreaterThanOrEqual(3_000);
    }
  });
});

describe('classify()', () => {
  const codes = Object.keys(ERROR_CODES) as ErrorCode[];

  it.each(codes)('follows the action of %s in the code table', (code) => {
    expect(classify(code)).toBe(ERROR_CODES[code].action);
  });

  it('is fatal exactly for UNSUPPORTED_VERSION, FORBIDDEN and NO_TRANSPORT among connection failures', () => {
    const failures = codes.filter((code) => !['OUTBOX_FULL', 'INVALID_DATA', 'CLIENT_CLOSED'].includes(code));
    expect(failures.filter((code) => classify(code) === 'fatal').sort()).toEqual(['FORBIDDEN', 'NO_TRANSPORT', 'UNSUPPORTED_VERSION']);
  });

  it('retries with backoff after an auth that threw, even right after an UNAUTHORIZED, where a refusal by the server is fatal (§13.5.reauthenticate)', () => {
    expect(classify('UNAUTHORIZED', { opened: false, linked: false, after: 'UNAUTHORIZED' })).toBe('fatal');
    expect(classify('UNAUTHORIZED', { opened: false, linked: false, after: 'UNAUTHORIZED', authThrew: true })).toBe('retry');
    expect(classify('UNAUTHORIZED', { opened: false, linked: false, authThrew: true })).toBe('retry');
  });
});

describe('client reconnection', () => {
  const server = useMockServer();

  /** Times at which the client reported each failure. */
  function failureTimes(client: ReturnType<MockServer['client']>): number[] {
    const times: number[] = [];
    client.on('error', () => times.push(Date.now()));
    return times;
  }

  it('waits floor + random × initialDelay × 2^k after the k-th consecutive failure (§10.1.jitter, §10.1.floor)', async () => {
    const client = server.client({ random: () => 0.5, reconnectDelay: 100, maxReconnectDelay: 1_000 });
    const failures = failureTimes(client);
    const peer = await server.accept({ retry: 200 });
    server.stop();
    peer.close(CloseCode.InternalError);
    await vi.advanceTimersByTimeAsync(20_000);
    const delays = server.opened.slice(1).map(({ at }, i) => at - failures[i]!);
    // floor 200 (hello.retry) + 0.5 × min(1000, 100 × 2^k)
    expect(delays.slice(0, 6)).toEqual([250, 300, 400, 600, 700, 700]);
    client.close();
  });

  it('uses a retry frame as the new floor (§10.1.floor)', async () => {
    const client = server.client({ random: () => 0, reconnectDelay: 100 });
    const failures = failureTimes(client);
    const peer = await server.accept({ retry: 200 });
    peer.send({ t: 'retry', ms: 4_321 });
    peer.close(CloseCode.InternalError);
    await server.nextPeer();
    expect(server.opened[1]!.at - failures[0]!).toBe(4_321);
    client.close();
  });

  it('resets the attempt counter only after a connection stayed open for minUptime', async () => {
    const client = server.client({ random: () => 0.5, reconnectDelay: 1_000, minUptime: 5_000 });
    const failures = failureTimes(client);
    // Two short-lived connections: the counter grows (k = 0, then 1).
    let peer = await server.accept({ retry: 0 });
    peer.close(CloseCode.InternalError);
    peer = await server.accept({ retry: 0 });
    await vi.advanceTimersByTimeAsync(4_000);
    peer.close(CloseCode.InternalError);
    // Open for 5 s: the counter resets, the next delay is the k = 0 one again.
    peer = await server.accept({ retry: 0 });
    await vi.advanceTimersByTimeAsync(5_000);
    peer.close(CloseCode.InternalError);
    await server.nextPeer();
    const delays = server.opened.slice(1).map(({ at }, i) => at - failures[i]!);
    expect(delays).toEqual([500, 1_000, 500]);
    client.close();
  });

  it('does not loop hot when every connection breaks the protocol at once (§9.reconnect)', async () => {
    const client = server.client({ random: seededRandom(1), reconnectDelay: 500, maxReconnectDelay: 30_000 });
    const log = record(client, ['error']);
    const start = Date.now();
    for (let i = 0; i < 8; i++) {
      const peer = await server.accept({ retry: 0 });
      peer.sendRaw('not json');
    }
    await settle();
    const elapsed = Date.now() - start;
    expect(log).toEqual(Array(8).fill('error PROTOCOL_ERROR'));
    // Each failure waits a jittered delay over a doubling range, so 8 attempts take a while.
    const delays = server.opened.slice(1).map(({ at }, i) => at - server.opened[i]!.at);
    expect(Math.max(...delays.slice(-3))).toBeGreaterThan(2_000);
    expect(elapsed).toBeGreaterThan(10_000);
    expect(server.peers.every((peer) => peer.closeCode === CloseCode.ProtocolError)).toBe(true);
    client.close();
  });

  it('stops reconnecting after a fatal close code (§3.1.fatal, §9.reconnect)', async () => {
    const client = server.client();
    const log = record(client);
    const peer = await server.accept();
    peer.close(CloseCode.UnsupportedVersion);
    await settle(600_000);
    expect(server.opened).toHaveLength(1);
    expect(client.state).toBe('closed');
    expect(log.slice(-3)).toEqual(['error UNSUPPORTED_VERSION', 'state open>closed UNSUPPORTED_VERSION', 'close UNSUPPORTED_VERSION']);
  });

  it('rejects what the outbox holds with CLIENT_CLOSED, caused by the fatal error, when a fatal code closes it', async () => {
    const client = server.client();
    const sent = client.send('never acknowledged');
    const peer = await server.nextPeer();
    peer.send({ t: 'error', code: 'UNSUPPORTED_VERSION', message: 'speaks 2 only' });
    await expect(sent).rejects.toMatchObject({ code: 'CLIENT_CLOSED', cause: { code: 'UNSUPPORTED_VERSION' } });
  });

  it('treats an error frame with a code a server does not send as INTERNAL_ERROR, and retries', async () => {
    const client = server.client();
    const log = record(client, ['error']);
    const peer = await server.accept();
    peer.send({ t: 'error', code: 'CLIENT_CLOSED', message: 'nonsense' });
    peer.send({ t: 'error', code: 'toString', message: 'nonsense' });
    await settle();
    expect(log).toEqual(['error INTERNAL_ERROR']);
    expect(client.state).toBe('reconnecting');
    client.close();
  });

  describe('reconnect notice (PROTOCOL.md §10.2)', () => {
    it('reconnects exactly ms after the notice, below the floor, when the server closes first (§10.2.client-wait)', async () => {
      const client = server.client({ random: () => 0.9 });
      const peer = await server.accept({ retry: 5_000 });
      await vi.advanceTimersByTimeAsync(10_000);
      const noticeAt = Date.now();
      peer.send({ t: 'ack', s: 0 }, { t: 'reconnect', ms: 2_380 });
      await vi.advanceTimersByTimeAsync(100);
      peer.close(CloseCode.ServiceRestart);
      await server.nextPeer();
      expect(server.opened[1]!.at - noticeAt).toBe(2_380);
      client.close();
    });

    it('closes the link itself and reconnects at ms when the server has not closed by then', async () => {
      const client = server.client();
      const log = record(client);
      const peer = await server.accept();
      const noticeAt = Date.now();
      peer.send({ t: 'reconnect', ms: 700 });
      await server.nextPeer();
      // Not sooner than ms; a zero-delay timer may take one more millisecond.
      expect(server.opened[1]!.at - noticeAt).toBeGreaterThanOrEqual(700);
      expect(server.opened[1]!.at - noticeAt).toBeLessThanOrEqual(701);
      expect(peer.closeCode).toBe(4000);
      expect(log).toContain('state open>reconnecting SERVER_RESTART');
      client.close();
    });

    it('counts the notice as no failure: the attempt counter does not grow (§10.2.client-wait)', async () => {
      const client = server.client({ random: () => 0.5, reconnectDelay: 1_000, minUptime: 60_000 });
      const failures = failureTimes(client);
      let peer = await server.accept({ retry: 0 });
      peer.close(CloseCode.InternalError); // k = 0 → 500
      peer = await server.accept({ retry: 0 });
      peer.send({ t: 'reconnect', ms: 10 }); // no failure
      peer.close(CloseCode.ServiceRestart);
      peer = await server.accept({ retry: 0 });
      peer.close(CloseCode.InternalError); // k = 1 → 1000
      await server.nextPeer();
      const delays = server.opened.slice(1).map(({ at }, i) => at - failures[i]!);
      expect(delays[0]).toBe(500);
      expect(delays[2]).toBe(1_000);
      client.close();
    });
  });
});
