// @ts-check
/**
 * Many tabs of one origin, sharing one connection (PROTOCOL.md §7.5) against each holding its own,
 * in the system's headless Chromium, whose HTTP/1.1 pool holds six connections per host:
 *
 *   node bench/tabs.mjs [--tabs 20] [--transport sse|long-polling]     (after npm run build)
 *
 * For each mode — `shared` (the default, `share: true`) then `own` (`share: false`) — it starts a
 * fresh server process (bench/lib/tabs-server.mjs) and a fresh browser context, opens the tabs at
 * once, and measures:
 * - how many tabs reached `open` within OPEN_WINDOW_MS of their opening, and when the last did;
 * - how long a plain `fetch('/ping')` from the last tab takes, given up after PING_CAP_MS;
 * - at steady state (past the server's keep-alive timeout, so that the sockets the page loads left
 *   idle are closed): the TCP connections the browser holds to the server, and its held downstream
 *   requests (`/sse`, `/poll`, `/carrier`, `/carrier-poll`), counted on the server;
 * - the JS heap used by all the tabs together (CDP `Runtime.getHeapUsage`, after a GC in each; a tab
 *   whose page never loaded counts for little), and the server's RSS and heap growth per tab over
 *   its own figures before the first tab (taken once it served the page, so that what the first
 *   request sets up is not counted; RSS moves by whole pages and is the coarser of the two).
 * It prints a markdown table (shared, own, own / shared), writes the figures as JSON to
 * bench/results/tabs-<date>.json, and exports {@link runTabsBench} for other runners.
 * Set CHROMIUM_PATH to use another Chromium binary (the tests read the same variable).
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Ms the tabs have to reach `open`. */
export const OPEN_WINDOW_MS = 10_000;
/** Ms after which the last tab's plain fetch counts as unanswered. */
export const PING_CAP_MS = 5_000;
/** Ms to wait before counting at steady state: past Node's default `keepAliveTimeout` (5 s). */
const SETTLE_MS = 6_000;
/** Samples of the server's counts at steady state, and the ms between two; the median is kept. */
const SAMPLES = 8;
const SAMPLE_EVERY_MS = 250;

const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * @typedef {object} TabsOptions
 * @property {number} [tabs] tabs of the one origin. Default 20.
 * @property {'sse' | 'long-polling'} [transport] the only transport the tabs may use. Default `sse`.
 * @property {(line: string) => void} [progress] where progress lines go. Default stderr.
 */

/**
 * @typedef {object} ServerStats what the server process holds and uses
 * @property {number} connections TCP connections open
 * @property {{ sse: number, poll: number, carrier: number, carrierPoll: number }} held downstream requests in flight
 * @property {number} rss bytes
 * @property {number} heapUsed bytes
 * @property {boolean} gc whether a full GC ran before the figures were taken
 */

/**
 * @typedef {object} ModeFigures the figures of one mode
 * @property {number} opened tabs that reached `open` within OPEN_WINDOW_MS
 * @property {number | null} lastOpenMs when the last of them did, ms after the tabs were opened
 * @property {number | null} pingMs the last tab's plain fetch, ms; `null` when unanswered within PING_CAP_MS
 * @property {string | null} pingFailure why it went unanswered
 * @property {number} connections TCP connections the browser holds to the server at steady state
 * @property {number} held downstream requests held open at steady state, all endpoints together
 * @property {ServerStats['held']} heldBy the same by endpoint
 * @property {number} loaded tabs whose page loaded (a tab's page waits for a connection as its clients do)
 * @property {number} browserHeapUsed bytes of JS heap used by all the tabs together
 * @property {number} serverRssPerTab bytes of server RSS per tab, over the server's own before the first tab
 * @property {number} serverHeapPerTab bytes of server heap per tab, likewise
 * @property {number | null} serverHeapPerOpenTab bytes of server heap per tab that opened (has a session)
 */

/**
 * @typedef {object} TabsResult
 * @property {number} tabs
 * @property {'sse' | 'long-polling'} transport
 * @property {string} browser the Chromium version
 * @property {string} at ISO date of the run
 * @property {ModeFigures} shared
 * @property {ModeFigures} own
 */

/** The Chromium binary: `CHROMIUM_PATH`, else the first candidate that exists. */
function chromiumPath() {
  const path = process.env.CHROMIUM_PATH || CHROMIUM_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!path || !existsSync(path)) throw new Error('no Chromium found: install it (Debian: apt-get install -y chromium) or set CHROMIUM_PATH');
  return path;
}

/** A fresh tabs server process, asked over IPC; `stop()` ends it by its PID. */
async function startTabsServer() {
  const child = fork(fileURLToPath(new URL('lib/tabs-server.mjs', import.meta.url)), [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    child.once('message', (/** @type {{ port: number }} */ message) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the tabs server exited (${code}) before it listened`)));
  });
  let next = 0;
  /** @type {Map<number, (stats: ServerStats) => void>} */
  const waiting = new Map();
  child.on('message', (/** @type {{ id?: number, result?: ServerStats }} */ message) => {
    if (message.id === undefined || !message.result) return;
    waiting.get(message.id)?.(message.result);
    waiting.delete(message.id);
  });
  return {
    origin: `http://127.0.0.1:${port}`,
    /** @returns {Promise<ServerStats>} */
    stats: () =>
      new Promise((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        child.send({ id, command: 'stats' });
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}

/** @param {number} ms */
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {readonly number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? /** @type {number} */ (sorted[mid]) : (/** @type {number} */ (sorted[mid - 1]) + /** @type {number} */ (sorted[mid])) / 2;
}

/**
 * The last tab's plain fetch of `/ping`: ms, or why it had no answer within PING_CAP_MS. A tab whose
 * own page never loaded (its navigation waits for a connection too) has no answer either.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{ ms: number | null, failure: string | null }>}
 */
async function ping(page) {
  const inPage = page
    .evaluate(async (cap) => {
      if (location.pathname !== '/tab.html') return { ms: null, failure: 'the page itself never loaded' };
      const start = performance.now();
      try {
        const text = await (await fetch('/ping', { cache: 'no-store', signal: AbortSignal.timeout(cap) })).text();
        return text === 'pong' ? { ms: performance.now() - start, failure: null } : { ms: null, failure: `answered ${JSON.stringify(text)}` };
      } catch {
        return { ms: null, failure: `no answer within ${cap / 1000} s` };
      }
    }, PING_CAP_MS)
    .catch((/** @type {Error} */ error) => ({ ms: null, failure: error.message.split('\n')[0] ?? 'failed' }));
  const cap = delay(PING_CAP_MS + 1_000).then(() => ({ ms: null, failure: `no answer within ${PING_CAP_MS / 1000} s` }));
  return Promise.race([inPage, cap]);
}

/**
 * One mode: a fresh server and browser context, `tabs` tabs at once, the figures, then both closed.
 * @param {import('playwright-core').Browser} browser
 * @param {{ tabs: number, transport: 'sse' | 'long-polling', share: boolean, progress: (line: string) => void }} mode
 * @returns {Promise<ModeFigures>}
 */
async function measureMode(browser, { tabs, transport, share, progress }) {
  const server = await startTabsServer();
  const context = await browser.newContext();
  try {
    // The server's own figures once it served the page, the bundle and a plain request.
    for (const path of ['/tab.html', '/unbroken-realtime.iife.min.js', '/ping']) await (await fetch(`${server.origin}${path}`)).arrayBuffer();
    const before = await server.stats();
    const pages = await Promise.all(Array.from({ length: tabs }, () => context.newPage()));
    const url = `${server.origin}/tab.html?t=${transport}${share ? '' : '&share=0'}`;
    const start = Date.now();
    const deadline = start + OPEN_WINDOW_MS;
    const left = () => Math.max(1, deadline - Date.now());
    // A tab's own page may wait for a connection as long as its clients do: each tab is watched from
    // the moment its page commits, and not at all when that never happens within the window.
    const opens = await Promise.all(
      pages.map(async (page) => {
        try {
          await page.goto(url, { waitUntil: 'commit', timeout: left() });
          const handle = await page.waitForFunction(
            () => /** @type {{ tab?: { openedAt: number | null } }} */ (/** @type {unknown} */ (window)).tab?.openedAt ?? null,
            null,
            { timeout: left(), polling: 100 },
          );
          return /** @type {number} */ (await handle.jsonValue()) - start;
        } catch {
          return null;
        }
      }),
    );
    const opened = opens.filter((at) => at !== null);
    progress(`  ${share ? 'shared' : 'own'}: ${opened.length}/${tabs} tabs open`);
    const pinged = await ping(/** @type {import('playwright-core').Page} */ (pages.at(-1)));
    progress(`  ${share ? 'shared' : 'own'}: ping ${pinged.ms === null ? pinged.failure : `${pinged.ms.toFixed(1)} ms`}`);

    await delay(SETTLE_MS);
    /** @type {ServerStats[]} */
    const samples = [];
    for (let i = 0; i < SAMPLES; i++) {
      samples.push(await server.stats());
      await delay(SAMPLE_EVERY_MS);
    }
    const after = /** @type {ServerStats} */ (samples.at(-1));
    const heldBy = /** @type {ServerStats['held']} */ (
      Object.fromEntries(Object.keys(before.held).map((name) => [name, median(samples.map((s) => s.held[/** @type {keyof ServerStats['held']} */ (name)]))]))
    );

    let browserHeapUsed = 0;
    let loaded = 0;
    for (const page of pages) {
      if (new URL(page.url()).pathname === '/tab.html') loaded++;
      const cdp = await context.newCDPSession(page);
      await cdp.send('HeapProfiler.collectGarbage').catch(() => undefined);
      browserHeapUsed += (await cdp.send('Runtime.getHeapUsage')).usedSize;
      await cdp.detach();
    }

    return {
      opened: opened.length,
      lastOpenMs: opened.length ? Math.max(.../** @type {number[]} */ (opened)) : null,
      pingMs: pinged.ms,
      pingFailure: pinged.failure,
      connections: median(samples.map((s) => s.connections)),
      held: Object.values(heldBy).reduce((sum, n) => sum + n, 0),
      heldBy,
      loaded,
      browserHeapUsed,
      serverRssPerTab: (after.rss - before.rss) / tabs,
      serverHeapPerTab: (after.heapUsed - before.heapUsed) / tabs,
      serverHeapPerOpenTab: opened.length ? (after.heapUsed - before.heapUsed) / opened.length : null,
    };
  } finally {
    await context.close();
    await server.stop();
  }
}

/**
 * Runs both modes, shared then own, in one Chromium.
 * @param {TabsOptions} [options]
 * @returns {Promise<TabsResult>}
 */
export async function runTabsBench({ tabs = 20, transport = 'sse', progress = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (!Number.isInteger(tabs) || tabs < 1 || tabs > 200) throw new Error(`--tabs expects a whole number from 1 to 200, got ${tabs}`);
  if (transport !== 'sse' && transport !== 'long-polling') throw new Error(`--transport expects sse or long-polling, got ${transport}`);
  if (!existsSync(new URL('../dist/unbroken-realtime.iife.min.js', import.meta.url))) throw new Error('the bench uses the built client: run npm run build first');
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  try {
    progress(`${tabs} tabs on ${transport}, Chromium ${browser.version()}`);
    const shared = await measureMode(browser, { tabs, transport, share: true, progress });
    const own = await measureMode(browser, { tabs, transport, share: false, progress });
    return { tabs, transport, browser: browser.version(), at: new Date().toISOString(), shared, own };
  } finally {
    await browser.close();
  }
}

/** @param {number} bytes */
const mb = (bytes) => `${(bytes / 1_048_576).toFixed(1)} MB`;
/** @param {number} bytes */
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

/**
 * The result as a markdown table.
 * @param {TabsResult} result
 */
export function tabsTable({ tabs, transport, shared, own }) {
  /** @param {ModeFigures} f */
  const pingText = (f) => (f.pingMs === null ? (f.pingFailure ?? 'no answer') : `${f.pingMs.toFixed(1)} ms`);
  /** @param {ModeFigures} f */
  const heldText = (f) => `${f.held} (${Object.entries(f.heldBy).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`).join(', ') || 'none'})`;
  /** @param {number} a @param {number} b */
  const ratio = (a, b) => (a > 0 && b > 0 ? `${(a / b).toFixed(2)}×` : '—');
  /** @type {[string, (f: ModeFigures) => string, string][]} */
  const rows = [
    [`tabs open within ${OPEN_WINDOW_MS / 1000} s`, (f) => `${f.opened} / ${tabs}`, ratio(own.opened, shared.opened)],
    ['last tab open after', (f) => (f.lastOpenMs === null ? '—' : `${Math.round(f.lastOpenMs)} ms`), shared.lastOpenMs && own.lastOpenMs ? ratio(own.lastOpenMs, shared.lastOpenMs) : '—'],
    ["plain fetch('/ping') from the last tab", pingText, shared.pingMs && own.pingMs ? ratio(own.pingMs, shared.pingMs) : '—'],
    ['TCP connections to the server', (f) => String(f.connections), ratio(own.connections, shared.connections)],
    ['held downstream requests', heldText, ratio(own.held, shared.held)],
    ['browser JS heap used, all tabs', (f) => `${mb(f.browserHeapUsed)} (${f.loaded} pages loaded)`, ratio(own.browserHeapUsed, shared.browserHeapUsed)],
    ['server RSS growth per tab', (f) => kb(f.serverRssPerTab), ratio(own.serverRssPerTab, shared.serverRssPerTab)],
    ['server heap growth per tab (per open tab)', (f) => `${kb(f.serverHeapPerTab)} (${f.serverHeapPerOpenTab === null ? '—' : kb(f.serverHeapPerOpenTab)})`, ratio(own.serverHeapPerTab, shared.serverHeapPerTab)],
  ];
  return [
    `| ${tabs} tabs on ${transport} | shared | own | own / shared |`,
    '|---|---|---|---|',
    ...rows.map(([name, cell, r]) => `| ${name} | ${cell(shared)} | ${cell(own)} | ${r} |`),
  ].join('\n');
}

/** True when this file is the program, not imported by another runner. */
const isMain = process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url;

if (isMain) {
  const argv = process.argv.slice(2);
  /** @param {string} name */
  const option = (name) => {
    const index = argv.indexOf(name);
    return index === -1 ? undefined : argv[index + 1];
  };
  const transport = /** @type {'sse' | 'long-polling'} */ (option('--transport') ?? 'sse');
  const result = await runTabsBench({ tabs: Number(option('--tabs') ?? 20), transport });
  console.log(tabsTable(result));
  const dir = new URL('results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`tabs-${result.at.replace(/[:.]/g, '-')}.json`, dir);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`figures: ${fileURLToPath(file)}\n`);
}
