import { describe, expect, it, vi } from 'vitest';
import { TRANSITIONS, type ConnectionState } from '../../src/client/client.js';
import { isUnbrokenError } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import { record, settle, useMockServer } from './client-harness.js';

const STATES: ConnectionState[] = ['connecting', 'open', 'reconnecting', 'closed'];

/** PROTOCOL.md §13.1, written out pair by pair. */
const LEGAL = new Set([
  'connecting>open',
  'connecting>reconnecting',
  'connecting>closed',
  'open>reconnecting',
  'open>closed',
  'reconnecting>open',
  'reconnecting>closed',
]);

describe('the transition table', () => {
  const pairs = STATES.flatMap((from) => STATES.map((to) => [from, to] as const));

  it.each(pairs)('%s → %s is legal exactly when PROTOCOL.md §13.1 allows it', (from, to) => {
    expect(TRANSITIONS[from].includes(to)).toBe(LEGAL.has(`${from}>${to}`));
  });

  it('has no way out of closed', () => {
    expect(TRANSITIONS.closed).toEqual([]);
  });
});

describe('client state machine', () => {
  const server = useMockServer();

  it('starts connecting and opens on hello (connecting → open, connected)', async () => {
    const client = server.client();
    const log = record(client);
    expect(client.state).toBe('connecting');
    expect(client.transport).toBeNull();
    expect(client.sessionId).toBeNull();
    expect(client.lastEventId).toBeNull();
    await server.accept({ sid: 'session-abcdefghijkl', cursor: 'e1-7' });
    expect(client.state).toBe('open');
    expect(client.transport).toBe('websocket');
    expect(client.sessionId).toBe('session-abcdefghijkl');
    expect(client.lastEventId).toBe('e1-7');
    expect(log).toEqual(['state connecting>open connected', 'transport null>websocket initial', 'open']);
    client.close();
  });

  it('goes connecting → reconnecting when the first attempt fails, then reconnecting → open', async () => {
    server.stop();
    const client = server.client({ random: () => 0.5 });
    const log = record(client);
    await settle();
    expect(client.state).toBe('reconnecting');
    server.start();
    await server.accept();
    expect(log).toEqual([
      'error TRANSPORT_ERROR',
      'state connecting>reconnecting TRANSPORT_ERROR',
      'state reconnecting>open connected',
      'transport null>websocket initial',
      'open',
    ]);
    client.close();
  });

  it('goes open → reconnecting when the link is lost, with the code as cause', async () => {
    const client = server.client();
    const peer = await server.accept();
    const log = record(client);
    peer.close(CloseCode.Superseded);
    await settle();
    expect(client.state).toBe('reconnecting');
    expect(log).toEqual(['error SUPERSEDED', 'state open>reconnecting SUPERSEDED']);
    client.close();
  });

  it('goes connecting → closed on close() before the hello', async () => {
    const client = server.client();
    const log = record(client);
    client.close();
    expect(client.state).toBe('closed');
    expect(log).toEqual(['state connecting>closed close-called', 'close null']);
    await settle(60_000);
    expect(server.opened).toHaveLength(0);
  });

  it('goes open → closed on close(): sends bye, closes with 1000, stays closed', async () => {
    const client = server.client();
    const peer = await server.accept();
    const log = record(client);
    client.close();
    client.close();
    await settle();
    expect(log).toEqual(['state open>closed close-called', 'close null']);
    expect(peer.frames()).toEqual([{ t: 'bye' }]);
    expect(peer.closeCode).toBe(CloseCode.Normal);
    await settle(120_000);
    expect(server.peers).toHaveLength(1);
  });

  it('goes reconnecting → closed on close(), and never reconnects', async () => {
    const client = server.client();
    const peer = await server.accept();
    peer.close(CloseCode.InternalError);
    await settle();
    const log = record(client);
    client.close();
    expect(log).toEqual(['state reconnecting>closed close-called', 'close null']);
    await settle(120_000);
    expect(server.opened).toHaveLength(1);
  });

  it('goes to closed on a fatal code, with the error in the close event', async () => {
    expect.assertions(4);
    const client = server.client();
    const log = record(client);
    client.on('close', ({ error }) => {
      expect(isUnbrokenError(error) && error.code).toBe('FORBIDDEN');
    });
    const peer = await server.nextPeer();
    peer.send({ t: 'error', code: 'FORBIDDEN', message: 'origin not allowed' });
    await settle();
    expect(client.state).toBe('closed');
    expect(log).toEqual(['error FORBIDDEN', 'state connecting>closed FORBIDDEN', 'close FORBIDDEN']);
    await settle(120_000);
    expect(server.opened).toHaveLength(1);
  });

  it('rejects send() and ping() once closed, with CLIENT_CLOSED', async () => {
    const client = server.client();
    client.close();
    await expect(client.send('late')).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await expect(client.ping()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  it('ignores a listener that calls close() in the middle of a batch: nothing after it is delivered', async () => {
    const client = server.client();
    const seen: unknown[] = [];
    client.on('message', ({ data }) => {
      seen.push(data);
      client.close();
    });
    const peer = await server.accept();
    peer.send({ t: 'msg', id: 'e1-1', d: 1 }, { t: 'msg', id: 'e1-2', d: 2 });
    expect(seen).toEqual([1]);
    expect(client.state).toBe('closed');
  });

  it('ignores frames from a link it already left', async () => {
    const client = server.client({ random: () => 0 });
    const ids: string[] = [];
    client.on('message', ({ id }) => ids.push(id));
    const stale = await server.accept({ hb: 1_000 });
    await vi.advanceTimersByTimeAsync(2_000);
    const current = await server.accept();
    stale.send({ t: 'msg', id: 'e1-1', d: 'from the dead link' }, { t: 'error', code: 'FORBIDDEN', message: 'stale' });
    current.send({ t: 'msg', id: 'e1-2', d: 'live' });
    expect(ids).toEqual(['e1-2']);
    expect(client.state).toBe('open');
    client.close();
  });
});
