// @ts-check
/**
 * `npm run chaos`, second part: test/integration/redis-cluster.test.ts with longer runs
 * (UNBROKEN_CHAOS=1): 1,000 messages each way per transport with a reset every 25, a 5 s Redis stall,
 * 10 s quiet windows. Needs redis-server and nginx, as `npm test` does. Exits with vitest's status.
 *
 *   node test/chaos/redis-cluster.mjs
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));

const child = spawn(process.execPath, [vitest, 'run', 'test/integration/redis-cluster.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, UNBROKEN_CHAOS: '1' },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
