/**
 * The client inside Chromium (vitest browser mode), with the browser's own WebSocket, EventSource and
 * fetch, against the reference server started by global-setup.ts on another loopback origin (so CORS
 * is exercised too). Over each transport: it opens, streams the numbered ticker in order, gets sends
 * acknowledged and echoed, carries bytes, and resumes after its connection is cut or frozen.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { connect, type Client, type ClientEvents, type ClientOptions, type OpenEvent, type TransportName } from '../../src/client/index.js';

const realtimeUrl = inject('realtimeUrl');
const proxiedUrl = inject('proxiedUrl');
const controlUrl = inject('controlUrl');
const heartbeat = inject('heartbeat');
const refusingUrl = inject('refusingUrl');

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'long-polling'];

const clients: Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await network({ condition: 'normal' });
});

/** Drives the network conditions layer between the page and the server (demo/network-conditions.mjs). */
async function network(command: { condition?: string; drop?: true; freeze?: true }): Promise<void> {
  const response = await fetch(controlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(command),
  });
  if (!response.ok) throw new Error(`${controlUrl} answered ${response.status}: ${await response.text()}`);
}

/** The client's errors, as `CODE message`, for failure messages. */
const errorsOf = new WeakMap<Client, string[]>();

/** A client restricted to one transport, with short delays. */
function start(url: string, transport: TransportName, options: ClientOptions = {}): Client {
  const client = connect(url, { transports: [transport], connectTimeout: 3000, reconnectDelay: 50, maxReconnectDelay: 500, ...options });
  const errors: string[] = [];
  client.on('error', (error) => errors.push(`${error.code} ${error.message}`));
  errorsOf.set(client, errors);
  clients.push(client);
  return client;
}

/** The next `event` of `client`; rejects, saying what the client went through, when none comes in time. */
function next<K extends 'open' | 'state' | 'error'>(client: Client, event: K, timeout = 10_000): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      const errors = errorsOf.get(client) ?? [];
      reject(new Error(`no '${event}' event within ${timeout} ms: state ${client.state}, errors [${errors.join('; ')}]`));
    }, timeout);
    const off = client.once(event, (payload) => {
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

/** The ticker numbers a client delivers, as they come. */
function ticks(client: Client): number[] {
  const seen: number[] = [];
  client.on('message:tick', ({ data }) => seen.push((data as { n: number }).n));
  return seen;
}

/** Every step between two delivered ticks that is not +1: a loss, a repeat or a reordering. */
function jumps(seen: number[]): string[] {
  const found: string[] = [];
  for (let i = 1; i < seen.length; i++) {
    const [before, after] = [seen[i - 1] ?? 0, seen[i] ?? 0];
    if (after !== before + 1) found.push(`${before} → ${after}`);
  }
  return found;
}

async function more(seen: number[], count: number): Promise<void> {
  const from = seen.length;
  await expect.poll(() => seen.length - from, { timeout: 10_000 }).toBeGreaterThanOrEqual(count);
}

it('runs in Chromium with its native WebSocket, EventSource and fetch', () => {
  expect(navigator.userAgent).toContain('Chrome');
  for (const implementation of [WebSocket, EventSource, fetch]) expect(String(implementation)).toContain('[native code]');
});

describe.each(TRANSPORTS)('from an origin the server refuses, over %s', (transport) => {
  it('closes for good with FORBIDDEN at the first attempt, with no retry (§3.2)', async () => {
    const client = start(refusingUrl, transport);
    const closed = await new Promise<ClientEvents['close']>((resolve) => client.once('close', resolve));
    expect(closed.error?.code).toBe('FORBIDDEN');
    expect(errorsOf.get(client)).toEqual([expect.stringMatching(/^FORBIDDEN origin http:\/\/\S+ is not allowed/)]);
  });
});

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('opens, streams the ticker in order, and gets a send acknowledged and echoed', async () => {
    const client = start(realtimeUrl, transport);
    const seen = ticks(client);
    const echo = new Promise<unknown>((resolve) => client.once('message:echo', ({ data }) => resolve(data)));
    expect(await next(client, 'open')).toMatchObject({ transport, resumed: false });
    expect(client.transport).toBe(transport);
    await client.send({ hello: transport });
    expect(await echo).toEqual({ hello: transport });
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    await more(seen, 10);
    expect(jumps(seen)).toEqual([]);
  });

  it('carries bytes both ways', async () => {
    const client = start(realtimeUrl, transport);
    const echo = new Promise<unknown>((resolve) => client.once('message:echo', ({ data }) => resolve(data)));
    const bytes = new Uint8Array([0, 1, 2, 127, 128, 253, 254, 255]);
    await client.send(bytes);
    const back = await echo;
    expect(back).toBeInstanceOf(Uint8Array);
    expect([...(back as Uint8Array)]).toEqual([...bytes]);
  });

  it('carries on after its connection is cut, with no tick lost or repeated', async () => {
    const client = start(proxiedUrl, transport);
    const seen = ticks(client);
    const opens: OpenEvent[] = [];
    client.on('open', (event) => opens.push(event));
    await next(client, 'open');
    await more(seen, 5);
    const reopened = next(client, 'open');
    await network({ drop: true });
    // A long poll cut before its answer began is retried by Chromium itself on a new connection, so
    // the client may never see the cut; a WebSocket or an event stream it must see, and reconnect.
    if (transport !== 'long-polling') await reopened;
    else reopened.catch(() => {});
    await more(seen, 10);
    expect(jumps(seen)).toEqual([]);
    for (const event of opens.slice(1)) expect(event).toMatchObject({ transport, sessionId: opens[0]?.sessionId, resumed: true });
  });

  it('finds a frozen connection dead by the heartbeat deadline while sending, then resumes with no tick lost or repeated', async () => {
    const client = start(proxiedUrl, transport);
    const seen = ticks(client);
    await next(client, 'open');
    await more(seen, 5);
    const failed = next(client, 'error');
    // The application keeps sending: on SSE and long polling the POSTs may go out on new connections,
    // which pass, and their answers must not keep a frozen stream alive (PROTOCOL.md §11).
    const sender = setInterval(() => void client.send({ during: 'freeze' }).catch(() => {}), 100);
    try {
      const frozenAt = performance.now();
      await network({ freeze: true });
      const error = await failed;
      expect(error.code).toBe('HEARTBEAT_TIMEOUT');
      expect(performance.now() - frozenAt).toBeLessThan(2 * heartbeat + 1_000);
    } finally {
      clearInterval(sender);
    }
    expect(await next(client, 'open')).toMatchObject({ transport, resumed: true });
    await more(seen, 10);
    expect(jumps(seen)).toEqual([]);
  });

  it('delivers what was sent while offline once each, after the network is back', async () => {
    const client = start(proxiedUrl, transport);
    const seen = ticks(client);
    const echoes: unknown[] = [];
    client.on('message:echo', ({ data }) => echoes.push(data));
    await next(client, 'open');
    const down = next(client, 'state');
    await network({ condition: 'offline' });
    expect(await down).toMatchObject({ from: 'open', to: 'reconnecting' });
    const sends = [1, 2, 3].map((k) => client.send({ k }));
    const reopened = next(client, 'open');
    await network({ condition: 'normal' });
    expect(await reopened).toMatchObject({ resumed: true });
    await Promise.all(sends);
    // Ten more ticks after the acknowledgements: time enough for a repeated echo to show.
    await more(seen, 10);
    expect(echoes).toEqual([{ k: 1 }, { k: 2 }, { k: 3 }]);
    expect(jumps(seen)).toEqual([]);
  });
});
