/**
 * A restarted server with the in-memory store has lost its history: the client must say so with
 * exactly one `gap` (PROTOCOL.md §6.3) and carry on, never leave a silent hole.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientEvents } from '../../src/client/index.js';
import { deferred, when } from '../helpers/signals.js';
import { TRANSPORTS, startFixture, type Fixture } from './fixture.js';

describe.each(TRANSPORTS)('server restart over %s', (transport) => {
  let fixture: Fixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it.each([
    ['gracefully', true],
    ['abruptly', false],
  ])('resumes after the server restarts %s and emits exactly one gap', async (_how, graceful) => {
    fixture = await startFixture(transport, { retry: 5, shutdownJitter: 20 });
    const client = fixture.client({ reconnectDelay: 5, connectTimeout: 500 });
    const gaps: Array<ClientEvents['gap']> = [];
    const received: unknown[] = [];
    const firstTwo = when(() => received.length === 2);
    client.on('gap', (gap) => gaps.push(gap));
    client.on('message', ({ data }) => {
      received.push(data);
      firstTwo.wake();
    });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    await fixture.server.server.broadcast('before-1');
    await fixture.server.server.broadcast('before-2');
    await firstTwo.promise;
    const lastBeforeRestart = client.lastEventId;

    const reopened = deferred<ClientEvents['open']>();
    client.on('open', (open) => reopened.resolve(open));
    const restarted = await fixture.restartServer(undefined, graceful);
    const open = await reopened.promise;
    expect(open.resumed).toBe(false);

    // A message after the restart is the explicit signal that the gap, if any, came first.
    const after = deferred<void>();
    client.on('message', ({ data }) => {
      if (data === 'after-1') after.resolve();
    });
    await restarted.server.broadcast('after-1');
    await after.promise;

    expect(received).toEqual(['before-1', 'before-2', 'after-1']);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ reason: 'unknown-epoch', lastEventId: lastBeforeRestart });
  });

  it('sends again, under the new session, what the old server never acknowledged', async () => {
    fixture = await startFixture(transport, { retry: 5, shutdownJitter: 20 });
    const client = fixture.client({ reconnectDelay: 5, connectTimeout: 500 });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    fixture.proxy.setMode('silent');
    const pending = client.send('written while the link is silent');
    const restarted = await fixture.restartServer(undefined, false);
    fixture.proxy.setMode('pass');
    const seen = deferred<unknown>();
    restarted.server.on('message', (data) => seen.resolve(data));
    await pending;
    expect(await seen.promise).toBe('written while the link is silent');
  });
});
