/**
 * Conformance of the resource limits (docs/PROTOCOL.md §12.1), driven with raw clients: counts per
 * client address and in total, the rate of new sessions, the inbound message rate (slowed, never
 * refused), body timeouts and refused bodies left unread, and idle long-polling connections that
 * drop their queue and read the store again. Other client addresses are other loopback addresses.
 */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeCodeFor, type ErrorCode, type HelloFrame, type ServerFrame } from '../../src/protocol/index.js';
import { RawSse, framesOf, poll, postSend } from '../helpers/raw-http.js';
import { Harnesses } from '../helpers/raw-server.js';
import { waitUntil } from '../helpers/raw-frames.js';
import { when } from '../helpers/signals.js';
import { keyFor, randomToken, requestTicket, ticketFor } from '../helpers/raw-ticket.js';
import type { RawWs } from '../helpers/raw-ws.js';

const harnesses = new Harnesses();
afterEach(async () => {
  await harnesses.closeAll();
});

async function expectRefusal(client: RawWs, code: ErrorCode): Promise<void> {
  const close = await client.closed();
  expect(client.frames.at(-1)?.frame).toMatchObject({ t: 'error', code });
  expect(close.code).toBe(closeCodeFor(code));
}

/**
 * The first poll of a new long-polling connection from `localAddress`: a ticket from that address
 * (tickets are counted per address too, §3.4), then `GET P/poll` with it. A refused ticket fails the
 * test, so the status is always the poll's: the limits of §12.1 are checked there.
 */
async function pollFrom(base: string, localAddress: string): Promise<{ status: number; body: unknown }> {
  const ticket = await ticketFor(base, { localAddress });
  return new Promise((resolve, reject) => {
    const headers = { 'X-Unbroken-Connection': randomToken() };
    http
      .get(`${base}/poll?v=1&ticket=${ticket}`, { localAddress, headers, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      })
      .once('error', reject);
  });
}

/**
 * A raw `POST P/send` on a socket the test drives byte by byte: `send` writes, `answer` resolves with
 * the status line and body once the server answered, `closed` once the server closed the socket.
 */
function rawPost(port: number, path: string, headers: Record<string, string>) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let received = '';
  let written = 0;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const answer = new Promise<{ status: number; body: string }>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      const split = received.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(received);
      if (split >= 0 && length && received.length >= split + 4 + Number(length[1])) {
        resolve({ status: Number(received.slice(9, 12)), body: received.slice(split + 4, split + 4 + Number(length[1])) });
      }
    });
  });
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nX-Unbroken: 1\r\n${head}\r\n`);
  return {
    answer,
    closed,
    get written() {
      return written;
    },
    /** Writes `bytes`; false once the socket no longer takes writes. */
    send(bytes: string | Buffer): boolean {
      if (socket.destroyed || !socket.writable) return false;
      written += Buffer.byteLength(bytes);
      socket.write(bytes);
      return true;
    },
    destroy: () => socket.destroy(),
  };
}

/**
 * Writes a body of `total` bytes in 64 KiB chunks, one per turn of the event loop, until it is all
 * sent or the server closed the connection; resolves, once it is closed, with the bytes written.
 */
async function sendUntilClosed(post: ReturnType<typeof rawPost>, total: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let more = true;
  const closed = post.closed.then(() => (more = false));
  while (more && post.written < total) {
    if (!post.send(chunk)) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await closed;
  return post.written;
}

describe('§12.1 sessions and connections', () => {
  it('§12.1.connections refuses a connection past the per-address bound with TOO_MANY_CONNECTIONS, and admits one from another address', async () => {
    const h = await harnesses.start({ maxConnectionsPerAddress: 2 });
    const first = await h.connect();
    await first.hello();
    const second = await h.connect();
    await second.hello();
    const third = await h.connect();
    await expectRefusal(third, 'TOO_MANY_CONNECTIONS');
    expect(h.server.sessions.size).toBe(2);
    const elsewhere = await h.connect({ localAddress: '127.0.0.2' });
    expect((await elsewhere.hello()).resumed).toBe(false);
    // A connection that went away frees its place.
    first.terminate();
    await waitUntil('the first connection is counted out', () => h.server.stats().connections === 2);
    const again = await h.connect();
    await again.hello();
  });

  it('§12.1.connections refuses a session past the server-wide bound on every transport, with 503 over HTTP and the refusal event over SSE', async () => {
    const h = await harnesses.start({ maxSessions: 2 });
    expect((await pollFrom(h.httpBase, '127.0.0.2')).status).toBe(200);
    expect((await pollFrom(h.httpBase, '127.0.0.3')).status).toBe(200);
    const refused = await pollFrom(h.httpBase, '127.0.0.4');
    expect(refused).toMatchObject({ status: 503, body: { code: 'TOO_MANY_CONNECTIONS' } });
    const sse = await RawSse.open(h.httpBase);
    if (!sse.ok) throw new Error(`expected the refusal event, got ${sse.status}`);
    expect((await sse.sse.next('error')).frame).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    sse.sse.close();
    await expectRefusal(await h.connect(), 'TOO_MANY_CONNECTIONS');
    expect(h.server.sessions.size).toBe(2);
    expect(h.connections.length).toBe(2);
  });

  it('§12.1 cuts a refused upgrade whose client never answers the close after a grace, rather than hold its socket for long', async () => {
    const h = await harnesses.start();
    // A raw socket with no reader: it never reads the refusal, nor answers its close frame.
    const socket = net.connect(h.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `GET ${new URL(h.wsBase).pathname}/ws?v=1&ticket=${'x'.repeat(22)} HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const open = (): Promise<number> => new Promise((resolve, reject) => h.started.http.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    // The refusal arrived (Node reads ahead into the socket's buffer, which nothing reads on).
    await vi.waitFor(() => expect(socket.readableLength).toBeGreaterThan(0), { timeout: 4_000 });
    expect(await open()).toBe(1);
    // `ws` alone waits 30 s for the close frame's answer; the server cuts it after its close grace (5 s).
    await vi.waitFor(async () => expect(await open()).toBe(0), { timeout: 12_000, interval: 50 });
    socket.destroy();
  }, 20_000);

  it('§12.1.connections counts upgrade probes as connections of their address', async () => {
    const h = await harnesses.start({ maxConnectionsPerAddress: 1 });
    const probe = await h.connect({ query: { probe: '1' } });
    probe.sendText(JSON.stringify([{ t: 'ping', n: 1 }]));
    await probe.next('pong');
    await expectRefusal(await h.connect(), 'TOO_MANY_CONNECTIONS');
  });

  it('§12.1.rate refuses new sessions past the per-address rate with RATE_LIMITED (429), but not a session re-created under its own id', async () => {
    let clock = 1_000_000;
    const h = await harnesses.start({ sessionsPerSecondPerAddress: 2, now: () => clock });
    expect(framesOf(await poll(h.httpBase, { open: true, c: null }))[0]?.t).toBe('hello');
    expect(framesOf(await poll(h.httpBase, { open: true, c: null }))[0]?.t).toBe('hello');
    // The ticket is issued (it creates nothing); the poll that would create the session is refused.
    const ticket = await ticketFor(h.httpBase);
    const refused = await poll(h.httpBase, { ticket, c: null });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 'RATE_LIMITED' });
    await expectRefusal(await h.connect(), 'RATE_LIMITED');
    expect(h.server.sessions.size).toBe(2);
    // A client coming back with the id it kept (after a restart, §3.3) is not a new client.
    const kept = framesOf(await poll(h.httpBase, { open: true, c: null, sid: 'K'.repeat(22) }));
    expect(kept[0]).toMatchObject({ t: 'hello', sid: 'K'.repeat(22), resumed: false });
    // Another address has its own budget; this one's refills with time, and the refused ticket was not used up.
    expect((await pollFrom(h.httpBase, '127.0.0.2')).status).toBe(200);
    clock += 500;
    expect(framesOf(await poll(h.httpBase, { ticket, c: null }))[0]?.t).toBe('hello');
  });

  it('§12.1.rate-kept lets every client of an address come back at once under its kept id, but made-up ids churn sessions no faster than the rate', async () => {
    let clock = 1_000_000;
    const h = await harnesses.start({ sessionsPerSecondPerAddress: 2, maxSessionsPerAddress: 5, now: () => clock });
    const comeBack = async (index: number) => framesOf(await poll(h.httpBase, { open: true, c: null, sid: `K${index}`.padEnd(22, 'k') }))[0];
    const endAll = () => {
      for (const session of [...h.server.sessions.values()]) session.close();
    };
    // After a restart: as many as the address may hold come back at once, beyond the rate of 2.
    for (let index = 0; index < 5; index++) expect(await comeBack(index)).toMatchObject({ t: 'hello', resumed: false });
    endAll();
    // A stream of made-up ids, each session ended at once so that the per-address count never binds:
    // the budget is spent, and refills at the rate of new sessions.
    const refused = await poll(h.httpBase, { open: true, c: null, sid: 'M'.repeat(22) });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 'RATE_LIMITED' });
    clock += 500;
    expect(await comeBack(6)).toMatchObject({ t: 'hello', resumed: false });
    endAll();
    expect((await poll(h.httpBase, { open: true, c: null, sid: 'N'.repeat(22) })).status).toBe(429);
    // The budget of fresh sessions is apart from it: it was not spent.
    expect(framesOf(await poll(h.httpBase, { open: true, c: null }))[0]?.t).toBe('hello');
  });

  it('§12.1.rate takes nothing from the rate for a request that creates no session: one without a valid ticket, and the poll that replays a lost answer (§7.4)', async () => {
    const clock = 1_000_000;
    const h = await harnesses.start({ sessionsPerSecondPerAddress: 2, now: () => clock });
    // Refused for their ticket (none, or one never issued): they create nothing, so they cost nothing.
    for (let i = 0; i < 3; i++) expect((await poll(h.httpBase, { c: null })).status).toBe(401);
    expect((await poll(h.httpBase, { c: null, ticket: randomToken().slice(0, 22) })).status).toBe(401);
    await expectRefusal(await h.connect({ ticket: null }), 'UNAUTHORIZED');
    // The budget of two is whole: this address creates two sessions.
    const c = randomToken();
    const hello = framesOf(await poll(h.httpBase, { open: true, c }))[0] as HelloFrame;
    expect(hello).toMatchObject({ t: 'hello', resumed: false });
    expect(framesOf(await poll(h.httpBase, { open: true, c: null }))[0]?.t).toBe('hello');
    // The answer that carried this message is lost; the client polls again from before it, with its
    // connection id and no ticket. That opens a new connection of the same session — no new session.
    const id = await h.server.broadcast({ lost: true });
    const lost = framesOf(await poll(h.httpBase, { c, last: hello.cursor }));
    expect(lost).toContainEqual(expect.objectContaining({ t: 'msg', id }));
    const replayed = framesOf(await poll(h.httpBase, { c, last: hello.cursor }));
    expect(replayed[0]).toMatchObject({ t: 'hello', sid: hello.sid, resumed: true });
    expect(replayed).toContainEqual(expect.objectContaining({ t: 'msg', id }));
    // And the budget is still spent: a third new session is refused.
    expect((await poll(h.httpBase, { open: true, c: null })).status).toBe(429);
  });
});

describe('§12.1 inbound rate', () => {
  it('§12.1.slow slows a WebSocket client past its message rate: every message is processed in order, none refused, the next batch waits', async () => {
    const h = await harnesses.start({ messagesPerSecond: 100 });
    const client = await h.connect();
    const hello: HelloFrame = await client.hello();
    // 150 messages: 50 past the budget of 100, so the server stops reading for about 500 ms.
    client.send(Array.from({ length: 150 }, (_, i) => ({ t: 'msg', s: i + 1, d: i + 1 })));
    await client.next('ack', (frame) => frame.s === 150);
    const sentAt = Date.now();
    client.send([{ t: 'msg', s: 151, d: 151 }]);
    await client.next('ack', (frame) => frame.s === 151, 5_000);
    // A lower bound only: the server may be slower, never faster than its budget.
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(400);
    expect(h.processedFor(hello.sid)).toEqual(Array.from({ length: 151 }, (_, i) => i + 1));
    expect(client.frames.filter((r) => r.frame.t === 'error')).toEqual([]);
    expect(client.closeInfo).toBeUndefined();
  });

  it('§12.1.slow holds the next POST P/send of a session past its rate, then processes it', async () => {
    const h = await harnesses.start({ messagesPerSecond: 100 });
    const first = framesOf(await poll(h.httpBase, { open: true }));
    const sid = (first[0] as HelloFrame).sid;
    const send = (frames: object[]) => postSend(h.httpBase, frames, { sid });
    const burst = await send(Array.from({ length: 150 }, (_, i) => ({ t: 'msg', s: i + 1, d: i + 1 })));
    expect(framesOf(burst)).toEqual([{ t: 'ack', s: 150 }]);
    const sentAt = Date.now();
    const next = await send([{ t: 'msg', s: 151, d: 151 }]);
    expect(framesOf(next)).toEqual([{ t: 'ack', s: 151 }]);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(400);
    expect(h.processedFor(sid)).toHaveLength(151);
  });
});

describe('§12.1 request bodies', () => {
  /** A session's `X-Unbroken-Session` header (§3.4): an upstream request the server takes, up to its body. */
  async function session(base: string): Promise<Record<string, string>> {
    const sid = (framesOf(await poll(base, { open: true }))[0] as HelloFrame).sid;
    return { 'X-Unbroken-Session': `${sid}.${keyFor(sid)}` };
  }

  it('§12.1.body-timeout answers a body that trickles in with REQUEST_TIMEOUT (408) and closes the connection', async () => {
    const h = await harnesses.start({ bodyTimeout: 300 });
    const post = rawPost(h.port, '/realtime/send?v=1', { ...(await session(h.httpBase)), 'Content-Length': '100' });
    // One byte at a time, far slower than the timeout allows.
    const trickle = setInterval(() => post.send('['), 50);
    try {
      const answer = await post.answer;
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'REQUEST_TIMEOUT' });
      await post.closed;
    } finally {
      clearInterval(trickle);
    }
    expect(h.processed).toEqual([]);
  });

  it.each(['/realtime/ticket?v=1', '/realtime/attach?v=1', '/realtime/detach?v=1'])(
    '§12.1.body-timeout holds for every upstream request: a body of %s that trickles in gets REQUEST_TIMEOUT (408) within the body timeout',
    async (path) => {
      const h = await harnesses.start({ bodyTimeout: 300 });
      const post = rawPost(h.port, path, { 'Content-Length': '100' });
      const trickle = setInterval(() => post.send(' '), 50);
      try {
        const answer = await post.answer;
        expect(answer.status).toBe(408);
        expect(JSON.parse(answer.body)).toMatchObject({ code: 'REQUEST_TIMEOUT', message: 'expects the body within 300 ms' });
        await post.closed;
      } finally {
        clearInterval(trickle);
      }
    },
  );

  it('§12.1.bodies bounds the request bodies one address has the server read at once: past the bound RATE_LIMITED (429), and nothing held once they end', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const sessionHeaders = await session(h.httpBase);
    // 8 × maxMessageSize per address: eight bodies of 1,000 bytes fit, a ninth does not.
    const held = Array.from({ length: 8 }, () => rawPost(h.port, '/realtime/ticket?v=1', { 'Content-Length': '1024' }));
    for (const post of held) post.send(`{"credentials":"${'x'.repeat(1_000 - 16)}`);
    await waitUntil('the server to read the eight bodies', () => h.server.stats().bodyBytes === 8_000);
    const refused = rawPost(h.port, '/realtime/ticket?v=1', { 'Content-Length': '1024' });
    refused.send(`{"credentials":"${'y'.repeat(1_000 - 16)}`);
    const answer = await refused.answer;
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'RATE_LIMITED' });
    await refused.closed;
    // A session's upstream messages count against the same bound.
    const send = rawPost(h.port, '/realtime/send?v=1', { ...sessionHeaders, 'Content-Length': '300' });
    send.send(`[{"t":"msg","s":1,"d":"${'m'.repeat(300 - 26)}"}]`);
    expect((await send.answer).status).toBe(429);
    // So do the bodies of a shared connection's attach and detach (§7.5).
    const attach = rawPost(h.port, '/realtime/attach?v=2', { 'Content-Length': '300' });
    attach.send(`{"carrier":"${'c'.repeat(300 - 14)}"}`);
    expect((await attach.answer).status).toBe(429);
    // The bodies that end give their bytes back, and the address is served again.
    for (const post of held) post.send(`${'x'.repeat(24 - 2)}"}`);
    for (const post of held) expect((await post.answer).status).toBe(200);
    expect(h.server.stats().bodyBytes).toBe(0);
    expect((await requestTicket(h.httpBase)).status).toBe(200);
    // A body dropped midway gives its bytes back too.
    const dropped = rawPost(h.port, '/realtime/ticket?v=1', { 'Content-Length': '1024' });
    dropped.send('{"credentials":"z');
    await waitUntil('the server to read the start of the body', () => h.server.stats().bodyBytes > 0);
    dropped.destroy();
    await waitUntil('the server to give back its bytes', () => h.server.stats().bodyBytes === 0);
  });

  it('§12.1.no-read answers a declared oversize body with MESSAGE_TOO_LARGE (413) and closes without reading it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const post = rawPost(h.port, '/realtime/send?v=1', { ...(await session(h.httpBase)), 'Content-Length': String(64 * 1024 * 1024) });
    const answer = await post.answer;
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    // The server closes the connection rather than read 64 MiB it refused.
    expect(await sendUntilClosed(post, 64 * 1024 * 1024)).toBeLessThan(64 * 1024 * 1024);
  });

  it('§3.4.ticket-body §12.1.no-read answers a ticket request with a declared oversize body with MESSAGE_TOO_LARGE (413) and closes without reading it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const post = rawPost(h.port, '/realtime/ticket?v=1', { 'Content-Length': String(64 * 1024 * 1024) });
    const answer = await post.answer;
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    expect(await sendUntilClosed(post, 64 * 1024 * 1024)).toBeLessThan(64 * 1024 * 1024);
  });

  it('§12.1.no-read stops reading a chunked body once it passes the limit', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const post = rawPost(h.port, '/realtime/send?v=1', { ...(await session(h.httpBase)), 'Transfer-Encoding': 'chunked' });
    const piece = `${(16 * 1024).toString(16)}\r\n${' '.repeat(16 * 1024)}\r\n`;
    let closed = false;
    void post.closed.then(() => (closed = true));
    const answered = post.answer.then((answer) => answer);
    let sent = 0;
    while (!closed && sent < 4096) {
      if (!post.send(piece)) break;
      sent++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await answered).status).toBe(413);
    await post.closed;
    expect(sent).toBeLessThan(4096);
  });
});

describe('§12.1 bodies refused before they were read', () => {
  /** A session header that names no session: refused before the body is read (UNKNOWN_SESSION). */
  const NO_SESSION = { 'X-Unbroken-Session': `${'A'.repeat(22)}.${'B'.repeat(22)}` };

  it('§12.1.drain reads a small refused body and drops it, so that the connection serves the next request', async () => {
    const h = await harnesses.start();
    const socket = net.connect(h.port, '127.0.0.1');
    let received = '';
    const answers = when(() => (received.match(/HTTP\/1\.1 /g) ?? []).length >= 2 && /\{"ticket"/.test(received));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      answers.wake();
    });
    const body = '[{"t":"msg","s":1,"d":"x"}]';
    const head = `Host: 127.0.0.1:${h.port}\r\nContent-Type: application/json\r\nX-Unbroken: 1\r\n`;
    // Both requests in one write: the second is read only if the first one's body was.
    socket.write(
      `POST /realtime/send?v=1 HTTP/1.1\r\n${head}X-Unbroken-Session: ${NO_SESSION['X-Unbroken-Session']}\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        `POST /realtime/ticket?v=1 HTTP/1.1\r\n${head}Content-Length: 2\r\n\r\n{}`,
    );
    await answers.promise;
    socket.destroy();
    const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 404 /);
    expect(first).toContain('"code":"UNKNOWN_SESSION"');
    expect(second).toMatch(/^HTTP\/1\.1 200 /);
  });

  it.each([
    ['/realtime/send?v=1', 404, 'UNKNOWN_SESSION'],
    ['/realtime/send?v=9', 426, 'UNSUPPORTED_VERSION'],
    ['/realtime/ticket?v=9', 426, 'UNSUPPORTED_VERSION'],
    ['/realtime/attach?v=9', 426, 'UNSUPPORTED_VERSION'],
    ['/realtime/detach?v=9', 426, 'UNSUPPORTED_VERSION'],
  ] as const)('§12.1.drain stops reading a body of %s refused before it was read at the size limit, and closes the connection', async (path, status, code) => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const post = rawPost(h.port, path, { ...NO_SESSION, 'Content-Length': String(64 * 1024 * 1024) });
    const answer = await post.answer;
    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.body)).toMatchObject({ code });
    expect(await sendUntilClosed(post, 64 * 1024 * 1024)).toBeLessThan(64 * 1024 * 1024);
  });

  it.each([
    ['/realtime/send?v=1', 404],
    ['/realtime/ticket?v=9', 426],
    ['/realtime/attach?v=9', 426],
    ['/realtime/detach?v=9', 426],
  ] as const)('§12.1.drain stops waiting for a body of %s refused before it was read at the body timeout, and closes the connection', async (path, status) => {
    const h = await harnesses.start({ bodyTimeout: 300 });
    const post = rawPost(h.port, path, { ...NO_SESSION, 'Content-Length': '100' });
    const trickle = setInterval(() => post.send(' '), 50);
    try {
      const answer = await post.answer;
      expect(answer.status).toBe(status);
      // Closed before the 100 bytes (5 s at this pace) were all sent.
      await post.closed;
      expect(post.written).toBeLessThan(100);
    } finally {
      clearInterval(trickle);
    }
  });
});

describe('§12.1 idle long-polling connections', () => {
  it('§12.1.idle-poll drops the queue of a connection without a held poll, and its next poll reads everything from the store without a new hello', async () => {
    const h = await harnesses.start();
    const c = randomToken();
    const opened = framesOf(await poll(h.httpBase, { open: true, c }));
    const hello = opened[0] as HelloFrame;
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await h.server.broadcast({ i, pad: 'x'.repeat(100) }));
    const stats = h.server.stats();
    expect(stats.parkedConnections).toBe(1);
    expect(stats.bufferedBytes).toBe(0);
    let last = hello.cursor;
    const received: string[] = [];
    while (received.length < ids.length) {
      const frames: ServerFrame[] = framesOf(await poll(h.httpBase, { c, last }));
      expect(frames.some((frame) => frame.t === 'hello' || frame.t === 'error')).toBe(false);
      for (const frame of frames) {
        if (frame.t !== 'msg') continue;
        received.push(frame.id);
        last = frame.id;
      }
    }
    expect(received).toEqual(ids);
    expect(h.connections).toEqual([hello.sid]);
  });

  it('§12.1.idle-poll keeps no state per broadcast for first polls of new connections that never come back', async () => {
    // A heartbeat far longer than the test: idle connections must stay until counted, not time out (§11).
    const h = await harnesses.start({ sessionsPerSecondPerAddress: 1_000, heartbeatInterval: 60_000 });
    // Each a new client: a ticket, then the first poll of a connection of its own, and nothing more.
    for (let i = 0; i < 100; i++) framesOf(await poll(h.httpBase, { open: true, c: randomToken() }));
    for (let i = 0; i < 200; i++) await h.server.broadcast({ i });
    const stats = h.server.stats();
    expect(stats.sessions).toBe(100);
    expect(stats.parkedConnections).toBe(100);
    expect(stats.bufferedBytes).toBe(0);
  });
});
