/**
 * A server process whose Redis cannot be reached when it starts (RedisStore): it says so and exits,
 * rather than listen and leave every request hanging. redis-cluster.test.ts runs the faults of a
 * cluster that started.
 */
import { describe, expect, it } from 'vitest';
import { startCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/redis-server.js';

describe('a process whose Redis is unreachable at start', () => {
  it('exits at once with a clear STORE_ERROR instead of listening and hanging', async () => {
    const nobody = await freePort();
    const started = Date.now();
    const failure = await startCluster(1, { storeUrl: `redis://127.0.0.1:${nobody}`, storeOptions: { connectTimeout: 1_000 } }).then(
      () => new Error('the process started'),
      (error: Error) => error,
    );

    expect(failure.message).toMatch(/node-0 exited before listening \(1\)/);
    expect(failure.message).toContain(`cannot start: cannot reach Redis at redis://127.0.0.1:${nobody}`);
    expect(failure.message).toMatch(/ECONNREFUSED/);
    // Within connectTimeout (1 s here), with room for starting Node: not the harness's own 10 s deadline.
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
