/**
 * `npm run build` (scripts/build.mjs) never leaves dist/ empty, a file of it missing or half-written,
 * and a failed build leaves dist/ as it was. The real build with a reader polling dist/ throughout
 * takes a minute of CPU, so it runs in `npm run chaos` (atomic-build.long.ts). The builds run in a scratch copy of the sources (with this
 * checkout's node_modules), so that the dist/ other tests read is not touched.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TMP_PREFIX, swapIn } from '../../scripts/build.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A real build takes ~25 s on an idle 2-core machine; the margin is for a busy one. */
export const BUILD_TIMEOUT = 240_000;

/** What an old build's client file holds in the scratch copy, so that the new one is told apart. */
export const OLD_CLIENT = '// the previous build\nexport const previous = true;\n';

/** Every file under `dir` with its content, by path relative to it. */
function snapshot(dir: string, prefix = ''): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) Object.assign(files, snapshot(path.join(dir, entry.name), relative));
    else files[relative] = readFileSync(path.join(dir, entry.name), 'utf8');
  }
  return files;
}

/** Starts scripts/build.mjs of `cwd`; `exited` settles with its status and output once it has ended. */
export function runBuild(cwd: string, args: string[] = []): { exited: Promise<{ code: number | null; output: string }> } {
  const child = spawn(process.execPath, [path.join(cwd, 'scripts', 'build.mjs'), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { exited: new Promise((resolve) => child.once('exit', (code) => resolve({ code, output }))) };
}

/**
 * A scratch copy of what a build reads (with this checkout's node_modules), holding a previous build:
 * a client file to tell apart, and a file no build makes any more. Returns its folder.
 */
export function scratchCopy(): string {
  const copy = mkdtempSync(path.join(os.tmpdir(), 'unbroken-build-'));
  for (const entry of ['src', 'scripts', 'rollup.config.mjs', 'package.json', ...readdirSync(root).filter((name) => /^tsconfig.*\.json$/.test(name))]) {
    cpSync(path.join(root, entry), path.join(copy, entry), { recursive: true });
  }
  symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  mkdirSync(path.join(copy, 'dist'));
  writeFileSync(path.join(copy, 'dist', 'unbroken-realtime.mjs'), OLD_CLIENT);
  writeFileSync(path.join(copy, 'dist', 'renamed-long-ago.mjs'), 'export {};\n');
  return copy;
}

describe('swapIn', () => {
  let tmp = '';
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'unbroken-swap-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('keeps every file of the old build whole and present after every step, then leaves exactly the new build', () => {
    const to = path.join(tmp, 'dist');
    const from = path.join(tmp, `${TMP_PREFIX}1`);
    const old = { 'client.mjs': 'old client', 'client.mjs.map': 'old map', 'server.mjs': 'old server', 'stale.mjs': 'gone next', 'sub/x.d.ts': 'old x' };
    const fresh = { 'client.mjs': 'new client', 'client.mjs.map': 'new map', 'server.mjs': 'new server', 'redis.mjs': 'new redis', 'sub/x.d.ts': 'new x' };
    for (const [dir, files] of [[to, old], [from, fresh]] as const) {
      for (const [file, content] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), content);
      }
    }
    const steps: string[] = [];
    swapIn(from, to, (step) => {
      steps.push(step);
      for (const file of Object.keys(fresh).filter((name) => name in old)) {
        const content = readFileSync(path.join(to, file), 'utf8');
        expect([old[file as keyof typeof old], fresh[file as keyof typeof fresh]], `${file} after "${step}"`).toContain(content);
      }
    });
    expect(steps.length).toBe(Object.keys(fresh).length + 1); // a rename per new file, one removal
    expect(snapshot(to)).toEqual(Object.fromEntries(Object.entries(fresh).map(([file, content]) => [path.normalize(file), content])));
    expect(existsSync(from)).toBe(false);
  });

  it('renames the folder when there is no dist/ yet', () => {
    const to = path.join(tmp, 'first');
    const from = path.join(tmp, `${TMP_PREFIX}2`);
    mkdirSync(from);
    writeFileSync(path.join(from, 'a.mjs'), 'a');
    swapIn(from, to);
    expect(snapshot(to)).toEqual({ 'a.mjs': 'a' });
    expect(existsSync(from)).toBe(false);
  });
});

describe('npm run build (scripts/build.mjs)', () => {
  let copy = '';
  const dist = (): string => path.join(copy, 'dist');
  const leftovers = (): string[] => readdirSync(copy).filter((name) => name.startsWith(TMP_PREFIX));

  beforeAll(() => {
    copy = scratchCopy();
    // A build that writes one output, then fails in its second config.
    writeFileSync(path.join(copy, 'tiny-entry.mjs'), 'export const tiny = 1;\n');
    writeFileSync(
      path.join(copy, 'failing.config.mjs'),
      [
        "const out = process.env.UNBROKEN_BUILD_DIR || 'dist';",
        'export default [',
        "  { input: 'tiny-entry.mjs', output: { file: `${out}/unbroken-realtime.mjs`, format: 'es' } },",
        "  { input: 'tiny-entry.mjs', plugins: [{ name: 'fails', buildStart() { this.error('this build fails on purpose'); } }], output: { file: `${out}/server.mjs`, format: 'es' } },",
        '];',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it('leaves dist/ as it was when the build fails, and removes its temporary folder', async () => {
    const before = snapshot(dist());
    const { code, output } = await runBuild(copy, ['--config', 'failing.config.mjs']).exited;
    expect(output).toContain('this build fails on purpose');
    expect(code).not.toBe(0);
    expect(snapshot(dist())).toEqual(before);
    expect(leftovers()).toEqual([]);
  });
});
