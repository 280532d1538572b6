/**
 * Conformance of the Origin rules (docs/PROTOCOL.md §3.2) with the server's defaults: same-origin and
 * Origin-less requests admitted, everything else refused with FORBIDDEN, CORS headers only for
 * admitted origins, and the WebSocket refusal an HTTP 403 before any 101. Driven with raw requests.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Harnesses, type Harness } from '../helpers/raw-server.js';
import { RawSse, framesOf, poll, postSend } from '../helpers/raw-http.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

/** The page origin the server's own Host header names. */
const ownOrigin = (h: Harness): string => `http://127.0.0.1:${h.port}`;

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
    const same = await poll(h.httpBase, { origin: ownOrigin(h) });
    expect(framesOf(same)[0]?.t).toBe('hello');
    expect(same.headers.get('access-control-allow-origin')).toBe(ownOrigin(h));
    const sessions = h.server.sessions.size;
    const cross = await poll(h.httpBase, { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(JSON.parse(cross.text)).toMatchObject({ code: 'FORBIDDEN' });
    expect(h.server.sessions.size).toBe(sessions);
  });

  it('§3.2 compares the Origin host with the Host header, port included', async () => {
    const h = await harnesses.start();
    const url = `${h.httpBase}/poll?v=1`;
    const behindProxy = await getWithHost(url, { Host: 'app.example:8443', Origin: 'https://app.example:8443' });
    expect(behindProxy.status).toBe(200);
    const otherPort = await getWithHost(url, { Host: 'app.example:8443', Origin: 'https://app.example:9443' });
    expect(otherPort.status).toBe(403);
    const noPort = await getWithHost(url, { Host: 'app.example', Origin: 'https://app.example' });
    expect(noPort.status).toBe(200);
  });

  it('§3.2 admits a request without an Origin header, and adds allowedOrigins to same-origin rather than replacing it', async () => {
    const h = await harnesses.start({ allowedOrigins: ['https://app.example'] });
    expect(framesOf(await poll(h.httpBase))[0]?.t).toBe('hello');
    expect(framesOf(await poll(h.httpBase, { origin: ownOrigin(h) }))[0]?.t).toBe('hello');
    const listed = await poll(h.httpBase, { origin: 'https://app.example' });
    expect(framesOf(listed)[0]?.t).toBe('hello');
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });

  it('§3.2.upgrade refuses a cross-origin WebSocket upgrade with 403 before any 101, and upgrades a same-origin one', async () => {
    const h = await harnesses.start();
    const cross = await rawUpgrade(`${h.wsBase}/ws?v=1`, { Origin: 'https://evil.example' });
    expect(cross).toMatchObject({ upgraded: false, status: 403 });
    if (!cross.upgraded) expect(JSON.parse(cross.body)).toMatchObject({ code: 'FORBIDDEN' });
    expect(await rawUpgrade(`${h.wsBase}/ws?v=1`, { Origin: ownOrigin(h) })).toEqual({ upgraded: true });
    expect(h.connections.length).toBe(1);
  });

  it('§3.2.cors sends no CORS header to a refused origin on poll, send, preflight and a plain GET of P/ws, and keeps it on the SSE refusal event', async () => {
    const h = await harnesses.start();
    const evil = 'https://evil.example';
    const owner = framesOf(await poll(h.httpBase, { origin: ownOrigin(h) }));
    const sid = (owner[0] as { sid: string }).sid;
    const answers = [
      await poll(h.httpBase, { origin: evil }),
      await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'x' }], { sid, origin: evil }),
    ];
    for (const reply of answers) {
      expect(reply.status).toBe(403);
      expect(reply.headers.get('access-control-allow-origin')).toBeNull();
    }
    const preflight = await fetch(`${h.httpBase}/send?v=1`, { method: 'OPTIONS', headers: { Origin: evil } });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const plain = await fetch(`${h.httpBase}/ws?v=1`, { headers: { Origin: evil } });
    expect(plain.status).toBe(403);
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    expect(h.processed).toEqual([]);
    // §7.2: the SSE refusal stays readable, so the page learns why.
    const sse = await RawSse.open(h.httpBase, { origin: evil });
    if (!sse.ok) throw new Error(`expected the refusal event, got ${sse.status}`);
    expect(sse.sse.response.headers.get('access-control-allow-origin')).toBe(evil);
    const error = await sse.sse.next('error');
    expect(error.frame).toMatchObject({ code: 'FORBIDDEN' });
    sse.sse.close();
  });
});
