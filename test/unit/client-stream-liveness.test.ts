/**
 * Liveness from the stream alone (PROTOCOL.md §11, §7.3): on SSE and long polling, answers to the
 * client's POSTs are acknowledgements, not signs of the stream's life. A client whose stream went
 * silent is found dead at 2 × hb after the stream's last byte however many acks arrive meanwhile, and
 * `ping()` resolves only with a pong that came down the stream. On a mock transport and a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { FakeEventSource, FakeEventSourceClass, FakeFetch } from './client-http-fakes.js';
import { ENDPOINT, helloFrame, quiet, record, settle, useMockServer } from './client-harness.js';
import { connect, type Client } from '../../src/client/index.js';

describe('liveness from the stream alone (§11)', () => {
  useMockServer();

  /** A client on `transport`, opened with hb = 1 s; `down` writes a batch on its stream. */
  async function opened(transport: 'sse' | 'long-polling') {
    FakeEventSource.made.length = 0;
    const net = new FakeFetch();
    const client: Client = connect(ENDPOINT, { transports: [transport], EventSource: FakeEventSourceClass, fetch: net.fetch, storage: null });
    await settle();
    const down = (...frames: object[]): void => {
      if (transport === 'sse') FakeEventSource.latest().message(JSON.stringify(frames));
      else net.last('/poll').answer(200, JSON.stringify(frames));
    };
    if (transport === 'sse') FakeEventSource.latest().open();
    down(helloFrame({ hb: 1_000 }));
    await settle();
    expect(client.state).toBe('open');
    return { client, net, down };
  }

  it.each(['sse', 'long-polling'] as const)('over %s, finds a silent stream dead at 2 × hb while every send is acknowledged (§7.3.not-stream, §11.client-dead)', async (transport) => {
    const { client, net } = await opened(transport);
    const log = record(client, ['error', 'state']);
    const acked: number[] = [];
    // 19 sends over 1.9 s, each answered at once by its POST: the stream says nothing meanwhile.
    for (let s = 1; s <= 19; s++) {
      void quiet(client.send(s)).then(() => acked.push(s));
      await settle(5);
      net.last('/send').frames({ t: 'ack', s });
      await settle(95);
    }
    expect(acked).toHaveLength(19);
    expect(log).toEqual([]);
    await settle(100);
    expect(log).toEqual(['error HEARTBEAT_TIMEOUT', 'state open>reconnecting HEARTBEAT_TIMEOUT']);
    client.close();
  });

  it.each(['sse', 'long-polling'] as const)('over %s, ping() resolves with the pong that came down the stream, not with the POST answer', async (transport) => {
    const { client, net, down } = await opened(transport);
    let rtt: number | undefined;
    const pingedAt = Date.now();
    void client.ping().then((ms) => (rtt = ms));
    await settle(10);
    // Answer every POST (on SSE the stream check's first ping may be in flight ahead of this one).
    const pinged: number[] = [];
    for (let post = net.last('/send'), previous = undefined; post !== previous; previous = post, post = net.last('/send')) {
      for (const frame of JSON.parse(post.body!) as { t: string; n: number }[]) if (frame.t === 'ping') pinged.push(frame.n);
      post.frames({ t: 'ack', s: 0 });
      await settle(10);
    }
    expect(rtt).toBeUndefined();
    down({ t: 'pong', n: Math.max(...pinged) });
    await settle(0);
    expect(rtt).toBe(Date.now() - pingedAt);
    client.close();
  });
});
