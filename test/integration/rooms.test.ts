/**
 * Rooms end to end (docs/PROTOCOL.md §6.5), looped over every transport: the real client against the
 * reference server through the TCP proxy. The client asks to join with an application message, as
 * the README shows; the server's handler answers with `session.join`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/index.js';
import { UnbrokenTypeError, type Session } from '../../src/server/index.js';
import { deferred, when } from '../helpers/signals.js';
import { TRANSPORTS, startFixture, type Fixture } from './fixture.js';

type Request = { join: string } | { leave: string };

/** Joins and leaves as the client asks; resolves with the client's session on its first request. */
function serveRooms(fixture: Fixture): Promise<Session> {
  const first = deferred<Session>();
  fixture.server.server.on('message', (data, session) => {
    const request = data as Request;
    if ('join' in request) void session.join(request.join);
    else void session.leave(request.leave);
    first.resolve(session);
  });
  return first.promise;
}

/** What the client delivers, and a way to wait for a given message. */
function record(client: Client): { received: unknown[]; until(data: unknown): Promise<void> } {
  const received: unknown[] = [];
  const waits: { data: unknown; signal: ReturnType<typeof when> }[] = [];
  client.on('message', ({ data }) => {
    received.push(data);
    for (const wait of waits) wait.signal.wake();
  });
  return {
    received,
    until(data) {
      const signal = when(() => received.includes(data));
      waits.push({ data, signal });
      return signal.promise;
    },
  };
}

const opened = (client: Client): Promise<void> => new Promise((resolve) => client.once('open', () => resolve()));

describe.each(TRANSPORTS)('rooms over %s', (transport) => {
  let fixture: Fixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('§6.5.resume §6.5.session a client away while in a room gets what it missed exactly once and in order, none from before its join or after its leave', async () => {
    fixture = await startFixture(transport, { retry: 5 });
    const { server } = fixture.server;
    const sessionOf = serveRooms(fixture);
    const client = fixture.client({ reconnectDelay: 5, maxReconnectDelay: 50 });
    const alice = record(client);
    await opened(client);

    await server.to('lobby').send('before join');
    await client.send({ join: 'lobby' });
    const session = await sessionOf;
    expect([...session.rooms]).toEqual(['lobby']);
    await server.to('lobby').send('r1');
    await alice.until('r1');

    // Away: the connection stays up but passes nothing, then dies; the client resumes from r1.
    fixture.proxy.setMode('silent');
    await server.to('lobby').send('r2');
    await session.send('d1');
    await server.broadcast('b1');
    await server.to(['lobby', 'kitchen', 'lobby']).send('r3');
    await server.to('kitchen').send('not hers');
    const back = opened(client);
    fixture.proxy.setMode('pass');
    fixture.proxy.dropAll();
    await back;

    // The membership survived the reconnection; it ends with leave().
    await server.to('lobby').send('r4');
    await session.leave('lobby');
    await server.to('lobby').send('after leave');
    await session.send('end');
    await alice.until('end');
    expect(alice.received).toEqual(['r1', 'r2', 'd1', 'b1', 'r3', 'r4', 'end']);
  });

  it('§6.5.order §6.5.interval sends one copy to a session in several rooms, and room messages only to members', async () => {
    fixture = await startFixture(transport);
    const { server } = fixture.server;
    serveRooms(fixture);
    const first = fixture.client();
    const second = fixture.client();
    const alice = record(first);
    const bob = record(second);
    await Promise.all([opened(first), opened(second)]);
    await first.send({ join: 'lobby' });
    await first.send({ join: 'kitchen' });
    await second.send({ join: 'kitchen' });

    const members = await server.to(['lobby', 'kitchen']).sessions();
    expect(members).toHaveLength(2);
    expect((await server.to('lobby').sessions()).map((session) => session.id)).toEqual([first.sessionId]);
    expect(await server.to('nobody-here').sessions()).toEqual([]);
    await expect(server.to('nobody-here').send('into the void')).resolves.toMatch(/./);

    await server.to(['lobby', 'kitchen']).send('both');
    await server.to('lobby').send('lobby only');
    await server.broadcast('all');
    await alice.until('all');
    await bob.until('all');
    expect(alice.received).toEqual(['both', 'lobby only', 'all']);
    expect(bob.received).toEqual(['both', 'all']);
  });
});

describe('the rooms API', () => {
  let fixture: Fixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('emits join and leave, also when a session ends in a room, and refuses bad room names and too many rooms', async () => {
    fixture = await startFixture('websocket', { maxRoomsPerSession: 2 });
    const { server } = fixture.server;
    const events: string[] = [];
    server.on('join', (session, room) => events.push(`join ${room}`));
    server.on('leave', (session, room) => events.push(`leave ${room}`));
    server.on('close', () => events.push('close'));
    const sessionOf = deferred<Session>();
    server.on('connection', (session) => sessionOf.resolve(session));
    const client = fixture.client();
    await opened(client);
    const session = await sessionOf.promise;

    for (const room of ['', 'r'.repeat(129), 'a\nb', 'a\u0000b', 'a\u007fb', 42 as unknown as string]) {
      expect(() => session.join(room)).toThrow(expect.objectContaining({ name: 'UnbrokenTypeError', code: 'INVALID_ROOM' }));
      expect(() => session.leave(room)).toThrow(UnbrokenTypeError);
      expect(() => server.to(room)).toThrow(expect.objectContaining({ code: 'INVALID_ROOM' }));
    }
    expect(() => server.to([])).toThrow(expect.objectContaining({ code: 'INVALID_ROOM' }));
    expect(() => server.to(['ok', ''])).toThrow(expect.objectContaining({ code: 'INVALID_ROOM' }));
    await session.join('r'.repeat(128));
    await session.join('😀'.repeat(128));
    expect(() => session.join('third')).toThrow(expect.objectContaining({ name: 'UnbrokenTypeError', code: 'TOO_MANY_ROOMS' }));
    await session.join('r'.repeat(128));
    await session.leave('not in it');
    expect(events).toEqual([`join ${'r'.repeat(128)}`, `join ${'😀'.repeat(128)}`]);

    client.close();
    await new Promise<void>((resolve) => server.once('close', () => resolve()));
    expect(events.slice(2)).toEqual([`leave ${'r'.repeat(128)}`, `leave ${'😀'.repeat(128)}`, 'close']);
    expect(session.rooms.size).toBe(0);
    expect(await server.to('r'.repeat(128)).sessions()).toEqual([]);
  });
});
