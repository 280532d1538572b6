/**
 * Three server processes sharing one Redis (RedisStore), behind nginx running the documented
 * configuration (round robin; the tabs' carriers by client address), with a loopback proxy between
 * the clients and nginx that resets their connections: no sticky sessions across real processes (docs/PROTOCOL.md §3.3, §6.2, §8), and what
 * each fault does — a process killed mid-stream, Redis stalled, Redis restarted without its data
 * (Redis unreachable when a process starts: redis-unreachable.test.ts). cluster.test.ts runs the
 * first rules in one process.
 *
 * Upstream, delivery is checked on what the processes report they handed to the application (a line
 * each process writes before anything else happens to the message, so a killed process's lines count
 * too); downstream, on what the clients receive. `UNBROKEN_CHAOS=1` (`npm run chaos`) lengthens the
 * runs: more messages and resets, a 5 s stall, longer quiet windows.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Client } from '../../src/client/index.js';
import type { GapEvent, OpenEvent } from '../../src/client/events.js';
import type { TransportName } from '../../src/protocol/index.js';
import { nodesReporting, startCluster, type Cluster, type NodeReport } from '../helpers/cluster.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { when } from '../helpers/signals.js';
import { LockTable } from '../helpers/tab-locks.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { TRANSPORTS, nodeEnvironment } from './fixture.js';

const LONG = process.env.UNBROKEN_CHAOS === '1';
const RUN = LONG
  ? { messages: 1_000, resetEvery: 25, stall: 5_000, quiet: 10_000, deadline: 120_000 }
  : { messages: 100, resetEvery: 10, stall: 1_500, quiet: 2_000, deadline: 25_000 };
/** A test's own timeout: above every deadline it waits on, so a failure says what it waited for. */
const TEST_TIMEOUT = RUN.deadline * 2 + RUN.quiet + RUN.stall;

/**
 * A client that stops reconnecting gives way to one that loops: at most 250 ms between attempts, so
 * that a loop of refused or closed connections shows several opens within a quiet window of 2 s.
 */
const CLIENT_OPTIONS = { reconnectDelay: 50, maxReconnectDelay: 250, storage: null } as const;

let redis: RedisServer;
let cluster: Cluster;
let nginx: Nginx;
let proxy: TcpProxy;
let url: string;
/** Each wakes one pending `until`; called on every client event and every process report. */
const wakers = new Set<() => void>();
const clients: Client[] = [];

function wakeAll(): void {
  for (const wake of wakers) wake();
}

beforeAll(async () => {
  redis = await startRedisServer();
  // A reconnection floor of 100 ms (`hello.retry`, 1 s by default): the tests reconnect many times.
  cluster = await startCluster(3, { storeUrl: redis.url, serverOptions: { retry: 100 } });
  cluster.onReport(wakeAll);
  nginx = await startNginx({ upstreams: cluster.ports });
  proxy = await startTcpProxy(nginx.port);
  url = `http://127.0.0.1:${proxy.port}/realtime`;
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  // A test that killed a process, passed or not, leaves three to the next.
  for (const node of cluster.nodes) if (!cluster.running(node.index)) await cluster.restart(node.index);
});

afterAll(async () => {
  await proxy?.close();
  await nginx?.stop();
  await cluster?.stopAll();
  await redis?.stop();
});

/** Resolves once `condition()` holds; fails after `RUN.deadline` saying what it waited for, and where things stood. */
function until(what: string, condition: () => boolean, detail: () => unknown = () => ''): Promise<void> {
  const { promise, wake } = when(condition);
  wakers.add(wake);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${RUN.deadline} ms for ${what}: ${JSON.stringify(detail())}`)), RUN.deadline);
  });
  return Promise.race([promise, late]).finally(() => {
    clearTimeout(timer);
    wakers.delete(wake);
  });
}

/** The fault's own duration, or a window in which something must not happen: never a positive check. */
function elapse(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, index) => from + index);
}

/** Client messages carry a number in one of these fields: `up` before a Redis restart, `after` after it. */
type Field = 'up' | 'after';

function numberIn(data: unknown, field: Field): number | undefined {
  const value = (data as Record<string, unknown> | null)?.[field];
  return typeof value === 'number' ? value : undefined;
}

/** A `numbered` broadcast as a client received it. */
interface Numbered {
  n: number;
  /** The process that broadcast it. */
  node: string;
  /** When that process handed it to the server, and when the client received it (ms since the epoch). */
  at: number;
  arrived: number;
}

/** One client, forced to one transport, and everything it saw. */
interface Observed {
  readonly transport: TransportName;
  readonly client: Client;
  readonly numbered: Numbered[];
  /** The client message each echo carries, and the process that handed it over and echoed it. */
  readonly echoes: { data: unknown; node: string }[];
  readonly opens: OpenEvent[];
  readonly gaps: GapEvent[];
}

function observe(transport: TransportName): Observed {
  const client = connect(url, { ...nodeEnvironment, transports: [transport], ...CLIENT_OPTIONS });
  clients.push(client);
  const observed: Observed = { transport, client, numbered: [], echoes: [], opens: [], gaps: [] };
  client.on('message', ({ data, event }) => {
    if (event === 'numbered') {
      const { n, node, at } = data as { n: number; node: string; at: number };
      observed.numbered.push({ n, node, at, arrived: Date.now() });
    } else if (event === 'echo') {
      const { echo, node } = data as { echo: unknown; node: string };
      observed.echoes.push({ data: echo, node });
    }
    wakeAll();
  });
  client.on('open', (event) => {
    observed.opens.push(event);
    wakeAll();
  });
  client.on('gap', (event) => {
    observed.gaps.push(event);
    wakeAll();
  });
  return observed;
}

async function openAll(all: readonly Observed[]): Promise<void> {
  await until('every client to open', () => all.every((observed) => observed.opens.length > 0));
}

/**
 * Each message of the client's session that a process handed to the application: its number in
 * `field` and the process, in the order the processes reported them.
 */
function handOvers(observed: Observed, field: Field = 'up'): { n: number; node: string }[] {
  const sid = observed.client.sessionId;
  return cluster.reports.flatMap((report) => {
    if (report.event !== 'message' || report.session !== sid) return [];
    const n = numberIn(report.data, field);
    return n === undefined ? [] : [{ n, node: report.node }];
  });
}

function handedOver(observed: Observed, field: Field = 'up'): number[] {
  return handOvers(observed, field).map((entry) => entry.n);
}

function echoed(observed: Observed, field: Field = 'up'): number[] {
  return observed.echoes.flatMap((echo) => {
    const n = numberIn(echo.data, field);
    return n === undefined ? [] : [n];
  });
}

/** What was seen so far, for a failure's message. */
function progress(all: readonly Observed[]): unknown {
  return all.map((observed) => ({
    transport: observed.transport,
    numbered: observed.numbered.length,
    lastNumbered: observed.numbered.at(-1)?.n,
    handedOver: handedOver(observed).length,
    echoes: observed.echoes.length,
    opens: observed.opens.length,
    gaps: observed.gaps.length,
    state: observed.client.state,
  }));
}

/**
 * Waits until every client received each broadcast of `down` and had client message `up` handed
 * over and echoed. Both ways arrive in order, so what is missing before these is lost, not late:
 * the assertions that follow say what.
 */
async function delivered(all: readonly Observed[], down: readonly number[], up: number, field: Field = 'up'): Promise<void> {
  await until(
    'the last messages both ways',
    () =>
      all.every((observed) => {
        const received = new Set(observed.numbered.map((message) => message.n));
        return down.every((n) => received.has(n)) && handedOver(observed, field).includes(up) && echoed(observed, field).includes(up);
      }),
    () => progress(all),
  );
}

/** The process (by cluster index) of each stream request — `GET P/ws`, `P/sse`, `P/poll` — nginx logged after entry `since`. */
async function streamNodes(since: number): Promise<number[]> {
  const byPort = new Map(cluster.ports.map((port, index) => [`127.0.0.1:${port}`, index]));
  return (await nginx.accessLog())
    .slice(since)
    .filter((entry) => /\/realtime\/(ws|sse|poll)$/.test(entry.uri) && entry.upstreams.length > 0)
    .flatMap((entry) => {
      const index = byPort.get(entry.upstreams.at(-1)!);
      return index === undefined ? [] : [index];
    });
}

type ErrorReport = Extract<NodeReport, { event: 'error' }>;

/** The `STORE_ERROR` reports of process `node` that match `pattern`, after report `since`. */
function storeReports(node: string, pattern: RegExp, since: number): ErrorReport[] {
  return cluster.reports
    .slice(since)
    .filter((report): report is ErrorReport => report.event === 'error' && report.node === node && report.code === 'STORE_ERROR' && pattern.test(report.message));
}

/** The process that holds the WebSocket client's stream: the one that echoes its messages. */
async function websocketHolder(websocket: Observed, n: number): Promise<number> {
  await websocket.client.send({ up: n });
  await until(`the echo of message ${n}`, () => echoed(websocket).includes(n));
  const name = websocket.echoes.at(-1)!.node;
  return cluster.nodes.findIndex((node) => node.name === name);
}

describe.each(TRANSPORTS)('three processes on one Redis behind round-robin nginx, over %s', (transport) => {
  it('§3.3 §8 carries messages both ways exactly once and in order while resets move the session between processes', async () => {
    const logged = (await nginx.accessLog()).length;
    const observed = observe(transport);
    await openAll([observed]);
    const base = 10_000 * (TRANSPORTS.indexOf(transport) + 1);

    const sends: Promise<void>[] = [];
    for (let n = 1; n <= RUN.messages; n++) {
      // Downstream from each process in turn, upstream through whichever process nginx picks.
      await cluster.broadcast(n % 3, 1, base + n);
      sends.push(observed.client.send({ up: n }));
      if (n % RUN.resetEvery === 0) {
        const before = observed.opens.length;
        proxy.resetAll();
        await until('the client to open again after a reset', () => observed.opens.length > before);
      }
    }
    await Promise.all(sends);
    await delivered([observed], [base + RUN.messages], RUN.messages);

    expect(observed.numbered.map((message) => message.n)).toEqual(range(base + 1, RUN.messages));
    expect(handedOver(observed)).toEqual(range(1, RUN.messages));
    expect(echoed(observed).sort((a, b) => a - b)).toEqual(range(1, RUN.messages));
    expect(observed.gaps).toEqual([]);
    // One session across the cluster: created once, by one process, and resumed at every reconnection.
    const sid = observed.client.sessionId;
    expect(cluster.reports.filter((report) => report.event === 'connection' && report.session === sid)).toHaveLength(1);
    expect(observed.opens.length).toBeGreaterThan(RUN.messages / RUN.resetEvery);
    expect(observed.opens.map((open) => [open.sessionId, open.resumed])).toEqual(observed.opens.map((_, index) => [sid, index > 0]));
    // The session moved: its streams and its upstream messages were served by several processes.
    expect(new Set(await streamNodes(logged)).size).toBeGreaterThanOrEqual(2);
    expect(new Set(handOvers(observed).map((entry) => entry.node)).size).toBeGreaterThanOrEqual(2);
  }, TEST_TIMEOUT);
});

describe('three processes on one Redis: faults', () => {
  it('§3.6.exactly-once hands over a message whose process was killed after claiming it and before handing it over, once the claim lapses', async () => {
    const websocket = observe('websocket');
    await openAll([websocket]);
    const holder = await websocketHolder(websocket, 1);
    const opens = websocket.opens.length;

    // The holder marks message 2 processed in Redis, then dies before the `message` event.
    await cluster.crashAfterClaim(holder);
    const second = websocket.client.send({ up: 2 });
    await cluster.exited(holder);
    await until('the client to resume on another process', () => websocket.opens.length > opens);
    // Acknowledged by the process the client resumed on, which found it processed in Redis.
    await second;
    await websocket.client.send({ up: 3 });
    await until('message 3 to be handed over', () => handedOver(websocket).includes(3));

    expect(handOvers(websocket).filter((entry) => entry.n === 2)).toHaveLength(1);
    expect(handedOver(websocket)).toEqual([1, 2, 3]);
  }, TEST_TIMEOUT);

  it('§3.3 §3.6.exactly-once goes on through the other processes when one is killed mid-stream (SIGKILL), nothing lost either way', async () => {
    const all = TRANSPORTS.map((transport) => observe(transport));
    await openAll(all);
    const websocket = all[0]!;
    for (const observed of all.slice(1)) await observed.client.send({ up: 0 });
    const victim = await websocketHolder(websocket, 0);
    const victimName = cluster.nodes[victim]!.name;
    const survivors = [0, 1, 2].filter((index) => index !== victim);
    const opensBefore = websocket.opens.length;

    const base = 50_000;
    const sends: Promise<void>[] = [];
    for (let n = 1; n <= RUN.messages; n++) {
      await cluster.broadcast(survivors[n % 2]!, 1, base + n);
      for (const observed of all) sends.push(observed.client.send({ up: n }));
      if (n === RUN.messages / 2) await cluster.kill(victim, 'SIGKILL');
    }
    await Promise.all(sends);
    await delivered(all, [base + RUN.messages], RUN.messages);

    for (const observed of all) {
      expect(observed.numbered.map((message) => message.n), observed.transport).toEqual(range(base + 1, RUN.messages));
      expect(observed.gaps, observed.transport).toEqual([]);
      expect(observed.opens.map((open) => open.resumed), observed.transport).toEqual(observed.opens.map((_, index) => index > 0));
      // Every message handed over, in order. Of a message the killed process was handing over when
      // it died, nothing outside that process can know whether the application got it: it may be
      // handed over once more (at least once, as §8 has it for a session whose state was lost), and
      // only such a message may repeat.
      const handed = handOvers(observed);
      const first = new Map<number, string>();
      for (const { n, node } of handed) {
        if (first.has(n)) expect(first.get(n), `${observed.transport}: message ${n} handed over again`).toBe(victimName);
        else first.set(n, node);
      }
      expect([...first.keys()], observed.transport).toEqual(range(0, RUN.messages + 1));
    }
    // The WebSocket client lost its process and resumed its session on another.
    expect(websocket.opens.length).toBeGreaterThan(opensBefore);
    expect(websocket.echoes.at(-1)!.node).not.toBe(victimName);
  }, TEST_TIMEOUT);

  it('§8 rides out a stalled Redis (SIGSTOP) as a latency spike: reported by every process, nothing lost, no process down', async () => {
    const all = TRANSPORTS.map((transport) => observe(transport));
    await openAll(all);
    const since = cluster.reports.length;
    const base = 60_000;
    const perNode = RUN.messages / 2;
    const sends: Promise<void>[] = [];

    redis.pause();
    const pausedAt = Date.now();
    // Every process gets commands during the stall: a broadcast each (its own range of numbers), and
    // client messages through nginx. They wait for Redis rather than fail.
    const broadcasts = [0, 1, 2].map((index) => cluster.broadcast(index, perNode, base + index * perNode + 1));
    for (let n = 1; n <= RUN.messages; n++) for (const observed of all) sends.push(observed.client.send({ up: n }));
    try {
      await until('every process to report the stall', () => cluster.nodes.every((node) => storeReports(node.name, /has not answered/, since).length > 0));
      await elapse(RUN.stall - (Date.now() - pausedAt));
    } finally {
      redis.resume();
    }
    const resumedAt = Date.now();
    await Promise.all(broadcasts);
    await Promise.all(sends);
    await until('every process to report that Redis answers again', () => cluster.nodes.every((node) => storeReports(node.name, /answers again/, since).length > 0));
    await delivered(all, [1, 2, 3].map((index) => base + index * perNode), RUN.messages);

    for (const observed of all) {
      const numbers = observed.numbered.map((message) => message.n);
      // Three processes broadcast at once: each one's numbers arrive in its order, all of them once.
      expect([...numbers].sort((a, b) => a - b), observed.transport).toEqual(range(base + 1, 3 * perNode));
      for (const index of [0, 1, 2]) {
        const own = observed.numbered.filter((message) => message.node === `node-${index}`).map((message) => message.n);
        expect(own, `${observed.transport} from node-${index}`).toEqual(range(base + index * perNode + 1, perNode));
      }
      expect(handedOver(observed), observed.transport).toEqual(range(1, RUN.messages));
      expect(observed.gaps, observed.transport).toEqual([]);
      // A spike: what was broadcast at the stall's start arrived only once Redis ran again.
      const slowest = Math.max(...observed.numbered.map((message) => message.arrived - message.at));
      expect(slowest, observed.transport).toBeGreaterThanOrEqual(resumedAt - pausedAt - 500);
    }
    for (const node of cluster.nodes) expect(cluster.running(node.index)).toBe(true);
    // Said plainly, naming Redis, and nothing else went wrong: no command failed, no request was refused.
    const said = cluster.reports.slice(since).flatMap((report) => (report.event === 'error' ? [report.message] : []));
    const where = redis.url.replace(/[.]/g, '\\.');
    for (const message of said) {
      expect(message).toMatch(new RegExp(`^Redis at ${where} (has not answered .+ for \\d+ ms; still waiting \\(nothing is dropped\\)|answers again, after \\d+ ms)$`));
    }
  }, TEST_TIMEOUT);

  it('§6.2 §3.6.lost tells each client of a Redis restarted without its data with one gap (unknown-epoch), without a reconnect loop, and goes on both ways', async () => {
    const all = TRANSPORTS.map((transport) => observe(transport));
    await openAll(all);
    const sent = all.map((observed) => observed.client.send({ up: 1 }));
    await cluster.broadcast(0, 1, 70_001);
    await Promise.all(sent);
    await delivered(all, [70_001], 1);
    const opensBefore = all.map((observed) => observed.opens.length);
    const sids = all.map((observed) => observed.client.sessionId);
    const reportsBefore = cluster.reports.length;

    await redis.restart();
    await until(
      'a gap at every client',
      () => all.every((observed) => observed.gaps.length > 0),
      () => progress(all),
    );
    const base = 70_100;
    const sends: Promise<void>[] = [];
    for (let n = 1; n <= RUN.messages; n++) {
      await cluster.broadcast(n % 3, 1, base + n);
      for (const observed of all) sends.push(observed.client.send({ after: n }));
    }
    await Promise.all(sends);
    await delivered(all, [base + RUN.messages], RUN.messages, 'after');
    // One reconnection is the gap's. A second may follow: each process's reader sees the new epoch on
    // its own, and the process a client reconnected to may close its stream only after that. Once
    // every process has said so (after closing its connections for it), nothing closes one for the
    // lost history any more: the window below starts there, so a process that adopts the new epoch
    // late cannot close a connection inside it. A loop of connections refused or closed at once
    // comes back every 250 ms at most (CLIENT_OPTIONS), so from the restart through the messages and
    // the quiet window it shows as many more opens. A loop paced by the heartbeat (15 s) would not
    // show within this window.
    await until(
      'every process to tell of the lost history',
      () => nodesReporting(cluster, 'history-lost', reportsBefore).size === cluster.nodes.length,
      () => [...nodesReporting(cluster, 'history-lost', reportsBefore)],
    );
    await until(
      'every client open on the new epoch',
      () => all.every((observed) => observed.client.state === 'open'),
      () => progress(all),
    );
    const opensSettled = all.map((observed) => observed.opens.length);
    await elapse(RUN.quiet);

    all.forEach((observed, index) => {
      expect(observed.gaps.map((gap) => gap.reason), observed.transport).toEqual(['unknown-epoch']);
      expect(observed.opens.length - opensBefore[index]!, observed.transport).toBeLessThanOrEqual(2);
      expect(observed.opens.length, observed.transport).toBe(opensSettled[index]);
      // The session went with Redis's data: the cluster created it anew once, under its id
      // (§3.3.same-id). The client may not see that connection's `hello` (resumed: false): a process
      // that sees the new epoch only then closes it, and the next one resumes the new session.
      const after = observed.opens.slice(opensBefore[index]);
      expect(after.map((open) => open.sessionId), observed.transport).toEqual(after.map(() => sids[index]));
      const created = cluster.reports.slice(reportsBefore).filter((report) => report.event === 'connection' && report.session === sids[index]);
      expect(created, observed.transport).toHaveLength(1);
      expect(observed.numbered.filter((message) => message.n > base).map((message) => message.n), observed.transport).toEqual(range(base + 1, RUN.messages));
      expect(handedOver(observed, 'after'), observed.transport).toEqual(range(1, RUN.messages));
    });
    for (const node of cluster.nodes) expect(cluster.running(node.index)).toBe(true);
  }, TEST_TIMEOUT);
});

describe('three processes on one Redis behind the documented nginx: tabs that share a connection (§7.5)', () => {
  /** Long enough for a carrier whose requests reach other processes to be refused several times. */
  const QUIET = Math.max(RUN.quiet, 4_000);

  it.each(['sse', 'long-polling'] as const)(
    '§7.5 keeps the carrier of two tabs on %s and its requests in one process: both tabs stay open, with no reconnect',
    async (transport) => {
      const table = new LockTable();
      const logged = (await nginx.accessLog()).length;
      const tabs = [table.tab(), table.tab()].map((tab) => {
        const client = connect(url, { ...nodeEnvironment, transports: [transport], locks: tab.locks, BroadcastChannel, ...CLIENT_OPTIONS });
        clients.push(client);
        const seen = { tab, client, opens: 0, numbered: [] as number[] };
        client.on('open', () => {
          seen.opens++;
          wakeAll();
        });
        client.on('message', ({ data, event }) => {
          if (event === 'numbered') seen.numbered.push((data as { n: number }).n);
          wakeAll();
        });
        return seen;
      });
      await until('both tabs open', () => tabs.every((seen) => seen.opens > 0));
      expect(tabs.map((seen) => seen.client.sharing).sort()).toEqual(['follower', 'holder']);
      await cluster.broadcast(1, 1, 90_001);
      await until('both tabs to receive a broadcast', () => tabs.every((seen) => seen.numbered.includes(90_001)));
      await elapse(QUIET);
      await cluster.broadcast(2, 1, 90_002);
      await until('both tabs to receive the next', () => tabs.every((seen) => seen.numbered.includes(90_002)));
      expect(tabs.map((seen) => seen.opens)).toEqual([1, 1]);
      expect(tabs.map((seen) => seen.client.sharing).sort()).toEqual(['follower', 'holder']);
      const carrierRequests = (await nginx.accessLog()).slice(logged).filter((entry) => /^\/realtime\/(carrier|carrier-poll|attach)$/.test(entry.uri));
      // Both attaches at least (an SSE carrier is logged only once its stream ends).
      expect(carrierRequests.length).toBeGreaterThanOrEqual(2);
      expect(new Set(carrierRequests.map((entry) => entry.upstreams.at(-1))).size).toBe(1);
      for (const seen of tabs) {
        seen.client.close();
        seen.tab.crash();
      }
    },
    TEST_TIMEOUT,
  );
});
