// Build of unbroken (`npm run build` = scripts/build.mjs, which runs `rollup -c` into a temporary folder
// named by UNBROKEN_BUILD_DIR and swaps it into dist/; `rollup -c` alone writes to dist/ directly):
//   dist/unbroken-realtime.mjs          browser client, ESM, readable, with sourcemap
//   dist/unbroken-realtime.iife.min.js  browser client, minified IIFE exposing the global `Unbroken`
//                                       (src/client/script.ts: the ESM API less BaseClient and the
//                                       transport definitions, which only a bundler can use)
//   dist/unbroken-realtime.d.ts         bundled declarations of the client
//   dist/server.mjs            Node server, ESM; `ws`, other dependencies and node: builtins external
//   dist/server.d.ts           bundled declarations of the server
//   dist/redis.mjs             the Redis store, ESM; imports `ioredis` and the server's own code from
//                              ./server.mjs (one copy of each class for both entry points)
//   dist/redis.d.ts            its declarations, importing the server's types from ./server.js
// A type error fails the build (noEmitOnError), and so does a client import of node:, `ws` or src/server,
// a `ws` type in the server's public declarations, and a name of INTERNAL_PROPERTIES that is public or
// appears as a string in the client.
// Every sourcemap carries its sources (`sourcesContent`): the package ships dist/ without src/, so a map
// that only named the files would point debuggers at files that are not there.
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import nodeResolve from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

const root = fileURLToPath(new URL('.', import.meta.url));
const serverDir = fileURLToPath(new URL('./src/server/', import.meta.url));
const serverEntry = fileURLToPath(new URL('./src/server/index.ts', import.meta.url));
const redisDir = fileURLToPath(new URL('./src/server/redis/', import.meta.url));

// Where the outputs go: scripts/build.mjs names a fresh temporary folder, so that dist/ is never
// emptied nor half-written while something reads it, and files of an older build that this one no
// longer makes are removed when it swaps the folder in.
const out = process.env.UNBROKEN_BUILD_DIR || 'dist';

const nodeBuiltins = new Set(builtinModules);
const isNodeBuiltin = (id) => id.startsWith('node:') || nodeBuiltins.has(id) || nodeBuiltins.has(id.split('/')[0]);
/** A bare specifier: a package (`ws`, `ioredis`, `ws/lib/…`) or a builtin, not a relative or absolute path. */
const isBare = (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('\0') && !/^[A-Za-z]:[\\/]/.test(id);

/** Fails the client build when it reaches for Node or server code, instead of shipping it to browsers. */
function clientGuard() {
  return {
    name: 'unbroken-client-guard',
    resolveId(source, importer) {
      if (isNodeBuiltin(source) || source === 'ws' || source.startsWith('ws/')) {
        this.error(`the browser client must not import "${source}" (imported by ${importer ?? 'the entry'})`);
      }
      return null;
    },
    load(id) {
      if (id.startsWith(serverDir)) {
        this.error(`the browser client must not include server code: ${id.slice(root.length)}`);
      }
      return null;
    },
  };
}

/**
 * Fails the server's declaration bundle when it references `ws`: the package depends on `ws` but not on
 * `@types/ws`, so a consumer's strict `tsc` would stop at "Could not find a declaration file for module
 * 'ws'". Public server types describe the shapes they need themselves; `ws` stays an implementation detail.
 */
function noWsTypes() {
  const isWs = (id) => /^(@types\/)?ws(\/|$)/.test(id);
  return {
    name: 'unbroken-no-ws-types',
    // Checked on the output: `external` settles bare imports before any resolveId hook would see them.
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk') continue;
        const offending = [
          ...chunk.imports.filter(isWs),
          ...[...chunk.code.matchAll(/\/\/\/\s*<reference\s+types=["']([^"']+)["']/g)].map((match) => match[1]).filter(isWs),
        ];
        if (offending.length > 0) {
          this.error(`${chunk.fileName} must not reference "${offending[0]}": declare the shape it needs in src/server instead`);
        }
      }
    },
  };
}

/**
 * Makes the Redis store's bundle import the server's code from the server's bundle (`target`, next to
 * it in dist/) instead of carrying a copy: `instanceof UnbrokenServerError` then holds for errors of
 * both entry points. src/server/redis reaches server code through `../index.js` only; any other import
 * of it fails the build.
 */
function serverFromItsBundle(target) {
  return {
    name: 'unbroken-server-from-its-bundle',
    async resolveId(source, importer) {
      if (!importer?.startsWith(redisDir) || isBare(source)) return null;
      const resolved = await this.resolve(source, importer, { skipSelf: true });
      if (resolved === null || resolved.external) return resolved;
      if (resolved.id.replace(/\.d\.ts$/, '.ts') === serverEntry) return { id: target, external: true };
      if (!resolved.id.startsWith(redisDir)) {
        this.error(`src/server/redis must import server code from '../index.js' only, not "${source}" (in ${importer.slice(root.length)})`);
      }
      return resolved;
    },
  };
}

/**
 * Property names of the client's own objects — members of its internal classes, its transports'
 * handlers, the hosts its modules share — that terser shortens in the minified IIFE, as it shortens
 * local names. A name belongs here only when nothing outside the bundle reads it: not the public
 * API (the declarations are checked), not a key on the wire, in storage or in a message to another
 * tab (which may run another build of the client: `linked` of the `opening` announcement and
 * `channels` of the `leave` message and of the `POST P/detach` body stay out; test/build/bundle.test.ts
 * checks those keys in the bundle), and never read on an object of the DOM or the language. A name the
 * DOM also has (`dispose`, `cancel`, `watch`…) is shortened too (`builtins: true` below), so it
 * belongs here only when every object the client reads it on is the client's own. The names stay
 * readable in the sources and in the ESM bundle.
 */
const INTERNAL_PROPERTIES = [
  // Attempt
  'named', 'link', 'bufferable', 'lastStreamByteAt', 'ifSuperseded', 'reconnectAt', 'linkUpAt', 'ticketAt', 'startedAt', 'stopProbe', 'helloAt', 'streamCheck', 'requests',
  // StateMachine, Liveness, Moves, StreamCheck, Race, TransportSelector and the hosts they are given
  'attempt', 'rival', 'openAttempt', 'enter', 'current', 'holds', 'environment', 'heartbeat', 'failIfDead', 'sendPing', 'rejectPings', 'checkAwake', 'scheduleProbe', 'checkStream', 'sawMessage',
  'heldBack', 'scheduled', 'begin', 'dropped', 'settle', 'arm', 'follow', 'upgradeProbe', 'route', 'make', 'stalled', 'makeProbe', 'leftReason',
  // Transports: their handlers, the HTTP link, close info
  'onOpen', 'onClose', 'onFrames', 'onReply', 'answered', 'handover', 'skipTo', 'roundTrip', 'live', 'fail', 'deliver', 'header', 'settled', 'messagesOnly',
  // Sharing a connection between tabs: the group, its holder and carrier
  'announce', 'announcement', 'linkUp', 'answer', 'onLinkUp', 'onEnd', 'inbox', 'minLife', 'listen', 'batch', 'suspect', 'watchHolder', 'heard',
  'available', 'dispose', 'cancel', 'opened', 'selector', 'watch', 'detach',
  // Names the DOM has too, on the client's own objects only (see `builtins` below)
  'emit', 'start', 'stop', 'take', 'drop', 'done', 'disposed', 'session', 'isOpen', 'moveTo', 'onLine', 'base', 'tab', 'line', 'release', 'first',
];

/**
 * Fails the build when a name of {@link INTERNAL_PROPERTIES} appears as a string in the client's
 * code (`'name' in object`, `object['name']`): terser renames properties, not strings.
 */
function internalPropertiesAreNotStrings() {
  const names = new Set(INTERNAL_PROPERTIES);
  return {
    name: 'unbroken-internal-properties-are-not-strings',
    renderChunk(code, chunk) {
      const visit = (node) => {
        if (Array.isArray(node)) return node.forEach(visit);
        if (typeof node !== 'object' || node === null) return;
        const text = node.type === 'Literal' ? node.value : node.type === 'TemplateElement' ? node.value.cooked : undefined;
        if (typeof text === 'string' && names.has(text)) {
          this.error(`${chunk.fileName}: "${text}" is a string in the client's code, so it cannot be in INTERNAL_PROPERTIES`);
        }
        for (const key in node) if (key !== 'type') visit(node[key]);
      };
      visit(this.parse(code));
      return null;
    },
  };
}

/** Fails the client's declaration bundle when the public API names one of {@link INTERNAL_PROPERTIES}. */
function internalPropertiesAreNotPublic() {
  return {
    name: 'unbroken-internal-properties-are-not-public',
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk') continue;
        const code = chunk.code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
        const words = new Set(code.match(/[A-Za-z_$][\w$]*/g));
        const found = INTERNAL_PROPERTIES.filter((name) => words.has(name));
        if (found.length > 0) this.error(`${chunk.fileName} names ${found.join(', ')}: public names cannot be in INTERNAL_PROPERTIES`);
      }
    },
  };
}

/** TypeScript → JavaScript; declarations come from rollup-plugin-dts instead. */
const ts = (tsconfig) =>
  typescript({
    tsconfig,
    noEmitOnError: true,
    sourceMap: true,
    // The maps embed the TypeScript sources (see the top of this file).
    inlineSources: true,
    declaration: false,
    declarationMap: false,
    declarationDir: undefined,
  });

const onwarn = (warning, warn) => {
  // An import rollup cannot resolve would silently become an external one: fail instead.
  if (warning.code === 'UNRESOLVED_IMPORT') throw new Error(warning.message);
  warn(warning);
};

/** @type {import('rollup').RollupOptions[]} */
export default [
  // Browser client, ESM: the whole API, for bundlers to tree-shake.
  {
    input: 'src/client/index.ts',
    plugins: [clientGuard(), nodeResolve({ browser: true, preferBuiltins: false }), ts('./tsconfig.client.json')],
    onwarn,
    output: [
      {
        file: `${out}/unbroken-realtime.mjs`,
        format: 'es',
        sourcemap: true,
        generatedCode: 'es2015',
      },
    ],
  },
  // Browser client, minified IIFE for a <script> tag: the same client without what only a bundler
  // can use (src/client/script.ts).
  {
    input: 'src/client/script.ts',
    plugins: [clientGuard(), nodeResolve({ browser: true, preferBuiltins: false }), ts('./tsconfig.client.json')],
    onwarn,
    output: [
      {
        file: `${out}/unbroken-realtime.iife.min.js`,
        format: 'iife',
        name: 'Unbroken',
        esModule: false,
        freeze: false,
        sourcemap: true,
        // No Symbol.toStringTag on the exports object: bytes nobody needs in a <script> global.
        generatedCode: { preset: 'es2015', symbols: false },
        plugins: [
          internalPropertiesAreNotStrings(),
          terser({
            ecma: 2020,
            // The IIFE wrapper already makes every module-level name local, so the default mangle
            // shortens them all. `toplevel`/`module` must stay off here: they would rename or drop
            // the `var Unbroken` global itself. Properties are shortened only when named in
            // INTERNAL_PROPERTIES: mangling them all would rename the public API and wire keys.
            // `builtins: true` lets terser shorten the listed names that the DOM has too; without
            // it terser keeps those, whatever the list says.
            // `inline: 1` inlines simple functions only. Inlining one with arguments (level 2 and up)
            // turns its parameters into assignments and a hoisted `var` in the caller, whose arrow
            // then needs a block body: longer here than the call it saves.
            // `unsafe_arrows` writes the function expressions terser makes itself (the client's
            // sources have none) as arrows, and `unsafe_methods` writes a block-bodied arrow that uses
            // no `this` as a method of its object literal: neither is ever called with `new`, so both
            // are only shorter. A third pass finds what these leave (about 25 B of gzip together). Not
            // `unsafe` (it turns `String(x)` into `""+x`, which throws on a symbol) nor `unsafe_comps`
            // (it turns `!(a <= b)` into `a > b`, which differs on NaN).
            compress: { passes: 3, inline: 1, unsafe_arrows: true, unsafe_methods: true },
            mangle: { properties: { regex: new RegExp(`^(${INTERNAL_PROPERTIES.join('|')})$`), builtins: true } },
            format: { comments: false },
          }),
        ],
      },
    ],
  },
  // Node server.
  {
    input: 'src/server/index.ts',
    // ws, every other dependency and all builtins stay imports; only our own code is bundled.
    external: (id) => isBare(id),
    plugins: [nodeResolve({ preferBuiltins: true }), ts('./tsconfig.server.json')],
    onwarn,
    output: { file: `${out}/server.mjs`, format: 'es', sourcemap: true, generatedCode: 'es2015' },
  },
  // The Redis store: `ioredis` (an optional peer dependency) and the server's bundle stay imports.
  {
    input: 'src/server/redis/index.ts',
    external: (id) => isBare(id),
    plugins: [serverFromItsBundle('./server.mjs'), nodeResolve({ preferBuiltins: true }), ts('./tsconfig.server.json')],
    onwarn,
    output: { file: `${out}/redis.mjs`, format: 'es', sourcemap: true, generatedCode: 'es2015' },
  },
  // Bundled declarations.
  {
    input: 'src/client/index.ts',
    plugins: [clientGuard(), dts({ tsconfig: './tsconfig.client.json' }), internalPropertiesAreNotPublic()],
    output: { file: `${out}/unbroken-realtime.d.ts`, format: 'es' },
  },
  {
    input: 'src/server/index.ts',
    external: (id) => isBare(id),
    plugins: [noWsTypes(), dts({ tsconfig: './tsconfig.server.json' })],
    output: { file: `${out}/server.d.ts`, format: 'es' },
  },
  {
    input: 'src/server/redis/index.ts',
    external: (id) => isBare(id),
    plugins: [serverFromItsBundle('./server.js'), noWsTypes(), dts({ tsconfig: './tsconfig.server.json' })],
    output: { file: `${out}/redis.d.ts`, format: 'es' },
  },
];
