/**
 * Runs the system's nginx (Debian `nginx-light`) in front of test servers, with the deployment
 * configuration the README documents, docs/deploy/nginx.conf: read from that file at every start, so
 * the tests exercise what users copy. Only three things change: the `server` lines of its upstream
 * blocks (the test's processes), its `listen` line (a free loopback port) and, around it, the main
 * context a test needs (no daemon, pid file, logs and temp files in a fresh temp directory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The documented configuration. */
export const DEPLOY_CONFIG = fileURLToPath(new URL('../../docs/deploy/nginx.conf', import.meta.url));

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';

export const NGINX_INSTALL_HINT =
  `The deployment tests need nginx at ${NGINX} and found none. Install it ` +
  '(Debian/Ubuntu: `apt-get update && apt-get install -y nginx-light`), or point NGINX_PATH at an nginx binary.';

/** How long nginx may take to start answering, or to exit once told to stop. */
const START_DEADLINE = 10_000;
const STOP_DEADLINE = 10_000;

export interface StartNginxOptions {
  /** Ports on 127.0.0.1 of the processes the upstream block lists, in order. */
  upstreams: readonly number[];
  /** The configuration to run. @default {@link DEPLOY_CONFIG} */
  config?: string;
}

/** One line of the access log: how nginx routed a request. */
export interface AccessLogEntry {
  method: string;
  uri: string;
  status: number;
  /** Every process nginx tried for the request, in order (`host:port`); the last one answered. */
  upstreams: string[];
}

export interface Nginx {
  /** nginx's port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** The master process's id; undefined while stopped. */
  readonly pid: number | undefined;
  /** The access log so far, one entry per request nginx finished. */
  accessLog(): Promise<AccessLogEntry[]>;
  /** The error log so far (nginx writes warnings and failed upstream attempts there). */
  errorLog(): Promise<string>;
  /**
   * Stops nginx at once (fast shutdown: every client and upstream connection is cut, as when nginx
   * is restarted or crashes), runs `whileDown` if given, and starts nginx again on the same port
   * with the same configuration.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Stops nginx (fast shutdown, by its PID) and removes its temp directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The documented configuration with the test's upstreams and port: the `server` lines of each of its
 * upstream blocks (the round-robin one, and the carriers' one) become the test's processes. Throws
 * when the file no longer has the shape this relies on (upstream blocks with `server` lines, exactly
 * one `listen`), so that a change to the file cannot leave the tests running something else.
 */
export function renderSiteConfig(source: string, port: number, upstreams: readonly number[]): string {
  if (upstreams.length === 0) throw new Error('expects at least one upstream port');
  const blocks = [...source.matchAll(/^upstream\s+[\w-]+\s*\{[^}]*\}/gm)];
  if (blocks.length === 0) throw new Error('expects an upstream block in the nginx config');
  let rendered = source;
  for (const [block] of blocks) {
    const serverLines = [...block.matchAll(/^([ \t]*)server\s+[^;]+;[ \t]*\n/gm)];
    if (serverLines.length === 0) throw new Error(`expects server lines in the upstream block ${block.split('\n')[0]}`);
    const indent = serverLines[0]![1]!;
    const servers = upstreams.map((upstreamPort) => `${indent}server 127.0.0.1:${upstreamPort};\n`).join('');
    let replaced = false;
    const newBlock = block.replace(/^[ \t]*server\s+[^;]+;[ \t]*\n/gm, () => {
      if (replaced) return '';
      replaced = true;
      return servers;
    });
    rendered = rendered.replace(block, newBlock);
  }
  const listens = [...source.matchAll(/^([ \t]*)listen\s+[^;]+;/gm)];
  if (listens.length !== 1) throw new Error(`expects exactly one listen directive in the nginx config, found ${listens.length}`);
  return rendered.replace(/^([ \t]*)listen\s+[^;]+;/m, (_line, lead: string) => `${lead}listen 127.0.0.1:${port};`);
}

/** The main context around the site: what a test needs, nothing that changes how requests are proxied. */
function mainConfig(dir: string, site: string): string {
  const at = (name: string) => path.join(dir, name);
  return `daemon off;
# Two workers, as on a small machine with worker_processes auto: the upstream zone must keep them in step.
worker_processes 2;
pid ${at('nginx.pid')};
error_log ${at('error.log')} info;
events {
    worker_connections 256;
}
http {
    log_format routing '$request_method $uri $status $upstream_addr';
    access_log ${at('access.log')} routing;
    client_body_temp_path ${at('client_body_temp')};
    proxy_temp_path ${at('proxy_temp')};
    fastcgi_temp_path ${at('fastcgi_temp')};
    uwsgi_temp_path ${at('uwsgi_temp')};
    scgi_temp_path ${at('scgi_temp')};
    include ${site};
}
`;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/**
 * Resolves once nginx itself answers on `port`: a request without `Host` is refused by nginx (400)
 * without reaching any upstream, so waiting does not shift the round-robin order the tests check.
 */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nConnection: close\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(received.startsWith('HTTP/1.1 400')));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function readIfExists(file: string): Promise<string> {
  return existsSync(file) ? readFile(file, 'utf8') : '';
}

/** Starts nginx with the documented configuration in front of `options.upstreams`. */
export async function startNginx(options: StartNginxOptions): Promise<Nginx> {
  if (!existsSync(NGINX)) throw new Error(NGINX_INSTALL_HINT);
  const dir = await mkdtemp(path.join(tmpdir(), 'unbroken-nginx-'));
  // Run as root (CI), nginx's workers drop to `nobody`: they must reach their temp directories.
  await chmod(dir, 0o755);
  const errorLogFile = path.join(dir, 'error.log');
  const accessLogFile = path.join(dir, 'access.log');
  const source = await readFile(options.config ?? DEPLOY_CONFIG, 'utf8');

  let port = 0;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const site = path.join(dir, 'site.conf');
    await writeFile(site, renderSiteConfig(source, port, options.upstreams));
    const main = path.join(dir, 'nginx.conf');
    await writeFile(main, mainConfig(dir, site));
    // -e: the log nginx writes to before it has read the configuration (the built-in one is a system path).
    const started = spawn(NGINX, ['-p', `${dir}/`, '-c', main, '-e', errorLogFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    started.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + START_DEADLINE;
    for (;;) {
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`nginx exited at start (${started.exitCode ?? started.signalCode}): ${stderr}${await readIfExists(errorLogFile)}`);
      }
      if (await answers(port)) break;
      if (Date.now() > deadline) {
        started.kill('SIGTERM');
        await exited(started);
        throw new Error(`nginx did not answer within ${START_DEADLINE} ms: ${stderr}${await readIfExists(errorLogFile)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child = started;
  };

  const halt = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running?.pid) return;
    // SIGTERM is nginx's fast shutdown: the master closes every connection and reaps its workers.
    process.kill(running.pid, 'SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), STOP_DEADLINE);
    await exited(running);
    clearTimeout(timer);
  };

  // Between choosing a free port and nginx binding it, another process may take it: try again.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      const inUse = (await readIfExists(errorLogFile)).includes('Address already in use');
      if (!inUse || attempt === 3) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    async accessLog() {
      return (await readIfExists(accessLogFile))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const [method = '', uri = '', status = '0', ...rest] = line.split(' ');
          // $upstream_addr separates the processes tried with ", " ("-" when none was).
          const upstreams = rest.join(' ').split(', ').filter((entry) => entry !== '-');
          return { method, uri, status: Number(status), upstreams };
        });
    },
    errorLog: () => readIfExists(errorLogFile),
    async restart(whileDown) {
      await halt();
      await whileDown?.();
      await launch();
    },
    stop() {
      stopping ??= (async () => {
        await halt();
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
