/**
 * A message larger than what one connection may buffer (`maxBufferedBytes`, §12) would cut every
 * client it reaches with BACKPRESSURE, and again on each resume: the server API refuses it up front.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type UnbrokenServer } from '../../src/server/index.js';

const servers: UnbrokenServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function server(maxBufferedBytes: number): UnbrokenServer {
  const made = createServer({ maxBufferedBytes });
  servers.push(made);
  return made;
}

describe('the size of what the server sends', () => {
  it('throws INVALID_DATA for JSON data larger than maxBufferedBytes once encoded, and sends data that fits', async () => {
    const realtime = server(4096);
    expect(() => realtime.broadcast('é'.repeat(2100))).toThrow(expect.objectContaining({ code: 'INVALID_DATA' }));
    await expect(realtime.broadcast('x'.repeat(4000))).resolves.toEqual(expect.any(String));
  });

  it('counts bytes as their base64 text, which the HTTP transports send', async () => {
    const realtime = server(4096);
    expect(() => realtime.broadcast(new Uint8Array(3100))).toThrow(expect.objectContaining({ code: 'INVALID_DATA' }));
    await expect(realtime.broadcast(new Uint8Array(3000))).resolves.toEqual(expect.any(String));
  });
});
