/**
 * Conformance of the ticket answers that name their session (docs/PROTOCOL.md §3.4), which let two
 * attempts of a client race on two transports (§13.3) and still open one session, counted once
 * against the rate of new sessions (§12.1.rate). Driven with raw clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HelloFrame } from '../../src/protocol/index.js';
import { framesOf, poll } from '../helpers/raw-http.js';
import { Harnesses } from '../helpers/raw-server.js';
import { randomToken, requestTicket } from '../helpers/raw-ticket.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

const NAME = /^[A-Za-z0-9_-]{22,64}$/;

/** The session a ticket answer names. */
function named(text: string): { ticket: string; sid: string; key: string } {
  return JSON.parse(text) as { ticket: string; sid: string; key: string };
}

describe('§3.4 tickets that name their session', () => {
  it('§3.4.name-session names a new session in the ticket answer, and the session created with the ticket has that id and key', async () => {
    const h = await harnesses.start();
    const answer = named((await requestTicket(h.httpBase)).text);
    expect(answer.sid).toMatch(NAME);
    expect(answer.key).toMatch(NAME);
    expect(answer.key).not.toBe(answer.sid);
    expect(h.server.sessions.size).toBe(0);
    const hello = framesOf(await poll(h.httpBase, { ticket: answer.ticket, c: randomToken() }))[0] as HelloFrame;
    expect(hello).toMatchObject({ t: 'hello', sid: answer.sid, key: answer.key, resumed: false, ack: 0 });
    // A ticket for a held session names that session.
    const again = named((await requestTicket(h.httpBase, { sid: hello.sid, key: hello.key })).text);
    expect(again).toMatchObject({ sid: hello.sid, key: hello.key });
  });

  it('§3.4.one-session guards a named session-to-be with its key, creates it once whichever ticket comes first, and counts it as one new session', async () => {
    const clock = 1_000_000;
    const h = await harnesses.start({ sessionsPerSecondPerAddress: 1, now: () => clock });
    const first = named((await requestTicket(h.httpBase)).text);
    // A second ticket for the session-to-be needs its key, as for a held session.
    const wrongKey = await requestTicket(h.httpBase, { sid: first.sid, key: randomToken() });
    expect(wrongKey.status).toBe(401);
    expect(JSON.parse(wrongKey.text)).toMatchObject({ code: 'UNAUTHORIZED' });
    const second = named((await requestTicket(h.httpBase, { sid: first.sid, key: first.key })).text);
    expect(second).toMatchObject({ sid: first.sid, key: first.key });
    // The second ticket is used first: it creates the session, as one with a fresh id.
    const created = framesOf(await poll(h.httpBase, { ticket: second.ticket, c: randomToken() }))[0] as HelloFrame;
    expect(created).toMatchObject({ t: 'hello', sid: first.sid, resumed: false });
    // The first, issued before the ticket of the session's connection, may not replace it (§3.3.stale);
    // a ticket issued since attaches to the session: still one session.
    const late = await poll(h.httpBase, { ticket: first.ticket, c: randomToken() });
    expect(late.status).toBe(409);
    expect(JSON.parse(late.text)).toMatchObject({ code: 'SUPERSEDED' });
    const again = named((await requestTicket(h.httpBase, { sid: first.sid, key: first.key })).text);
    const attached = framesOf(await poll(h.httpBase, { ticket: again.ticket, c: randomToken() }))[0] as HelloFrame;
    expect(attached).toMatchObject({ t: 'hello', sid: first.sid, resumed: true });
    expect(h.server.sessions.size).toBe(1);
    // The budget of one new session per second is spent by that one session, not bypassed.
    const third = named((await requestTicket(h.httpBase)).text);
    expect((await poll(h.httpBase, { ticket: third.ticket, c: randomToken() })).status).toBe(429);
  });

  it('§6.4.no-last starts a connection without last to a held session where its stream began: nothing sent to it meanwhile is lost', async () => {
    const h = await harnesses.start();
    const first = named((await requestTicket(h.httpBase)).text);
    const second = named((await requestTicket(h.httpBase, { sid: first.sid, key: first.key })).text);
    const opened = framesOf(await poll(h.httpBase, { ticket: first.ticket, c: randomToken() }));
    const hello = opened[0] as HelloFrame;
    // Sent to the session after its first hello: the client that races never read that hello.
    const session = h.server.sessions.get(first.sid)!;
    const id = await session.send('meanwhile');
    const raced = framesOf(await poll(h.httpBase, { ticket: second.ticket, c: randomToken() }));
    expect(raced[0]).toMatchObject({ t: 'hello', sid: first.sid, resumed: true, cursor: hello.cursor });
    expect(raced).toContainEqual(expect.objectContaining({ t: 'msg', id, d: 'meanwhile' }));
  });
});
