// @ts-check
/**
 * The server-scale cases: idle connections held open on one server process (memory per connection)
 * and a broadcast fan-out to many clients (delivery latency), the clients being raw protocol speakers
 * in one other process (bench/lib/scale-clients.mjs).
 */
import { startScaleClients, startServer } from './processes.mjs';
import { SCALE_ROWS } from './rows.mjs';
import { num } from './stats.mjs';
import { FANOUT_CLIENTS, FANOUT_RATE } from './workload.mjs';

/** @typedef {import('./results.mjs').Results} Results */

/**
 * @param {Record<string, Record<string, number[]>>} into
 * @param {string} row
 * @param {Record<string, number>} values
 */
function recordScale(into, row, values) {
  const byMetric = (into[row] ??= {});
  for (const [metric, value] of Object.entries(values)) (byMetric[metric] ??= []).push(value);
}

/** Short pause, so a case starts from a quiet machine. */
export const settle = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Idle connections, then fan-out, of every row of `SCALE_ROWS`, `runs` times, interleaved.
 * @param {Results} results where the figures go (`scale`)
 * @param {{ runs: number, idleConnections: number, fanoutSeconds: number, progress: (message: string) => void }} options
 */
export async function runScaleCases({ scale }, { runs: RUNS, idleConnections: IDLE_N, fanoutSeconds: FANOUT_S, progress }) {
  for (let run = 1; run <= RUNS; run++) {
    for (const row of SCALE_ROWS) {
      if (scale.errors[`idle ${row.id}`]) continue;
      const server = await startServer(row.server, { gc: true, ...(row.transport ? { transport: row.transport } : {}) });
      /** @type {Awaited<ReturnType<typeof startScaleClients>> | null} */
      let clients = null;
      try {
        const before = await server.memory();
        clients = await startScaleClients({ protocol: row.protocol, url: server.url, n: IDLE_N, concurrency: 100 });
        if (clients.failed > 0) throw new Error(`${clients.failed} of ${IDLE_N} connections failed: ${clients.firstError}`);
        await settle(500);
        const after = await server.memory();
        recordScale(scale.idle, row.id, {
          opened: clients.opened,
          connectAllMs: clients.ms,
          rssPerConnection: (after.rss - before.rss) / clients.opened,
          heapPerConnection: (after.heapUsed + after.external - before.heapUsed - before.external) / clients.opened,
        });
        progress(
          `  scale run ${run}/${RUNS} idle       ${row.label.padEnd(22)} ${clients.opened} open in ${num(clients.ms, 0)} ms, ` +
            `RSS ${num((after.rss - before.rss) / clients.opened / 1024, 1)} KiB/conn`,
        );
      } catch (error) {
        scale.errors[`idle ${row.id}`] = error instanceof Error ? error.message : String(error);
        progress(`  scale run ${run}/${RUNS} idle       ${row.label.padEnd(22)} FAILED: ${scale.errors[`idle ${row.id}`]}`);
      } finally {
        await clients?.stop();
        await server.stop();
      }
      await settle(200);
    }
    for (const row of SCALE_ROWS.filter((r) => r.fanout)) {
      if (scale.errors[`fanout ${row.id}`]) continue;
      const server = await startServer(row.server, row.transport ? { transport: row.transport } : {});
      /** @type {Awaited<ReturnType<typeof startScaleClients>> | null} */
      let clients = null;
      try {
        clients = await startScaleClients({ protocol: row.protocol, url: server.url, n: FANOUT_CLIENTS, concurrency: 100 });
        if (clients.failed > 0) throw new Error(`${clients.failed} of ${FANOUT_CLIENTS} connections failed: ${clients.firstError}`);
        await settle(200);
        await clients.reset();
        const sent = await server.fanout(FANOUT_RATE, FANOUT_S);
        await settle(500); // stragglers
        const latency = await clients.latency();
        recordScale(scale.fanout, row.id, {
          p50: latency.p50,
          p99: latency.p99,
          max: latency.max,
          delivered: latency.received / (sent.sent * clients.opened),
          serverCpu: sent.cpuPercent,
          clientCpu: latency.cpuPercent,
        });
        progress(
          `  scale run ${run}/${RUNS} fan-out    ${row.label.padEnd(22)} p50 ${num(latency.p50)} ms p99 ${num(latency.p99)} ms, ` +
            `${latency.received}/${sent.sent * clients.opened} delivered, server CPU ${num(sent.cpuPercent, 0)} %`,
        );
      } catch (error) {
        scale.errors[`fanout ${row.id}`] = error instanceof Error ? error.message : String(error);
        progress(`  scale run ${run}/${RUNS} fan-out    ${row.label.padEnd(22)} FAILED: ${scale.errors[`fanout ${row.id}`]}`);
      } finally {
        await clients?.stop();
        await server.stop();
      }
      await settle(200);
    }
  }
}
