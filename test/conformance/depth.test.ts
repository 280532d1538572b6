/**
 * Conformance of the nesting-depth bound (docs/PROTOCOL.md §4.4) over WebSocket, with a raw client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, MAX_DATA_DEPTH } from '../../src/protocol/index.js';
import { Harnesses } from '../helpers/raw-server.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

describe('§4.4 nesting depth over WebSocket', () => {
  it('§4.4.refuse refuses a megabyte of nested arrays with PROTOCOL_ERROR, processes nothing, and keeps serving', async () => {
    const h = await harnesses.start();
    const bystander = await h.connect();
    await bystander.hello();
    const client = await h.connect();
    await client.hello();
    const levels = 500_000;
    client.sendText(`[{"t":"msg","s":1,"d":${'['.repeat(levels)}${']'.repeat(levels)}}]`);
    const close = await client.closed();
    expect(client.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'PROTOCOL_ERROR' });
    expect(close.code).toBe(CloseCode.ProtocolError);
    expect(h.processed).toEqual([]);
    await bystander.sync();
    expect(bystander.closeInfo).toBeUndefined();
  });

  it(`§4.4.limit processes data nested exactly ${MAX_DATA_DEPTH} levels deep`, async () => {
    const h = await harnesses.start();
    const client = await h.connect();
    const hello = await client.hello();
    const data = `${'['.repeat(MAX_DATA_DEPTH - 1)}1${']'.repeat(MAX_DATA_DEPTH - 1)}`;
    client.sendText(`[{"t":"msg","s":1,"d":[${data}]}]`);
    await client.sync();
    expect(h.processedFor(hello.sid)).toEqual([JSON.parse(`[${data}]`)]);
  });
});
