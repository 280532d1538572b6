/**
 * Conformance of the Origin rules (docs/PROTOCOL.md §3.2) with the server's defaults: same-origin and
 * Origin-less requests admitted, everything else refused with FORBIDDEN, CORS headers only for
 * admitted origins, and the WebSocket refusal an HTTP 403 before any 101. Driven with raw requests.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/raw-frames.js';
import { Harnesses, type Harness } from '../helpers/raw-server.js';
import { RawSse, framesOf, poll, postSend } from '../helpers/raw-http.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { requestTicket, ticketFor } from '../helpers/raw-ticket.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

/** The page origin the server's own Host header names. */
const ownOrigin = (h: Harness): string => `http://127.0.0.1:${h.port}`;

/**
 * Expects the §3.2 refusal: `403` with a FORBIDDEN body and no CORS header. Requests refused here carry
 * a valid ticket where they take one, so the refusal can only be the Origin's.
 */
function expectForbidden(reply: { status: number; text: string; corsHeader: string | null | undefined }): void {
  expect(reply.status).toBe(403);
  expect(JSON.parse(reply.text)).toMatchObject({ code: 'FORBIDDEN' });
  expect(reply.corsHeader ?? null).toBeNull();
}

/** `GET` with a Host header of the test's choosing (fetch cannot set Host). */
function getWithHost(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      })
      .once('error', reject);
  });
}

describe('§3.2 Origin by default', () => {
  it('§3.2.origin admits a same-origin request and refuses a cross-origin one with FORBIDDEN when no allow-list is set', async () => {
    const h = await harnesses.start();
    const same = await poll(h.httpBase, { c: null, open: true, origin: ownOrigin(h) });
    expect(framesOf(same)[0]?.t).toBe('hello');
    expect(same.headers.get('access-control-allow-origin')).toBe(ownOrigin(h));
    const sessions = h.server.sessions.size;
    // The ticket request is refused first: a page of another site gets no ticket.
    const ticketRequest = await requestTicket(h.httpBase, { origin: 'https://evil.example' });
    expect(ticketRequest.status).toBe(403);
    expect(JSON.parse(ticketRequest.text)).toMatchObject({ code: 'FORBIDDEN' });
    // And a downstream request with a valid ticket is refused for its Origin, before the ticket is looked at.
    const ticket = await ticketFor(h.httpBase);
    const cross = await poll(h.httpBase, { c: null, ticket, origin: 'https://evil.example' });
    expectForbidden({ ...cross, corsHeader: cross.headers.get('access-control-allow-origin') });
    expect(h.server.sessions.size).toBe(sessions);
    // The refused request did not use the ticket up.
    expect(framesOf(await poll(h.httpBase, { c: null, ticket }))[0]?.t).toBe('hello');
  });

  it('§3.2 compares the Origin host with the Host header, port included', async () => {
    const h = await harnesses.start();
    /** `POST P/ticket`, then the poll it admits, both with `Host` and `Origin`; the status of each. */
    const open = async (headers: Record<string, string>): Promise<[number, number]> => {
      const answer = await requestTicket(h.httpBase, { headers: { 'Content-Type': 'application/json', 'X-Unbroken': '1', ...headers } });
      // A refused ticket request: the poll shows its own refusal, with a ticket issued to the same client without an Origin.
      const ticket = answer.ticket ?? (await ticketFor(h.httpBase));
      const polled = await getWithHost(`${h.httpBase}/poll?v=1&ticket=${ticket}`, headers);
      return [answer.status, polled.status];
    };
    expect(await open({ Host: 'app.example:8443', Origin: 'https://app.example:8443' })).toEqual([200, 200]);
    expect(await open({ Host: 'app.example:8443', Origin: 'https://app.example:9443' })).toEqual([403, 403]);
    expect(await open({ Host: 'app.example', Origin: 'https://app.example' })).toEqual([200, 200]);
    expect(h.server.sessions.size).toBe(2);
  });

  it('§3.2 admits a request without an Origin header, and adds allowedOrigins to same-origin rather than replacing it', async () => {
    const h = await harnesses.start({ allowedOrigins: ['https://app.example'] });
    expect(framesOf(await poll(h.httpBase, { c: null, open: true }))[0]?.t).toBe('hello');
    expect(framesOf(await poll(h.httpBase, { c: null, open: true, origin: ownOrigin(h) }))[0]?.t).toBe('hello');
    const ticket = await requestTicket(h.httpBase, { origin: 'https://app.example' });
    expect(ticket.status).toBe(200);
    expect(ticket.headers['access-control-allow-origin']).toBe('https://app.example');
    const listed = await poll(h.httpBase, { c: null, ticket: ticket.ticket!, origin: 'https://app.example' });
    expect(framesOf(listed)[0]?.t).toBe('hello');
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });

  it('§3.2.upgrade refuses a cross-origin WebSocket upgrade with 403 before any 101, and upgrades a same-origin one', async () => {
    const h = await harnesses.start();
    // With a valid ticket: the upgrade is refused for its Origin alone.
    const ticket = await ticketFor(h.httpBase);
    const cross = await rawUpgrade(`${h.wsBase}/ws?v=1&ticket=${ticket}`, { Origin: 'https://evil.example' });
    expect(cross).toMatchObject({ upgraded: false, status: 403 });
    if (!cross.upgraded) {
      expect(JSON.parse(cross.body)).toMatchObject({ code: 'FORBIDDEN' });
      expect(cross.headers['access-control-allow-origin']).toBeUndefined();
    }
    expect(h.connections).toEqual([]);
    expect(await rawUpgrade(`${h.wsBase}/ws?v=1&ticket=${ticket}`, { Origin: ownOrigin(h) })).toEqual({ upgraded: true });
    await waitUntil('the same-origin connection is attached', () => h.connections.length === 1);
  });

  it('§3.2.cors sends no CORS header to a refused origin on poll, send, preflight and a plain GET of P/ws, and keeps it on the SSE refusal event and the ticket refusal', async () => {
    const h = await harnesses.start();
    const evil = 'https://evil.example';
    const owner = framesOf(await poll(h.httpBase, { c: null, open: true, origin: ownOrigin(h) }));
    const sid = (owner[0] as { sid: string }).sid;
    // Each with what would admit it from the right origin: a ticket for the session, its key.
    // The ticket refusal is readable (and its preflight lets the request through), so the page learns why.
    const ticketRequest = await requestTicket(h.httpBase, { sid, origin: evil });
    expect(ticketRequest.status).toBe(403);
    expect(ticketRequest.headers['access-control-allow-origin']).toBe(evil);
    expect(JSON.parse(ticketRequest.text)).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('pass Host on') });
    // Not the Host itself: behind a proxy it is an internal address, and any site reads this.
    expect(ticketRequest.text).not.toContain(`127.0.0.1:${h.port}`);
    const answers = [
      await poll(h.httpBase, { c: null, ticket: await ticketFor(h.httpBase, { sid }), origin: evil }),
      await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'x' }], { sid, origin: evil }),
    ];
    for (const reply of answers) expectForbidden({ ...reply, corsHeader: reply.headers.get('access-control-allow-origin') });
    const ticketPreflight = await fetch(`${h.httpBase}/ticket?v=1`, { method: 'OPTIONS', headers: { Origin: evil } });
    expect(ticketPreflight.status).toBe(204);
    expect(ticketPreflight.headers.get('access-control-allow-origin')).toBe(evil);
    const preflight = await fetch(`${h.httpBase}/send?v=1`, { method: 'OPTIONS', headers: { Origin: evil } });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const plain = await fetch(`${h.httpBase}/ws?v=1`, { headers: { Origin: evil } });
    expect(plain.status).toBe(403);
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    expect(h.processed).toEqual([]);
    // §7.2: the SSE refusal stays readable, so the page learns why.
    const sse = await RawSse.open(h.httpBase, { ticket: await ticketFor(h.httpBase, { sid }), origin: evil });
    if (!sse.ok) throw new Error(`expected the refusal event, got ${sse.status}`);
    expect(sse.sse.response.headers.get('access-control-allow-origin')).toBe(evil);
    const error = await sse.sse.next('error');
    expect(error.frame).toMatchObject({ code: 'FORBIDDEN' });
    sse.sse.close();
    expect(h.connections).toEqual([sid]);
  });
});
