/**
 * The hostile-client flood of issue #10, short: session-less polls from many loopback addresses, then
 * broadcasts, with the default limits. It asserts bounded state through `server.stats()` — no
 * timing; `npm run chaos` (test/chaos/flood.mjs) runs the full-size flood and measures heap, event-
 * loop lag and hello time.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { HelloFrame } from '../../src/protocol/index.js';
import { PARK_AFTER_ITEMS } from '../../src/server/downlink.js';
import { startServer, type StartedServer } from '../helpers/start-server.js';

const servers: StartedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** One session-less poll from `localAddress`: its status and parsed body. */
function pollFrom(port: number, localAddress: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/realtime/poll?v=1', localAddress, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      })
      .once('error', reject);
  });
}

/** Runs `count` polls, `parallel` at a time, the n-th from `addressOf(n)`; returns how many got each status. */
async function flood(port: number, count: number, addressOf: (n: number) => string, parallel = 32): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const { status } = await pollFrom(port, addressOf(n));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return statuses;
}

describe('a flood of session-less polls', () => {
  it('keeps no per-broadcast state for 2,000 idle sessions from 100 addresses, and a fresh client still connects', async () => {
    const started = await startServer();
    servers.push(started);
    const { server, port } = started;
    const statuses = await flood(port, 2_000, (n) => `127.0.3.${1 + (n % 100)}`);
    expect(Object.fromEntries(statuses)).toEqual({ 200: 2_000 });
    // Enough broadcasts that every idle connection passes its bound and parks.
    for (let i = 0; i <= PARK_AFTER_ITEMS; i++) await server.broadcast({ pad: 'x'.repeat(88) });
    const stats = server.stats();
    expect(stats).toMatchObject({ sessions: 2_000, connections: 2_000, parkedConnections: 2_000, bufferedBytes: 0, addresses: 100 });
    const fresh = await pollFrom(port, '127.0.4.1');
    expect((fresh.body as HelloFrame[])[0]).toMatchObject({ t: 'hello', resumed: false });
  });

  it('caps what one address can create: its sessions past the per-address bound are refused with TOO_MANY_CONNECTIONS', async () => {
    const started = await startServer({ maxSessionsPerAddress: 300, sessionsPerSecondPerAddress: 10_000 });
    servers.push(started);
    const statuses = await flood(started.port, 400, () => '127.0.5.1');
    expect(Object.fromEntries(statuses)).toEqual({ 200: 300, 503: 100 });
    expect(started.server.stats()).toMatchObject({ sessions: 300, addresses: 1 });
    // Another address is not affected.
    expect((await pollFrom(started.port, '127.0.5.2')).status).toBe(200);
  });

  it('refuses one address creating sessions faster than the default rate with RATE_LIMITED, and holds nothing for the refused', async () => {
    const started = await startServer();
    servers.push(started);
    const statuses = await flood(started.port, 200, () => '127.0.6.1', 50);
    expect(statuses.get(429)).toBeGreaterThan(0);
    expect(started.server.stats().sessions).toBe(statuses.get(200));
  });
});
