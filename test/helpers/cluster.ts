/**
 * Several server processes, as a deployment runs them behind a load balancer: each a child process
 * (cluster-node.mjs, the built server) on its own loopback port, all with the same options and
 * store. A test can kill one (SIGKILL for a crash), restart it on its port, drive and observe each
 * through its own control endpoints, and read what each reported (sessions created, client messages
 * handed over, errors: see cluster-node.mjs).
 *
 * @example
 * const cluster = await startCluster(3);
 * const nginx = await startNginx({ upstreams: cluster.ports });
 * await cluster.kill(1, 'SIGKILL');
 * await cluster.restart(1);
 * await cluster.stopAll();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerOptions } from '../../src/server/index.js';

const NODE_SCRIPT = fileURLToPath(new URL('./cluster-node.mjs', import.meta.url));
const BUILT_SERVER = fileURLToPath(new URL('../../dist/server.mjs', import.meta.url));

/** How long a process may take to listen, or to exit once signalled before it is killed. */
const START_DEADLINE = 10_000;
const STOP_DEADLINE = 8_000;

/** The options that travel to the processes as JSON: those whose values are numbers or strings. */
export type ClusterServerOptions = {
  [K in keyof ServerOptions as NonNullable<ServerOptions[K]> extends number | string ? K : never]?: ServerOptions[K];
};

export interface ClusterOptions {
  /** createServer() options, the same for every process. */
  serverOptions?: ClusterServerOptions;
  /**
   * `memory`, or a `redis://…` URL for a store the processes share.
   * @default process.env.UNBROKEN_STORE_URL, else 'memory'
   */
  storeUrl?: string;
  /** RedisStore options besides the url (numbers and strings), with a `redis://…` store. */
  storeOptions?: Record<string, number | string>;
}

interface ReportOrigin {
  /** The process's name, `node-<index>`. */
  readonly node: string;
  readonly pid: number;
}

/** What a process reported on stdout, one JSON line each (see cluster-node.mjs). */
export type NodeReport = ReportOrigin &
  (
    | { readonly event: 'listening'; readonly port: number }
    | { readonly event: 'connection'; readonly session: string }
    /** A client message handed over to the application (the server's `message` event). */
    | { readonly event: 'message'; readonly session: string; readonly data: unknown }
    /** A report on the server's `error` event (`server`) or of the store's `onError` (`store`). */
    | { readonly event: 'error'; readonly source: 'server' | 'store'; readonly code: string | null; readonly message: string }
    /** The store told the process its history was lost (§6.2), after the server closed its connections for it. */
    | { readonly event: 'history-lost' }
  );

export interface ClusterNode {
  readonly index: number;
  /** `node-<index>`, reported by the process in its answers and events. */
  readonly name: string;
  readonly port: number;
  /** The current process's id; a restart changes it. */
  readonly pid: number;
  /** `http://127.0.0.1:PORT`, the process itself, not through a proxy. */
  readonly origin: string;
}

export interface Cluster {
  /** The processes, by index. */
  readonly nodes: readonly ClusterNode[];
  /** Their ports, by index: what a load balancer's upstream list holds. */
  readonly ports: readonly number[];
  /** Whether process `index` is running. */
  running(index: number): boolean;
  /** Every report of every process so far, in arrival order, those of stopped processes included. */
  readonly reports: readonly NodeReport[];
  /** Calls `listener` with each report from now on; returns the function that stops it. */
  onReport(listener: (report: NodeReport) => void): () => void;
  /** Makes process `index` broadcast messages `from`…`from + count - 1` (event `numbered`); resolves once stored. */
  broadcast(index: number, count: number, from?: number): Promise<void>;
  /** The client addresses process `index` counted (its `clientAddress` results). */
  addresses(index: number): Promise<string[]>;
  /**
   * Makes process `index` kill itself (SIGKILL) once the shared store has marked the next batch of
   * client messages processed, before any is handed over. Resolves once armed; see `exited`.
   */
  crashAfterClaim(index: number): Promise<void>;
  /** Resolves once process `index` (the one running now) has exited, however. */
  exited(index: number): Promise<void>;
  /**
   * Sends `signal` to process `index` (by its PID) and resolves once it exited. SIGTERM closes it
   * gracefully (clients are told to reconnect); SIGKILL is a crash.
   * @default signal 'SIGTERM'
   */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Stops process `index` if it runs (SIGTERM) and starts a new one on the same port. */
  restart(index: number): Promise<ClusterNode>;
  /** Stops every process (SIGTERM, then SIGKILL past a deadline). Safe to call twice. */
  stopAll(): Promise<void>;
}

interface Running {
  node: ClusterNode;
  child: ChildProcess;
  exited: Promise<void>;
}

function isReport(value: unknown): value is NodeReport {
  const candidate = value as Partial<ReportOrigin & { event: unknown }> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.event === 'string' && typeof candidate.pid === 'number';
}

/** Starts one process; resolves with it once it printed its listening line. Its reports go to `onReport`. */
function spawnNode(index: number, port: number, options: ClusterOptions, onReport: (report: NodeReport) => void): Promise<Running> {
  const name = `node-${index}`;
  const child = spawn(process.execPath, [NODE_SCRIPT], {
    // stdin is a pipe the process watches: should this test process die, its children follow.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      UNBROKEN_NODE_NAME: name,
      UNBROKEN_PORT: String(port),
      UNBROKEN_SERVER_OPTIONS: JSON.stringify(options.serverOptions ?? {}),
      UNBROKEN_STORE_URL: options.storeUrl ?? process.env.UNBROKEN_STORE_URL ?? 'memory',
      UNBROKEN_STORE_OPTIONS: JSON.stringify(options.storeOptions ?? {}),
    },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    process.stderr.write(chunk);
  });
  return new Promise<Running>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not listen within ${START_DEADLINE} ms: ${stderr}`));
    }, START_DEADLINE);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let report: unknown;
      try {
        report = JSON.parse(line);
      } catch {
        return; // Anything else the process prints is not for the harness.
      }
      if (!isReport(report)) return;
      onReport(report);
      if (report.event !== 'listening') return;
      clearTimeout(timer);
      const node: ClusterNode = { index, name, port: report.port, pid: report.pid, origin: `http://127.0.0.1:${report.port}` };
      resolve({ node, child, exited });
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before listening (${child.exitCode ?? child.signalCode}): ${stderr}`));
    });
  });
}

async function stopNode(running: Running, signal: NodeJS.Signals): Promise<void> {
  const { child } = running;
  if (child.exitCode === null && child.signalCode === null) {
    process.kill(running.node.pid, signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE);
    await running.exited;
    clearTimeout(timer);
  }
}

/** Starts `n` processes, each on a free loopback port. */
export async function startCluster(n: number, options: ClusterOptions = {}): Promise<Cluster> {
  if (!existsSync(BUILT_SERVER)) throw new Error(`the cluster runs the built server: ${BUILT_SERVER} is missing, run \`npm run build\``);
  const reports: NodeReport[] = [];
  const reportListeners = new Set<(report: NodeReport) => void>();
  const onReport = (report: NodeReport): void => {
    reports.push(report);
    for (const listener of reportListeners) listener(report);
  };
  const settled = await Promise.allSettled(Array.from({ length: n }, (_, index) => spawnNode(index, 0, options, onReport)));
  const started = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = settled.find((result) => result.status === 'rejected');
  if (failure) {
    await Promise.all(started.map((running) => stopNode(running, 'SIGKILL')));
    throw failure.reason;
  }
  const processes: Running[] = started;

  const at = (index: number): Running => {
    const running = processes[index];
    if (!running) throw new RangeError(`expects a process index below ${processes.length}, got ${index}`);
    return running;
  };
  const control = async (index: number, method: 'GET' | 'POST', path: string): Promise<unknown> => {
    const response = await fetch(`${at(index).node.origin}${path}`, { method });
    if (!response.ok) throw new Error(`${method} ${path} at ${at(index).node.name}: ${response.status} ${await response.text()}`);
    return response.json();
  };

  let stopping: Promise<void> | undefined;
  return {
    get nodes() {
      return processes.map((running) => running.node);
    },
    get ports() {
      return processes.map((running) => running.node.port);
    },
    running(index) {
      const { child } = at(index);
      return child.exitCode === null && child.signalCode === null;
    },
    reports,
    onReport(listener) {
      const wrapped = (report: NodeReport): void => listener(report);
      reportListeners.add(wrapped);
      return () => {
        reportListeners.delete(wrapped);
      };
    },
    async broadcast(index, count, from = 1) {
      await control(index, 'POST', `/control/broadcast?from=${from}&count=${count}`);
    },
    async addresses(index) {
      return (await control(index, 'GET', '/control/addresses')) as string[];
    },
    async crashAfterClaim(index) {
      await control(index, 'POST', '/control/crash-after-claim');
    },
    exited(index) {
      return at(index).exited;
    },
    kill(index, signal = 'SIGTERM') {
      return stopNode(at(index), signal);
    },
    async restart(index) {
      const previous = at(index);
      await stopNode(previous, 'SIGTERM');
      const next = await spawnNode(index, previous.node.port, options, onReport);
      processes[index] = next;
      return next.node;
    },
    stopAll() {
      stopping ??= Promise.all(processes.map((running) => stopNode(running, 'SIGTERM'))).then(() => {});
      return stopping;
    },
  };
}

/** The names of the processes of `cluster` that reported `event` in their reports from index `since` on. */
export function nodesReporting(cluster: Cluster, event: NodeReport['event'], since: number): Set<string> {
  return new Set(cluster.reports.slice(since).flatMap((report) => (report.event === event ? [report.node] : [])));
}
