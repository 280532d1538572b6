import { describe, expect, it } from 'vitest';
import { UnbrokenError } from '../../src/client/index.js';
import { Outbox } from '../../src/client/outbox.js';
import { CloseCode, decodeBinaryFrame, decodeClientBatch, type ClientFrame } from '../../src/protocol/index.js';
import { quiet, settle, useMockServer } from './client-harness.js';

/** Decodes what `take()` returned: text batches to frames, binary frames to header + payload. */
function unpack(units: (string | ArrayBufferLike)[]): (ClientFrame[] | { header: unknown; payload: number[] })[] {
  return units.map((unit) => {
    if (typeof unit === 'string') return decodeClientBatch(unit);
    const { header, payload } = decodeBinaryFrame(new Uint8Array(unit));
    return { header, payload: [...payload] };
  });
}

/** Records how each promise settled, without unhandled rejections. */
function watch(promise: Promise<void>): { state: string } {
  const outcome = { state: 'pending' };
  promise.then(
    () => (outcome.state = 'resolved'),
    (error: UnbrokenError) => (outcome.state = error.code),
  );
  return outcome;
}

const flush = () => Promise.resolve().then(() => undefined);

describe('Outbox', () => {
  it('numbers messages 1, 2, 3 and writes them in order, in one batch', () => {
    const outbox = new Outbox(100);
    for (const data of ['a', { b: [1, null] }, 3]) void outbox.add(data);
    outbox.hello(0, false, 1_000, true);
    expect(unpack(outbox.take())).toEqual([
      [
        { t: 'msg', s: 1, d: 'a' },
        { t: 'msg', s: 2, d: { b: [1, null] } },
        { t: 'msg', s: 3, d: 3 },
      ],
    ]);
    expect(outbox.take()).toEqual([]);
  });

  it('resolves every message up to a cumulative ack, and only those', async () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, true);
    const sent = [1, 2, 3].map((n) => watch(outbox.add(n)));
    outbox.take();
    outbox.ack(2);
    await flush();
    expect(sent.map(({ state }) => state)).toEqual(['resolved', 'resolved', 'pending']);
  });

  it('says whether an ack covers every message written on the link (§7.3.one-request)', () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, false);
    for (const n of [1, 2]) void outbox.add(n);
    outbox.take();
    void outbox.add(3);
    expect(outbox.ack(1)).toBe(false);
    // Message 3 is not written yet: an ack of what was written covers the request in flight.
    expect(outbox.ack(2)).toBe(true);
    outbox.take();
    expect(outbox.ack(2)).toBe(false);
    expect(outbox.ack(3)).toBe(true);
  });

  it('writes again, keeping their numbers, what hello.ack does not cover after a resumed hello (§8.resend)', async () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, true);
    const sent = [1, 2, 3, 4].map((n) => watch(outbox.add(n)));
    outbox.take();
    outbox.ack(1);
    outbox.hello(2, true, 1_000, true);
    await flush();
    expect(sent.map(({ state }) => state)).toEqual(['resolved', 'resolved', 'pending', 'pending']);
    expect(unpack(outbox.take())).toEqual([
      [
        { t: 'msg', s: 3, d: 3 },
        { t: 'msg', s: 4, d: 4 },
      ],
    ]);
    void outbox.add(5);
    expect(unpack(outbox.take())).toEqual([[{ t: 'msg', s: 5, d: 5 }]]);
  });

  it('numbers unacknowledged messages again from 1 when the session is new (resumed: false) (§8.renumber)', () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, true);
    for (const n of [1, 2, 3, 4, 5]) void outbox.add(n);
    outbox.take();
    outbox.ack(3);
    outbox.hello(0, false, 1_000, true);
    expect(unpack(outbox.take())).toEqual([
      [
        { t: 'msg', s: 1, d: 4 },
        { t: 'msg', s: 2, d: 5 },
      ],
    ]);
    void outbox.add(6);
    expect(unpack(outbox.take())).toEqual([[{ t: 'msg', s: 3, d: 6 }]]);
  });

  it('splits batches so that none exceeds hello.max, in order (§4.1.size, §12.client-size)', () => {
    const outbox = new Outbox(100);
    // Each frame is {"t":"msg","s":N,"d":"xxxxxxxxxx"}: 34 bytes; a batch of two is 71 bytes.
    outbox.hello(0, false, 71, true);
    for (let n = 0; n < 5; n++) void outbox.add('x'.repeat(10));
    const units = outbox.take();
    expect(units.map((unit) => (typeof unit === 'string' ? Buffer.byteLength(unit) : -1))).toEqual([71, 71, 36]);
    expect(unpack(units).flat().map((frame) => (frame as ClientFrame & { s: number }).s)).toEqual([1, 2, 3, 4, 5]);
  });

  it('splits batches by UTF-8 bytes, not by characters (§4.1.size)', () => {
    const outbox = new Outbox(100);
    // {"t":"msg","s":N,"d":"ééééé"}: 29 characters, 34 bytes; two in brackets are 71 bytes.
    outbox.hello(0, false, 71, true);
    for (let n = 0; n < 3; n++) void outbox.add('é'.repeat(5));
    const units = outbox.take();
    expect(units.map((unit) => (typeof unit === 'string' ? Buffer.byteLength(unit) : -1))).toEqual([71, 36]);
    outbox.hello(0, false, 70, true);
    expect(outbox.take().map((unit) => (typeof unit === 'string' ? Buffer.byteLength(unit) : -1))).toEqual([36, 36, 36]);
  });

  it('counts bytes exactly once messages are numbered again, a number growing a digit (§8, §12.client-size)', () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, true);
    for (let n = 0; n < 10; n++) void outbox.add('é');
    outbox.take();
    // Numbered again from 1: frames 9 and 10 ({"t":"msg","s":9,"d":"é"} and one digit more) in
    // brackets are 56 bytes, exactly this max; with 55 they go apart.
    outbox.hello(0, false, 56, true);
    const sizes = outbox.take().map((unit) => Buffer.byteLength(unit as string));
    expect(sizes.at(-1)).toBe(56);
    expect(sizes.every((size) => size <= 56)).toBe(true);
    outbox.hello(0, false, 55, true);
    expect(outbox.take().map((unit) => Buffer.byteLength(unit as string)).slice(-2)).toEqual([28, 29]);
  });

  it('counts a lone surrogate as the ASCII escape JSON writes for it', async () => {
    const [roomy, tight] = [new Outbox(10), new Outbox(10)];
    // {"t":"msg","s":1,"d":"\ud800"} in brackets: 32 bytes.
    roomy.hello(0, false, 32, true);
    tight.hello(0, false, 31, true);
    const fits = watch(roomy.add('\ud800'));
    const tooLarge = watch(tight.add('\ud800'));
    await flush();
    expect([fits.state, tooLarge.state]).toEqual(['pending', 'MESSAGE_TOO_LARGE']);
  });

  it('sends bytes as binary frames when the link takes them, and as base64 when it does not', () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, true);
    void outbox.add('before');
    void outbox.add(new Uint8Array([1, 2, 255]));
    void outbox.add(new Uint16Array([0x0102]).buffer);
    void outbox.add(new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2));
    expect(unpack(outbox.take())).toEqual([
      [{ t: 'msg', s: 1, d: 'before' }],
      { header: { t: 'msg', s: 2 }, payload: [1, 2, 255] },
      { header: { t: 'msg', s: 3 }, payload: [...new Uint8Array(new Uint16Array([0x0102]).buffer)] },
      { header: { t: 'msg', s: 4 }, payload: [8, 7] },
    ]);
    outbox.hello(0, true, 1_000, false);
    expect(unpack(outbox.take())).toEqual([
      [
        { t: 'msg', s: 1, d: 'before' },
        { t: 'msg', s: 2, b: 'AQL/' },
        { t: 'msg', s: 3, b: Buffer.from(new Uint16Array([0x0102]).buffer).toString('base64') },
        { t: 'msg', s: 4, b: 'CAc=' },
      ],
    ]);
  });

  it('copies bytes at send(), so a later change of the buffer is not sent', () => {
    const outbox = new Outbox(100);
    outbox.hello(0, false, 1_000, true);
    const bytes = new Uint8Array([1, 2, 3]);
    void outbox.add(bytes);
    bytes[0] = 99;
    expect(unpack(outbox.take())).toEqual([{ header: { t: 'msg', s: 1 }, payload: [1, 2, 3] }]);
  });

  it('rejects with OUTBOX_FULL beyond its limit and keeps what it holds (§12.outbox)', async () => {
    const outbox = new Outbox(2);
    const sent = [1, 2, 3].map((n) => watch(outbox.add(n)));
    await flush();
    expect(sent.map(({ state }) => state)).toEqual(['pending', 'pending', 'OUTBOX_FULL']);
    outbox.hello(0, false, 1_000, true);
    expect(unpack(outbox.take())).toEqual([
      [
        { t: 'msg', s: 1, d: 1 },
        { t: 'msg', s: 2, d: 2 },
      ],
    ]);
  });

  it('refuses a message larger than hello.max at once, without using up a number (§12.client-size)', async () => {
    const outbox = new Outbox(10);
    outbox.hello(0, false, 40, true);
    // [{"t":"msg","s":1,"d":""}] is 26 bytes plus the string's.
    const fits = watch(outbox.add('x'.repeat(14)));
    const tooLarge = watch(outbox.add('x'.repeat(15)));
    const binary = watch(outbox.add(new Uint8Array(40)));
    await flush();
    expect([fits.state, tooLarge.state, binary.state]).toEqual(['pending', 'MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE']);
    void outbox.add(1);
    expect(unpack(outbox.take()).flat()).toEqual([
      { t: 'msg', s: 1, d: 'x'.repeat(14) },
      { t: 'msg', s: 2, d: 1 },
    ]);
  });

  it('checks messages queued before the first hello when it arrives, and numbers the rest without a hole', async () => {
    const outbox = new Outbox(10);
    const sent = ['small', 'x'.repeat(100), 'small too'].map((data) => watch(outbox.add(data)));
    outbox.hello(0, false, 60, true);
    await flush();
    expect(sent.map(({ state }) => state)).toEqual(['pending', 'MESSAGE_TOO_LARGE', 'pending']);
    expect(unpack(outbox.take()).flat()).toEqual([
      { t: 'msg', s: 1, d: 'small' },
      { t: 'msg', s: 2, d: 'small too' },
    ]);
  });

  it('measures size in UTF-8 bytes', async () => {
    const outbox = new Outbox(10);
    outbox.hello(0, false, 32, true);
    // 26 bytes of frame and brackets, plus 3 × 2 bytes of "é": 32 fits; a fourth does not.
    const fits = watch(outbox.add('ééé'));
    const tooLarge = watch(outbox.add('éééé'));
    await flush();
    expect([fits.state, tooLarge.state]).toEqual(['pending', 'MESSAGE_TOO_LARGE']);
  });

  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a BigInt', 10n],
    ['a circular object', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })()],
  ])('rejects %s with INVALID_DATA', async (_, data) => {
    const outbox = new Outbox(10);
    await expect(outbox.add(data)).rejects.toMatchObject({ name: 'UnbrokenError', code: 'INVALID_DATA' });
  });

  it('keeps the cause of INVALID_DATA', async () => {
    const outbox = new Outbox(10);
    const error: unknown = await outbox.add(10n).catch((e: unknown) => e);
    expect((error as UnbrokenError).cause).toBeInstanceOf(TypeError);
  });

  it('rejects everything it holds on fail()', async () => {
    const outbox = new Outbox(10);
    const sent = [1, 2].map((n) => watch(outbox.add(n)));
    outbox.fail(new UnbrokenError('CLIENT_CLOSED', 'closed'));
    await flush();
    expect(sent.map(({ state }) => state)).toEqual(['CLIENT_CLOSED', 'CLIENT_CLOSED']);
    outbox.hello(0, false, 1_000, true);
    expect(outbox.take()).toEqual([]);
  });
});

describe('client send()', () => {
  const server = useMockServer();

  it('sends everything sent in one tick as one batch, and the next tick as the next', async () => {
    const client = server.client();
    const peer = await server.accept();
    void quiet(client.send('a'));
    void quiet(client.send('b'));
    void quiet(client.send('c'));
    await settle();
    void quiet(client.send('d'));
    await settle();
    expect(peer.upstream.map((unit) => (unit.kind === 'text' ? unit.frames.length : 'binary'))).toEqual([3, 1]);
    expect(peer.frames()).toEqual(['a', 'b', 'c', 'd'].map((d, i) => ({ t: 'msg', s: i + 1, d })));
    client.close();
  });

  it('resolves a send on its ack, not before', async () => {
    const client = server.client();
    const peer = await server.accept();
    const sent = watch(client.send('hello'));
    await settle();
    expect(sent.state).toBe('pending');
    peer.send({ t: 'ack', s: 1 });
    await settle();
    expect(sent.state).toBe('resolved');
    client.close();
  });

  it('holds messages sent before the hello and sends them, in order, after it', async () => {
    const client = server.client();
    void quiet(client.send(1));
    const peer = await server.nextPeer();
    void quiet(client.send(2));
    await settle();
    expect(peer.frames()).toEqual([]);
    peer.hello();
    await settle();
    expect(peer.frames()).toEqual([
      { t: 'msg', s: 1, d: 1 },
      { t: 'msg', s: 2, d: 2 },
    ]);
    client.close();
  });

  it('resolves what hello.ack covers after a reconnection and resends the rest with their numbers (§8.resend, §14.2)', async () => {
    const client = server.client({ random: () => 0 });
    let peer = await server.accept();
    const sent = [1, 2, 3].map((n) => watch(client.send(n)));
    await settle();
    peer.send({ t: 'ack', s: 1 });
    peer.close(CloseCode.InternalError);
    // The server processed 2 too, but its ack was lost with the link.
    peer = await server.accept({ resumed: true, ack: 2 });
    await settle();
    expect(sent.map(({ state }) => state)).toEqual(['resolved', 'resolved', 'pending']);
    expect(peer.frames()).toEqual([{ t: 'msg', s: 3, d: 3 }]);
    client.close();
  });

  it('numbers unacknowledged messages from 1 again when the server lost the session (§8.renumber, §14.3)', async () => {
    const client = server.client({ random: () => 0 });
    let peer = await server.accept();
    void quiet(client.send('a'));
    void quiet(client.send('b'));
    await settle();
    peer.send({ t: 'ack', s: 1 });
    peer.close(CloseCode.ServiceRestart);
    peer = await server.accept({ resumed: false, ack: 0 });
    await settle();
    expect(peer.frames()).toEqual([{ t: 'msg', s: 1, d: 'b' }]);
    void quiet(client.send('c'));
    await settle();
    expect(peer.frames().at(-1)).toEqual({ t: 'msg', s: 2, d: 'c' });
    client.close();
  });

  it('sends bytes as a binary WebSocket frame (§4.3)', async () => {
    const client = server.client();
    const peer = await server.accept();
    void quiet(client.send(new Uint8Array([0, 1, 254, 255])));
    await settle();
    expect(peer.upstream).toEqual([
      { kind: 'binary', frame: { t: 'msg', s: 1, b: '' }, payload: new Uint8Array([0, 1, 254, 255]), bytes: 4 + 17 + 4 },
    ]);
    client.close();
  });

  it('rejects with MESSAGE_TOO_LARGE against hello.max, and keeps the connection (§12.client-size)', async () => {
    const client = server.client();
    const peer = await server.accept({ max: 100 });
    await expect(client.send('x'.repeat(200))).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    void quiet(client.send('fits'));
    await settle();
    expect(peer.frames()).toEqual([{ t: 'msg', s: 1, d: 'fits' }]);
    expect(client.state).toBe('open');
    client.close();
  });

  it('rejects with OUTBOX_FULL at outboxLimit unacknowledged messages (§12.outbox)', async () => {
    const client = server.client({ outboxLimit: 2 });
    void quiet(client.send(1));
    void quiet(client.send(2));
    await expect(client.send(3)).rejects.toMatchObject({ code: 'OUTBOX_FULL' });
    client.close();
  });

  it('rejects every unacknowledged message with CLIENT_CLOSED on close()', async () => {
    const client = server.client();
    const peer = await server.accept();
    const first = client.send(1);
    const second = client.send(2);
    await settle();
    client.close();
    await expect(first).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await expect(second).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await settle();
    expect(peer.frames().map(({ t }) => t)).toEqual(['msg', 'msg', 'bye']);
  });
});
