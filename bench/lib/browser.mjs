// @ts-check
/**
 * Headless Chromium for the benchmark pages, driven over the DevTools protocol with nothing enabled
 * but what a call needs: `Runtime.evaluate` on the page.
 *
 * Not Playwright, on purpose: Playwright enables the protocol's Network domain on every page, and
 * Chromium then copies every WebSocket frame and every EventSource event (payload included) to the
 * driver. That cost lands on streams and not on request/response transports: it took about a quarter
 * of the WebSocket and SSE push rates in this bench (2026-12-02: SSE 95k → 125k msg/s, WebSocket
 * 115k → 160k, Socket.IO polling unchanged at about 125k). A user's browser pays none of it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

/** The Chromium binary (`CHROMIUM_PATH` overrides it, as in the tests). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/lib/chromium/chromium';

/**
 * Flags for Debian's Chromium here: no sandbox as root, no traffic beyond loopback, and as little as
 * possible running beside the page (no startup window, extensions, default apps or crash reporting).
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-startup-window',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-component-extensions-with-background-pages',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-breakpad',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--metrics-recording-only',
  '--password-store=basic',
  '--mute-audio',
  // A page in a headless window is never in the background, but make sure no timer is throttled.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  // Features that reach out to Google's servers or preload pages of browser UI.
  '--disable-features=AimEnabled,LensOverlay,OptimizationHints,MediaRouter,NetworkTimeServiceQuerying,PreconnectToSearch',
];

/** How long Chromium may take to start, and a page to load. */
const START_TIMEOUT_MS = 15_000;
const LOAD_TIMEOUT_MS = 10_000;
/** How long one call into a page may take, as for a Node client host (bench/lib/processes.mjs). */
const CALL_TIMEOUT_MS = 180_000;
/** How long Chromium may take to exit after SIGTERM before its process group is killed. */
const EXIT_TIMEOUT_MS = 5_000;

/** Browsers still running, ended on exit. */
/** @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set();
process.on('exit', () => {
  for (const child of running) if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
});

/**
 * True while a process of group `group` runs (a zombie does not count): Chromium's helpers outlive
 * its main process by a moment, and write to the profile meanwhile. Linux only (`/proc`); elsewhere
 * it says none.
 * @param {number} group
 */
function groupRunning(group) {
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After the command's closing parenthesis: state, parent, group.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === group && state !== 'Z') return true;
    } catch {
      // The process ended while it was read.
    }
  }
  return false;
}

/**
 * Resolves with Chromium's DevTools endpoint, printed on its stderr once it listens.
 * @param {import('node:child_process').ChildProcess} child
 * @returns {Promise<string>}
 */
function devtoolsEndpoint(child) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Chromium did not open its DevTools endpoint within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    if (!child.stderr) throw new Error('Chromium has no stderr');
    createInterface({ input: child.stderr }).on('line', (line) => {
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(line);
      if (!found) return;
      clearTimeout(timer);
      resolve(/** @type {string} */ (found[1]));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Chromium exited (${code}) before it listened`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start Chromium at ${CHROMIUM_PATH}: ${error.message}`));
    });
  });
}

/**
 * One DevTools connection: commands by id, to the browser or (with a session id) to a page.
 * @param {string} endpoint
 */
async function devtools(endpoint) {
  const socket = new WebSocket(endpoint, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  let lastId = 0;
  /** @type {Map<number, { resolve(result: any): void, reject(error: Error): void }>} */
  const pending = new Map();
  socket.on('message', (raw) => {
    const reply = /** @type {{ id?: number, result?: unknown, error?: { message: string } }} */ (JSON.parse(String(raw)));
    const waiter = reply.id === undefined ? undefined : pending.get(reply.id);
    if (!waiter || reply.id === undefined) return; // an event: none is enabled but what a command sends back
    pending.delete(reply.id);
    if (reply.error) waiter.reject(new Error(reply.error.message));
    else waiter.resolve(reply.result);
  });
  socket.on('close', () => {
    for (const waiter of pending.values()) waiter.reject(new Error('the DevTools connection closed'));
    pending.clear();
  });
  return {
    /**
     * @param {string} method
     * @param {Record<string, unknown>} [params]
     * @param {string} [sessionId]
     * @returns {Promise<any>}
     */
    send(method, params = {}, sessionId) {
      return new Promise((resolve, reject) => {
        // `ws` drops a message sent on a closed socket without a word: refused here instead.
        if (socket.readyState !== WebSocket.OPEN) return reject(new Error(`the DevTools connection is closed (${method})`));
        const id = ++lastId;
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify(sessionId === undefined ? { id, method, params } : { id, method, params, sessionId }), (error) => {
          if (!error) return;
          pending.delete(id);
          reject(error);
        });
      });
    },
    close: () => socket.close(),
  };
}

/**
 * Resolves once every page of browser UI open now has loaded (at once when there is none), or after
 * {@link LOAD_TIMEOUT_MS}.
 * @param {Awaited<ReturnType<typeof devtools>>} connection
 */
async function browserUiLoaded(connection) {
  const deadline = Date.now() + LOAD_TIMEOUT_MS;
  /** @type {{ targetInfos: { targetId: string, type: string }[] }} */
  const { targetInfos } = await connection.send('Target.getTargets');
  for (const { targetId } of targetInfos.filter((target) => target.type === 'browser_ui')) {
    const { sessionId } = await connection.send('Target.attachToTarget', { targetId, flatten: true });
    for (;;) {
      const reply = await connection.send('Runtime.evaluate', { expression: 'document.readyState', returnByValue: true }, sessionId).catch(() => null);
      if (reply?.result?.value === 'complete' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await connection.send('Target.detachFromTarget', { sessionId });
  }
}

/**
 * Launches headless Chromium; each `open(origin)` is a new tab on the benchmark page, whose
 * `window.bench` methods `call` runs.
 */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'unbroken-bench-chromium-'));
  const child = spawn(CHROMIUM_PATH, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // A group of its own, so that its helper processes are ended with it (by the group's id).
    detached: true,
  });
  running.add(child);
  /** Ends Chromium (SIGTERM, then SIGKILL to its group) and removes its profile. */
  const end = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const pid = child.pid;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-pid, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(-pid, 'SIGKILL'), EXIT_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
      for (const deadline = Date.now() + EXIT_TIMEOUT_MS; groupRunning(pid) && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    running.delete(child);
    // A helper may still be writing its last files: retried (on ENOTEMPTY), and a leftover is only said.
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch((error) =>
      console.error(`could not remove Chromium's profile ${profile}: ${error}`),
    );
  };
  /** @type {Awaited<ReturnType<typeof devtools>>} */
  let connection;
  /** @type {string} */
  let version;
  try {
    connection = await devtools(await devtoolsEndpoint(child));
    version = /** @type {{ product: string }} */ (await connection.send('Browser.getVersion')).product.replace(/^[^/]*\//, '');
    // One window for every page, opened now: each new window loads pages of browser UI (the omnibox
    // popup, in a renderer of its own) that keep a core busy for about two seconds, which a window
    // per page would add to the first cases run in it. Pages are tabs of this window, opened and
    // closed in turn; each one's origin is cleared of stored data before it loads (see `open`).
    await connection.send('Target.createTarget', { url: 'about:blank' });
    await browserUiLoaded(connection);
  } catch (error) {
    await end();
    throw error;
  }
  return {
    version,
    /**
     * @param {string} origin the server (or proxy) that serves the page
     * @returns {Promise<import('./processes.mjs').ClientHost>}
     */
    async open(origin) {
      const { targetId } = await connection.send('Target.createTarget', { url: 'about:blank' });
      const closeTab = () => connection.send('Target.closeTarget', { targetId }).catch(() => undefined);
      try {
        const { sessionId } = await connection.send('Target.attachToTarget', { targetId, flatten: true });
        // The tabs share one profile, and a port may come back in a later case: what an earlier page
        // stored for this origin (a remembered transport) must not steer this one. (Sent to the page:
        // Chromium 156 answers it sent to the browser with an internal error.)
        await connection.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' }, sessionId);
        /** @param {string} expression @param {number} timeout */
        const evaluate = async (expression, timeout) => {
          /** @type {NodeJS.Timeout | undefined} */
          let timer;
          const expired = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timeout: a call into the page took over ${timeout} ms`)), timeout);
          });
          try {
            const reply = await Promise.race([connection.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId), expired]);
            if (reply.exceptionDetails) throw new Error(reply.exceptionDetails.exception?.description ?? reply.exceptionDetails.text);
            return reply.result.value;
          } finally {
            clearTimeout(timer);
          }
        };
        const { errorText } = await connection.send('Page.navigate', { url: `${origin}/bench/page.html` }, sessionId);
        if (errorText) throw new Error(`the benchmark page did not load: ${errorText}`);
        const deadline = Date.now() + LOAD_TIMEOUT_MS;
        // Polled from here: an evaluation that waited in the page would be lost with the navigation.
        while (!(await evaluate(`location.pathname === '/bench/page.html' && 'bench' in globalThis`, LOAD_TIMEOUT_MS).catch(() => false))) {
          if (Date.now() > deadline) throw new Error(`the benchmark page did not load within ${LOAD_TIMEOUT_MS} ms`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return {
          call: (method, ...args) =>
            // A call that timed out leaves its page stuck: the tab is closed with it.
            evaluate(`globalThis.bench[${JSON.stringify(method)}](...${JSON.stringify(args)})`, CALL_TIMEOUT_MS).catch(async (error) => {
              if (String(error).includes('timeout: a call into the page')) await closeTab();
              throw error;
            }),
          stop: closeTab,
          /**
           * Sends a DevTools command to the page (e.g. `Profiler.start`), for profiling a case by hand.
           * @param {string} method
           * @param {Record<string, unknown>} [params]
           */
          devtools: (method, params = {}) => connection.send(method, params, sessionId),
        };
      } catch (error) {
        await closeTab();
        throw error;
      }
    },
    async close() {
      connection.close();
      await end();
    },
  };
}
