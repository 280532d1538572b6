/**
 * Rooms (docs/PROTOCOL.md §6.5), driven by a raw WebSocket client: which room messages a resumed
 * connection is replayed, and the replay/live seam while members join, leave and rooms receive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HelloFrame } from '../../src/protocol/index.js';
import { waitUntil, type Received } from '../helpers/raw-frames.js';
import { Harnesses, type Harness } from '../helpers/raw-server.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

const idsOf = (received: readonly Received[]): string[] => received.flatMap((r) => (r.frame.t === 'msg' ? [r.frame.id] : []));

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A connection that dropped without a goodbye (its session lives on), and its hello. */
async function droppedSession(h: Harness): Promise<HelloFrame> {
  const client = await h.connect();
  const hello = await client.hello();
  client.terminate();
  await waitUntil('the server to see the connection drop', () => h.server.sessions.get(hello.sid)?.connected === false);
  return hello;
}

describe('rooms (§6.5)', () => {
  it('§6.5.resume replays to a session away since before its join only the room messages of its membership', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const session = h.server.sessions.get(hello.sid)!;
    await h.server.to('lobby').send('before join');
    await session.join('lobby');
    const inside = [await h.server.to('lobby').send('in 1'), await session.send('direct'), await h.server.to(['lobby', 'lobby']).send('in 2')];
    await session.leave('lobby');
    await h.server.to('lobby').send('after leave');
    const marker = await h.server.broadcast('marker');
    const client = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await client.hello()).toMatchObject({ resumed: true, cursor: hello.cursor });
    await client.next('msg', (msg) => msg.id === marker);
    expect(idsOf(client.frames)).toEqual([...inside, marker]);
  });

  it('§6.5.order §6.5.interval loses and repeats nothing at the replay/live seam while a member joins and leaves under concurrent room sends', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const session = h.server.sessions.get(hello.sid)!;
    const expected: string[] = [];
    let resume: ReturnType<Harness['connect']> | undefined;
    for (let burst = 0; burst < 90; burst++) {
      // In the room for bursts 10–59, out of it for the rest; the connection resumes at burst 30.
      if (burst === 10) await session.join('lobby');
      if (burst === 60) await session.leave('lobby');
      const inRoom = burst >= 10 && burst < 60;
      const sent = await Promise.all([h.server.to('lobby').send(burst), h.server.to('elsewhere').send(burst), h.server.broadcast(burst)]);
      expected.push(...(inRoom ? [sent[0], sent[2]] : [sent[2]]));
      if (burst === 30) resume = h.connect({ sid: hello.sid, last: hello.cursor });
      await nextTurn();
    }
    const client = await resume!;
    await client.next('msg', (msg) => msg.id === expected.at(-1));
    await client.sync();
    expect(idsOf(client.frames)).toEqual(expected);
  });
});
