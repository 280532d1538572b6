// @ts-check
/**
 * `npm run build`: runs `rollup -c` into a temporary folder next to dist/ (`dist.tmp-<pid>`) and moves
 * its files into dist/ by renames once every output is written. A reader of dist/ (the demo, the
 * benchmark, a running test) therefore never finds a file missing or half-written:
 *
 * - each file is replaced by one rename(2) onto the old one, which readers see as either the old file
 *   or the new one, never neither. (Swapping the folder itself takes two renames, with a moment in
 *   between where dist/ does not exist.)
 * - files of the old build that this build no longer makes are removed afterwards, so a renamed or
 *   dropped output never lingers.
 * - while the renames run (a few milliseconds) a reader may find some files of the new build beside
 *   others of the old one; each of them is whole.
 *
 * A failed or interrupted build leaves dist/ as it was and removes the temporary folder. Folders of
 * builds that were killed outright (their process is gone) are removed by the next build.
 *
 * Watch mode (`npm run build:watch` = `rollup -c --watch`) writes to dist/ directly, file by file.
 *
 *   node scripts/build.mjs [--config <file>]   the config defaults to rollup.config.mjs
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variable that tells rollup.config.mjs where to write; dist/ when unset. */
export const OUT_DIR_VARIABLE = 'UNBROKEN_BUILD_DIR';

/** Prefix of the temporary folders, followed by the building process's id. */
export const TMP_PREFIX = 'dist.tmp-';

/**
 * Every file under `dir`, as paths relative to it.
 * @param {string} dir
 * @param {string} [prefix]
 * @returns {string[]}
 */
function filesUnder(dir, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(path.join(dir, entry.name), path.join(prefix, entry.name)) : [path.join(prefix, entry.name)],
  );
}

/**
 * The order of the renames: maps and declarations first, then code, the server's bundle before the
 * Redis store's that imports it, so that a module rarely meets an older file it depends on.
 * @param {string} file
 */
const renameRank = (file) => (/\.(map|d\.ts)$/.test(file) ? 0 : /^server\./.test(path.basename(file)) ? 1 : 2);

/**
 * Moves the files of `from` (a finished build) into `to` one rename at a time, removes what `to` held
 * that `from` did not, then removes `from`. Both must be on one file system (siblings are).
 * @param {string} from
 * @param {string} to
 * @param {(step: string) => void} [afterStep] called after each rename or removal (tests observe dist/ there)
 */
export function swapIn(from, to, afterStep = () => {}) {
  if (!existsSync(to)) {
    renameSync(from, to);
    afterStep(`rename ${from} → ${to}`);
    return;
  }
  const fresh = filesUnder(from).sort((a, b) => renameRank(a) - renameRank(b) || a.localeCompare(b));
  for (const file of fresh) {
    const target = path.join(to, file);
    mkdirSync(path.dirname(target), { recursive: true });
    renameSync(path.join(from, file), target);
    afterStep(`rename ${file}`);
  }
  const kept = new Set(fresh);
  for (const file of filesUnder(to)) {
    if (kept.has(file)) continue;
    rmSync(path.join(to, file), { force: true });
    afterStep(`remove ${file}`);
  }
  removeEmptyFolders(to);
  rmSync(from, { recursive: true, force: true });
}

/**
 * Removes the folders under `dir` (not `dir` itself) that hold no file.
 * @param {string} dir
 */
function removeEmptyFolders(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const sub = path.join(dir, entry.name);
    removeEmptyFolders(sub);
    if (readdirSync(sub).length === 0) rmdirSync(sub);
  }
}

/**
 * Removes the temporary folders in `root` left by builds whose process no longer runs.
 * @param {string} root
 */
function removeAbandoned(root) {
  for (const name of readdirSync(root)) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const pid = Number(name.slice(TMP_PREFIX.length));
    if (pid === process.pid || (Number.isInteger(pid) && pid > 0 && isRunning(pid))) continue;
    rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

/** @param {number} pid */
function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return /** @type {NodeJS.ErrnoException} */ (error).code === 'EPERM';
  }
}

/**
 * Builds into a temporary folder of `root` and swaps it into `root/dist`.
 * @param {{ root: string, config?: string }} options
 * @returns {Promise<number>} the exit status: rollup's when it failed
 */
export async function build({ root, config = 'rollup.config.mjs' }) {
  removeAbandoned(root);
  const dist = path.join(root, 'dist');
  const tmp = path.join(root, `${TMP_PREFIX}${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const removeTmp = () => rmSync(tmp, { recursive: true, force: true });
  // An interrupted build must not leave its folder: rollup gets the signal too (same process group),
  // and this process removes the folder once it has stopped.
  /** @type {NodeJS.Signals[]} */
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  /** @type {NodeJS.Signals | null} */
  let interrupted = null;
  const onSignal = (/** @type {NodeJS.Signals} */ signal) => {
    interrupted = signal;
    if (child.pid !== undefined && child.exitCode === null) child.kill(signal);
  };
  const rollup = path.join(root, 'node_modules', 'rollup', 'dist', 'bin', 'rollup');
  const child = spawn(process.execPath, [rollup, '--config', config], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, [OUT_DIR_VARIABLE]: path.basename(tmp) },
  });
  for (const signal of signals) process.on(signal, onSignal);
  /** @type {number} */
  const status = await new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`cannot run rollup: ${error.message}\n`);
      resolve(1);
    });
    child.once('exit', (code) => resolve(code ?? 1));
  });
  for (const signal of signals) process.off(signal, onSignal);
  if (status !== 0 || interrupted || !existsSync(tmp)) {
    removeTmp();
    process.stderr.write(`build ${interrupted ? `interrupted (${interrupted})` : 'failed'}: dist/ is left as it was\n`);
    return status === 0 ? 1 : status;
  }
  try {
    swapIn(tmp, dist);
  } catch (error) {
    removeTmp();
    throw error;
  }
  process.stderr.write(`dist/: ${filesUnder(dist).length} files, swapped in from ${path.basename(tmp)}\n`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--config');
  const config = at === -1 ? undefined : args[at + 1];
  const root = fileURLToPath(new URL('../', import.meta.url));
  process.exitCode = await build({ root, ...(config ? { config } : {}) });
}
