/**
 * Conformance of carriers (docs/PROTOCOL.md §7.5): a raw client in Node — fetch, a hand-written
 * reader of the carrier's lines, no SDK — opens a carrier, attaches sessions to it with their own
 * tickets, and checks what each channel carries. The one rule that binds the client's requests,
 * §7.5.no-secret-in-url, is checked on the reference client, since a raw client's URLs are the test's own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Client, type FetchLike } from '../../src/client/index.js';
import { CARRIER_HEADER, decodeServerBatch, parseCarrierLines, type CarrierLine, type ServerFrame } from '../../src/protocol/index.js';
import { createServer } from '../../src/server/index.js';
import { CARRIER_LIMITS } from '../../src/server/transports/carrier.js';
import { MIXED_TEXTS, waitUntil, within } from '../helpers/raw-frames.js';
import { UPSTREAM_HEADERS, parseErrorBody } from '../helpers/raw-http.js';
import { FAST, Harnesses, type Harness } from '../helpers/raw-server.js';
import { rememberKeys, requestTicket } from '../helpers/raw-ticket.js';
import { deferred, when } from '../helpers/signals.js';
import { LockTable } from '../helpers/tab-locks.js';
import { nodeEnvironment } from '../integration/fixture.js';

const harnesses = new Harnesses();
const carriers = new Set<RawCarrier>();
const clients = new Set<Client>();
afterEach(async () => {
  for (const carrier of carriers) carrier.close();
  carriers.clear();
  for (const client of clients) client.close();
  clients.clear();
  await harnesses.closeAll();
});

/** A carrier read by hand: every line, and each channel's frames decoded. */
class RawCarrier {
  readonly lines: CarrierLine[] = [];
  id = '';
  ended = false;
  readonly #abort = new AbortController();

  static async open(h: Harness, v = '2'): Promise<RawCarrier> {
    const carrier = new RawCarrier();
    carriers.add(carrier);
    const response = await fetch(`${h.httpBase}/carrier?v=${v}`, { signal: carrier.#abort.signal });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    void carrier.#read(response);
    await waitUntil('the carrier says its first line', () => carrier.lines.length > 0);
    const first = carrier.lines[0]!;
    if ('notice' in first && first.notice.kind === 'open') carrier.id = first.notice.id;
    return carrier;
  }

  /** The frames the carrier carried for `channel`, in order. */
  frames(channel: string): ServerFrame[] {
    return this.lines.flatMap((line) => ('batch' in line && line.channel === channel ? decodeServerBatch(line.batch) : []));
  }

  close(): void {
    this.#abort.abort();
  }

  async #read(response: Response): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body!.getReader();
    try {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        buffer += decoder.decode(chunk.value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('\n');
          this.lines.push(...parseCarrierLines(data));
        }
      }
    } catch {}
    this.ended = true;
  }
}

async function post(url: string, body: unknown, headers: Record<string, string> = UPSTREAM_HEADERS): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, text: await response.text() };
}

/** Attaches a session to `carrier` on `channel` with a fresh ticket (for `sid` when given). */
async function attach(h: Harness, carrier: string, channel: string, options: { sid?: string; last?: string; max?: number } = {}): Promise<{ status: number; text: string }> {
  const { ticket } = await requestTicket(h.httpBase, { ...(options.sid === undefined ? {} : { sid: options.sid }), ...(options.max === undefined ? {} : { max: options.max }) });
  const last = options.last === undefined ? '' : `&last=${encodeURIComponent(options.last)}`;
  return post(`${h.httpBase}/attach?v=2&ticket=${ticket}${last}`, { carrier, channel });
}

const helloOf = (carrier: RawCarrier, channel: string) => carrier.frames(channel).find((frame) => frame.t === 'hello');

/** One request the reference client made: what it sent, and the status of its answer (0: none came). */
interface SentRequest {
  readonly path: string;
  readonly carrierHeader: string | null;
  readonly body: string;
  readonly status: Promise<number>;
}

/** The string field `name` of a JSON request body, or undefined. */
function bodyField(body: string, name: string): unknown {
  const parsed: unknown = JSON.parse(body);
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[name] : undefined;
}

/**
 * The whole life of one carrier, as the reference client lives it: two simulated tabs (their own Web
 * Locks views of one table, Node's BroadcastChannel) share it, each opens its session on it and sends
 * once; then the follower tab goes away, so the holder detaches its channel; then the holder goes
 * away and the carrier ends. Returns every request the client made through fetch (an SSE carrier is
 * an EventSource: the server's record of request lines has it).
 */
async function shareOneCarrier(h: Harness, transport: 'sse' | 'long-polling'): Promise<{ sent: SentRequest[] }> {
  const sent: SentRequest[] = [];
  const fetch: FetchLike = (input, init = {}) => {
    const answer = globalThis.fetch(input, init);
    sent.push({
      path: new URL(String(input)).pathname,
      carrierHeader: new Headers(init.headers).get(CARRIER_HEADER),
      body: typeof init.body === 'string' ? init.body : '',
      status: answer.then((response) => response.status, () => 0),
    });
    return answer;
  };
  // The carrier's requests the server is answering now, so the test knows when the carrier ended.
  let carrierRequests = 0;
  let holderGone = false;
  const ended = when(() => holderGone && carrierRequests === 0);
  h.started.http.prependListener('request', (request, response) => {
    if (!/\/carrier(-poll)?\?/.test(request.url ?? '')) return;
    carrierRequests++;
    response.once('close', () => {
      carrierRequests--;
      ended.wake();
    });
  });

  const table = new LockTable();
  const tabs = [table.tab(), table.tab()].map((tab) => {
    const client = connect(h.httpBase, { ...nodeEnvironment, fetch, transports: [transport], locks: tab.locks, BroadcastChannel, reconnectDelay: 20 });
    clients.add(client);
    return { tab, client };
  });
  const bothOpen = when(() => tabs.every(({ client }) => client.state === 'open'));
  for (const { client } of tabs) client.on('open', bothOpen.wake);
  await bothOpen.promise;
  // Both sessions ride the one carrier: one tab holds it, the other follows.
  expect(tabs.map(({ client }) => client.sharing).sort()).toEqual(['follower', 'holder']);
  await Promise.all(tabs.map(({ client }) => client.send('upstream, on the session\'s own requests')));

  const follower = tabs.find(({ client }) => client.sharing === 'follower')!;
  const holder = tabs.find(({ client }) => client.sharing === 'holder')!;
  const detached = h.handled('/detach');
  follower.client.close();
  follower.tab.crash();
  await detached;
  holder.client.close();
  holder.tab.crash();
  holderGone = true;
  ended.wake();
  await ended.promise;
  return { sent };
}

/** Opens a polled carrier with its first poll (`v=2`); resolves with the id its open notice names. */
async function openPolledCarrier(h: Harness): Promise<string> {
  const first = await fetch(`${h.httpBase}/carrier-poll?v=2`);
  const [open] = parseCarrierLines(await first.text());
  if (!open || !('notice' in open) || open.notice.kind !== 'open') throw new Error('expects the open notice');
  return open.notice.id;
}

/**
 * The second and third polls of a polled carrier after a shutdown with a notice of 200 ms: the
 * second takes the channel's `reconnect` and the carrier's end; returns the error body of the third.
 */
async function lastPolls(h: Harness, polled: string): Promise<unknown> {
  const last = await fetch(`${h.httpBase}/carrier-poll?v=2&n=2`, { headers: { [CARRIER_HEADER]: polled } });
  expect(last.status).toBe(200);
  const lines = parseCarrierLines(await last.text());
  expect(lines.flatMap((line) => ('batch' in line ? decodeServerBatch(line.batch) : []))).toEqual([{ t: 'reconnect', ms: 200 }]);
  expect(lines.at(-1)).toMatchObject({ notice: { kind: 'end', code: 'SERVER_RESTART' } });
  const after = await fetch(`${h.httpBase}/carrier-poll?v=2&n=3`, { headers: { [CARRIER_HEADER]: polled } });
  return parseErrorBody(await after.text());
}

describe('§7.5 carriers', () => {
  it('§7.5.version refuses a carrier whose v does not name 2, and opens one that does with its id and heartbeat', async () => {
    const h = await harnesses.start(FAST);
    const refused = await fetch(`${h.httpBase}/carrier?v=1`);
    const [line] = parseCarrierLines((await refused.text()).replace(/^data: /gm, '').trim());
    expect(line).toEqual({ channel: '*', notice: { kind: 'end', code: 'UNSUPPORTED_VERSION', message: expect.any(String) } });
    const polled = await fetch(`${h.httpBase}/carrier-poll?v=1`);
    expect(polled.status).toBe(426);
    const carrier = await RawCarrier.open(h, '1,2');
    expect(carrier.lines[0]).toEqual({ channel: '*', notice: { kind: 'open', id: expect.stringMatching(/^[A-Za-z0-9_-]{16,64}$/), hb: FAST.heartbeatInterval } });
    expect(h.started.http.listenerCount('request')).toBeGreaterThan(0);
    // A refusal streams at once through a buffering proxy, as a stream's own does (§7.2).
    expect(refused.headers.get('x-accel-buffering')).toBe('no');
  });

  it('§7.5.version checks the version of every poll of a polled carrier, not only the first', async () => {
    const h = await harnesses.start(FAST);
    const id = await openPolledCarrier(h);
    for (const v of ['1', '9', '']) {
      const refused = await fetch(`${h.httpBase}/carrier-poll?v=${v}&n=1`, { headers: { [CARRIER_HEADER]: id } });
      expect(refused.status, `v=${v}`).toBe(426);
      expect(JSON.parse(await refused.text())).toMatchObject({ code: 'UNSUPPORTED_VERSION' });
    }
    // The refusals took no answer of the carrier: the next poll with v=2 counts one answer, as before.
    expect((await attach(h, id, 'p.1')).status).toBe(200);
    const next = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: id } });
    expect(next.status).toBe(200);
    expect(parseCarrierLines(await next.text()).some((line) => line.channel === 'p.1')).toBe(true);
  });

  it('§7.5.attach §7.5.isolation carries each session on its own channel, exactly what a stream of its own would', async () => {
    const h = await harnesses.start(FAST);
    const carrier = await RawCarrier.open(h);
    expect((await attach(h, carrier.id, 'tab-a.1')).status).toBe(200);
    expect((await attach(h, carrier.id, 'tab-b.1')).status).toBe(200);
    await waitUntil('both hellos', () => helloOf(carrier, 'tab-a.1') !== undefined && helloOf(carrier, 'tab-b.1') !== undefined);
    const a = helloOf(carrier, 'tab-a.1')!;
    const b = helloOf(carrier, 'tab-b.1')!;
    if (a.t !== 'hello' || b.t !== 'hello') throw new Error('expects hellos');
    expect(a.sid).not.toBe(b.sid);
    await h.server.sessions.get(a.sid)!.send('only for a');
    await h.server.broadcast('for everyone');
    await waitUntil('b gets the broadcast', () => carrier.frames('tab-b.1').some((frame) => frame.t === 'msg'));
    await waitUntil('a gets both', () => carrier.frames('tab-a.1').filter((frame) => frame.t === 'msg').length === 2);
    const data = (channel: string) => carrier.frames(channel).flatMap((frame) => (frame.t === 'msg' ? [frame.d] : []));
    expect(data('tab-a.1')).toEqual(['only for a', 'for everyone']);
    expect(data('tab-b.1')).toEqual(['for everyone']);
  });

  it('§7.5.end §7.5.detach keeps the sessions of a carrier that ended or a channel detached, and they resume on another with what they missed', async () => {
    const h = await harnesses.start(FAST);
    const first = await RawCarrier.open(h);
    await attach(h, first.id, 't.1');
    await waitUntil('the hello', () => helloOf(first, 't.1') !== undefined);
    const hello = helloOf(first, 't.1')!;
    if (hello.t !== 'hello') throw new Error('expects a hello');
    rememberKeys([hello]);
    first.close();
    await waitUntil('the session has no connection', () => h.server.sessions.get(hello.sid)?.connected === false);
    await h.server.broadcast('while away');
    const second = await RawCarrier.open(h);
    expect((await attach(h, second.id, 't.2', { sid: hello.sid, last: hello.cursor })).status).toBe(200);
    await waitUntil('the replay', () => second.frames('t.2').some((frame) => frame.t === 'msg'));
    expect(second.frames('t.2')).toMatchObject([{ t: 'hello', sid: hello.sid, resumed: true }, { t: 'msg', d: 'while away' }]);

    expect((await post(`${h.httpBase}/detach?v=2`, { carrier: second.id, channels: ['t.2'] })).status).toBe(200);
    await waitUntil('detached', () => h.server.sessions.get(hello.sid)?.connected === false);
    expect(h.server.sessions.has(hello.sid)).toBe(true);
  });

  it('§7.5.unknown-carrier §7.5.channel refuses an attach to an unknown carrier without using its ticket, and a malformed channel', async () => {
    const h = await harnesses.start(FAST);
    const carrier = await RawCarrier.open(h);
    const { ticket } = await requestTicket(h.httpBase);
    const unknown = await post(`${h.httpBase}/attach?v=2&ticket=${ticket}`, { carrier: 'A'.repeat(22), channel: 'x.1' });
    expect(unknown.status).toBe(404);
    expect(parseErrorBody(unknown.text)).toMatchObject({ code: 'UNKNOWN_SESSION' });
    const malformed = await post(`${h.httpBase}/attach?v=2&ticket=${ticket}`, { carrier: carrier.id, channel: 'a b' });
    expect(parseErrorBody(malformed.text)).toMatchObject({ code: 'PROTOCOL_ERROR' });
    const noHeaders = await post(`${h.httpBase}/attach?v=2&ticket=${ticket}`, { carrier: carrier.id, channel: 'x.1' }, { 'Content-Type': 'text/plain' });
    expect(noHeaders.status).toBe(403);
    // The ticket was never redeemed: it still opens the session.
    expect((await post(`${h.httpBase}/attach?v=2&ticket=${ticket}`, { carrier: carrier.id, channel: 'x.1' })).status).toBe(200);
    expect(h.server.sessions.size).toBe(1);
  });

  it('§7.5.max-channels refuses an attach past the channels a carrier may hold with TOO_MANY_CONNECTIONS', async () => {
    const h = await harnesses.start({ ...FAST, maxConnectionsPerAddress: 1_000, maxSessionsPerAddress: 1_000, sessionsPerSecondPerAddress: 1_000 });
    const carrier = await RawCarrier.open(h);
    for (let n = 0; n < CARRIER_LIMITS.maxChannels; n++) expect((await attach(h, carrier.id, `c.${n}`)).status).toBe(200);
    const refused = await attach(h, carrier.id, 'c.over');
    expect(parseErrorBody(refused.text)).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
  });

  it('§7.5.lost-answer ends a polled carrier whose poll counts a different number of answers, and its sessions with it', async () => {
    const h = await harnesses.start(FAST);
    const id = await openPolledCarrier(h);
    expect((await attach(h, id, 'p.1')).status).toBe(200);
    const next = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: id } });
    const lines = parseCarrierLines(await next.text());
    expect(lines.some((line) => line.channel === 'p.1')).toBe(true);
    // An answer went missing: the client counts one answer where the server sent two.
    const stale = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: id } });
    expect(stale.status).toBe(404);
    await waitUntil('the session lost its connection', () => [...h.server.sessions.values()].every((session) => !session.connected));
    const after = await fetch(`${h.httpBase}/carrier-poll?v=2&n=2`, { headers: { [CARRIER_HEADER]: id } });
    expect(after.status).toBe(404);
  });

  it.each(['sse', 'long-polling'] as const)(
    '§7.5 a tab whose own lock is slow to come attaches only once it holds it, so the holder does not take it for gone and detach it (%s)',
    async (transport) => {
      const h = await harnesses.start({ heartbeatInterval: 5_000 });
      const table = new LockTable();
      const open = (tab: ReturnType<LockTable['tab']>) => {
        const client = connect(h.httpBase, { ...nodeEnvironment, transports: [transport], locks: tab.locks, BroadcastChannel: tab.BroadcastChannel, reconnectDelay: 20 });
        clients.add(client);
        const received: unknown[] = [];
        client.on('message', ({ data }) => received.push(data));
        return { client, received };
      };
      const opened = (client: Client): Promise<void> => {
        const signal = when(() => client.state === 'open');
        client.on('open', signal.wake);
        return signal.promise;
      };
      const holder = open(table.tab());
      await opened(holder.client);
      // A fresh page: its lock requests reach the lock manager late. Its lock comes once the holder
      // detached a channel (what it did when it took a tab that had not got its lock yet for gone),
      // or after 500 ms: the tab must not have attached before it holds its lock.
      const lockArrives = deferred();
      const late = open(table.tab({ locksFrom: lockArrives.promise }));
      await Promise.race([h.handled('/detach'), new Promise((resolve) => setTimeout(resolve, 500))]);
      lockArrives.resolve();
      await opened(late.client);
      expect([holder.client.sharing, late.client.sharing]).toEqual(['holder', 'follower']);
      await h.server.broadcast('to every tab');
      await waitUntil('both tabs to receive the broadcast', () => [holder, late].every(({ received }) => received.includes('to every tab')));
      expect(h.server.stats()).toMatchObject({ sessions: 2, connections: 2 });
    },
  );

  it('§7.5.lost-answer ends a polled carrier whose poll overlaps another poll, and its sessions with it', async () => {
    const h = await harnesses.start(FAST);
    const id = await openPolledCarrier(h);
    expect((await attach(h, id, 'p.1')).status).toBe(200);
    const next = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: id } });
    expect(parseCarrierLines(await next.text()).some((line) => line.channel === 'p.1')).toBe(true);
    // Nothing waits: the next poll is held. A second one with the same count overlaps it.
    const arrived = h.handled('/carrier-poll');
    const held = fetch(`${h.httpBase}/carrier-poll?v=2&n=2`, { headers: { [CARRIER_HEADER]: id } });
    await arrived;
    const overlapping = await fetch(`${h.httpBase}/carrier-poll?v=2&n=2`, { headers: { [CARRIER_HEADER]: id } });
    expect(overlapping.status).toBe(404);
    expect(await overlapping.json()).toMatchObject({ code: 'UNKNOWN_SESSION' });
    await waitUntil('the session lost its connection', () => [...h.server.sessions.values()].every((session) => !session.connected));
    // The held poll ends with its carrier, and the carrier is gone.
    await within('the held poll to end', held.then((response) => response.text()).catch(() => ''));
    const after = await fetch(`${h.httpBase}/carrier-poll?v=2&n=2`, { headers: { [CARRIER_HEADER]: id } });
    expect(after.status).toBe(404);
  });

  it('§10.2.notice §10.2.missed-carrier-notice gives each channel its shutdown notice once, streamed or polled, also to a polled carrier that held no poll at shutdown', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, shutdownJitter: 400, random: () => 0.5 });
    const streamed = await RawCarrier.open(h);
    expect((await attach(h, streamed.id, 's.1')).status).toBe(200);
    const polled = await openPolledCarrier(h);
    expect((await attach(h, polled, 'p.1')).status).toBe(200);
    const next = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: polled } });
    expect(parseCarrierLines(await next.text()).map(({ channel }) => channel)).toEqual(['p.1']);
    await waitUntil('the streamed hello', () => helloOf(streamed, 's.1') !== undefined);
    // No poll of the polled carrier is held: its holder is between two polls when the server closes.
    await h.server.close();
    await waitUntil('the streamed carrier ends', () => streamed.ended);
    expect(streamed.frames('s.1').slice(1)).toEqual([{ t: 'reconnect', ms: 200 }]);
    expect(streamed.lines.at(-1)).toMatchObject({ notice: { kind: 'end', code: 'SERVER_RESTART' } });
    // The polled carrier's next poll takes its channels' notices and its end, then it is gone: a
    // poll after that is any request to a closed server (§10.2.answer-after-close).
    expect(await lastPolls(h, polled)).toMatchObject({ code: 'SERVER_RESTART' });
    const unknown = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: 'no-such-carrier-aaaaaaaa' } });
    expect([unknown.status, parseErrorBody(await unknown.text())]).toEqual([503, expect.objectContaining({ code: 'SERVER_RESTART' })]);
  });

  it('§10.2.missed-carrier-notice gives a polled carrier its notices from the closed server also when a new server was attached to the same http server at once', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, shutdownJitter: 400, random: () => 0.5 });
    const polled = await openPolledCarrier(h);
    expect((await attach(h, polled, 'p.1')).status).toBe(200);
    const next = await fetch(`${h.httpBase}/carrier-poll?v=2&n=1`, { headers: { [CARRIER_HEADER]: polled } });
    expect(parseCarrierLines(await next.text()).map(({ channel }) => channel)).toEqual(['p.1']);
    await h.server.close();
    // The README's restart on one http server: the closed server replaced at once.
    const successor = createServer(FAST).attach(h.started.http);
    try {
      // Then the carrier is gone, and its polls are the new server's, which never knew it.
      expect(await lastPolls(h, polled)).toMatchObject({ code: 'UNKNOWN_SESSION', message: 'no such carrier: open a new one' });
      // A new carrier is the new server's (the closed one refuses it with SERVER_RESTART).
      expect(await openPolledCarrier(h)).toMatch(/./);
    } finally {
      await successor.close();
    }
  });

  it('§7.5.isolation carries the messages of one turn to a channel in one line, whatever characters they hold, streamed or polled', async () => {
    const texts = MIXED_TEXTS;
    const msgs = (frames: readonly ServerFrame[]) => frames.flatMap((frame) => (frame.t === 'msg' ? [frame.d] : []));
    const h = await harnesses.start(FAST);
    const streamed = await RawCarrier.open(h);
    expect((await attach(h, streamed.id, 'u.1')).status).toBe(200);
    await waitUntil('the hello', () => helloOf(streamed, 'u.1') !== undefined);
    // No await between the sends: the server queues them in one turn and writes them as one batch.
    await Promise.all(texts.map((text) => h.server.broadcast(text)));
    await waitUntil('the messages', () => msgs(streamed.frames('u.1')).length === texts.length);
    expect(msgs(streamed.frames('u.1'))).toEqual(texts);
    const withMessages = streamed.lines.filter((line) => 'batch' in line && line.channel === 'u.1' && line.batch.includes('"t":"msg"'));
    expect(withMessages).toHaveLength(1);

    const id = await openPolledCarrier(h);
    expect((await attach(h, id, 'p.1')).status).toBe(200);
    const poll = (n: number) => fetch(`${h.httpBase}/carrier-poll?v=2&n=${n}`, { headers: { [CARRIER_HEADER]: id } });
    expect(parseCarrierLines(await (await poll(1)).text()).some((line) => line.channel === 'p.1')).toBe(true);
    const arrived = h.handled('/carrier-poll');
    const held = poll(2);
    await arrived;
    await Promise.all(texts.map((text) => h.server.broadcast(text)));
    const answer = await held;
    const body = await answer.text();
    expect(answer.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
    const lines = parseCarrierLines(body);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    if (!line || !('batch' in line)) throw new Error(`expects one batch line, got ${body}`);
    expect(line.channel).toBe('p.1');
    expect(msgs(decodeServerBatch(line.batch))).toEqual(texts);
  });

  it('§4.1.size fits each batch of a channel to the max its ticket request named', async () => {
    const h = await harnesses.start(FAST);
    const carrier = await RawCarrier.open(h);
    expect((await attach(h, carrier.id, 'm.1', { max: 1_024 })).status).toBe(200);
    await waitUntil('the hello', () => helloOf(carrier, 'm.1') !== undefined);
    const values = Array.from({ length: 40 }, (_, n) => ({ n, body: 'x'.repeat(100) }));
    await Promise.all(values.map((value) => h.server.broadcast(value)));
    const msgs = () => carrier.frames('m.1').flatMap((frame) => (frame.t === 'msg' ? [frame.d] : []));
    await waitUntil('the messages', () => msgs().length === values.length);
    expect(msgs()).toEqual(values);
    const batches = carrier.lines.flatMap((line) => ('batch' in line && line.channel === 'm.1' ? [Buffer.byteLength(line.batch)] : []));
    // About 5,600 B of messages: at least 6 batches of at most 1,024 B, the hello's own included.
    expect(batches.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...batches)).toBeLessThanOrEqual(1_024);
  });

  it('§7.5.no-secret-in-url never puts the carrier id in a URL: the reference client sends it only in headers and bodies, over a carrier\'s whole life', async () => {
    // The rule binds whoever sends the id. The raw client above writes its URLs by hand, so checking
    // its requests would check the test; these are the reference client's, which builds them itself.
    for (const transport of ['sse', 'long-polling'] as const) {
      const h = await harnesses.start(FAST);
      const life = await shareOneCarrier(h, transport);
      const where = `${transport}: ${JSON.stringify(h.requestLines)}`;

      // The id was in use: both attaches named it and were admitted (an attach naming no open carrier
      // is refused, §7.5.unknown-carrier), the detach named it, and every later carrier poll carried it.
      const attaches = life.sent.filter((request) => request.path.endsWith('/attach'));
      expect(await Promise.all(attaches.map((request) => request.status)), where).toEqual([200, 200]);
      const carrierId = bodyField(attaches[0]!.body, 'carrier');
      if (typeof carrierId !== 'string') throw new Error(`expects the attach to name its carrier: ${attaches[0]!.body}`);
      expect(carrierId).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
      expect(attaches.map((request) => bodyField(request.body, 'carrier'))).toEqual([carrierId, carrierId]);
      const detaches = life.sent.filter((request) => request.path.endsWith('/detach'));
      expect(detaches.length, where).toBeGreaterThan(0);
      expect(detaches.every((request) => bodyField(request.body, 'carrier') === carrierId)).toBe(true);
      if (transport === 'long-polling') {
        const polls = life.sent.filter((request) => request.path.endsWith('/carrier-poll'));
        expect(polls.length, where).toBeGreaterThan(1);
        expect(polls.slice(1).every((request) => request.carrierHeader === carrierId), where).toBe(true);
      }

      // Every request the server received over the carrier's life — the carrier itself, tickets,
      // attaches, sends, the detach — and none has the id in its URL, plain or percent-encoded.
      const endpoints = ['/ticket?', transport === 'sse' ? '/carrier?' : '/carrier-poll?', '/attach?', '/send?', '/detach?'];
      for (const endpoint of endpoints) expect(h.requestLines.some((line) => line.includes(endpoint)), `${endpoint} in ${where}`).toBe(true);
      for (const line of h.requestLines) {
        expect(line, `a URL holds the carrier id (${transport})`).not.toContain(carrierId);
        expect(decodeURIComponent(line), `a URL holds the carrier id (${transport})`).not.toContain(carrierId);
      }
    }
  });
});
