/**
 * An open SSE stream that a proxy holds back (PROTOCOL.md §13.3, "Checking an open stream"), through
 * the network conditions layer's `sse-proxy-buffered` condition: a proxy that buffers event streams
 * by size whatever their headers say, as nginx does with `proxy_buffering on` and
 * `X-Accel-Buffering` ignored. A busy stream fills the buffer, so its `hello` arrives in time; the
 * client must still find that its events come late, and move to long polling — same session,
 * nothing lost, repeated or reordered either way. An unbuffered stream is never moved.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Client, type FetchLike, type TransportEvent } from '../../src/client/index.js';
import type { Payload } from '../../src/protocol/index.js';
import { startNetworkProxy, type NetworkProxy } from '../helpers/network-proxy.js';
import { deferred, when } from '../helpers/signals.js';
import { startServer } from '../helpers/start-server.js';
import { STREAM_CHECK_DEADLINE } from '../../src/client/stream-check.js';
import { nodeEnvironment } from './fixture.js';

interface Tick {
  n: number;
  at: number;
  pad: string;
}

/** Pads each tick so that 20 a second fill the proxy's 8 KB buffer in about 1.5 s: `hello` comes in time. */
const PAD = 'x'.repeat(200);

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** The server with a ticker of `rate` messages a second, the proxy in front of it, and a client over SSE then long polling. */
async function start(rate: number, condition: 'normal' | 'sse-proxy-buffered') {
  const started = await startServer({ heartbeatInterval: 5_000 });
  const upstream: unknown[] = [];
  started.server.on('message', (data) => upstream.push(data));
  let n = 0;
  const ticker = setInterval(() => {
    n += 1;
    void started.server.broadcast({ n, at: Date.now(), pad: PAD } satisfies Tick as unknown as Payload, { event: 'tick' }).catch(() => {});
  }, 1_000 / rate);
  const proxy: NetworkProxy = await startNetworkProxy(started.port);
  proxy.setCondition(condition);
  /** When each POST that carried a ping was answered. */
  const pingsAnswered: number[] = [];
  const onPingAnswered = new Set<() => void>();
  const fetch: FetchLike = async (input, init) => {
    const response = await globalThis.fetch(input, init);
    if (init?.method === 'POST' && String(init.body).includes('"ping"')) {
      pingsAnswered.push(Date.now());
      for (const listener of onPingAnswered) listener();
    }
    return response;
  };
  const client: Client<Tick> = connect<Tick>(`http://127.0.0.1:${proxy.port}/realtime`, {
    ...nodeEnvironment,
    fetch,
    transports: ['sse', 'long-polling'],
    storage: null,
    // These scenarios are about the check of a stream that said hello (§13.3, "Checking an open
    // stream"); without it, a stream held back from its start loses the race to long polling first.
    raceAfter: 0,
  });
  const ticks: { n: number; late: number }[] = [];
  client.on('message:tick', ({ data }) => ticks.push({ n: data.n, late: Date.now() - data.at }));
  const transports: TransportEvent[] = [];
  client.on('transport', (event) => transports.push(event));
  cleanup.push(async () => {
    client.close();
    clearInterval(ticker);
    await proxy.close();
    await started.close();
  });
  return { client, ticks, transports, upstream, pingsAnswered, onPingAnswered };
}

/** Every step between two delivered ticks that is not +1: a loss, a repeat or a reordering. */
function jumps(seen: readonly number[]): string[] {
  const found: string[] = [];
  for (let i = 1; i < seen.length; i++) if (seen[i] !== seen[i - 1]! + 1) found.push(`${seen[i - 1]} → ${seen[i]}`);
  return found;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

describe('an SSE stream held back by a proxy that buffers by size', () => {
  it('moves to long polling within 10 s with reason buffered; then delivers at p50 ≤ 100 ms, nothing lost, repeated or reordered either way', async () => {
    const startedAt = Date.now();
    const { client, ticks, transports, upstream } = await start(20, 'sse-proxy-buffered');
    const sent: Promise<void>[] = [];
    const sender = setInterval(() => sent.push(client.send({ k: sent.length + 1 })), 100);
    cleanup.push(async () => clearInterval(sender));
    const moved = deferred<number>();
    client.on('transport', ({ transport }) => transport === 'long-polling' && moved.resolve(Date.now()));
    const switchedAfter = (await moved.promise) - startedAt;
    expect(transports.map(({ transport, reason }) => `${transport} ${reason}`)).toEqual(['sse initial', 'long-polling buffered']);
    expect(switchedAfter).toBeLessThan(10_000);
    // Forty ticks (two seconds) over long polling.
    const from = ticks.length;
    const enough = when(() => ticks.length >= from + 40);
    client.on('message', () => enough.wake());
    await enough.promise;
    clearInterval(sender);
    await Promise.all(sent);
    const after = ticks.slice(from).map(({ late }) => late);
    console.info(`buffered SSE: switched after ${switchedAfter} ms; p50 latency after the switch ${median(after)} ms`);
    expect(median(after)).toBeLessThanOrEqual(100);
    expect(jumps(ticks.map(({ n }) => n))).toEqual([]);
    expect(upstream).toEqual(sent.map((_, i) => ({ k: i + 1 })));
    expect(client.sessionId).not.toBeNull();
  });
});

describe.each([1, 200])('an unbuffered SSE stream at %i msgs/s', (rate) => {
  it('passes the checks made when it opened and stays on SSE', async () => {
    const { client, ticks, transports, pingsAnswered, onPingAnswered } = await start(rate, 'normal');
    // The checks at open: three pings, one after the other once the previous pong arrived.
    const checked = when(() => pingsAnswered.length >= 3);
    onPingAnswered.add(checked.wake);
    await checked.promise;
    // This ping's pong comes down the stream after the last check's: once it is here within the check's
    // deadline of that POST's answer, the check has passed.
    await client.ping();
    expect(Date.now() - pingsAnswered[2]!).toBeLessThan(STREAM_CHECK_DEADLINE);
    expect(transports.map(({ transport }) => transport)).toEqual(['sse']);
    expect(client.transport).toBe('sse');
    expect(client.state).toBe('open');
    expect(jumps(ticks.map(({ n }) => n))).toEqual([]);
  });
});
