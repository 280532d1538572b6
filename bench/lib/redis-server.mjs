// @ts-check
/**
 * A `redis-server` of the benchmark's own, one per case: on a free loopback port, with no persistence
 * (`--save '' --appendonly no`, its directory a fresh temporary one), so that no case inherits another's
 * keys, memory or fragmentation and nothing is written to disk while a case is timed. It is ended by
 * its PID, also when the runner exits early. `REDIS_SERVER` names another binary (as in the tests).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

/** How long a server may take to answer its first `PING`. */
const START_DEADLINE_MS = 10_000;

/** Servers still running, ended when the runner exits. @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set();
/** Their directories, removed when the runner exits. @type {Set<string>} */
const dirs = new Set();
process.on('exit', () => {
  for (const child of running) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A port nothing listens on right now (the kernel picks it). */
async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {net.AddressInfo} */ (probe.address());
  await new Promise((resolve) => probe.close(() => resolve(undefined)));
  return port;
}

/**
 * Whether `port` answers `PING` with `+PONG` within a second.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function answers(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (/** @type {boolean} */ ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/**
 * Sends one command on a connection of its own and resolves with its reply: a simple or bulk string
 * (what `INFO` and `CONFIG RESETSTAT` answer); an error reply rejects.
 * @param {number} port
 * @param {string[]} args
 * @returns {Promise<string>}
 */
function command(port, args) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    /** @type {Buffer[]} */
    const chunks = [];
    const fail = (/** @type {Error} */ error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(10_000, () => fail(new Error(`redis-server on port ${port} did not answer ${args[0]} within 10 s`)));
    socket.once('error', fail);
    socket.once('connect', () => socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const reply = Buffer.concat(chunks);
      const eol = reply.indexOf('\r\n');
      if (eol === -1) return;
      const head = reply.toString('latin1', 1, eol);
      const type = String.fromCharCode(/** @type {number} */ (reply[0]));
      if (type === '-') return fail(new Error(`redis-server: ${head}`));
      if (type !== '$') {
        socket.destroy();
        return resolve(head);
      }
      const length = Number(head);
      if (reply.length < eol + 2 + length) return; // the rest of the bulk string is still coming
      socket.destroy();
      resolve(reply.toString('utf8', eol + 2, eol + 2 + length));
    });
  });
}

const SETPRIV = '/usr/bin/setpriv';

/**
 * Starts a redis-server on `port` and resolves once it answers.
 * @param {number} port
 * @param {string} dir
 */
async function launch(port, dir) {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  // Through util-linux's setpriv, with the parent-death signal set: a runner killed outright takes its
  // redis-servers with it (test/helpers/redis-server.ts says why). The pid stays the server's.
  const guarded = existsSync(SETPRIV) && existsSync(REDIS_SERVER);
  const child = spawn(guarded ? SETPRIV : REDIS_SERVER, guarded ? ['--pdeathsig', 'KILL', REDIS_SERVER, ...args] : args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk) => (output += chunk.toString()));
  /** @type {Error | undefined} */
  let failed;
  child.once('error', (error) => (failed = error));
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (failed) throw new Error(`cannot start ${REDIS_SERVER}: ${failed.message} (install Debian's redis-server, or set REDIS_SERVER)`);
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(child);
      throw new Error(`${REDIS_SERVER} exited (${child.exitCode ?? child.signalCode}) before answering: ${output.trim().split('\n').at(-1)}`);
    }
    if (await answers(port)) return child;
    if (Date.now() > deadline) {
      await stop(child);
      throw new Error(`${REDIS_SERVER} did not answer on port ${port} within ${START_DEADLINE_MS} ms`);
    }
    // Retry pace while the server starts; only the deadline above decides failure.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Ends one server by its PID and waits until it is gone.
 * @param {import('node:child_process').ChildProcess} child
 */
async function stop(child) {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3_000);
    await gone;
    clearTimeout(timer);
  }
  running.delete(child);
}

/** Starts a fresh redis-server on a free loopback port; resolves once it answers `PING`. */
export async function startRedisServer() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'unbroken-bench-redis-'));
  dirs.add(dir);
  // The free port may be taken by someone else before the server binds it: try another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const child = await launch(port, dir);
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        pid: child.pid,
        /** `INFO <section>` as `{ field: value }`. */
        info: async (/** @type {string} */ section) => {
          /** @type {Record<string, string>} */
          const fields = {};
          for (const line of (await command(port, ['INFO', section])).split('\r\n')) {
            const colon = line.indexOf(':');
            if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
          }
          return fields;
        },
        /** Zeroes the counters `INFO commandstats` reports. */
        resetStats: () => command(port, ['CONFIG', 'RESETSTAT']).then(() => undefined),
        /** Ends the server (its data is lost) and removes its directory. */
        stop: async () => {
          await stop(child);
          rmSync(dir, { recursive: true, force: true });
          dirs.delete(dir);
        },
      };
    } catch (error) {
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
        throw error;
      }
    }
  }
}

/** @typedef {Awaited<ReturnType<typeof startRedisServer>>} BenchRedis */
