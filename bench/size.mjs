// @ts-check
/**
 * Sizes of the browser bundles: raw, gzip -9 and brotli q11, measured with node:zlib; and of a minimal
 * application (connect, listen, send) bundled and minified with one setting ({@link MINIFY_SETTING})
 * for unbroken and for socket.io-client, side by side.
 *
 *   npm run build && node bench/size.mjs          prints a table, exits 1 when over budget
 *   node bench/size.mjs --json                    prints the measurements as JSON
 *
 * GZIP_BUDGET is the one place the size budget lives; test/build/bundle.test.ts enforces it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/**
 * Budget for `dist/unbroken-realtime.iife.min.js` after gzip -9, in bytes. Raised from 8 KiB to 9
 * KiB when the client gained the stream check (buffering proxies found while connected), liveness
 * from the stream alone, the `schedule` event and the nesting-depth guard; from 9 KiB to 10 KiB
 * when every attempt gained its ticket request and credentials (the `auth` option, answers to
 * `auth` frames), the inbound size limit that skips what it refuses, the bounds on the server's
 * numbers and the spacing of quick polls; from 10 KiB to 13 KiB when the tabs of an origin came to
 * share one connection on SSE and long polling (the election, the carrier, the holder's routing);
 * to 14 KiB when a slow connection attempt came to race the next transport. Lowered to 13.5 KiB
 * when the minified bundle came to shorten the client's internal property names and to inline less,
 * and the client lost code it repeated or never used. Raised by 64 B when the client came to take
 * its transports as definitions (`BaseClient`), which this bundle pays for with about 80 B
 * (`Client` looks the names up; each definition carries its name) and an application bundled on
 * WebSocket alone saves a quarter of its client with (see {@link WEBSOCKET_ONLY_BUDGET}). Lowered
 * by 64 B again when terser came to shorten the listed names the DOM also has, and more of them,
 * and to write arrows as methods (about 120 B). Raised by 128 B when the HTTP transports came to
 * start their next POST at an ack on the stream as well as at the last POST's answer
 * (§7.3.one-request; about 75 B), which took 15 % off a round trip over SSE and long polling in
 * Node. Raised by 128 B when the nesting check came to count opening brackets before it reads every
 * character, the UTF-8 count to take ASCII at once and the outbox to count a message's bytes once
 * (about 105 B), which took about a sixth off the client's JavaScript per round trip
 * (docs/PERFORMANCE.md, "Fewer passes over a message"). Raised by 64 B when the client came to
 * check the options that are amounts (a string, NaN or a negative had left it timing out and
 * reconnecting for ever without a word), to say why a ticket request failed (the cause Node's fetch
 * keeps its reason in) and to keep a tab's place in its group through a handover (about 105 B in
 * all). Raised by 256 B when the tabs that share a connection came to take it from a holder tab
 * whose page hangs without a `freeze` event (PROTOCOL.md §13.6: the question to the holder, the
 * lock taken with `steal`, the holders' terms; about 270 B), which had left every other tab waiting
 * out its heartbeat deadline and its connect deadline, then falling back to the next transport.
 * Raised by 64 B when those tabs came to ask after their holder whenever they heard nothing from it
 * for 5 s (about 60 B with the longer wait for their answer), which had left them without their
 * messages until their heartbeat deadline (30 s by default) when the holder hung while the stream
 * was quiet. The WebSocket-only entry carries neither. Raised by 32 B when a connection that the
 * server's restart notice (§10.2) ended came to report `SERVER_RESTART` on every transport (about
 * 20 B): over SSE and long polling it said `TRANSPORT_ERROR`, as its stream's end did. Raised by
 * 48 B when the holder tab came to say that its carrier ended on each tab's own BroadcastChannel,
 * after the last lines it relayed there (about 60 B): a tab that heard it first on the group's
 * channel reconnected at once with `TRANSPORT_ERROR`, before the server's restart notice reached it,
 * so a restart brought every tab back at once instead of spread over the server's jitter (§10.2).
 * Raised by 176 B when the client came to check the options that are functions (`random: 0.5` threw
 * in a timer, which ends a Node process; `auth: 'token'` was refused as credentials at every
 * attempt; the message names the type alone, as the value may be a secret), to take `null` options,
 * to leave a URL's fragment out (a WebSocket URL with one throws, and the client had settled on long
 * polling for good), and to say when its URL may miss the endpoint (a page's `200` to the ticket
 * request, quoted unless it is an object, which may hold a key; a bare `404`, which had been taken
 * for an unknown session): about 170 B. Raised by 32 B when an `auth` that throws came to be
 * retried with backoff instead of closing the client at its second throw (about 25 B): a network
 * down while the token needed refreshing logged the user out for good and rejected every queued
 * send. Raised by 96 B when a tab came to attach to the shared connection only once it holds its own
 * lock, with one request for it at a time and CARRIER_WAIT at most (about 90 B): the holder took a
 * fresh page whose lock had not been granted yet for a tab that went away and detached its channel,
 * and that tab heard nothing until its heartbeat deadline (30 s). The aim stays 5 KiB.
 */
export const GZIP_BUDGET = 14848;

/**
 * Budget for an application on WebSocket alone (`bench/size/unbroken-websocket-only.mjs`: a
 * `BaseClient` given only `webSocketTransport`), bundled with {@link MINIFY_SETTING}, gzip -9. What
 * it leaves out — SSE, long polling, the HTTP link, the connection the tabs share — is code a
 * bundler drops only while the client imports transports through what it is given. Raised by 64 B
 * with {@link GZIP_BUDGET} for the same change (about 90 B here), and by 64 B again with it when the
 * client came to check its options and say why a ticket request failed (about 85 B here); by 32 B
 * with it when a restart notice came to end a connection as `SERVER_RESTART` on every transport
 * (about 20 B here); by 160 B with it when the client came to check the options that are
 * functions and to say when its URL may miss the endpoint (about 155 B here); by 64 B when an
 * `auth` that throws came to be retried with backoff, the attempt after it following the server's
 * last code (about 50 B here).
 */
export const WEBSOCKET_ONLY_BUDGET = 10624;

/** The entry {@link WEBSOCKET_ONLY_BUDGET} applies to. */
export const WEBSOCKET_ONLY_ENTRY = 'bench/size/unbroken-websocket-only.mjs';

/** The file the budget applies to, relative to the package root. */
export const BUDGET_FILE = 'dist/unbroken-realtime.iife.min.js';

/** Files reported, relative to the package root. */
export const FILES = [BUDGET_FILE, 'dist/unbroken-realtime.mjs'];

const root = new URL('../', import.meta.url);

/**
 * @typedef {{ file: string, raw: number, gzip: number, brotli: number }} SizeReport
 */

/**
 * Measures one file, given relative to the package root.
 * @param {string} file
 * @returns {SizeReport}
 */
export function measure(file) {
  return measureBytes(file, readFileSync(new URL(file, root)));
}

/**
 * Measures bytes, reported under `file`.
 * @param {string} file
 * @param {Uint8Array} bytes
 * @returns {SizeReport}
 */
export function measureBytes(file, bytes) {
  return {
    file,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }).length,
  };
}

/**
 * One line per file: `dist/unbroken-realtime.iife.min.js  raw 5260 B  gzip 2101 B  brotli 1880 B`.
 * @param {SizeReport} report
 * @returns {string}
 */
export function formatReport(report) {
  const cell = (/** @type {string} */ label, /** @type {number} */ n) => `${label} ${String(n).padStart(6)} B`;
  return `${report.file.padEnd(28)}${cell('raw', report.raw)}  ${cell('gzip', report.gzip)}  ${cell('brotli', report.brotli)}`;
}

/** Minimal applications (connect, listen, send), each bundled on its own with {@link MINIFY_SETTING}. */
export const MINIMAL_ENTRIES = [
  { library: 'unbroken', entry: 'bench/size/unbroken-minimal.mjs' },
  { library: 'unbroken, WebSocket only', entry: WEBSOCKET_ONLY_ENTRY },
  { library: 'socket.io-client', entry: 'bench/size/socket.io-minimal.mjs' },
];

/** The one bundling setting applied to every minimal entry. */
export const MINIFY_SETTING =
  'rollup, @rollup/plugin-node-resolve (browser field and export conditions), terser (ecma 2020, module, compress passes 2, mangle, no comments), ES module output';

/**
 * Bundles and minifies one entry, relative to the package root, with {@link MINIFY_SETTING}.
 * @param {string} entry
 * @param {string} [dist] a copy of dist/ to take the entry's `../../dist/…` imports from
 * @returns {Promise<Uint8Array>}
 */
export async function bundleMinimal(entry, dist) {
  const { rollup } = await import('rollup');
  const { default: nodeResolve } = await import('@rollup/plugin-node-resolve');
  const { default: terser } = await import('@rollup/plugin-terser');
  /** @type {import('rollup').Plugin} */
  const fromDist = {
    name: 'bench-dist',
    resolveId: (source) => (dist && source.startsWith('../../dist/') ? `${dist}/${source.slice('../../dist/'.length)}` : null),
  };
  const bundle = await rollup({
    input: fileURLToPath(new URL(entry, root)),
    plugins: [fromDist, nodeResolve({ browser: true, preferBuiltins: false, exportConditions: ['browser', 'import', 'default'] })],
    onwarn: (warning) => {
      throw new Error(`bundling ${entry}: ${warning.message}`);
    },
  });
  const { output } = await bundle.generate({
    format: 'es',
    plugins: [terser({ ecma: 2020, module: true, compress: { passes: 2 }, mangle: true, format: { comments: false } })],
  });
  await bundle.close();
  const chunk = output[0];
  return new TextEncoder().encode(chunk.code);
}

/**
 * Sizes of every minimal entry, bundled with {@link MINIFY_SETTING}.
 * @param {string} [dist] a copy of dist/ to use instead of dist/
 * @returns {Promise<(SizeReport & { library: string })[]>}
 */
export async function measureMinimal(dist) {
  const reports = [];
  for (const { library, entry } of MINIMAL_ENTRIES) reports.push({ library, ...measureBytes(entry, await bundleMinimal(entry, dist)) });
  return reports;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const missing = FILES.filter((file) => !existsSync(new URL(file, root)));
  if (missing.length > 0) {
    console.error(`missing ${missing.join(', ')}: run \`npm run build\` first`);
    process.exit(1);
  }
  const reports = FILES.map(measure);
  const minimal = await measureMinimal();
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ budget: { file: BUDGET_FILE, gzip: GZIP_BUDGET }, reports, minimal, setting: MINIFY_SETTING }, null, 2));
  } else {
    for (const report of reports) console.log(formatReport(report));
    console.log(`minimal connect + listen + send, bundled with: ${MINIFY_SETTING}`);
    for (const report of minimal) console.log(formatReport({ ...report, file: `  ${report.library}` }));
  }
  const budgeted = reports.find((report) => report.file === BUDGET_FILE);
  if (budgeted) {
    const verdict = budgeted.gzip <= GZIP_BUDGET ? 'within' : 'OVER';
    console.error(`${BUDGET_FILE}: gzip ${budgeted.gzip} B, ${verdict} the budget of ${GZIP_BUDGET} B`);
    if (budgeted.gzip > GZIP_BUDGET) process.exitCode = 1;
  }
}
