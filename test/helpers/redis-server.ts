/**
 * A real `redis-server` for tests: started on a free loopback port with no persistence (`--save ''
 * --appendonly no`, its directory a fresh temporary one), so that a restart loses the history as a
 * production Redis without persistence does. It can be stopped, restarted on the same port, and
 * paused and resumed (SIGSTOP/SIGCONT: a stalled Redis whose connections stay open). It signals only
 * the process it started, by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops the server (its data is lost). */
  stop(): Promise<void>;
  /** Stops the server and starts a new one on the same port: the history is lost. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
}

/** A port nothing listens on right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** True once `port` answers `PING` with `+PONG`. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * util-linux's `setpriv`, which starts a program with the kernel's parent-death signal set: a test
 * process killed outright (a worker the runner ends) then takes its redis-server with it, which the
 * `exit` handler below cannot do. It replaces itself with the program, so the pid is the server's.
 */
const SETPRIV = '/usr/bin/setpriv';

async function launch(port: number, dir: string): Promise<{ child: ChildProcess; output: () => string }> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  // Without redis-server, spawn it alone: its failure then says what is missing.
  const guarded = existsSync(SETPRIV) && existsSync(REDIS_SERVER);
  const child = spawn(guarded ? SETPRIV : REDIS_SERVER, guarded ? ['--pdeathsig', 'KILL', REDIS_SERVER, ...args] : args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let failed: Error | undefined;
  child.once('error', (error) => (failed = error));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (failed) throw new Error(`cannot start ${REDIS_SERVER}: ${failed.message} (install Debian's redis-server)`);
    if (exited(child)) throw new Error(`${REDIS_SERVER} exited (${child.exitCode ?? child.signalCode}) before answering:\n${output}`);
    if (await answers(port)) return { child, output: () => output };
    if (Date.now() > deadline) {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      throw new Error(`${REDIS_SERVER} did not answer on port ${port} within 10 s:\n${output}`);
    }
    // Retry pace while the server starts; only the deadline above decides failure.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function terminate(child: ChildProcess): Promise<void> {
  if (exited(child) || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A paused server handles SIGTERM only once it runs again.
  process.kill(child.pid, 'SIGCONT');
  process.kill(child.pid, 'SIGTERM');
  await gone;
}

/** Starts a redis-server on a free port and resolves once it answers. */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'unbroken-redis-'));
  let port = 0;
  let current: ChildProcess | undefined;
  // The free port may be taken by someone else before the server binds it: try another.
  for (let attempt = 1; current === undefined; attempt++) {
    port = await freePort();
    try {
      current = (await launch(port, dir)).child;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
  // Whatever happens to the test, the server does not outlive the test process.
  const kill = (): void => {
    if (current && !exited(current) && current.pid !== undefined) process.kill(current.pid, 'SIGKILL');
  };
  process.once('exit', kill);

  const pid = (): number => {
    if (!current || exited(current) || current.pid === undefined) throw new Error('the redis-server is not running');
    return current.pid;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (current) await terminate(current);
      process.off('exit', kill);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      if (current) await terminate(current);
      current = (await launch(port, dir)).child;
    },
    pause() {
      process.kill(pid(), 'SIGSTOP');
    },
    resume() {
      process.kill(pid(), 'SIGCONT');
    },
  };
}
