/**
 * The package as users get it: a fresh copy of the repository (the files git tracks, as they are in the
 * working tree) is packed with `npm pack`, which must build dist/ itself (`prepack`); the tarball is
 * installed into a scratch project that has nothing else but `ws`, and the README's quick start runs
 * from there, and its TypeScript snippet type-checks strictly without `@types/ws`.
 *
 * The README marks each snippet with an HTML comment line `<!-- quick-start: <file> -->` right before
 * its fenced code block; the block is written to `<file>` in the scratch project.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

interface PackageJson {
  name: string;
  version: string;
  exports: Record<string, unknown>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as PackageJson;

/** Versions a consumer would install; the same ones this repository builds and tests with. */
const versionOf = (name: string, kind: 'dependencies' | 'devDependencies'): string => {
  const version = pkg[kind]?.[name];
  if (!version) throw new Error(`package.json has no ${kind} entry for ${name}`);
  return version;
};

/**
 * The environment for nested npm and node runs. When `npm test` started vitest, npm exported variables
 * that describe this repository (`npm_config_local_prefix`, `npm_package_*`, …); a nested npm must
 * not mistake the scratch project for it.
 */
const childEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !/^npm_(package|lifecycle)_/i.test(key) && !/^npm_config_local_prefix$/i.test(key) && key !== 'INIT_CWD',
  ),
);
childEnv.npm_config_update_notifier = 'false';

const NPM_INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline'];

/**
 * Timeout of the steps that build, install or type-check. On an idle 2-core machine packing and
 * installing take about 11 s and the TypeScript check about 11 s (the whole file about 25 s); the
 * margin is for a machine busy with other work, where the same steps were measured at 65 s and 55 s.
 */
const SLOW_STEP_TIMEOUT = 180_000;

/** Runs a command; a failure carries its output, so the test report says what went wrong. */
async function run(command: string, args: string[], cwd: string, timeout = SLOW_STEP_TIMEOUT): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { cwd, env: childEnv, timeout, maxBuffer: 32 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`\`${command} ${args.join(' ')}\` failed in ${cwd}: ${(error as Error).message}\n${stdout}\n${stderr}`);
  }
}

/** The README's quick-start snippets by file name. */
function quickStartSnippets(readme: string): Map<string, string> {
  const snippets = new Map<string, string>();
  const marker = /^<!--\s*quick-start:\s*(\S+)\s*-->\r?\n```[^\n]*\r?\n([\s\S]*?)\r?\n```\s*$/gm;
  for (const [, file, code] of readme.matchAll(marker)) {
    if (snippets.has(file!)) throw new Error(`README.md marks two quick-start snippets as ${file}`);
    snippets.set(file!, `${code}\n`);
  }
  return snippets;
}

/** A port nothing listens on right now (the kernel picks it). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Resolves once `port` accepts a connection; rejects if `child` exits first or after `timeout` ms. */
async function waitForListening(port: number, child: ChildProcess, output: () => string, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the quick-start server exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`);
    }
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, 'localhost');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`the quick-start server did not listen on ${port} within ${timeout} ms:\n${output()}`);
    // Retry pace while the server process starts; only the deadline above decides failure.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every file under `dir`, as paths relative to it with `/` separators. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(path.join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

/** Every file path the exports map names, condition by condition. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(exportTargets);
  return [];
}

// ---------------------------------------------------------------------------------------------

describe('the packed tarball', () => {
  let tmp = '';
  let unpacked = '';
  let consumer = '';
  let installed = '';
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    const started = Date.now();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'unbroken-pack-'));

    // What a fresh clone holds, without cloning: the files git tracks, copied from the working tree
    // (files deleted there but not yet from the index are skipped). dist/ is not tracked, so only
    // prepack can make it.
    const repo = path.join(tmp, 'repo');
    const tracked = (await run('git', ['ls-files', '-z'], root)).split('\0').filter(Boolean);
    for (const file of tracked) {
      const from = path.join(root, file);
      if (!existsSync(from) || !statSync(from).isFile()) continue;
      mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
      copyFileSync(from, path.join(repo, file));
    }
    expect(existsSync(path.join(repo, 'dist')), 'the copy must start without dist/').toBe(false);
    // The build tools of this checkout, instead of a full `npm ci` in the copy.
    symlinkSync(path.join(root, 'node_modules'), path.join(repo, 'node_modules'), 'dir');

    const packs = path.join(tmp, 'packs');
    mkdirSync(packs);
    await run('npm', ['pack', '--pack-destination', packs], repo);
    const tarballs = readdirSync(packs).filter((file) => file.endsWith('.tgz'));
    expect(tarballs).toEqual([`${pkg.name}-${pkg.version}.tgz`]);
    const tarball = path.join(packs, tarballs[0]!);

    unpacked = path.join(tmp, 'unpacked');
    mkdirSync(unpacked);
    await run('tar', ['-xzf', tarball, '-C', unpacked], tmp);

    // The consumer depends on the tarball and on `ws` (its Node client injects it), nothing else.
    consumer = path.join(tmp, 'consumer');
    mkdirSync(consumer);
    writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', [...NPM_INSTALL, tarball, `ws@${versionOf('ws', 'dependencies')}`], consumer);
    installed = path.join(consumer, 'node_modules', pkg.name);
    console.log(`packed and installed in ${Date.now() - started} ms`);
  }, SLOW_STEP_TIMEOUT);

  afterAll(() => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('holds dist/ built by prepack, LICENSE, README.md, package.json, docs/*.md, the nginx configuration and the chat example, nothing else', () => {
    const files = listFiles(path.join(unpacked, 'package'));
    for (const file of [
      'dist/unbroken-realtime.mjs',
      'dist/unbroken-realtime.iife.min.js',
      'dist/unbroken-realtime.d.ts',
      'dist/server.mjs',
      'dist/server.d.ts',
      'dist/redis.mjs',
      'dist/redis.d.ts',
      'LICENSE',
      'README.md',
      'package.json',
    ]) {
      expect(files, file).toContain(file);
    }
    expect(files.filter((file) => !/^dist\/|^docs\/[^/]+\.md$|^docs\/deploy\/nginx\.conf$|^examples\/chat\/[^/]+$|^(LICENSE|README\.md|package\.json)$/.test(file))).toEqual([]);
    expect(files.filter((file) => /\.(png|jpe?g|gif|webp|svg)$/i.test(file))).toEqual([]);
  });

  it('holds every file the README and docs/*.md link to, images excepted', () => {
    const files = new Set(listFiles(path.join(unpacked, 'package')));
    const documents = [...files].filter((file) => /^README\.md$|^docs\/[^/]+\.md$/.test(file));
    const missing: string[] = [];
    for (const document of documents) {
      const text = readFileSync(path.join(unpacked, 'package', document), 'utf8');
      // Markdown links `[text](target)`; an image `![…](…)` is left to the repository's rendering.
      for (const match of text.matchAll(/(?<!!)\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        const target = match[1]!;
        if (/^[a-z]+:/i.test(target) || /\.(png|jpe?g|gif|webp|svg)$/i.test(target)) continue;
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(document), target));
        // A link to a folder (`examples/chat/`) holds if a file of the package is in it.
        const found = target.endsWith('/') ? [...files].some((file) => file.startsWith(resolved)) : files.has(resolved);
        if (!found) missing.push(`${document} → ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('carries the MIT licence', () => {
    const license = readFileSync(path.join(unpacked, 'package', 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License/);
    expect(license).toContain('Copyright (c) 2026 the unbroken-realtime authors');
  });

  it('ships source maps that carry every source they name (no src/ is shipped)', () => {
    const maps = listFiles(path.join(unpacked, 'package')).filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(path.join(unpacked, 'package', file), 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
      };
      expect(map.sources.length, file).toBeGreaterThan(0);
      expect(map.sourcesContent?.length, `${file}: sourcesContent`).toBe(map.sources.length);
      const empty = map.sources.filter((_, index) => !map.sourcesContent?.[index]);
      expect(empty, `${file}: sources without content`).toEqual([]);
    }
  });

  it('installs with ws as its only runtime dependency and every exported path present', () => {
    const topLevel = readdirSync(path.join(consumer, 'node_modules')).filter((name) => !name.startsWith('.'));
    expect(topLevel.sort()).toEqual([pkg.name, 'ws'].sort());
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as PackageJson;
    const missing = exportTargets(manifest.exports).filter((target) => !existsSync(path.join(installed, target)));
    expect(missing).toEqual([]);
  });

  it('runs the README quick start: the Node client prints world, then server: reply', async () => {
    const snippets = quickStartSnippets(readFileSync(path.join(root, 'README.md'), 'utf8'));
    const port = await freePort();
    for (const file of ['server.mjs', 'client.mjs']) {
      const code = snippets.get(file);
      expect(code, `README.md has no <!-- quick-start: ${file} --> block`).toBeDefined();
      // The README shows port 8080; a test never uses a fixed port, so it takes a free one instead.
      expect(code!.match(/\b8080\b/g), `${file} names port 8080 once`).toHaveLength(1);
      writeFileSync(path.join(consumer, file), code!.replace(/\b8080\b/, String(port)));
    }

    let serverOutput = '';
    const child = spawn(process.execPath, ['server.mjs'], { cwd: consumer, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    child.stdout.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    try {
      await waitForListening(port, child, () => serverOutput);
      // The client must also exit by itself once closed: a leaked timer or socket fails on the timeout.
      const stdout = await run(process.execPath, ['client.mjs'], consumer, 20_000);
      expect(stdout.trim().split('\n')).toEqual(['world', 'server: reply']);
    } finally {
      child.kill();
    }
  }, 40_000);

  it('type-checks the README TypeScript snippet with strict tsc and without @types/ws', async () => {
    const snippets = quickStartSnippets(readFileSync(path.join(root, 'README.md'), 'utf8'));
    const code = snippets.get('consumer.ts');
    expect(code, 'README.md has no <!-- quick-start: consumer.ts --> block').toBeDefined();
    expect(code).toMatch(/from ['"]unbroken-realtime['"]/);
    expect(code).toMatch(/from ['"]unbroken-realtime\/server['"]/);
    writeFileSync(path.join(consumer, 'consumer.ts'), code!);

    await run(
      'npm',
      [...NPM_INSTALL, '--save-dev', `typescript@${versionOf('typescript', 'devDependencies')}`, `@types/node@${versionOf('@types/node', 'devDependencies')}`],
      consumer,
    );
    // What a consumer has: the package's dependency `ws`, but no `@types/ws`.
    expect(existsSync(path.join(consumer, 'node_modules', '@types', 'ws'))).toBe(false);

    const tsc = path.join(consumer, 'node_modules', 'typescript', 'bin', 'tsc');
    // No skipLibCheck: the shipped declarations themselves are checked. Both resolutions a consumer may use.
    const common = ['--noEmit', '--strict', '--target', 'es2022', '--pretty', 'false'];
    await Promise.all([
      run(process.execPath, [tsc, ...common, '--module', 'nodenext', '--moduleResolution', 'nodenext', 'consumer.ts'], consumer),
      run(process.execPath, [tsc, ...common, '--module', 'esnext', '--moduleResolution', 'bundler', 'consumer.ts'], consumer),
    ]);
  }, SLOW_STEP_TIMEOUT);
});
