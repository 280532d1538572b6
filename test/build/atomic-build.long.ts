/**
 * A real `npm run build` (scripts/build.mjs) in a scratch copy while a reader polls dist/ every
 * millisecond: the client file is never missing (`npm run chaos`; the swap step itself and a failing
 * build are checked in `npm test`, atomic-build.test.ts).
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TMP_PREFIX } from '../../scripts/build.mjs';
import { BUILD_TIMEOUT, OLD_CLIENT, runBuild, scratchCopy } from './atomic-build.test.js';

describe('npm run build under a reader', () => {
  let copy = '';
  const dist = (): string => path.join(copy, 'dist');
  const leftovers = (): string[] => readdirSync(copy).filter((name) => name.startsWith(TMP_PREFIX));

  beforeAll(() => {
    copy = scratchCopy();
  });
  afterAll(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it(
    'swaps the new build in while a reader polling dist/ never finds the client missing',
    async () => {
      const client = path.join(dist(), 'unbroken-realtime.mjs');
      const build = runBuild(copy);
      // The reader polls until the build process has exited (the signal to stop), every millisecond,
      // and records each version of the file it finds, by inode: a rename brings a new one.
      let done = false;
      let missing = 0;
      let samples = 0;
      const versions: { ino: number; old: boolean }[] = [];
      const reader = (async () => {
        while (!done) {
          samples++;
          const stat = statSync(client, { throwIfNoEntry: false });
          if (!stat) missing++;
          else if (versions.at(-1)?.ino !== stat.ino) {
            versions.push({ ino: stat.ino, old: readFileSync(client, 'utf8') === OLD_CLIENT });
          }
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const { code, output } = await build.exited;
      done = true;
      await reader;
      expect(code, output).toBe(0);
      expect(missing, `of ${samples} samples`).toBe(0);
      // It saw the old file first and the new one last: its polling spanned the swap.
      expect(versions.at(0)?.old).toBe(true);
      expect(versions.at(-1)?.old).toBe(false);
      expect(readFileSync(client, 'utf8')).toContain('connect');
      const files = readdirSync(dist());
      expect(files).not.toContain('renamed-long-ago.mjs');
      expect(files).toEqual(expect.arrayContaining(['unbroken-realtime.mjs', 'unbroken-realtime.iife.min.js', 'server.mjs', 'redis.mjs', 'server.d.ts']));
      expect(leftovers()).toEqual([]);
    },
    BUILD_TIMEOUT,
  );
});
