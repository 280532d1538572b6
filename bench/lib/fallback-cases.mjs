// @ts-check
/**
 * The fallback cases: the client with its default transports behind the loopback proxy of
 * demo/network-conditions.mjs, time from construction to the first message; the baseline is the same
 * client through the same proxy, without the condition, told to use the fallback transport at once.
 */
import { startNetworkConditions } from '../../demo/network-conditions.mjs';
import { startNodeClient, startServer } from './processes.mjs';
import { FALLBACKS } from './rows.mjs';
import { num } from './stats.mjs';

/** @typedef {import('./processes.mjs').ClientHost} ClientHost */
/** @typedef {Awaited<ReturnType<typeof import('./processes.mjs').launchBrowser>>} Browser */
/** @typedef {import('./results.mjs').Results} Results */
/** @typedef {import('./rows.mjs').Env} Env */

/** Longest a fallback may take before it counts as not happening. */
const FALLBACK_TIMEOUT_MS = 15_000;

/**
 * Starts the proxy in front of `port` with `conditions` active. With a proxy that takes one condition
 * at a time, two proxies are chained.
 * @param {number} port
 * @param {readonly string[]} conditions
 */
async function startProxy(port, conditions) {
  /** @type {Awaited<ReturnType<typeof startNetworkConditions>>[]} */
  const proxies = [];
  /** @typedef {import('../../demo/network-conditions.mjs').Condition} Condition */
  const first = await startNetworkConditions({ target: { port } });
  proxies.push(first);
  if (conditions.length > 1 && typeof first.setConditions === 'function') {
    first.setConditions(/** @type {Condition[]} */ ([...conditions]));
  } else {
    let front = first;
    for (const [i, condition] of conditions.entries()) {
      if (i > 0) {
        front = await startNetworkConditions({ target: { port: front.port } });
        proxies.push(front);
      }
      front.setCondition(/** @type {Condition} */ (condition));
    }
  }
  const front = /** @type {(typeof proxies)[number]} */ (proxies[proxies.length - 1]);
  return {
    url: `http://127.0.0.1:${front.port}`,
    close: () => Promise.all(proxies.map((proxy) => proxy.close())),
  };
}

/**
 * Every fallback scenario of `FALLBACKS`, and its baseline, `runs` times, interleaved.
 * @param {Results} all where the times go (`fallbacks`)
 * @param {Env} env
 * @param {Browser | null} browser
 * @param {{ runs: number, progress: (message: string) => void }} options
 */
export async function runFallbackCases(all, env, browser, { runs: RUNS, progress }) {
  const results = (all.fallbacks[env] ??= {});
  for (let run = 1; run <= RUNS; run++) {
    for (const scenario of FALLBACKS) {
      const result = (results[scenario.id] ??= { ms: [], baseline: [], transport: [] });
      if (result.error && result.baselineError) continue;
      for (const baseline of [false, true]) {
        if (baseline ? result.baselineError : result.error) continue;
        const server = await startServer('unbroken');
        const proxy = await startProxy(server.port, baseline ? [] : scenario.conditions);
        /** @type {ClientHost | null} */
        let host = null;
        const started = Date.now();
        try {
          host = env === 'node' ? await startNodeClient() : await /** @type {Browser} */ (browser).open(proxy.url);
          /** @type {import('./drivers.mjs').RowSpec} */
          const spec = baseline ? { kind: 'unbroken', url: proxy.url, transports: [scenario.to] } : { kind: 'unbroken', url: proxy.url };
          const opened = /** @type {{ ms: number, transport: string }} */ (await host.call('open', spec, FALLBACK_TIMEOUT_MS));
          if (baseline) result.baseline.push(opened.ms);
          else {
            result.ms.push(opened.ms);
            result.transport.push(opened.transport);
          }
          progress(`  ${env} run ${run}/${RUNS} fallback   ${scenario.id}${baseline ? ' (baseline)' : ''}: ${num(opened.ms)} ms over ${opened.transport} (${Date.now() - started} ms)`);
        } catch (error) {
          const message = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
          if (baseline) result.baselineError = message;
          else result.error = message;
          progress(`  ${env} run ${run}/${RUNS} fallback   ${scenario.id}${baseline ? ' (baseline)' : ''}: FAILED ${message}`);
        } finally {
          await host?.stop().catch(() => undefined);
          await proxy.close();
          await server.stop();
        }
      }
    }
  }
}
