/**
 * PROTOCOL.md §7.1.1: WebSocket upgrade probes, driven with a raw `ws` client. A probe answers pings
 * and touches no session.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeCodeFor } from '../../src/protocol/index.js';
import { waitUntil } from '../helpers/raw-frames.js';
import { Harnesses } from '../helpers/raw-server.js';

const harnesses = new Harnesses();
afterEach(() => harnesses.closeAll());

describe('§7.1.1 upgrade probes', () => {
  it('§7.1.1.pong §7.1.1.no-session answers each ping of a probe with a pong carrying the same n, and sends no hello', async () => {
    const h = await harnesses.start();
    const probe = await h.connect({ query: { probe: '1' } });
    probe.send([{ t: 'ping', n: 41 }, { t: 'ping', n: 42 }]);
    const first = await probe.next('pong');
    const second = await probe.next('pong');
    expect([first.frame.n, second.frame.n]).toEqual([41, 42]);
    expect(probe.frames.map(({ frame }) => frame.t)).toEqual(['pong', 'pong']);
    expect(h.connections).toEqual([]);
    expect(h.server.sessions.size).toBe(0);
  });

  it('§7.1.1.no-session neither creates, attaches nor supersedes a session, even when the probe names one', async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    const probe = await h.connect({ sid: hello.sid, query: { probe: '1' } });
    probe.send([{ t: 'ping', n: 1 }]);
    await probe.next('pong');
    // The session's own connection is untouched: it still answers, and was not superseded.
    await client.sync();
    expect(client.closeInfo).toBeUndefined();
    expect(h.connections).toEqual([hello.sid]);
    expect(h.server.sessions.get(hello.sid)?.transport).toBe('websocket');
  });

  it('§7.1.1.pong refuses anything but ping frames with PROTOCOL_ERROR and processes nothing', async () => {
    const h = await harnesses.start();
    const probe = await h.connect({ query: { probe: '1' } });
    probe.send([{ t: 'msg', s: 1, d: 'not for a probe' }]);
    const close = await probe.closed();
    expect(probe.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'PROTOCOL_ERROR' });
    expect(close.code).toBe(closeCodeFor('PROTOCOL_ERROR'));
    expect(h.processed).toEqual([]);
  });

  it('§12.buffer bounds the pongs a probe leaves unread: a probe that floods pings and never reads is closed with BACKPRESSURE', async () => {
    const h = await harnesses.start();
    const probe = await h.connect({ query: { probe: '1' } });
    probe.pause();
    // About 16 MB of pongs owed: more than the loopback socket's buffers on both sides hold, so that
    // the rest would wait in the server's memory.
    const batch = JSON.stringify(Array.from({ length: 40_000 }, (_, n) => ({ t: 'ping', n: 1_000_000 + n })));
    const batches = 20;
    for (let i = 0; i < batches; i++) probe.sendText(batch);
    // Read again only once every ping left for the server: it answered them into a socket nobody read.
    await waitUntil('the pings to be sent', () => probe.socket.bufferedAmount === 0);
    probe.resume();
    const close = await probe.closed();
    const pongs = probe.frames.filter(({ frame }) => frame.t === 'pong').length;
    expect(probe.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'BACKPRESSURE' });
    expect(close.code).toBe(closeCodeFor('BACKPRESSURE'));
    expect(pongs).toBeLessThan(batches * 40_000);
  }, 30_000);

  it('§7.1.1 applies the version rule to probes', async () => {
    const h = await harnesses.start();
    const probe = await h.connect({ v: '3', query: { probe: '1' } });
    const close = await probe.closed();
    expect(probe.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'UNSUPPORTED_VERSION' });
    expect(close.code).toBe(closeCodeFor('UNSUPPORTED_VERSION'));
  });
});
