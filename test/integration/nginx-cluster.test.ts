/**
 * Three server processes behind nginx running the documented configuration: requests are spread
 * round robin, with no stickiness, over every process, and when one process crashes nginx sends new
 * requests to the others. Delivery across processes needs a shared store and is not tested here:
 * with the in-memory store each process knows only its own sessions and tickets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';

interface NodeInfo {
  name: string;
  pid: number;
  port: number;
}

let cluster: Cluster;
let nginx: Nginx;

beforeAll(async () => {
  cluster = await startCluster(3);
  nginx = await startNginx({ upstreams: cluster.ports });
});

afterAll(async () => {
  await nginx?.stop();
  await cluster?.stopAll();
});

/** Which process answers `GET /node`, asked through nginx. */
async function served(origin: string): Promise<NodeInfo> {
  const response = await fetch(`${origin}/node`);
  expect(response.status).toBe(200);
  return (await response.json()) as NodeInfo;
}

/** `POST P/ticket` through nginx, as a client does before each connection attempt (PROTOCOL.md §3.4). */
async function takeTicket(origin: string): Promise<number> {
  const response = await fetch(`${origin}/realtime/ticket?v=1`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Unbroken': '1' },
    body: '{}',
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * The upstream addresses nginx tried for each of the `count` requests logged after entry `since`, in
 * order. nginx logs a request once it has answered it, so the last line may come just after the answer.
 */
async function routes(since: number, count: number): Promise<string[][]> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const log = (await nginx.accessLog()).slice(since);
    if (log.length >= count || Date.now() > deadline) return log.map((entry) => entry.upstreams);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('three processes behind nginx with the documented config', () => {
  it('spreads plain requests round robin over every process, one after the other', async () => {
    const answers: NodeInfo[] = [];
    for (let i = 0; i < 9; i++) answers.push(await served(nginx.origin));

    const names = answers.map((answer) => answer.name);
    // Each process once in every three consecutive requests, in the same order each time.
    expect(new Set(names.slice(0, 3)).size).toBe(3);
    expect(names.slice(3)).toEqual([...names.slice(0, 3), ...names.slice(0, 3)]);
    const pids = new Map(cluster.nodes.map((node) => [node.name, node.pid]));
    for (const answer of answers) expect(answer.pid).toBe(pids.get(answer.name));
  });

  it('spreads the endpoint requests of the realtime path too: nothing pins a client to a process', async () => {
    const logged = (await nginx.accessLog()).length;
    for (let i = 0; i < 6; i++) expect(await takeTicket(nginx.origin)).toBe(200);

    const tried = await routes(logged, 6);
    expect(tried).toHaveLength(6);
    const ports = tried.map((upstreams) => upstreams.at(-1));
    for (const port of cluster.ports) expect(ports.filter((address) => address === `127.0.0.1:${port}`)).toHaveLength(2);
  });

  it('sends new requests to the other processes once one is killed', async () => {
    const killed = cluster.nodes[1]!;
    const logged = (await nginx.accessLog()).length;
    await cluster.kill(1, 'SIGKILL');
    expect(cluster.running(1)).toBe(false);

    // POSTs first: nginx passes a request that never reached the dead process on to the next one,
    // a POST included, since nothing of it was sent.
    for (let i = 0; i < 3; i++) expect(await takeTicket(nginx.origin)).toBe(200);
    const answers: NodeInfo[] = [];
    for (let i = 0; i < 6; i++) answers.push(await served(nginx.origin));

    const survivors = [cluster.nodes[0]!, cluster.nodes[2]!];
    expect(new Set(answers.map((answer) => answer.pid))).toEqual(new Set(survivors.map((node) => node.pid)));
    // The one request nginx first sent to the dead process: it went on to a live one.
    const dead = `127.0.0.1:${killed.port}`;
    const failedOver = (await routes(logged, 9)).filter((upstreams) => upstreams.includes(dead));
    expect(failedOver).toHaveLength(1);
    expect(failedOver[0]).toHaveLength(2);
    expect(failedOver[0]![0]).toBe(dead);
  });

  it('restarts a killed process on its port, as a new process', async () => {
    const before = cluster.nodes[1]!;
    const after = await cluster.restart(1);

    expect(after.port).toBe(before.port);
    expect(after.pid).not.toBe(before.pid);
    expect(cluster.running(1)).toBe(true);
    // Asked directly: nginx skips a process for fail_timeout (10 s) after it failed.
    expect(await served(after.origin)).toEqual({ name: 'node-1', pid: after.pid, port: after.port });
  });
});
