/**
 * A client that does not trust the server's numbers (PROTOCOL.md §13.5): the delays and heartbeat it
 * sets are bounded, inbound units are limited by maxMessageSize without looping on one, quick empty
 * poll answers are spaced, and gap frames are validated. On a mock socket and a fake clock.
 */
import { describe, expect, it, vi } from 'vitest';
import { HEARTBEAT_RANGE, SERVER_DELAY_RANGE, heartbeatOf, serverDelay } from '../../src/client/reconnect-policy.js';
import { longPolling } from '../../src/client/transports/long-polling.js';
import { lastMessageId, type FetchLike } from '../../src/client/transport.js';
import { CloseCode, decodeServerBatch, encodeBinaryFrame } from '../../src/protocol/index.js';
import { record, settle, useMockServer } from './client-harness.js';
import { CONTEXT, FakeFetch, Recorder } from './client-http-fakes.js';

describe('bounds on the server\'s numbers (§13.5)', () => {
  const server = useMockServer();

  it('keeps hb within [100 ms, 5 min] and server delays within [0, 60 s]', () => {
    expect(HEARTBEAT_RANGE).toEqual([100, 300_000]);
    expect(SERVER_DELAY_RANGE).toEqual([0, 60_000]);
    expect([0, 1, 150, 1e12, -5].map(heartbeatOf)).toEqual([100, 100, 150, 300_000, 100]);
    expect([-1, 0, 80, 1e12].map(serverDelay)).toEqual([0, 0, 80, 60_000]);
  });

  it('never turns the liveness deadline off: a hello with hb 0 is held to 2 × 100 ms (§13.5.clamp)', async () => {
    const client = server.client();
    const log = record(client, ['error']);
    await server.accept({ hb: 0 });
    await vi.advanceTimersByTimeAsync(199);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(2);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    client.close();
  });

  it('holds an absurd hb to 5 min: the link is found dead 10 min after its last byte', async () => {
    const client = server.client();
    const log = record(client, ['error']);
    await server.accept({ hb: 1e12 });
    await vi.advanceTimersByTimeAsync(600_000 - 10);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT']);
    client.close();
  });

  it.each([
    ['hello.retry', (peer: Awaited<ReturnType<typeof server.accept>>) => peer.close(CloseCode.InternalError), { retry: 1e12 }],
    ['a retry frame', (peer: Awaited<ReturnType<typeof server.accept>>) => (peer.send({ t: 'retry', ms: 1e12 }), peer.close(CloseCode.InternalError)), {}],
    ['a reconnect frame', (peer: Awaited<ReturnType<typeof server.accept>>) => peer.send({ t: 'reconnect', ms: 1e12 }), {}],
  ])('waits no longer than 60 s plus maxReconnectDelay after %s of 1e12 ms', async (_name, act, hello) => {
    const client = server.client({ random: () => 0.999, maxReconnectDelay: 1_000 });
    const waits: number[] = [];
    client.on('schedule', ({ delay }) => waits.push(delay));
    const peer = await server.accept(hello);
    const before = Date.now();
    act(peer);
    await server.nextPeer();
    expect(Date.now() - before).toBeLessThanOrEqual(61_000);
    expect(Math.max(...waits)).toBeLessThanOrEqual(61_000);
    client.close();
  });

  it('refuses a WebSocket message over maxMessageSize with MESSAGE_TOO_LARGE, skips past its messages with a too-large gap, and resumes after them (§13.5.size)', async () => {
    const client = server.client({ maxMessageSize: 1_000, random: () => 0 });
    const log = record(client, ['error', 'gap', 'message']);
    const gaps: unknown[] = [];
    client.on('gap', (gap) => gaps.push(gap));
    const peer = await server.accept({ cursor: 'e1-0' });
    // The client states its limit in every ticket request, for the server to fit its batches (§4.1.size).
    expect(server.tickets.map(({ body }) => body)).toEqual([{ max: 1_000 }]);
    peer.send({ t: 'msg', id: 'e1-1', d: 'small' }, { t: 'msg', id: 'e1-2', d: 'x'.repeat(2_000) });
    const next = await server.nextPeer();
    expect(log).toEqual(['gap', 'error MESSAGE_TOO_LARGE']);
    expect(gaps).toEqual([{ reason: 'too-large', lastEventId: 'e1-0', resumeEventId: 'e1-2' }]);
    expect(next.url.searchParams.get('last')).toBe('e1-2');
    next.hello({ cursor: 'e1-2' });
    next.send({ t: 'msg', id: 'e1-3', d: 'after' });
    expect(log.at(-1)).toBe('message');
    client.close();
  });

  it('refuses a binary message over maxMessageSize and skips to the id of its header', async () => {
    const client = server.client({ maxMessageSize: 1_000, random: () => 0 });
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.message));
    const peer = await server.accept({ cursor: 'e1-0' });
    peer.sendRaw(encodeBinaryFrame({ t: 'msg', id: 'e1-9' }, new Uint8Array(5_000)).slice().buffer);
    const next = await server.nextPeer();
    expect(errors).toEqual([expect.stringMatching(/^received 50\d\d bytes, over maxMessageSize 1000: skipped up to message e1-9$/)]);
    expect(next.url.searchParams.get('last')).toBe('e1-9');
    client.close();
  });

  it('finds the id of the last message of a batch without parsing it, ignoring ids nested in data', () => {
    const text = JSON.stringify([{ t: 'hb' }, { t: 'msg', id: 'a-1', d: { id: 'nested' } }, { t: 'msg', d: ['"id":'], id: 'a\\"2' }]);
    expect(lastMessageId(text)).toBe('a\\"2');
    expect(lastMessageId('[{"t":"hb"}]')).toBeUndefined();
    expect(lastMessageId(`[{"t":"msg","id":"${'z'.repeat(300)}","d":1}]`)).toBeUndefined();
  });

  it('refuses a gap frame with an unknown reason, or an after or cursor that is no id, as a protocol error (§13.5.gap)', () => {
    expect(() => decodeServerBatch('[{"t":"gap","reason":"whatever","after":"a-1","cursor":"a-2"}]')).toThrow(/expects reason to be one of/);
    expect(() => decodeServerBatch(JSON.stringify([{ t: 'gap', reason: 'expired', after: 'a-1', cursor: 'c'.repeat(10_000) }]))).toThrow(/expects after and cursor/);
    for (const after of ['c'.repeat(10_000), 'a\n1', 42, null]) {
      expect(() => decodeServerBatch(JSON.stringify([{ t: 'gap', reason: 'expired', after, cursor: 'a-2' }])), JSON.stringify(after)).toThrow(/expects after/);
    }
    expect(() => decodeServerBatch(JSON.stringify([{ t: 'gap', reason: 'expired', after: 'a-1', cursor: 'a\u00002' }]))).toThrow(/expects after and cursor/);
    expect(decodeServerBatch('[{"t":"gap","reason":"expired","after":"a-1","cursor":"a-2"}]')).toHaveLength(1);
  });
});

describe('spaced polls (§13.5)', () => {
  it('waits 1000 ms between polls after 3 quick answers in a row with no message (§13.5.poll-gap)', async () => {
    // docs/PROTOCOL.md §13.5.poll-gap: after 3 poll answers in a row that arrived within 100 ms of their
    // poll and held no msg frame, polls start at least 1 000 ms apart. The spec's numbers, not the
    // module's constants, so that changing a constant fails here.
    const quickAnswersInARow = 3;
    const pollGapMs = 1_000;
    vi.useFakeTimers();
    try {
      const net = new FakeFetch();
      const pollStartedAt: number[] = [];
      const fakeFetch = net.fetch;
      // Called as a plain function, as the transport calls fetch.
      const fetch: FetchLike = (input, init) => {
        if (new URL(String(input)).pathname.endsWith('/poll')) pollStartedAt.push(Date.now());
        return fakeFetch(input, init);
      };
      const rec = new Recorder();
      const transport = longPolling(fetch)(rec.url, rec.handlers, CONTEXT);
      const answer = async (body: string): Promise<void> => {
        net.last('/poll').answer(200, body);
        for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(0);
      };
      await answer(JSON.stringify([{ t: 'hello', v: 1, sid: 'session-abcdefghijkl', key: 'key-abcdefghijklmnop', resumed: false, ack: 0, hb: 15_000, retry: 0, max: 1_000, cursor: 'e-0' }]));
      // The hello's answer counts: it carried no message either. So does every heartbeat-only answer.
      for (let quick = 2; quick <= quickAnswersInARow + 3; quick++) {
        const polls = net.to('/poll').length;
        await answer('[{"t":"hb"}]');
        if (quick < quickAnswersInARow) {
          expect(net.to('/poll').length, `poll after quick answer ${quick}`).toBe(polls + 1);
          continue;
        }
        // Spaced: no poll a millisecond before the gap is up, one when it is.
        await vi.advanceTimersByTimeAsync(pollGapMs - 1 - (Date.now() - pollStartedAt.at(-1)!));
        expect(net.to('/poll').length, `poll ${pollGapMs - 1} ms after the one before, at quick answer ${quick}`).toBe(polls);
        await vi.advanceTimersByTimeAsync(1);
        expect(net.to('/poll').length, `poll ${pollGapMs} ms after the one before, at quick answer ${quick}`).toBe(polls + 1);
      }
      const gaps = pollStartedAt.slice(1).map((at, i) => at - pollStartedAt[i]!);
      expect(gaps).toEqual([0, 0, pollGapMs, pollGapMs, pollGapMs, pollGapMs]);
      // An answer with a message resets the count: backlog is fetched at full speed.
      const polls = net.to('/poll').length;
      await answer('[{"t":"msg","id":"e-1","d":1}]');
      expect(net.to('/poll').length).toBe(polls + 1);
      transport.close(CloseCode.Reconnecting);
    } finally {
      vi.useRealTimers();
    }
  });
});
