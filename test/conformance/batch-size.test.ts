/**
 * §4.1.size over every transport: a client states the largest batch it reads in its ticket request
 * (`max`, §3.4), and the server never sends it a larger one. A burst of small messages made in one
 * tick arrives split into batches that fit, every message once and in order; a message larger than
 * `max` on its own arrives alone, for the client to skip (§13.5). Driven by raw clients: `ws` for
 * WebSocket, Node's `fetch` for SSE and long polling.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeServerBatch, type ServerFrame } from '../../src/protocol/index.js';
import { waitUntil } from '../helpers/raw-frames.js';
import { framesOf, poll, RawSse } from '../helpers/raw-http.js';
import { Harnesses, type Harness } from '../helpers/raw-server.js';
import { randomToken, ticketFor } from '../helpers/raw-ticket.js';
import { wsEndpoint } from '../helpers/raw-ws.js';
import { SharedMemoryStore } from '../helpers/shared-memory-store.js';

const harnesses = new Harnesses();
const closers = new Set<() => void>();
afterEach(async () => {
  for (const close of closers) close();
  closers.clear();
  await harnesses.closeAll();
});

/** The client's stated limit, and a burst of messages of about 140 B each that needs several batches under it. */
const MAX = 2_048;
const BURST = 60;
const BODY = 'x'.repeat(100);

/** Each batch's size in bytes with its frames, in arrival order. */
type Batches = { bytes: number; frames: ServerFrame[] }[];

const messagesOf = (batches: Batches): ServerFrame[] => batches.flatMap(({ frames }) => frames.filter((frame) => frame.t === 'msg'));
/** The `n` a message of the test carries. */
const numberOf = (frame: ServerFrame): number | undefined => (frame.t === 'msg' ? (frame.d as { n: number }).n : undefined);

/** Sends the burst in one tick, then one message larger than MAX, once the batches so far hold the hello. */
async function sendBurst(h: Harness, batches: () => Batches): Promise<void> {
  await waitUntil('the hello', () => batches().some(({ frames }) => frames.some((frame) => frame.t === 'hello')));
  await Promise.all(Array.from({ length: BURST }, (_, n) => h.server.broadcast({ n, body: BODY })));
  await h.server.broadcast({ n: BURST, body: 'y'.repeat(MAX * 2) });
}

/** Every batch fit under MAX but the one that held the large message alone; every message came once, in order. */
function expectFitted(batches: Batches): void {
  const messages = messagesOf(batches);
  expect(messages.map(numberOf)).toEqual(Array.from({ length: BURST + 1 }, (_, n) => n));
  const withBurst = batches.filter(({ frames }) => frames.some((frame) => (numberOf(frame) ?? BURST) < BURST));
  expect(withBurst.length).toBeGreaterThanOrEqual(Math.ceil((BURST * 140) / MAX));
  for (const { bytes, frames } of batches) {
    const large = frames.some((frame) => numberOf(frame) === BURST);
    if (large) expect(frames.filter((frame) => frame.t === 'msg')).toHaveLength(1);
    else expect(bytes).toBeLessThanOrEqual(MAX);
  }
}

describe('§4.1.size a batch never exceeds the limit the client stated', () => {
  it('§4.1.size over WebSocket: each message of the socket fits', async () => {
    const h = await harnesses.start();
    const ticket = await ticketFor(h.httpBase, { max: MAX });
    const socket = new WebSocket(wsEndpoint(h.wsBase, { ticket }));
    closers.add(() => socket.terminate());
    const batches: Batches = [];
    socket.on('message', (data: Buffer) => batches.push({ bytes: data.length, frames: decodeServerBatch(data.toString('utf8')) }));
    await sendBurst(h, () => batches);
    await waitUntil('every message', () => messagesOf(batches).length > BURST);
    expectFitted(batches);
  });

  it('§3.4 treats a max that is not a whole number of bytes ≥ 1 as absent: the ticket is issued, and the burst comes as one batch', async () => {
    const h = await harnesses.start();
    for (const max of ['2048', -1, 0, 1.5, 2 ** 60, null, { bytes: 2048 }]) {
      const ticket = await ticketFor(h.httpBase, { max });
      const socket = new WebSocket(wsEndpoint(h.wsBase, { ticket }));
      closers.add(() => socket.terminate());
      const batches: Batches = [];
      socket.on('message', (data: Buffer) => batches.push({ bytes: data.length, frames: decodeServerBatch(data.toString('utf8')) }));
      await waitUntil('the hello', () => batches.length > 0);
      await Promise.all(Array.from({ length: 20 }, (_, n) => h.server.broadcast({ n, body: BODY })));
      await waitUntil('the messages', () => messagesOf(batches).length === 20);
      expect(batches.filter(({ frames }) => frames.some((frame) => frame.t === 'msg')), JSON.stringify(max)).toHaveLength(1);
      socket.terminate();
    }
  });

  it('§4.1.size over SSE: each event fits', async () => {
    const h = await harnesses.start();
    const sse = await RawSse.connect(h.httpBase, { ticket: await ticketFor(h.httpBase, { max: MAX }) });
    closers.add(() => sse.close());
    const batchesNow = (): Batches => sse.events.map(({ data }) => ({ bytes: Buffer.byteLength(data), frames: decodeServerBatch(data) }));
    await sendBurst(h, batchesNow);
    await sse.take('msg', BURST + 1);
    expectFitted(batchesNow());
  });

  it('§4.1.size over long polling: each answer fits', async () => {
    const h = await harnesses.start();
    const batches: Batches = [];
    const answer = async (reply: Awaited<ReturnType<typeof poll>>): Promise<ServerFrame[]> => {
      const frames = framesOf(reply);
      batches.push({ bytes: Buffer.byteLength(reply.text), frames });
      return frames;
    };
    const [hello] = await answer(await poll(h.httpBase, { ticket: await ticketFor(h.httpBase, { max: MAX }) }));
    if (hello?.t !== 'hello') throw new Error(`expects a hello first, got ${JSON.stringify(hello)}`);
    await sendBurst(h, () => batches);
    let last = hello.cursor;
    while (messagesOf(batches).length <= BURST) {
      for (const frame of await answer(await poll(h.httpBase, { sid: hello.sid, last }))) if (frame.t === 'msg') last = frame.id;
    }
    expectFitted(batches);

    // An answer lost on the way: a poll from before it opens a new connection of the session, which
    // replays everything since — in batches that fit the limit the first ticket named (§7.4).
    const replayed: Batches = [];
    last = hello.cursor;
    while (messagesOf(replayed).length <= BURST) {
      const reply = await poll(h.httpBase, { sid: hello.sid, last });
      const frames = framesOf(reply);
      replayed.push({ bytes: Buffer.byteLength(reply.text), frames });
      for (const frame of frames) if (frame.t === 'msg') last = frame.id;
    }
    expectFitted(replayed);
  });

  it('§4.1.size over long polling continued at another server process (§3.6.continue): each answer there fits too', async () => {
    const store = new SharedMemoryStore();
    const [a, b] = [await harnesses.start({ store }), await harnesses.start({ store })];
    const batches: Batches = [];
    const answer = async (reply: Awaited<ReturnType<typeof poll>>): Promise<ServerFrame[]> => {
      const frames = framesOf(reply);
      batches.push({ bytes: Buffer.byteLength(reply.text), frames });
      return frames;
    };
    const c = randomToken();
    const [hello] = await answer(await poll(a.httpBase, { c, ticket: await ticketFor(a.httpBase, { max: MAX }) }));
    if (hello?.t !== 'hello') throw new Error(`expects a hello first, got ${JSON.stringify(hello)}`);
    // The burst is stored while the client has no poll held; its next polls all go to server B.
    await sendBurst(a, () => batches);
    batches.splice(0);
    let last = hello.cursor;
    while (messagesOf(batches).length <= BURST) {
      for (const frame of await answer(await poll(b.httpBase, { c, last }))) if (frame.t === 'msg') last = frame.id;
    }
    expect(batches.flatMap(({ frames }) => frames).some((frame) => frame.t === 'hello')).toBe(false);
    expectFitted(batches);

    // An answer of server B lost on the way: a poll from before it reopens the connection there, in
    // batches that still fit the limit the first ticket, at server A, named (§7.4).
    batches.splice(0);
    last = hello.cursor;
    while (messagesOf(batches).length <= BURST) {
      for (const frame of await answer(await poll(b.httpBase, { c, last }))) if (frame.t === 'msg') last = frame.id;
    }
    expectFitted(batches);
  });
});
