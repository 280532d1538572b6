/**
 * The demo server on Redis (`npm run demo -- --redis URL`), as a user starts it: a process of its own
 * on the built server. With a Redis it serves; without one it says why in one line per report and
 * exits, with no stack trace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { deferred } from '../helpers/signals.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const DEMO = fileURLToPath(new URL('../../demo/server.mjs', import.meta.url));

let demo: ChildProcess | undefined;
let redis: RedisServer | undefined;

afterEach(async () => {
  if (demo?.pid !== undefined && demo.exitCode === null && demo.signalCode === null) demo.kill('SIGTERM');
  demo = undefined;
  await redis?.stop();
  redis = undefined;
});

/** Starts the demo with `--redis url` on a free port; collects what it prints. */
async function startDemo(url: string): Promise<{ process: ChildProcess; port: number; out: () => string; err: () => string; exited: Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [DEMO, '--redis', url], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  demo = child;
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { process: child, port, out: () => out, err: () => err, exited };
}

describe('the demo on Redis', () => {
  it('serves its page with the messages kept in Redis', async () => {
    redis = await startRedisServer();
    const started = await startDemo(redis.url);
    const listening = deferred();
    started.process.stdout!.on('data', () => started.out().includes('unbroken demo: http://') && listening.resolve());
    void started.exited.then((code) => listening.reject(new Error(`the demo exited (${code}): ${started.err()}`)));
    await listening.promise;
    expect(started.out()).toContain(`(store: Redis at ${redis.url})`);
    const page = await fetch(`http://127.0.0.1:${started.port}/`);
    expect(page.status).toBe(200);
    expect(started.err()).toBe('');
  });

  it('exits when Redis cannot be reached, saying why in one line per report and no stack trace', async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    const started = await startDemo(nobody);
    expect(await started.exited).toBe(1);
    const lines = started.err().trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^unbroken demo: cannot start: cannot reach Redis at ${nobody.replace(/[.]/g, '\\.')}: connect ECONNREFUSED`));
    expect(lines.filter((line) => /^\s+at /.test(line))).toEqual([]);
    expect(lines.slice(0, -1).every((line) => line.startsWith('realtime: '))).toBe(true);
  });
});
