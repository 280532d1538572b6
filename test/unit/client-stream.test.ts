import { describe, expect, it } from 'vitest';
import type { GapEvent, UnbrokenMessage } from '../../src/client/index.js';
import { CloseCode, encodeBinaryFrame } from '../../src/protocol/index.js';
import { record, settle, useMockServer, type MockServer } from './client-harness.js';

describe('client stream', () => {
  const server = useMockServer();

  it('delivers every message to message, then to message:<event> for named ones', async () => {
    const client = server.client<string>();
    const log: string[] = [];
    client.on('message', ({ id, data, event }) => log.push(`message ${id} ${data} ${String(event)}`));
    client.on('message:chat', ({ id }) => log.push(`message:chat ${id}`));
    client.on('message:other', ({ id }) => log.push(`message:other ${id}`));
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', d: 'plain' }, { t: 'msg', id: 'e1-2', e: 'chat', d: 'hi' });
    expect(log).toEqual(['message e1-1 plain undefined', 'message e1-2 hi chat', 'message:chat e1-2']);
    client.close();
  });

  it('does not mix named events with lifecycle events: a message named open is not the open event', async () => {
    const client = server.client();
    const log = record(client, ['open', 'message:open']);
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', e: 'open', d: 1 });
    expect(log).toEqual(['open', 'message:open']);
    client.close();
  });

  it('adopts hello.cursor, moves the cursor with each message, and presents last with a new ticket, and sid and key in the ticket body, on reconnection (§6.4.adopt, §6.4.advance, §6.3.present)', async () => {
    const client = server.client({ random: () => 0 });
    let peer = await server.accept({ sid: 'session-abcdefghijkl', cursor: 'e1-5' });
    expect(peer.url.searchParams.get('v')).toBe('1');
    expect(peer.url.searchParams.has('sid')).toBe(false);
    expect(peer.url.searchParams.has('last')).toBe(false);
    expect(client.lastEventId).toBe('e1-5');
    peer.send({ t: 'msg', id: 'e1-6', d: null });
    expect(client.lastEventId).toBe('e1-6');
    peer.close(CloseCode.InternalError);
    peer = await server.nextPeer();
    expect(peer.url.pathname).toBe('/realtime/ws');
    expect(Object.fromEntries(peer.url.searchParams)).toEqual({ v: '1', ticket: expect.stringMatching(/^ticket-/), last: 'e1-6' });
    expect(server.tickets.map(({ body }) => body)).toEqual([
      { max: 4_194_304 },
      { sid: 'session-abcdefghijkl', key: 'key-of-session-000000001', max: 4_194_304 },
    ]);
    client.close();
  });

  it('resumes from hello.cursor when it dropped before its first message (§6.4.adopt)', async () => {
    const client = server.client({ random: () => 0 });
    let peer = await server.accept({ cursor: 'e1-40' });
    peer.close(CloseCode.InternalError);
    peer = await server.nextPeer();
    expect(peer.url.searchParams.get('last')).toBe('e1-40');
    client.close();
  });

  it('drops a message whose id equals the cursor: a repeat is delivered once (§6.4.advance, §7.4.no-repeat)', async () => {
    const client = server.client({ random: () => 0 });
    const ids: string[] = [];
    client.on('message', ({ id }) => ids.push(id));
    let peer = await server.accept({ cursor: 'e1-0' });
    peer.send({ t: 'msg', id: 'e1-1', d: 1 }, { t: 'msg', id: 'e1-2', d: 2 });
    peer.send({ t: 'msg', id: 'e1-2', d: 2 });
    peer.close(CloseCode.InternalError);
    peer = await server.accept({ resumed: true, cursor: 'e1-2' });
    peer.send({ t: 'msg', id: 'e1-2', d: 2 }, { t: 'msg', id: 'e1-3', d: 3 });
    expect(ids).toEqual(['e1-1', 'e1-2', 'e1-3']);
    client.close();
  });

  it('treats ids as opaque: delivers ids that sort backwards, and presents the last one as it came (§6.2.opaque)', async () => {
    const client = server.client({ random: () => 0 });
    const ids: string[] = [];
    client.on('message', ({ id }) => ids.push(id));
    let peer = await server.accept({ cursor: 'zz' });
    // A client that parsed or compared ids would drop k2-9 after k2-10, or a after b.
    peer.send({ t: 'msg', id: 'k2-10', d: 1 }, { t: 'msg', id: 'k2-9', d: 2 }, { t: 'msg', id: 'b', d: 3 }, { t: 'msg', id: 'a 1', d: 4 });
    expect(ids).toEqual(['k2-10', 'k2-9', 'b', 'a 1']);
    peer.close(CloseCode.InternalError);
    peer = await server.nextPeer();
    expect(peer.url.searchParams.get('last')).toBe('a 1');
    client.close();
  });

  it('emits gap before any later message, and moves the cursor past the lost range (§6.3.gap-event)', async () => {
    const client = server.client();
    const log: string[] = [];
    let gap: GapEvent | undefined;
    client.on('gap', (event) => {
      gap = event;
      log.push('gap');
    });
    client.on('message', ({ id }) => log.push(id));
    const peer = await server.nextPeer();
    peer.send(
      { t: 'hello', v: 1, sid: 'session-000000000001', key: 'key-of-session-000000001', resumed: false, ack: 0, hb: 15_000, retry: 1_000, max: 1_048_576, cursor: 'm7-0' },
      { t: 'gap', reason: 'unknown-epoch', after: 'k2-9', cursor: 'm7-0' },
      { t: 'msg', id: 'm7-1', d: 'first of the new epoch' },
    );
    expect(log).toEqual(['gap', 'm7-1']);
    expect(gap).toEqual({ reason: 'unknown-epoch', lastEventId: 'k2-9', resumeEventId: 'm7-0' });
    expect(client.lastEventId).toBe('m7-1');
    client.close();
  });

  it('delivers a binary WebSocket frame as bytes, with its id and event name (§4.3)', async () => {
    const client = server.client();
    const messages: UnbrokenMessage[] = [];
    client.on('message', (message) => messages.push(message));
    const peer = await server.accept();
    peer.sendRaw(encodeBinaryFrame({ t: 'msg', id: 'k2-17', e: 'blob' }, new Uint8Array([0xde, 0xad, 0xbe, 0xef])).slice().buffer);
    expect(messages).toEqual([{ id: 'k2-17', event: 'blob', data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) }]);
    expect(messages[0]!.data).toBeInstanceOf(Uint8Array);
    client.close();
  });

  it('delivers base64 data of a text batch as bytes, never as a string', async () => {
    const client = server.client();
    const data: unknown[] = [];
    client.on('message', (message) => data.push(message.data));
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', b: '3q2+7w==' }, { t: 'msg', id: 'e1-2', d: '3q2+7w==' });
    expect(data).toEqual([new Uint8Array([0xde, 0xad, 0xbe, 0xef]), '3q2+7w==']);
    client.close();
  });

  describe('protocol errors (PROTOCOL.md §4.1)', () => {
    const cases: [string, (peer: Awaited<ReturnType<MockServer['accept']>>) => void][] = [
      ['text that is not JSON', (peer) => peer.sendRaw('[{"t":"msg","id":"e1-1","d":1},')],
      ['an empty batch', (peer) => peer.sendRaw('[]')],
      ['a batch with one unknown frame after a good one', (peer) => peer.sendRaw('[{"t":"msg","id":"e1-1","d":1},{"t":"nope"}]')],
      ['a message with both d and b', (peer) => peer.sendRaw('[{"t":"msg","id":"e1-1","d":1},{"t":"msg","id":"e1-2","d":1,"b":"AA=="}]')],
      ['a message id with a line feed', (peer) => peer.sendRaw('[{"t":"msg","id":"e1-1","d":1},{"t":"msg","id":"e1\\n2","d":1}]')],
      ['an event name longer than 128 characters', (peer) => peer.sendRaw(JSON.stringify([{ t: 'msg', id: 'e1-1', e: 'x'.repeat(129), d: 1 }]))],
      ['base64 that is not base64', (peer) => peer.sendRaw('[{"t":"msg","id":"e1-1","d":1},{"t":"msg","id":"e1-2","b":"***"}]')],
      ['a binary frame shorter than its length', (peer) => peer.sendRaw(new Uint8Array([0, 0, 0, 99, 123]).buffer)],
      ['a binary frame whose header is not a message', (peer) => peer.sendRaw(encodeBinaryFrame({ t: 'hb' }, new Uint8Array(1)).slice().buffer)],
      ['a binary frame whose header also has d', (peer) => peer.sendRaw(encodeBinaryFrame({ t: 'msg', id: 'e1-1', d: 1 }, new Uint8Array(1)).slice().buffer)],
      ['a batch with a second hello', (peer) => peer.hello()],
    ];

    it.each(cases)('uses nothing of %s, closes the link with 4400 and reconnects with backoff (§4.1.whole-batch, §4.2.client-check, §4.hello-first)', async (_, misbehave) => {
      const client = server.client({ random: () => 0.5 });
      const delivered: unknown[] = [];
      client.on('message', ({ data }) => delivered.push(data));
      const peer = await server.accept();
      const log = record(client);
      misbehave(peer);
      await settle();
      expect(delivered).toEqual([]);
      expect(log).toEqual(['error PROTOCOL_ERROR', 'state open>reconnecting PROTOCOL_ERROR']);
      expect(peer.closeCode).toBe(CloseCode.ProtocolError);
      expect(server.opened).toHaveLength(1);
      await server.nextPeer();
      client.close();
    });

    it('treats a frame other than error before the hello as a protocol error (§4.hello-first)', async () => {
      const client = server.client();
      const log = record(client, ['error']);
      const peer = await server.nextPeer();
      peer.send({ t: 'msg', id: 'e1-1', d: 1 });
      expect(log).toEqual(['error PROTOCOL_ERROR']);
      client.close();
    });

    it('treats a hello of another protocol version as a protocol error', async () => {
      const client = server.client();
      const log = record(client, ['error', 'open']);
      await server.accept({ v: 3 });
      expect(log).toEqual(['error PROTOCOL_ERROR']);
      client.close();
    });

    it('keeps the violation as the cause, and its message says what was expected', async () => {
      expect.assertions(2);
      const client = server.client();
      client.on('error', (error) => {
        expect(error.message).toMatch(/expects/);
        expect(error.cause).toBeInstanceOf(Error);
      });
      const peer = await server.accept();
      peer.sendRaw('{}');
      client.close();
    });
  });
});
