/**
 * A server (or a proxy in front of it) that sends garbage: the client never delivers half-parsed
 * data, reports PROTOCOL_ERROR, and reconnects with backoff — never in a hot loop.
 * The peer here is a hand-driven `ws` server on loopback that speaks the wire format directly.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { connect, type Client, type UnbrokenError } from '../../src/client/index.js';
import { when } from '../helpers/signals.js';
import { nodeEnvironment } from './fixture.js';

const RETRY_FLOOR = 80;

function hello(sid = 'AAAAAAAAAAAAAAAAAAAAAA') {
  return { t: 'hello', v: 1, sid, key: 'BBBBBBBBBBBBBBBBBBBBBB', resumed: false, ack: 0, hb: 10_000, retry: RETRY_FLOOR, max: 1_048_576, cursor: 'e-0' };
}

describe('a client facing a misbehaving server', () => {
  let wss: WebSocketServer | undefined;
  let http: Server | undefined;
  let client: Client | undefined;
  afterEach(async () => {
    client?.close();
    for (const socket of wss?.clients ?? []) socket.terminate();
    await new Promise((resolve) => wss?.close(resolve));
    http?.closeAllConnections();
    await new Promise((resolve) => http?.close(resolve));
  });

  /** Starts a server that answers every connection with a valid hello and then `after` as raw text. */
  async function misbehave(after: string) {
    const connectedAt: number[] = [];
    // Every attempt asks for its ticket first (§3.4): any POST is given one.
    http = createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ticket: 'CCCCCCCCCCCCCCCCCCCCCC', ttl: 30_000 }));
    });
    wss = new WebSocketServer({ server: http });
    await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve));
    const attempts = when(() => connectedAt.length >= 4);
    wss.on('connection', (socket) => {
      connectedAt.push(Date.now());
      attempts.wake();
      socket.send(JSON.stringify([hello(), { t: 'msg', id: 'e-1', d: 'valid before the bad batch' }]));
      socket.send(after);
    });
    const { port } = http.address() as AddressInfo;
    const delivered: unknown[] = [];
    const errors: UnbrokenError[] = [];
    client = connect(`http://127.0.0.1:${port}/realtime`, {
      ...nodeEnvironment,
      transports: ['websocket'],
      reconnectDelay: 1,
      maxReconnectDelay: 5,
    });
    client.on('message', ({ data }) => delivered.push(data));
    client.on('error', (error) => errors.push(error));
    await attempts.promise;
    return { connectedAt, delivered, errors };
  }

  it.each([
    ['text that is not JSON', '[{"t":"msg","id":"e-2","d":1},'],
    ['a JSON object instead of a batch', '{"t":"msg","id":"e-2","d":1}'],
    ['an empty batch', '[]'],
    ['an unknown frame type after a valid message', '[{"t":"msg","id":"e-2","d":"half"},{"t":"surprise"}]'],
    ['a message without data after a valid message', '[{"t":"msg","id":"e-2","d":"half"},{"t":"msg","id":"e-3"}]'],
    ['an event name with CR/LF', '[{"t":"msg","id":"e-2","e":"a\\r\\nb","d":"x"}]'],
    ['an id with a line feed', '[{"t":"msg","id":"e-\\n2","d":"x"}]'],
    ['a mistyped ack', '[{"t":"ack","s":"7"}]'],
  ])('rejects %s whole, reports PROTOCOL_ERROR and reconnects no sooner than the retry floor', async (_case, bad) => {
    const { connectedAt, delivered, errors } = await misbehave(bad);
    // Only the valid message of each connection's first batch was delivered, never any part of the bad batch.
    expect(delivered.every((data) => data === 'valid before the bad batch')).toBe(true);
    expect(delivered.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors.every((error) => error.code === 'PROTOCOL_ERROR')).toBe(true);
    for (let i = 1; i < connectedAt.length; i++) {
      expect(connectedAt[i]! - connectedAt[i - 1]!).toBeGreaterThanOrEqual(RETRY_FLOOR - 2);
    }
  });
});
