/**
 * The hostile-client flood of issue #10, short: clients from many loopback addresses that each get a
 * ticket, make the first poll of a new long-polling connection and never come back; then broadcasts,
 * with the default limits. It asserts bounded state through `server.stats()` — no timing; `npm run
 * chaos` (test/chaos/flood.mjs) runs the full-size flood and measures heap, event-loop lag and hello
 * time.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { HelloFrame } from '../../src/protocol/index.js';
import { PARK_AFTER_ITEMS } from '../../src/server/link-queue.js';
import { randomToken, requestTicket } from '../helpers/raw-ticket.js';
import { startServer, type StartedServer } from '../helpers/start-server.js';

const servers: StartedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/**
 * One client that opens a long-polling connection and never comes back, from `localAddress`: a
 * ticket (from the same address: tickets are counted per address), then the first poll of a
 * connection of its own. The status is the poll's, or `ticket <status>` when no ticket was issued.
 */
async function openFrom(port: number, localAddress: string): Promise<{ status: string; body: unknown }> {
  const base = `http://127.0.0.1:${port}/realtime`;
  const answer = await requestTicket(base, { localAddress });
  if (answer.ticket === undefined) return { status: `ticket ${answer.status}`, body: JSON.parse(answer.text) };
  return new Promise((resolve, reject) => {
    const headers = { 'X-Unbroken-Connection': randomToken() };
    http
      .get({ host: '127.0.0.1', port, path: `/realtime/poll?v=1&ticket=${answer.ticket}`, headers, localAddress, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => resolve({ status: String(response.statusCode ?? 0), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      })
      .once('error', reject);
  });
}

/** Runs `count` clients, `parallel` at a time, the n-th from `addressOf(n)`; returns how many got each status. */
async function flood(
  count: number,
  addressOf: (n: number) => string,
  open: (address: string) => Promise<{ status: string }>,
  parallel = 32,
): Promise<Map<string, number>> {
  const statuses = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const { status } = await open(addressOf(n));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return statuses;
}

describe('a flood of first polls that never come back', () => {
  it('keeps no per-broadcast state for 2,000 idle sessions from 100 addresses, and a fresh client still connects', async () => {
    // Fewer tickets outstanding allowed than clients in the flood: each first poll must use its
    // ticket up, or the flood would be refused RATE_LIMITED at POST P/ticket.
    const started = await startServer({ maxTickets: 100 });
    servers.push(started);
    const { server, port } = started;
    const statuses = await flood(2_000, (n) => `127.0.3.${1 + (n % 100)}`, (address) => openFrom(port, address));
    expect(Object.fromEntries(statuses)).toEqual({ 200: 2_000 });
    // Enough broadcasts that every idle connection passes its bound and parks.
    for (let i = 0; i <= PARK_AFTER_ITEMS; i++) await server.broadcast({ pad: 'x'.repeat(88) });
    const stats = server.stats();
    expect(stats).toMatchObject({ sessions: 2_000, connections: 2_000, parkedConnections: 2_000, bufferedBytes: 0, addresses: 100 });
    const fresh = await openFrom(port, '127.0.4.1');
    expect((fresh.body as HelloFrame[])[0]).toMatchObject({ t: 'hello', resumed: false });
  });

  it('caps what one address can create: its sessions past the per-address bound are refused with TOO_MANY_CONNECTIONS', async () => {
    const started = await startServer({ maxSessionsPerAddress: 300, sessionsPerSecondPerAddress: 10_000 });
    servers.push(started);
    const statuses = await flood(400, () => '127.0.5.1', (address) => openFrom(started.port, address));
    // Every ticket is issued: the refusals are the polls'.
    expect(Object.fromEntries(statuses)).toEqual({ 200: 300, 503: 100 });
    expect(started.server.stats()).toMatchObject({ sessions: 300, addresses: 1 });
    // Another address is not affected.
    expect((await openFrom(started.port, '127.0.5.2')).status).toBe('200');
  });

  it('refuses one address creating sessions faster than the default rate with RATE_LIMITED, and holds nothing for the refused', async () => {
    const started = await startServer();
    servers.push(started);
    const statuses = await flood(200, () => '127.0.6.1', (address) => openFrom(started.port, address), 50);
    expect([...statuses.keys()].sort()).toEqual(['200', '429']);
    expect(started.server.stats().sessions).toBe(statuses.get('200'));
  });

  it('caps the tickets one address holds: past the default bound POST P/ticket is refused with RATE_LIMITED, and another address still connects', async () => {
    const started = await startServer();
    servers.push(started);
    const base = `http://127.0.0.1:${started.port}/realtime`;
    // Tickets asked for and never used.
    const statuses = await flood(1_100, () => '127.0.7.1', async (localAddress) => {
      const answer = await requestTicket(base, { localAddress });
      return { status: answer.status === 200 ? 'issued' : `${answer.status} ${(JSON.parse(answer.text) as { code: string }).code}` };
    });
    expect(Object.fromEntries(statuses)).toEqual({ issued: 1_000, '429 RATE_LIMITED': 100 });
    // They created nothing, and hold nothing against the session limits.
    expect(started.server.stats()).toMatchObject({ sessions: 0, connections: 0, addresses: 0 });
    const fresh = await openFrom(started.port, '127.0.7.2');
    expect((fresh.body as HelloFrame[])[0]).toMatchObject({ t: 'hello', resumed: false });
  });
});
