/**
 * Conformance of the reference server over WebSocket (docs/PROTOCOL.md §3–§12), driven by a raw
 * `ws` client that speaks the wire protocol by hand. Every test name starts with the section it
 * checks. "The server does not send X" is always shown with an explicit signal — a `ping` whose
 * `pong` comes back on the same ordered socket (`RawWs.sync()`), a close, or a later frame — and
 * never by waiting for a timeout to pass.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CloseCode,
  ERROR_CODES,
  MAX_EVENT_LENGTH,
  closeCodeFor,
  isValidId,
  type ErrorCode,
  type ErrorFrame,
  type HelloFrame,
} from '../../src/protocol/index.js';
import { MemoryStore, type Payload, type Session } from '../../src/server/index.js';
import { waitUntil, within, type Received } from '../helpers/raw-frames.js';
import { GatedStore, Harnesses, type Harness } from '../helpers/raw-server.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { ticketFor } from '../helpers/raw-ticket.js';
import type { RawWs } from '../helpers/raw-ws.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

// ---------------------------------------------------------------------------------------------
// Small helpers

const SID_FORMAT = /^[A-Za-z0-9_-]{16,64}$/;

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function session(h: Harness, sid: string): Session {
  const found = h.server.sessions.get(sid);
  if (!found) throw new Error(`the server holds no session ${sid}`);
  return found;
}

/** Waits for the close, then checks the refusal of §7.1/§9: an `error` frame with `code` as the
 * last frame, then the close code the table gives for it. */
async function expectRefusal(client: RawWs, code: ErrorCode): Promise<ErrorFrame> {
  const close = await client.closed();
  const last = client.frames.at(-1)?.frame;
  expect(last, `the last frame before the close ${close.code} "${close.reason}"`).toMatchObject({ t: 'error', code });
  const error = last as ErrorFrame;
  expect(typeof error.message).toBe('string');
  expect(close.code).toBe(closeCodeFor(code));
  return error;
}

/** Highest `ack.s` received so far (0 when none). */
function highestAck(client: RawWs): number {
  let highest = 0;
  for (const { frame } of client.frames) {
    if (frame.t === 'ack') highest = Math.max(highest, frame.s);
  }
  return highest;
}

function dataOf(received: readonly Received[]): unknown[] {
  return received.flatMap((r) => (r.frame.t === 'msg' ? [r.frame.d] : []));
}

function idsOf(received: readonly Received[]): string[] {
  return received.flatMap((r) => (r.frame.t === 'msg' ? [r.frame.id] : []));
}

/** Broadcasts `values` one after the other and returns their ids. */
async function broadcastAll(h: Harness, values: readonly Payload[]): Promise<string[]> {
  const ids: string[] = [];
  for (const value of values) ids.push(await h.server.broadcast(value));
  return ids;
}

/** A connection that dropped without a goodbye (its session lives on), and its hello. */
async function droppedSession(h: Harness): Promise<HelloFrame> {
  const client = await h.connect();
  const hello = await client.hello();
  client.terminate();
  await waitUntil('the server to see the connection drop', () => h.server.sessions.get(hello.sid)?.connected === false);
  return hello;
}

function bits(values: readonly string[]): number {
  // A rough estimate of the random bits in a sample of ids: the positions whose character varies
  // across the sample, times the bits per character of the alphabet the sample uses. A counter, a
  // timestamp or a short random part leaves many positions constant and falls short of 128.
  const alphabet = new Set(values.join(''));
  const length = Math.min(...values.map((value) => value.length));
  let varying = 0;
  for (let i = 0; i < length; i++) {
    if (new Set(values.map((value) => value[i])).size > 1) varying++;
  }
  return varying * Math.log2(alphabet.size);
}

// ---------------------------------------------------------------------------------------------

describe('§3 connecting', () => {
  it('§3 serves the WebSocket endpoint at P/ws under the configured path', async () => {
    const h = await harnesses.start({ path: '/custom/rt' });
    expect(h.wsBase.endsWith('/custom/rt')).toBe(true);
    const client = await h.connect();
    expect((await client.hello()).v).toBe(1);
  });
});

describe('§3.1 version negotiation', () => {
  it.each([
    ['absent', null],
    ['empty', ''],
    ['3', '3'],
    ['3,4', '3,4'],
    ['not a number', 'one'],
  ])('§3.1.refuse §3.1.no-hello refuses v %s with an error frame UNSUPPORTED_VERSION then close 4426, and sends no hello or message', async (_name, v) => {
    const h = await harnesses.start();
    const client = await h.connect({ v });
    await expectRefusal(client, 'UNSUPPORTED_VERSION');
    expect(client.closeInfo?.code).toBe(CloseCode.UnsupportedVersion);
    expect(client.frames.map((r) => r.frame.t)).toEqual(['error']);
  });

  it.each([
    ['3,1', '3,1', 1],
    ['1,2', '1,2', 2],
    ['3,1,2', '3,1,2', 2],
  ])('§3.1.highest answers v=%s with the highest supported version in hello.v', async (_name, v, highest) => {
    const h = await harnesses.start();
    const client = await h.connect({ v });
    const hello = await client.hello();
    expect(hello.v).toBe(highest);
  });
});

describe('§3.2 origin allow-list', () => {
  const ALLOWED = 'https://app.example';

  it('§3.2.upgrade refuses a disallowed Origin with HTTP 403 and the FORBIDDEN body before any 101, creating no session', async () => {
    const h = await harnesses.start({ allowedOrigins: [ALLOWED] });
    const outcome = await rawUpgrade(`${h.wsBase}/ws?v=1&sid=${'Q'.repeat(22)}`, { Origin: 'https://evil.example' });
    expect(outcome).toMatchObject({ upgraded: false, status: 403 });
    if (outcome.upgraded) return;
    expect(JSON.parse(outcome.body)).toMatchObject({ code: 'FORBIDDEN' });
    expect(outcome.headers['access-control-allow-origin']).toBeUndefined();
    expect(h.server.sessions.size).toBe(0);
    expect(h.connections).toEqual([]);
  });

  it('§3.2 refuses a disallowed Origin without touching the session it names', async () => {
    const h = await harnesses.start({ allowedOrigins: [ALLOWED] });
    const owner = await h.connect({ origin: ALLOWED });
    const hello = await owner.hello();
    const intruder = await rawUpgrade(`${h.wsBase}/ws?v=1&sid=${hello.sid}&last=${encodeURIComponent(hello.cursor)}`, {
      Origin: 'https://evil.example',
    });
    expect(intruder).toMatchObject({ upgraded: false, status: 403 });
    // The owner was not superseded: its ping is still answered on the same connection.
    await owner.sync();
    expect(owner.closeInfo).toBeUndefined();
    expect(owner.frames.filter((r) => r.frame.t === 'error')).toEqual([]);
    expect(session(h, hello.sid).connected).toBe(true);
  });

  it('§3.2 refuses the opaque Origin "null" when it is not on the list', async () => {
    const h = await harnesses.start({ allowedOrigins: [ALLOWED] });
    expect(await rawUpgrade(`${h.wsBase}/ws?v=1`, { Origin: 'null' })).toMatchObject({ upgraded: false, status: 403 });
    expect(h.server.sessions.size).toBe(0);
  });

  it('§3.2 accepts an Origin on the list', async () => {
    const h = await harnesses.start({ allowedOrigins: [ALLOWED, 'https://other.example'] });
    const client = await h.connect({ origin: ALLOWED });
    expect((await client.hello()).resumed).toBe(false);
  });

  it('§3.2 accepts a request without an Origin header', async () => {
    const h = await harnesses.start({ allowedOrigins: [ALLOWED] });
    const client = await h.connect();
    expect((await client.hello()).resumed).toBe(false);
  });
});

describe('§3.3 sessions', () => {
  it('§3.3.fresh-id gives a client without sid a fresh id of at least 128 random bits, resumed false, ack 0', async () => {
    // `random` is the server's injectable source for jitter; an id drawn from it would not be
    // fresh random bits, so it is pinned here to show the ids do not depend on it.
    // 64 new sessions at once from one address: above the default creation rate (§12.1).
    const h = await harnesses.start({ random: () => 0, sessionsPerSecondPerAddress: 64 });
    const clients = await Promise.all(Array.from({ length: 64 }, () => h.connect()));
    const hellos = await Promise.all(clients.map((client) => client.hello()));
    for (const hello of hellos) {
      expect(hello.sid).toMatch(SID_FORMAT);
      expect(hello.sid.length).toBeGreaterThanOrEqual(22);
      expect(hello).toMatchObject({ resumed: false, ack: 0 });
    }
    const ids = hellos.map((hello) => hello.sid);
    expect(new Set(ids).size).toBe(ids.length);
    expect(bits(ids)).toBeGreaterThanOrEqual(128);
  });

  it('§3.3.resume resumes a session it holds: resumed true and ack the highest processed s', async () => {
    const h = await harnesses.start();
    const first = await h.connect();
    const hello = await first.hello();
    first.send([
      { t: 'msg', s: 1, d: 'one' },
      { t: 'msg', s: 2, d: 'two' },
    ]);
    first.send([{ t: 'msg', s: 3, d: 'three' }]);
    await first.next('ack', (ack) => ack.s === 3);
    first.terminate();
    const second = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await second.hello()).toMatchObject({ sid: hello.sid, resumed: true, ack: 3 });
  });

  it.each([
    ['16 characters', 'A'.repeat(16)],
    ['64 characters', 'z'.repeat(64)],
    ['every allowed character', 'AZaz09_-AZaz09_-AZaz09'],
  ])('§3.3.same-id adopts a well-formed unknown sid (%s) with that same id, resumed false, ack 0', async (_name, sid) => {
    const h = await harnesses.start();
    const client = await h.connect({ sid });
    expect(await client.hello()).toMatchObject({ sid, resumed: false, ack: 0 });
    expect(h.server.sessions.has(sid)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['15 characters', 'A'.repeat(15)],
    ['65 characters', 'z'.repeat(65)],
    ['a space', 'abcdefgh ijklmnopqr'],
    ['a plus sign', 'abcdefgh+ijklmnopqr'],
    ['a dot', 'abcdefgh.ijklmnopqr'],
    ['non-ASCII letters', 'éééééééééééééééééé'],
  ])('§3.3.fresh-id replaces a malformed sid (%s) with a fresh id, resumed false', async (_name, sid) => {
    const h = await harnesses.start();
    const client = await h.connect({ sid });
    const hello = await client.hello();
    expect(hello.sid).not.toBe(sid);
    expect(hello.sid).toMatch(SID_FORMAT);
    expect(hello.sid.length).toBeGreaterThanOrEqual(22);
    expect(hello).toMatchObject({ resumed: false, ack: 0 });
  });

  it('§3.3.supersede closes the older connection with SUPERSEDED (4409) after the newer one is attached', async () => {
    const h = await harnesses.start();
    const older = await h.connect();
    const hello = await older.hello();
    let connectedWhenClosed: boolean | undefined;
    older.socket.once('close', () => {
      connectedWhenClosed = h.server.sessions.get(hello.sid)?.connected;
    });
    const newer = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await newer.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    await expectRefusal(older, 'SUPERSEDED');
    expect(older.closeInfo?.code).toBe(CloseCode.Superseded);
    // By the time the close reached the older client, the session already had its new connection.
    expect(connectedWhenClosed).toBe(true);
    // The newer connection carries the session on, and the session never ended.
    const id = await h.server.broadcast('after the switch');
    await newer.next('msg', (msg) => msg.id === id);
    expect(h.ended).toEqual([]);
  });

  it('§3.3.stale refuses a connection whose ticket was issued before the one of the session\'s connection, and leaves that connection alone', async () => {
    const h = await harnesses.start();
    const first = await h.connect();
    const hello = await first.hello();
    // Two attempts of one client: the first gave up on its ticket's request (still under way), the
    // second connected with a ticket issued after it.
    const abandoned = await ticketFor(h.httpBase, { sid: hello.sid });
    const newer = await h.connect({ ticket: await ticketFor(h.httpBase, { sid: hello.sid }), last: hello.cursor });
    expect(await newer.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    await expectRefusal(first, 'SUPERSEDED');
    // The abandoned attempt's request arrives late: refused, with no hello.
    const late = await h.connect({ ticket: abandoned, last: hello.cursor });
    await expectRefusal(late, 'SUPERSEDED');
    expect(late.frames.map(({ frame }) => frame.t)).toEqual(['error']);
    // The newer connection still carries the session: it answers, and gets what is sent after.
    await newer.sync();
    const id = await h.server.broadcast('after the late request');
    await newer.next('msg', (msg) => msg.id === id);
    expect(newer.closeInfo).toBeUndefined();
    expect(h.ended).toEqual([]);
  });

  it('§3.3.keep does not end a session that has a connection, however long it stays', async () => {
    const h = await harnesses.start({ sessionTimeout: 100, heartbeatInterval: 50 });
    const client = await h.connect();
    const hello = await client.hello();
    const start = Date.now();
    // Heartbeats keep arriving; wait on them until five session timeouts have passed.
    await client.waitFor('500 ms of open connection', () => (Date.now() - start >= 500 ? true : undefined));
    await client.sync();
    expect(h.ended).toEqual([]);
    expect(session(h, hello.sid).connected).toBe(true);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).resumed).toBe(true);
  });

  it('§3.3 ends a session without connection after the session timeout', async () => {
    const h = await harnesses.start({ sessionTimeout: 150 });
    const hello = await droppedSession(h);
    await waitUntil('the session to end after its timeout', () => h.ended.includes(hello.sid));
    expect(h.server.sessions.has(hello.sid)).toBe(false);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: false, ack: 0 });
  });

  it('§3.3.same-id-fresh makes no session when its store cannot forget what the id held: none is resumed unforgotten', async () => {
    class Forgetful extends MemoryStore {
      fail: 'at once' | 'later' | null = null;
      override forget(sessionId: string): void | Promise<void> {
        const fail = this.fail;
        this.fail = null;
        if (fail === 'at once') throw new Error('the store is down');
        if (fail === 'later') return new Promise((_, reject) => setTimeout(() => reject(new Error('the store went down')), 10));
        super.forget(sessionId);
      }
    }
    const store = new Forgetful();
    const h = await harnesses.start({ store, sessionTimeout: 150 });
    h.server.on('error', () => undefined);
    const hello = await droppedSession(h);
    await session(h, hello.sid).send('for the first session only');
    await waitUntil('the session to end after its timeout', () => h.ended.includes(hello.sid));
    for (const fail of ['at once', 'later'] as const) {
      store.fail = fail;
      const refused = await h.connect({ sid: hello.sid, key: 'another-key-aaaaaaaa', last: hello.cursor });
      // Told why before anything else, then the connection closes: no hello, no session left.
      expect((await refused.next('error')).frame).toMatchObject({ code: 'INTERNAL_ERROR' });
      expect(refused.frames.map(({ frame }) => frame.t)).toEqual(['error']);
      await refused.closed();
      expect(h.server.sessions.has(hello.sid)).toBe(false);
    }
    const again = await h.connect({ sid: hello.sid, key: 'another-key-aaaaaaaa', last: hello.cursor });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: false });
    const marker = await session(h, hello.sid).send('for the new session');
    await again.next('msg', (frame) => frame.id === marker);
    expect(again.messageValues().map(({ d }) => d)).toEqual(['for the new session']);
  });

  it('§3.3.same-id-fresh a session created under the id of one that ended reads nothing addressed to that one: not its messages, not its rooms\'', async () => {
    const h = await harnesses.start({ sessionTimeout: 150 });
    const hello = await droppedSession(h);
    const first = session(h, hello.sid);
    await first.join('private');
    await first.send('for the first session only');
    await h.server.to('private').send('for the room, while the first session was in it');
    const broadcast = await h.server.broadcast('for everyone');
    await waitUntil('the session to end after its timeout', () => h.ended.includes(hello.sid));
    // Anyone may name the id (it is no secret, §3.4), with a key of their own.
    const again = await h.connect({ sid: hello.sid, key: 'another-key-aaaaaaaa', last: hello.cursor });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: false, ack: 0 });
    // A listener that still holds the first session sends nothing to the new one.
    await expect(first.send('late, for the first session')).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    const marker = await session(h, hello.sid).send('for the new session');
    await again.next('msg', (frame) => frame.id === marker);
    expect(again.messageValues().map(({ id }) => id)).toEqual([broadcast, marker]);
    expect([...session(h, hello.sid).rooms]).toEqual([]);
    expect(await h.server.store.members('private')).toEqual([]);
  });
});

describe('§4 server → client frames', () => {
  it('§4 every connection begins with exactly one hello, the first frame of the first batch', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.next('hello');
    expect(hello.index).toBe(0);
    expect(hello.batch).toBe(0);
    expect(hello.binary).toBe(false);
    await client.sync();
    expect(client.frames.filter((r) => r.frame.t === 'hello')).toHaveLength(1);
  });

  it('§4 a resumed connection with a replay and a connection with a gap also begin with exactly one hello', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ epoch: 'k2' }) });
    const hello = await droppedSession(h);
    await broadcastAll(h, ['a', 'b']);
    const resumed = await h.connect({ sid: hello.sid, last: hello.cursor });
    const gapped = await h.connect({ last: 'zz-1' });
    for (const client of [resumed, gapped]) {
      const first = await client.next('hello');
      expect(first.index).toBe(0);
      await client.sync();
      expect(client.frames.filter((r) => r.frame.t === 'hello')).toHaveLength(1);
    }
  });

  it('§4 hello announces the version, hb, retry and max the server was configured with', async () => {
    const h = await harnesses.start({ heartbeatInterval: 321, retry: 1234, maxMessageSize: 4096 });
    const client = await h.connect();
    const hello = await client.hello();
    expect(hello).toMatchObject({ t: 'hello', v: 1, resumed: false, ack: 0, hb: 321, retry: 1234, max: 4096 });
    expect(isValidId(hello.cursor)).toBe(true);
  });
});

describe('§4.1 batches', () => {
  it('§4.1 puts a burst of broadcasts made in one tick into fewer batches than messages', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await client.sync();
    const values = Array.from({ length: 50 }, (_, i) => i);
    const ids = await Promise.all(values.map((value) => h.server.broadcast(value)));
    const received = await client.take('msg', 50);
    expect(received.map((r) => r.frame.d)).toEqual(values);
    expect(received.map((r) => r.frame.id)).toEqual(ids);
    expect(new Set(received.map((r) => r.batch)).size).toBeLessThan(values.length);
  });

  it('§4.1.no-timer writes a lone message at once, not on a timer: it arrives before the answers to pings sent after it', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await client.sync();
    const id = await h.server.broadcast('lone');
    // Two independent probes sent after the broadcast returned: a WebSocket ping, which the server's
    // WebSocket library answers on its own, and a protocol ping. A message held back on a timer
    // would arrive after both answers.
    client.wsPing();
    const before = await client.sync();
    await client.waitFor('a WebSocket pong', () => client.wsPongs[0]);
    expect(idsOf(before)).toEqual([id]);
    const message = client.messages().find((r) => r.frame.id === id);
    expect(message).toBeDefined();
    expect(message!.index).toBeLessThan(client.wsPongs[0]!.framesBefore);
  });

  it('§4.1.whole-batch processes none of a batch that holds one invalid frame', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.sendText(JSON.stringify([{ t: 'msg', s: 1, d: 'valid' }, { t: 'msg', s: 2 }]));
    await expectRefusal(client, 'PROTOCOL_ERROR');
    expect(h.processed).toEqual([]);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).ack).toBe(0);
  });
});

describe('§4.2 ids and event names', () => {
  it.each([
    ['empty', ''],
    ['129 characters', 'e'.repeat(MAX_EVENT_LENGTH + 1)],
    ['a CR', 'a\rb'],
    ['an LF', 'a\nb'],
    ['a NUL', 'a\0b'],
  ])('§4.2.refuse-event §4.2.format broadcast refuses an event name that is %s (the API throws) and puts nothing on the wire', async (_name, event) => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await expect(Promise.resolve().then(() => h.server.broadcast('x', { event }))).rejects.toThrow();
    const hello = client.frames[0]!.frame as HelloFrame;
    await expect(Promise.resolve().then(() => session(h, hello.sid).send('x', { event }))).rejects.toThrow();
    const before = await client.sync();
    expect(before.filter((r) => r.frame.t === 'msg')).toEqual([]);
  });

  it('§4.2 sends event names of 1 and 128 characters unchanged', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await h.server.broadcast('short', { event: 'e' });
    await h.server.broadcast('long', { event: 'E'.repeat(MAX_EVENT_LENGTH) });
    const [short, long] = await client.take('msg', 2);
    expect(short!.frame).toMatchObject({ e: 'e', d: 'short' });
    expect(long!.frame).toMatchObject({ e: 'E'.repeat(MAX_EVENT_LENGTH), d: 'long' });
  });

  it('§4.2.format issues ids of 1–256 characters without CR, LF or NUL, as hello.cursor too', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    const ids = await broadcastAll(h, [1, 2, 3]);
    await client.take('msg', 3);
    for (const id of [hello.cursor, ...ids]) expect(isValidId(id), JSON.stringify(id)).toBe(true);
  });
});

describe('§4.3 binary data', () => {
  it('§4.3 sends a binary message as one binary frame: 4-byte big-endian length, UTF-8 JSON header without d, payload', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    const payload = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]);
    const id = await h.server.broadcast(payload, { event: 'bin' });
    const received = await client.next('msg');
    expect(received.binary).toBe(true);
    // Check the layout byte by byte, without the shared codec.
    const raw = received.raw!;
    const length = ((raw[0]! << 24) | (raw[1]! << 16) | (raw[2]! << 8) | raw[3]!) >>> 0;
    const header: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw.subarray(4, 4 + length)));
    expect(header).toEqual({ t: 'msg', id, e: 'bin' });
    expect([...raw.subarray(4 + length)]).toEqual([...payload]);
  });

  it('§4.3 sends JSON data in a text batch, never as bytes, even when it looks like base64', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await h.server.broadcast('3q2+7w==');
    const received = await client.next('msg');
    expect(received.binary).toBe(false);
    expect(received.frame).toMatchObject({ d: '3q2+7w==' });
    expect('b' in received.frame).toBe(false);
  });

  it('§4.3 replays a binary message as a binary frame', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    await h.server.broadcast(new Uint8Array([1, 2, 3]));
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    const received = await client.next('msg');
    expect(received.binary).toBe(true);
    expect([...received.bytes!]).toEqual([1, 2, 3]);
  });

  it('§4.3 hands a binary frame from the client to the application as bytes, and acks it', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.sendBinary({ t: 'msg', s: 1 }, new Uint8Array([0xca, 0xfe]));
    await client.next('ack', (ack) => ack.s === 1);
    const [data] = h.processedFor(hello.sid);
    expect(data).toBeInstanceOf(Uint8Array);
    expect([...(data as Uint8Array)]).toEqual([0xca, 0xfe]);
  });

  it('§4.3 hands base64 b in a text batch to the application as bytes, and d as JSON', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.send([
      { t: 'msg', s: 1, b: '3q2+7w==' },
      { t: 'msg', s: 2, d: '3q2+7w==' },
      { t: 'msg', s: 3, d: { nested: [1, null, true] } },
    ]);
    await client.next('ack', (ack) => ack.s === 3);
    const [bytes, text, json] = h.processedFor(hello.sid);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect([...(bytes as Uint8Array)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(text).toBe('3q2+7w==');
    expect(json).toEqual({ nested: [1, null, true] });
  });
});

describe('§5 client → server frames', () => {
  const INVALID_TEXT: readonly [string, string][] = [
    ['text that is not JSON', '[{"t":"ping",'],
    ['a JSON object instead of an array', '{"t":"ping","n":1}'],
    ['an empty array', '[]'],
    ['a frame that is not an object', '[1]'],
    ['an unknown t', '[{"t":"subscribe","n":1}]'],
    ['a frame without t', '[{"n":1}]'],
    ['a ping with a string n', '[{"t":"ping","n":"1"}]'],
    ['a ping without n', '[{"t":"ping"}]'],
    ['a msg without s', '[{"t":"msg","d":1}]'],
    ['a msg with a string s', '[{"t":"msg","s":"1","d":1}]'],
    ['a msg with a fractional s', '[{"t":"msg","s":1.5,"d":1}]'],
    ['a msg with s 0', '[{"t":"msg","s":0,"d":1}]'],
    ['a msg with a negative s', '[{"t":"msg","s":-1,"d":1}]'],
    ['a msg with both d and b', '[{"t":"msg","s":1,"d":1,"b":"AA=="}]'],
    ['a msg with neither d nor b', '[{"t":"msg","s":1}]'],
    ['a msg with a number b', '[{"t":"msg","s":1,"b":5}]'],
    ['a msg with b that is not base64', '[{"t":"msg","s":1,"b":"!!not base64!!"}]'],
    ['a valid msg followed by an unknown frame', '[{"t":"msg","s":1,"d":"x"},{"t":"nope"}]'],
  ];

  it.each(INVALID_TEXT)(
    '§5.invalid-batch §5.stay-up §4.3.d-or-b answers a batch with %s with PROTOCOL_ERROR and close 4400, processes none of it, and keeps serving',
    async (_name, text) => {
      const h = await harnesses.start();
      const bystander = await h.connect();
      await bystander.hello();
      const client = await h.connect();
      const hello = await client.hello();
      client.sendText(text);
      await expectRefusal(client, 'PROTOCOL_ERROR');
      expect(client.closeInfo?.code).toBe(CloseCode.ProtocolError);
      expect(h.processed).toEqual([]);
      // Nothing was processed: the session's ack is still 0 (a new connection would do too).
      const again = await h.connect({ sid: hello.sid, last: hello.cursor });
      expect((await again.hello()).ack).toBe(0);
      // The server stays up: an existing connection is still served.
      await bystander.sync();
      expect(bystander.closeInfo).toBeUndefined();
    },
  );

  const header = (value: object): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
  const withLength = (length: number, rest: Uint8Array): Uint8Array => {
    const bytes = new Uint8Array(4 + rest.length);
    new DataView(bytes.buffer).setUint32(0, length);
    bytes.set(rest, 4);
    return bytes;
  };
  const INVALID_BINARY: readonly [string, () => Uint8Array][] = [
    ['shorter than 4 bytes', () => new Uint8Array([0, 0, 1])],
    ['whose header length runs past its end', () => withLength(500, header({ t: 'msg', s: 1 }))],
    ['whose header is not JSON', () => withLength(3, new Uint8Array([0x7b, 0x7b, 0x7b, 9, 9]))],
    ['whose header is not a msg', () => withLength(header({ t: 'ping', n: 1 }).length, header({ t: 'ping', n: 1 }))],
    ['whose header has no s', () => withLength(header({ t: 'msg' }).length, header({ t: 'msg' }))],
    ['whose header also carries d', () => withLength(header({ t: 'msg', s: 1, d: 1 }).length, header({ t: 'msg', s: 1, d: 1 }))],
  ];

  it.each(INVALID_BINARY)(
    '§5.invalid-batch §4.3.binary-header answers a binary frame %s with PROTOCOL_ERROR and close 4400, and processes none of it',
    async (_name, make) => {
      const h = await harnesses.start();
      const client = await h.connect();
      await client.hello();
      client.sendBytes(make());
      await expectRefusal(client, 'PROTOCOL_ERROR');
      expect(h.processed).toEqual([]);
      const fresh = await h.connect();
      expect((await fresh.hello()).resumed).toBe(false);
    },
  );

  it.each([0, -7, 3.25, 2 ** 53 - 1])('§5.pong answers ping n=%s with a pong carrying the same n', async (n) => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    client.send([{ t: 'ping', n }]);
    const pong = await client.next('pong');
    expect(pong.frame).toEqual({ t: 'pong', n });
  });

  it('§5.pong answers every ping of a batch, and its messages too', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    client.send([
      { t: 'ping', n: 1 },
      { t: 'msg', s: 1, d: 'x' },
      { t: 'ping', n: 2 },
    ]);
    await client.next('pong', (pong) => pong.n === 1);
    await client.next('pong', (pong) => pong.n === 2);
    await client.waitFor('an ack of s 1', () => client.frames.find((r) => r.frame.t === 'ack' && r.frame.s === 1));
  });

  it('§5 bye ends the session at once: the server emits close and a later connection starts afresh', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.send([{ t: 'msg', s: 1, d: 'before bye' }]);
    client.send([{ t: 'bye' }]);
    await waitUntil('the session to end after bye', () => h.ended.includes(hello.sid));
    expect(h.server.sessions.has(hello.sid)).toBe(false);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: false, ack: 0 });
  });
});

describe('§6.1 the stream', () => {
  it('§6.1 replays messages sent to a session while it had no connection, interleaved with broadcasts in store order', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const away = session(h, hello.sid);
    const ids = [
      await h.server.broadcast('broadcast 1'),
      await away.send('private 1'),
      await h.server.broadcast('broadcast 2', { event: 'news' }),
      await away.send('private 2', { event: 'direct' }),
      await h.server.broadcast('broadcast 3'),
    ];
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await client.hello()).resumed).toBe(true);
    const received = await client.take('msg', 5);
    expect(received.map((r) => r.frame)).toEqual([
      { t: 'msg', id: ids[0], d: 'broadcast 1' },
      { t: 'msg', id: ids[1], d: 'private 1' },
      { t: 'msg', id: ids[2], e: 'news', d: 'broadcast 2' },
      { t: 'msg', id: ids[3], e: 'direct', d: 'private 2' },
      { t: 'msg', id: ids[4], d: 'broadcast 3' },
    ]);
  });

  it('§6.1 a message sent to one session is not part of another session’s stream', async () => {
    const h = await harnesses.start();
    const alice = await h.connect();
    const bob = await h.connect();
    const aliceHello = await alice.hello();
    await bob.hello();
    await session(h, aliceHello.sid).send('for alice only');
    const id = await h.server.broadcast('for everyone');
    await alice.next('msg', (msg) => msg.id === id);
    await bob.next('msg', (msg) => msg.id === id);
    expect(dataOf(alice.frames)).toEqual(['for alice only', 'for everyone']);
    expect(dataOf(bob.frames)).toEqual(['for everyone']);
  });
});

describe('§6.2 ids and epochs', () => {
  it('§6.2.order the in-memory store issues <epoch>-<n> ids, strictly ordered in append order across broadcasts and sends', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ epoch: 'k2' }) });
    const client = await h.connect();
    const hello = await client.hello();
    const ids = [
      await h.server.broadcast(1),
      await session(h, hello.sid).send(2),
      await h.server.broadcast(3),
      await session(h, hello.sid).send(4),
    ];
    const received = await client.take('msg', 4);
    expect(received.map((r) => r.frame.id)).toEqual(ids);
    const numbers = [hello.cursor, ...ids].map((id) => {
      const match = /^k2-(\d+)$/.exec(id);
      expect(match, id).not.toBeNull();
      return Number(match![1]);
    });
    for (let i = 1; i < numbers.length; i++) expect(numbers[i]!).toBeGreaterThan(numbers[i - 1]!);
  });

  it('§6.2.order a new in-memory store has a new epoch, so ids of the old one are detectable', async () => {
    const one = await harnesses.start();
    const two = await harnesses.start();
    const idOne = await one.server.broadcast('x');
    const idTwo = await two.server.broadcast('x');
    const epoch = (id: string): string => id.slice(0, id.lastIndexOf('-'));
    expect(epoch(idOne)).not.toBe('');
    expect(epoch(idOne)).not.toBe(epoch(idTwo));
  });
});

describe('§6.3 resume', () => {
  it('§6.3.replay-or-gap replays every message after last, in order, then the live stream', async () => {
    const h = await harnesses.start();
    const first = await h.connect();
    const hello = await first.hello();
    const [, seenId] = await broadcastAll(h, ['seen 1', 'seen 2']);
    await first.next('msg', (msg) => msg.id === seenId);
    first.terminate();
    const missed = await broadcastAll(h, ['missed 1', 'missed 2', 'missed 3']);
    const client = await h.connect({ sid: hello.sid, last: seenId });
    const resumed = await client.hello();
    expect(resumed).toMatchObject({ resumed: true, cursor: seenId });
    await client.take('msg', 3);
    const live = await h.server.broadcast('live');
    await client.next('msg', (msg) => msg.id === live);
    expect(client.messageValues()).toEqual([
      { id: missed[0], d: 'missed 1' },
      { id: missed[1], d: 'missed 2' },
      { id: missed[2], d: 'missed 3' },
      { id: live, d: 'live' },
    ]);
    expect(client.frames.filter((r) => r.frame.t === 'gap')).toEqual([]);
  });

  it('§6.3.replay-or-gap loses and repeats nothing at the seam between replay and live under concurrent broadcasts', async () => {
    const h = await harnesses.start();
    // Three dropped sessions, all at the same cursor, resume at different points of a stream of
    // broadcasts made in bursts while their connections are being set up.
    const hellos = [await droppedSession(h), await droppedSession(h), await droppedSession(h)];
    const ids: string[] = [];
    const resumes: Promise<RawWs>[] = [];
    for (let burst = 0; burst < 120; burst++) {
      const values = [burst * 3, burst * 3 + 1, burst * 3 + 2];
      ids.push(...(await Promise.all(values.map((value) => h.server.broadcast(value)))));
      const hello = hellos[[10, 50, 90].indexOf(burst)];
      if (hello) resumes.push(h.connect({ sid: hello.sid, last: hello.cursor }));
      await nextTurn();
    }
    for (const client of await Promise.all(resumes)) {
      expect((await client.hello()).resumed).toBe(true);
      await client.next('msg', (msg) => msg.id === ids[ids.length - 1]);
      await client.sync();
      expect(idsOf(client.frames)).toEqual(ids);
    }
  });

  it.each([
    ['at-call', 0],
    ['at-call', 2],
    ['at-release', 0],
    ['at-release', 2],
  ] as const)(
    '§6.3 loses and repeats nothing at the seam when messages are appended while the store is read (snapshot %s, %i to replay)',
    async (snapshot, replayCount) => {
      const store = new GatedStore(snapshot);
      const h = await harnesses.start({ store });
      const hello = await droppedSession(h);
      const ids = await broadcastAll(h, Array.from({ length: replayCount }, (_, i) => `replayed ${i}`));
      store.hold();
      const resuming = h.connect({ sid: hello.sid, last: hello.cursor });
      await waitUntil('the server to read the stream', () => store.pending > 0);
      // Appended while the read is in flight: they belong to the replay or to the live stream, never both.
      ids.push(await h.server.broadcast('during 1'), await session(h, hello.sid).send('during 2'));
      store.release();
      const client = await resuming;
      expect(await client.hello()).toMatchObject({ resumed: true, cursor: hello.cursor });
      ids.push(await h.server.broadcast('live'));
      await client.next('msg', (msg) => msg.id === ids[ids.length - 1]);
      await client.sync();
      expect(idsOf(client.frames)).toEqual(ids);
    },
  );

  it.each(['at-call', 'at-release'] as const)(
    '§6.4 a new client’s stream starts right after hello.cursor when messages are appended while the head is read (snapshot %s)',
    async (snapshot) => {
      const store = new GatedStore(snapshot, new MemoryStore({ epoch: 'k2' }));
      const h = await harnesses.start({ store });
      const before = await broadcastAll(h, ['before']);
      store.hold();
      const connecting = h.connect();
      await waitUntil('the server to read the head', () => store.pending > 0);
      const during = await broadcastAll(h, ['during 1', 'during 2']);
      store.release();
      const client = await connecting;
      const hello = await client.hello();
      const all = [...before, ...during];
      const live = await h.server.broadcast('live');
      await client.next('msg', (msg) => msg.id === live);
      await client.sync();
      // Exactly the messages after the cursor the hello announced: none lost, none repeated.
      expect(all).toContain(hello.cursor);
      expect(idsOf(client.frames)).toEqual([...all, live].slice(all.indexOf(hello.cursor) + 1));
    },
  );

  it('§6.3 resumes without a gap when last is the newest message', async () => {
    const h = await harnesses.start();
    const first = await h.connect();
    const hello = await first.hello();
    const id = await h.server.broadcast('newest');
    await first.next('msg');
    first.terminate();
    const client = await h.connect({ sid: hello.sid, last: id });
    expect(await client.hello()).toMatchObject({ resumed: true, cursor: id });
    const before = await client.sync();
    expect(before.filter((r) => r.frame.t === 'msg' || r.frame.t === 'gap')).toEqual([]);
  });

  it('§6.3.replay-or-gap answers an id of another epoch with an unknown-epoch gap in the hello batch, then the epoch from its beginning', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ epoch: 'k2' }) });
    const ids = await broadcastAll(h, ['one', 'two']);
    const client = await h.connect({ sid: 'S'.repeat(22), last: 'zz-9' });
    const hello = await client.next('hello');
    const gap = await client.next('gap');
    expect(gap.batch).toBe(hello.batch);
    expect(gap.frame).toEqual({ t: 'gap', reason: 'unknown-epoch', after: 'zz-9', cursor: hello.frame.cursor });
    const received = await client.take('msg', 2);
    expect(received.map((r) => r.frame.id)).toEqual(ids);
    expect(received[0]!.index).toBeGreaterThan(gap.index);
  });

  it('§6.3 after a restart with a new in-memory store: unknown-epoch gap with the hello, then the new epoch from its beginning', async () => {
    const before = await harnesses.start();
    const first = await before.connect();
    const hello = await first.hello();
    const [, lastSeen] = await broadcastAll(before, ['old 1', 'old 2']);
    await first.next('msg', (msg) => msg.id === lastSeen);
    const port = before.port;
    await before.close();

    const after = await harnesses.start({ port, store: new MemoryStore() });
    expect(after.port).toBe(port);
    const fresh = await broadcastAll(after, ['new 1', 'new 2']);
    const client = await after.connect({ sid: hello.sid, last: lastSeen });
    const resumed = await client.next('hello');
    expect(resumed.frame).toMatchObject({ sid: hello.sid, resumed: false, ack: 0 });
    const gap = await client.next('gap');
    expect(gap.batch).toBe(resumed.batch);
    expect(gap.frame).toEqual({ t: 'gap', reason: 'unknown-epoch', after: lastSeen, cursor: resumed.frame.cursor });
    const received = await client.take('msg', 2);
    expect(received.map((r) => r.frame.id)).toEqual(fresh);
    expect(received[0]!.index).toBeGreaterThan(gap.index);
  });

  it('§6.3.replay-or-gap answers an id older than retention (maxMessages) with an expired gap, then the oldest retained message on', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ maxMessages: 3 }) });
    const hello = await droppedSession(h);
    const ids = await broadcastAll(h, Array.from({ length: 10 }, (_, i) => i));
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    const resumed = await client.next('hello');
    const gap = await client.next('gap');
    expect(gap.batch).toBe(resumed.batch);
    expect(gap.frame).toEqual({ t: 'gap', reason: 'expired', after: hello.cursor, cursor: ids[6] });
    expect(resumed.frame.cursor).toBe(ids[6]);
    const received = await client.take('msg', 3);
    expect(received.map((r) => r.frame.id)).toEqual(ids.slice(7));
    expect(received[0]!.index).toBeGreaterThan(gap.index);
  });

  it('§6.3 replays without a gap from the id just before the oldest retained message', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ maxMessages: 3 }) });
    const first = await h.connect();
    const hello = await first.hello();
    const ids = await broadcastAll(h, Array.from({ length: 10 }, (_, i) => i));
    await first.next('msg', (msg) => msg.id === ids[9]);
    first.terminate();
    const client = await h.connect({ sid: hello.sid, last: ids[6] });
    await client.hello();
    const received = await client.take('msg', 3);
    expect(received.map((r) => r.frame.id)).toEqual(ids.slice(7));
    expect(client.frames.filter((r) => r.frame.t === 'gap')).toEqual([]);
  });

  it('§6.3 answers an id older than retention (maxAge) with an expired gap', async () => {
    let now = 1_000_000;
    const h = await harnesses.start({ store: new MemoryStore({ maxAge: 1_000, now: () => now }) });
    const hello = await droppedSession(h);
    const [, oldTwo] = await broadcastAll(h, ['old 1', 'old 2']);
    now += 5_000;
    const [fresh] = await broadcastAll(h, ['fresh']);
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    const resumed = await client.next('hello');
    const gap = await client.next('gap');
    expect(gap.batch).toBe(resumed.batch);
    expect(gap.frame).toEqual({ t: 'gap', reason: 'expired', after: hello.cursor, cursor: oldTwo });
    const received = await client.next('msg');
    expect(received.frame.id).toBe(fresh);
    expect(client.messages().map((r) => r.frame.id)).toEqual([fresh]);
  });

  it.each([
    ['not of the <epoch>-<n> form', 'nonsense'],
    ['of this epoch with a non-numeric n', 'k2-abc'],
  ])('§6.3 answers an id %s with an invalid-id gap in the hello batch, then the head on', async (_name, last) => {
    const h = await harnesses.start({ store: new MemoryStore({ epoch: 'k2' }) });
    const [, head] = await broadcastAll(h, ['before 1', 'before 2']);
    const client = await h.connect({ sid: 'I'.repeat(22), last });
    const hello = await client.next('hello');
    const gap = await client.next('gap');
    expect(gap.batch).toBe(hello.batch);
    expect(gap.frame).toEqual({ t: 'gap', reason: 'invalid-id', after: last, cursor: head });
    expect(hello.frame.cursor).toBe(head);
    const before = await client.sync();
    expect(before.filter((r) => r.frame.t === 'msg')).toEqual([]);
    const live = await h.server.broadcast('live');
    expect((await client.next('msg')).frame.id).toBe(live);
  });
});

describe('§6.4 the cursor in hello', () => {
  it('§6.4.hello-cursor hello.cursor is the store head for a client that presents no last', async () => {
    const h = await harnesses.start();
    const [, head] = await broadcastAll(h, ['a', 'b']);
    const client = await h.connect();
    expect((await client.hello()).cursor).toBe(head);
    const before = await client.sync();
    expect(before.filter((r) => r.frame.t === 'msg')).toEqual([]);
  });

  it('§6.4 a client that drops before its first message resumes from hello.cursor without a gap or a hole', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const id = await h.server.broadcast('sent while away');
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await client.hello()).toMatchObject({ resumed: true, cursor: hello.cursor });
    expect((await client.next('msg')).frame.id).toBe(id);
    expect(client.frames.filter((r) => r.frame.t === 'gap')).toEqual([]);
  });

  it('§6.4.hello-cursor hello.cursor is last on a replay', async () => {
    const h = await harnesses.start();
    const first = await h.connect();
    const hello = await first.hello();
    const [a] = await broadcastAll(h, ['a', 'b']);
    first.terminate();
    const client = await h.connect({ sid: hello.sid, last: a });
    expect((await client.hello()).cursor).toBe(a);
  });

  it('§6.4.hello-cursor hello.cursor is gap.cursor after a gap, and presenting it again gives no second gap', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ maxMessages: 2 }) });
    const hello = await droppedSession(h);
    await broadcastAll(h, [1, 2, 3, 4]);
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    const resumed = await client.hello();
    const gap = await client.next('gap');
    expect(resumed.cursor).toBe(gap.frame.cursor);
    client.terminate();
    const again = await h.connect({ sid: hello.sid, last: resumed.cursor });
    await again.hello();
    await again.take('msg', 2);
    expect(again.frames.filter((r) => r.frame.t === 'gap')).toEqual([]);
  });
});

describe('§7.1 WebSocket', () => {
  it('§7.1 carries batches in text frames and binary messages in binary frames', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await h.server.broadcast('text');
    await h.server.broadcast(new Uint8Array([7]));
    const [text, binary] = await client.take('msg', 2);
    expect(text!.binary).toBe(false);
    expect(binary!.binary).toBe(true);
    expect(client.frames.filter((r) => r.frame.t !== 'msg').every((r) => !r.binary)).toBe(true);
  });

  it('§7.1.ping sends a WebSocket ping frame every hb ms', async () => {
    const hb = 100;
    const h = await harnesses.start({ heartbeatInterval: hb });
    const client = await h.connect();
    const opened = Date.now();
    await client.hello();
    await client.waitFor('four WebSocket pings', () => (client.wsPings.length >= 4 ? true : undefined), 20 * hb);
    const times = [opened, ...client.wsPings.map((ping) => ping.at)];
    for (let i = 1; i < times.length; i++) {
      // Timers fire late on a loaded machine, never early by much: a generous margin above hb.
      expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(hb + 100);
    }
  });

  it('§7.1.ping §11.server-dead terminates a connection that answered none of its last two pings, and keeps one that answers', async () => {
    const hb = 100;
    const h = await harnesses.start({ heartbeatInterval: hb });
    // `autoPong: false` stops the ws client from answering ping frames, as a dead link would.
    const silent = await h.connect({ autoPong: false });
    const polite = await h.connect();
    const silentHello = await silent.hello();
    await polite.hello();
    await silent.closed(30 * hb);
    expect(silent.wsPings.length).toBeGreaterThanOrEqual(2);
    // The session outlives the dead connection.
    expect(h.ended).not.toContain(silentHello.sid);
    await waitUntil('the session to show no connection', () => h.server.sessions.get(silentHello.sid)?.connected === false);
    // The connection that answers is still served, pings and all.
    await polite.waitFor('as many pings as the silent one got', () => (polite.wsPings.length >= silent.wsPings.length ? true : undefined));
    await polite.sync();
    expect(polite.closeInfo).toBeUndefined();
  });

  it('§7.1 refuses a frame twice the size of hello.max with an error frame MESSAGE_TOO_LARGE before the close', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const client = await h.connect();
    await client.hello();
    client.sendText(JSON.stringify([{ t: 'msg', s: 1, d: 'x'.repeat(2 * 1024) }]));
    await expectRefusal(client, 'MESSAGE_TOO_LARGE');
    expect(h.processed).toEqual([]);
  });

  it('§12 closes a frame a hundred times the size of hello.max with 1009 and processes none of it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const client = await h.connect();
    await client.hello();
    client.sendText(JSON.stringify([{ t: 'msg', s: 1, d: 'x'.repeat(100 * 1024) }]));
    const { code } = await client.closed();
    expect(code).toBe(CloseCode.MessageTooBig);
    expect(h.processed).toEqual([]);
  });

  it('§7.1 refuses a text frame that is not UTF-8 with an error frame PROTOCOL_ERROR and close 4400', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    // A text frame whose bytes are not UTF-8 is not JSON text (§5); the ws client does not check
    // what it sends, so the bytes reach the server as they are.
    client.socket.send(Buffer.from([0x5b, 0xff, 0xfe, 0x5d]), { binary: false });
    await expectRefusal(client, 'PROTOCOL_ERROR');
  });
});

describe('§8 upstream delivery', () => {
  it('§8.ack processes messages once, in order, and acks the highest processed s cumulatively', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.send([
      { t: 'msg', s: 1, d: 'one' },
      { t: 'msg', s: 2, d: 'two' },
      { t: 'msg', s: 3, d: 'three' },
    ]);
    await client.next('ack', (ack) => ack.s === 3);
    expect(h.processedFor(hello.sid)).toEqual(['one', 'two', 'three']);
    const acks = client.frames.flatMap((r) => (r.frame.t === 'ack' ? [r.frame.s] : []));
    expect([...acks].sort((a, b) => a - b)).toEqual(acks);
    expect(Math.max(...acks)).toBe(3);
  });

  it('§8.dedup acks a message with s ≤ the highest processed and does not process it again', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.send([
      { t: 'msg', s: 1, d: 'one' },
      { t: 'msg', s: 2, d: 'two' },
    ]);
    await client.next('ack', (ack) => ack.s === 2);
    client.send([{ t: 'msg', s: 1, d: 'one' }]);
    await client.next('ack', (ack) => ack.s === 2);
    client.send([
      { t: 'msg', s: 2, d: 'two' },
      { t: 'msg', s: 3, d: 'three' },
      { t: 'msg', s: 3, d: 'three' },
    ]);
    await client.next('ack', (ack) => ack.s === 3);
    await client.sync();
    expect(h.processedFor(hello.sid)).toEqual(['one', 'two', 'three']);
  });

  it('§8.dedup acks and skips messages resent on a new connection that were processed before it', async () => {
    const h = await harnesses.start();
    const first = await h.connect();
    const hello = await first.hello();
    first.send([
      { t: 'msg', s: 1, d: 'one' },
      { t: 'msg', s: 2, d: 'two' },
    ]);
    await first.next('ack', (ack) => ack.s === 2);
    first.terminate();
    const second = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await second.hello()).ack).toBe(2);
    second.send([
      { t: 'msg', s: 2, d: 'two' },
      { t: 'msg', s: 3, d: 'three' },
    ]);
    await second.next('ack', (ack) => ack.s === 3);
    expect(h.processedFor(hello.sid)).toEqual(['one', 'two', 'three']);
  });

  it('§8 answers a hole in the sequence with PROTOCOL_ERROR and processes nothing of it', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.send([{ t: 'msg', s: 1, d: 'one' }]);
    await client.next('ack', (ack) => ack.s === 1);
    client.send([{ t: 'msg', s: 3, d: 'three' }]);
    await expectRefusal(client, 'PROTOCOL_ERROR');
    expect(h.processedFor(hello.sid)).toEqual(['one']);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).ack).toBe(1);
  });

  it('§8.ack-before-close processes every message exactly once, in order, across a supersede, and acks what it processed before closing', async () => {
    const h = await harnesses.start();
    const older = await h.connect();
    const hello = await older.hello();
    const total = 80;
    let processedAtClose = -1;
    older.socket.once('close', () => {
      processedAtClose = h.processedFor(hello.sid).length;
    });
    let newer: Promise<RawWs> | undefined;
    for (let s = 1; s <= total && older.closeInfo === undefined; s++) {
      older.send([{ t: 'msg', s, d: s }]);
      if (s === 20) newer = h.connect({ sid: hello.sid, last: hello.cursor });
      await nextTurn();
    }
    await older.closed();
    // Whatever the older connection processed, it acknowledged before its close frame.
    expect(highestAck(older)).toBe(processedAtClose);
    const client = await newer!;
    const resumed = await client.hello();
    expect(resumed.resumed).toBe(true);
    // The newer client resends everything above hello.ack, as a client does.
    client.send(Array.from({ length: total - resumed.ack }, (_, i) => ({ t: 'msg', s: resumed.ack + 1 + i, d: resumed.ack + 1 + i })));
    await client.next('ack', (ack) => ack.s === total);
    expect(h.processedFor(hello.sid)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});

describe('§8 nothing is processed after the close frame', () => {
  // The client pauses reading, so it keeps sending after the server already wrote its close frame;
  // resuming lets the close handshake finish, and by then the server has read everything sent before.

  it('§8.closing does not process a message that reaches a superseded connection after its close frame', async () => {
    const h = await harnesses.start();
    const older = await h.connect();
    const hello = await older.hello();
    await older.sync();
    older.pause();
    const newer = await h.connect({ sid: hello.sid, last: hello.cursor });
    // The server closes the older connection before it writes the newer one's hello (§3.3).
    await newer.hello();
    older.send([{ t: 'msg', s: 1, d: 'after the close frame' }]);
    older.resume();
    await expectRefusal(older, 'SUPERSEDED');
    expect(h.processed).toEqual([]);
    // The client sends it again on its next connection, where it is processed once.
    newer.send([{ t: 'msg', s: 1, d: 'after the close frame' }]);
    await newer.next('ack', (ack) => ack.s === 1);
    expect(h.processedFor(hello.sid)).toEqual(['after the close frame']);
  });

  it('§8.closing does not process a message that reaches a connection after its shutdown close frame', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    await client.hello();
    await client.sync();
    client.pause();
    const closing = h.server.close();
    client.send([{ t: 'msg', s: 1, d: 'after the close frame' }]);
    client.resume();
    expect((await client.closed()).code).toBe(CloseCode.ServiceRestart);
    await within('server.close() to settle', closing);
    expect(h.processed).toEqual([]);
  });

  it('§8.closing does not process a message sent right behind a batch that closed the connection with PROTOCOL_ERROR', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.sendText('not a batch');
    client.send([{ t: 'msg', s: 1, d: 'right behind' }]);
    await expectRefusal(client, 'PROTOCOL_ERROR');
    expect(h.processed).toEqual([]);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).ack).toBe(0);
  });
});

describe('§9 error codes', () => {
  it('§7.1.error-close each refusal carries a code of the table (§9) in its error frame and the close code the table gives it', async () => {
    const h = await harnesses.start({ allowedOrigins: ['https://app.example'], maxMessageSize: 512 });
    const cases: { code: ErrorCode; client: RawWs }[] = [];
    cases.push({ code: 'UNSUPPORTED_VERSION', client: await h.connect({ v: '9' }) });
    const invalid = await h.connect();
    await invalid.hello();
    invalid.sendText('not json');
    cases.push({ code: 'PROTOCOL_ERROR', client: invalid });
    const large = await h.connect();
    await large.hello();
    large.sendText(JSON.stringify([{ t: 'msg', s: 1, d: 'x'.repeat(1024) }]));
    cases.push({ code: 'MESSAGE_TOO_LARGE', client: large });
    const older = await h.connect();
    const hello = await older.hello();
    await h.connect({ sid: hello.sid, last: hello.cursor });
    cases.push({ code: 'SUPERSEDED', client: older });
    for (const { code, client } of cases) {
      const error = await expectRefusal(client, code);
      expect(Object.keys(ERROR_CODES)).toContain(error.code);
    }
  });

  it('§9.server-codes keeps INVALID_DATA off the wire: data the API refuses throws in the application, and the connection carries on', async () => {
    const h = await harnesses.start();
    const errors: unknown[] = [];
    h.server.on('error', (error) => errors.push(error));
    h.onProcessed = (_message, current) => {
      // The application answers with something that is not data, from inside its message listener.
      void current.send(Symbol('not data') as unknown as Payload);
    };
    const client = await h.connect();
    await client.hello();
    client.send([{ t: 'msg', s: 1, d: 'answer me' }]);
    await client.next('ack', (ack) => ack.s === 1);
    await client.sync();
    expect(errors).toMatchObject([{ cause: { code: 'INVALID_DATA' } }]);
    expect(client.frames.filter(({ frame }) => frame.t === 'error')).toEqual([]);
    expect(client.closeInfo).toBeUndefined();
  });

  it('§9 close code 1000 from a client ends its session', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.close(CloseCode.Normal);
    await waitUntil('the session to end after close 1000', () => h.ended.includes(hello.sid));
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).resumed).toBe(false);
  });

  it('§9 any other client close code keeps the session for a later resume', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    client.close(4000);
    await client.closed();
    await waitUntil('the session to show no connection', () => h.server.sessions.get(hello.sid)?.connected === false);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).resumed).toBe(true);
    expect(h.ended).toEqual([]);
  });
});

describe('§10.2 graceful shutdown', () => {
  it('§10.2.notice §8.ack-before-close sends each connection reconnect with ms drawn per connection in [0, jitter), acks what it processed, then closes 1012', async () => {
    const jitter = 1_000;
    const draws = [0, 0.5, 0.999_999];
    let draw = 0;
    const h = await harnesses.start({ shutdownJitter: jitter, random: () => draws[draw++ % draws.length]! });
    const clients = [await h.connect(), await h.connect(), await h.connect()];
    for (const client of clients) await client.hello();
    const sender = clients[0]!;
    let closing: Promise<void> | undefined;
    h.onProcessed = (message) => {
      // The application shuts the server down while it is handling the second message of a batch.
      if (message.data === 'two') closing = h.server.close();
    };
    sender.send([
      { t: 'msg', s: 1, d: 'one' },
      { t: 'msg', s: 2, d: 'two' },
    ]);
    const delays: number[] = [];
    for (const client of clients) {
      const reconnect = await client.next('reconnect');
      const close = await client.closed();
      expect(close.code).toBe(CloseCode.ServiceRestart);
      expect(reconnect.frame.ms).toBeGreaterThanOrEqual(0);
      expect(reconnect.frame.ms).toBeLessThan(jitter);
      delays.push(reconnect.frame.ms);
      // Only acknowledgements may follow the notice.
      expect(client.between(reconnect.index + 1).filter((r) => r.frame.t !== 'ack')).toEqual([]);
    }
    expect(new Set(delays).size).toBeGreaterThan(1);
    expect(highestAck(sender)).toBe(2);
    await within('server.close() to settle', closing ?? Promise.reject(new Error('close() was never called')));
  });
});

describe('§11 heartbeats', () => {
  it('§11.server-hb sends a frame at least every hb ms on an idle connection: hb', async () => {
    const hb = 200;
    const h = await harnesses.start({ heartbeatInterval: hb });
    const client = await h.connect();
    await client.hello();
    await client.take('hb', 3, 10 * hb);
    const times = client.frames.map((r) => r.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(hb + 100);
    expect(client.frames.find((r) => r.frame.t === 'hb')?.frame).toEqual({ t: 'hb' });
  });

  it('§11.server-hb keeps the heartbeat going after other traffic stops', async () => {
    const hb = 200;
    const h = await harnesses.start({ heartbeatInterval: hb });
    const client = await h.connect();
    await client.hello();
    await h.server.broadcast('traffic');
    const message = await client.next('msg');
    const heartbeat = await client.next('hb', () => true, 10 * hb);
    expect(heartbeat.at - message.at).toBeLessThanOrEqual(hb + 100);
  });
});

describe('§12 size limits and flow control', () => {
  it('§12.server-size answers a text frame larger than hello.max with close 1009 and processes none of it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const client = await h.connect();
    const hello = await client.hello();
    expect(hello.max).toBe(1024);
    client.sendText(JSON.stringify([{ t: 'msg', s: 1, d: 'x'.repeat(1100) }]));
    const close = await client.closed();
    expect(close.code).toBe(CloseCode.MessageTooBig);
    expect(h.processed).toEqual([]);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).ack).toBe(0);
  });

  it('§12.server-size answers a binary frame larger than hello.max with close 1009 and processes none of it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const client = await h.connect();
    await client.hello();
    client.sendBinary({ t: 'msg', s: 1 }, new Uint8Array(1100));
    const close = await client.closed();
    expect(close.code).toBe(CloseCode.MessageTooBig);
    expect(h.processed).toEqual([]);
  });

  it('§12 measures the limit in UTF-8 bytes, not characters', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const client = await h.connect();
    await client.hello();
    // 400 euro signs: about 420 characters, but 1,200 bytes of UTF-8.
    client.sendText(JSON.stringify([{ t: 'msg', s: 1, d: '€'.repeat(400) }]));
    const close = await client.closed();
    expect(close.code).toBe(CloseCode.MessageTooBig);
    expect(h.processed).toEqual([]);
  });

  it('§12 accepts a frame of exactly hello.max bytes', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const client = await h.connect();
    await client.hello();
    const shell = JSON.stringify([{ t: 'msg', s: 1, d: '' }]);
    const text = JSON.stringify([{ t: 'msg', s: 1, d: 'x'.repeat(1024 - shell.length) }]);
    expect(Buffer.byteLength(text)).toBe(1024);
    client.sendText(text);
    await client.next('ack', (ack) => ack.s === 1);
  });

  it('§12.buffer bounds what it buffers for a client that does not read: closes with BACKPRESSURE, and the store replays what it missed', async () => {
    // The client stops reading with ws's public `pause()`, which pauses the underlying TCP socket:
    // the kernel buffers on both sides fill, then the server's own send buffer for the connection
    // grows. The test keeps broadcasting (awaiting each, so the server gets to write) until the
    // server drops the connection, with a cap far above what a 256 KiB bound plus kernel buffers
    // can hold. A server without a bound would keep the connection and buffer everything.
    const bound = 256 * 1024;
    const h = await harnesses.start({ maxBufferedBytes: bound, heartbeatInterval: 1_000 });
    const client = await h.connect();
    const hello = await client.hello();
    await client.sync();
    client.pause();
    const chunk = 'x'.repeat(32 * 1024);
    const ids: string[] = [];
    const cap = 64 * 1024 * 1024;
    while (session(h, hello.sid).connected && ids.length * chunk.length < cap) {
      ids.push(await h.server.broadcast(`${ids.length}:${chunk}`));
      if (ids.length % 8 === 0) await nextTurn();
    }
    expect(session(h, hello.sid).connected, `still connected after ${ids.length} messages of 32 KiB`).toBe(false);
    expect(h.ended).not.toContain(hello.sid);
    // Reading again, the client finds the refusal at the end of what had been buffered.
    client.resume();
    await expectRefusal(client, 'BACKPRESSURE');
    // It resumes, and the store replays everything after its cursor, in order.
    const again = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).resumed).toBe(true);
    await again.next('msg', (msg) => msg.id === ids[ids.length - 1], 20_000);
    expect(idsOf(again.frames)).toEqual(ids);
  }, 60_000);
});

describe('§10.2 a closed server over WebSocket', () => {
  it('§10.2.answer-after-close accepts an upgrade after close, sends a SERVER_RESTART error frame and closes with 1012', async () => {
    const h = await harnesses.start();
    await h.server.close();
    const client = await h.connect();
    await expectRefusal(client, 'SERVER_RESTART');
    expect(client.closeInfo?.code).toBe(CloseCode.ServiceRestart);
  });
});

describe('§7.1 a GET on P/ws without an upgrade', () => {
  it('§7.1.plain-get is answered by the server with 426, Upgrade: websocket and a short text body', async () => {
    const h = await harnesses.start();
    const plain = await fetch(`${h.httpBase}/ws?v=1`);
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(plain.headers.get('content-type')).toMatch(/^text\/plain/);
    expect((await plain.text()).length).toBeLessThan(200);
  });
});
