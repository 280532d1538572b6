/**
 * Checks of the built dist/ (run `npm run build` first; `npm test` does). Nothing here imports src/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { parseAst } from 'rollup/parseAst';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BUDGET_FILE,
  GZIP_BUDGET,
  WEBSOCKET_ONLY_BUDGET,
  WEBSOCKET_ONLY_ENTRY,
  bundleMinimal,
  formatReport,
  measure,
  measureBytes,
} from '../../bench/size.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const abs = (file: string): string => fileURLToPath(new URL(file, pathToFileURL(root)));
const read = (file: string): string => readFileSync(abs(file), 'utf8');

const CLIENT_ESM = 'dist/unbroken-realtime.mjs';
const CLIENT_IIFE = 'dist/unbroken-realtime.iife.min.js';
const CLIENT_DTS = 'dist/unbroken-realtime.d.ts';
const SERVER_ESM = 'dist/server.mjs';
const SERVER_DTS = 'dist/server.d.ts';
const REDIS_ESM = 'dist/redis.mjs';
const REDIS_DTS = 'dist/redis.d.ts';
const CLIENT_BUNDLES = [CLIENT_ESM, CLIENT_IIFE] as const;

interface PackageJson {
  main?: string;
  module?: string;
  types?: string;
  browser?: string;
  unpkg?: string;
  exports?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}
const pkg = JSON.parse(read('package.json')) as PackageJson;

// ---------------------------------------------------------------------------------------------
// A small walk over the ESTree AST rollup parses, so that comments (JSDoc in the readable ESM
// bundle may well mention `createServer` or `require(`) never count as code.

interface AstNode {
  type: string;
  [key: string]: unknown;
}

function isAstNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function walk(value: unknown, visit: (node: AstNode) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit);
    return;
  }
  if (!isAstNode(value)) return;
  visit(value);
  for (const key in value) {
    if (key !== 'type') walk(value[key], visit);
  }
}

function literalString(node: unknown): string | undefined {
  return isAstNode(node) && node.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
}

interface CodeFacts {
  /** Sources of static imports, re-exports and dynamic imports (`<dynamic>` when not a literal). */
  imports: string[];
  /** Arguments of `require(…)` calls (`<dynamic>` when not a literal). */
  requires: string[];
  /** Every identifier, property name and string in the code. */
  words: Set<string>;
}

function scan(code: string): CodeFacts {
  const facts: CodeFacts = { imports: [], requires: [], words: new Set() };
  walk(parseAst(code), (node) => {
    switch (node.type) {
      case 'ImportDeclaration':
      case 'ExportAllDeclaration':
      case 'ExportNamedDeclaration':
      case 'ImportExpression':
        if (node.source) facts.imports.push(literalString(node.source) ?? '<dynamic>');
        break;
      case 'CallExpression': {
        const callee = node.callee;
        if (isAstNode(callee) && callee.type === 'Identifier' && callee.name === 'require') {
          const args = Array.isArray(node.arguments) ? node.arguments : [];
          facts.requires.push(literalString(args[0]) ?? '<dynamic>');
        }
        break;
      }
      case 'Identifier':
      case 'PrivateIdentifier':
        if (typeof node.name === 'string') facts.words.add(node.name);
        break;
      case 'Literal':
        if (typeof node.value === 'string') facts.words.add(node.value);
        break;
      case 'TemplateElement': {
        const templateValue = node.value as { cooked?: unknown } | undefined;
        if (typeof templateValue?.cooked === 'string') facts.words.add(templateValue.cooked);
        break;
      }
    }
  });
  return facts;
}

/** Names that only server code (ours or `ws`) has: none may reach a browser bundle. */
const SERVER_ONLY_WORDS = ['createServer', 'WebSocketServer', 'handleUpgrade', 'require'];

// ---------------------------------------------------------------------------------------------

beforeAll(() => {
  const missing = [CLIENT_ESM, CLIENT_IIFE, CLIENT_DTS, SERVER_ESM, SERVER_DTS, REDIS_ESM, REDIS_DTS].filter((file) => !existsSync(abs(file)));
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: run \`npm run build\` before test/build (\`npm test\` does)`);
  }
});

describe('package.json entry points', () => {
  const exportTargets: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') exportTargets.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (typeof value === 'object' && value !== null) Object.values(value).forEach(collect);
  };
  collect(pkg.exports);
  const topLevel = [pkg.main, pkg.module, pkg.types, pkg.browser, pkg.unpkg].filter(
    (path): path is string => typeof path === 'string',
  );
  const paths = [...new Set([...exportTargets, ...topLevel])];

  it('declares exports and types', () => {
    expect(exportTargets.length).toBeGreaterThan(0);
    expect(pkg.types).toBeTypeOf('string');
  });

  it.each(paths)('%s exists', (path) => {
    expect(path.startsWith('./'), `${path} should start with ./`).toBe(true);
    expect(existsSync(abs(path)), `${path} is missing after the build`).toBe(true);
  });

  // TypeScript picks the first matching condition, so `types` must come first in every condition
  // object, and name the declarations of the same entry point.
  const conditionObjects: [string, Record<string, unknown>][] = [];
  const collectConditions = (where: string, value: unknown): void => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
    const record = value as Record<string, unknown>;
    if (Object.keys(record).some((key) => key.startsWith('.'))) {
      for (const [subpath, target] of Object.entries(record)) collectConditions(subpath, target);
      return;
    }
    conditionObjects.push([where, record]);
    for (const [condition, target] of Object.entries(record)) collectConditions(`${where} ${condition}`, target);
  };
  collectConditions('.', pkg.exports);

  it('has a condition object for every entry point except package.json', () => {
    expect(conditionObjects.map(([where]) => where)).toEqual(['.', './server', './redis']);
  });

  it.each(conditionObjects)('exports %s list types first, then code of the same entry', (_where, conditions) => {
    const keys = Object.keys(conditions);
    expect(keys[0]).toBe('types');
    const types = conditions.types;
    expect(typeof types === 'string' && types.endsWith('.d.ts'), `types: ${String(types)}`).toBe(true);
    for (const key of keys.slice(1)) {
      const target = conditions[key];
      expect(typeof target, `${key} points at one file`).toBe('string');
      expect((target as string).replace(/\.mjs$/, '.d.ts'), `${key} and types describe one entry`).toBe(types);
    }
  });
});

describe.each([CLIENT_ESM, CLIENT_IIFE, SERVER_ESM, REDIS_ESM])('source map of %s', (file) => {
  it('carries the content of every source it names (the package ships no src/)', () => {
    const map = JSON.parse(read(`${file}.map`)) as { sources: string[]; sourcesContent?: (string | null)[] };
    expect(map.sources.length).toBeGreaterThan(0);
    expect(map.sourcesContent?.length).toBe(map.sources.length);
    expect(map.sources.filter((_, index) => !map.sourcesContent?.[index])).toEqual([]);
  });
});

describe.each(CLIENT_BUNDLES)('browser bundle %s', (file) => {
  let code = '';
  let facts: CodeFacts = { imports: [], requires: [], words: new Set() };
  beforeAll(() => {
    code = read(file);
    facts = scan(code);
  });

  it('imports nothing: no node: builtin, no ws, no other package', () => {
    expect(facts.imports).toEqual([]);
  });

  it('calls no require()', () => {
    expect(facts.requires).toEqual([]);
  });

  it('contains no server code', () => {
    expect(SERVER_ONLY_WORDS.filter((word) => facts.words.has(word))).toEqual([]);
    for (const word of facts.words) expect(word.startsWith('node:'), `string ${JSON.stringify(word)}`).toBe(false);
  });

  it('was built from no server module and no Node package (sourcemap)', () => {
    const map = JSON.parse(read(`${file}.map`)) as { sources: string[] };
    expect(map.sources.length).toBeGreaterThan(0);
    const offending = map.sources.filter((source) => /(^|\/)src\/server\/|(^|\/)node_modules\/(ws|ioredis|@types\/node)\//.test(source));
    expect(offending).toEqual([]);
  });
});

describe(`minified ${CLIENT_IIFE}`, () => {
  let code = '';
  beforeAll(() => {
    code = read(CLIENT_IIFE);
  });

  it('has no node: import, require( or server name anywhere in its text', () => {
    expect(code).not.toMatch(/\bnode:[a-z_]/);
    expect(code).not.toMatch(/\brequire\s*\(/);
    expect(code).not.toMatch(/(?:from|import|require)\s*\(?\s*["'`]ws["'`]/);
    expect(code).not.toContain('createServer');
    expect(code).not.toContain('WebSocketServer');
  });

  it('defines the global Unbroken in a bare browser-like context, with the ESM exports but those for bundlers', async () => {
    // Only what a browser page has at load time; no require, module, process or Buffer.
    const sandbox: Record<string, unknown> = {
      console,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      queueMicrotask,
      TextEncoder,
      TextDecoder,
      atob,
      btoa,
      URL,
      URLSearchParams,
      AbortController,
    };
    sandbox.window = sandbox;
    sandbox.self = sandbox;
    const context = vm.createContext(sandbox);
    new vm.Script(code, { filename: CLIENT_IIFE }).runInContext(context);

    const global: unknown = context.Unbroken;
    expect(typeof global).toBe('object');
    expect(global).not.toBeNull();

    const esm: Record<string, unknown> = await import(pathToFileURL(abs(CLIENT_ESM)).href);
    // BaseClient and the transport definitions let a bundler leave transports out; a script tag
    // carries all three, and connect() picks among them by name (src/client/script.ts).
    const forBundlers = ['BaseClient', 'webSocketTransport', 'sseTransport', 'longPollingTransport'];
    expect(forBundlers.every((name) => name in esm)).toBe(true);
    expect(Object.keys(global as object).sort()).toEqual(Object.keys(esm).filter((name) => !forBundlers.includes(name)).sort());
  });

  it('keeps every key that another tab or the server reads: only the client’s own names are shortened', () => {
    // Announcements, the leave message and a carrier's end on a tab's own channel cross a
    // BroadcastChannel to tabs that may run the ESM build (PROTOCOL.md §7.5); the ticket, attach and detach bodies go to the server (§3.4, §7.5).
    // rollup.config.mjs shortens the names in INTERNAL_PROPERTIES, which must leave these alone.
    const crossing = [
      /\{t:"opening",linked:/,
      /\{t:"up",id:/,
      /\{t:"gone",id:[\w$#.]+,told:/,
      /\{g:[\w$#.]+\}/,
      /\{t:"leave",id:[\w$#.]+,channels:/,
      /JSON\.stringify\(\{carrier:[\w$#.]+,channels:/,
      /JSON\.stringify\(\{carrier:[\w$#.]+,channel:/,
      /JSON\.stringify\(\{\.\.\.[\w$#.]+,credentials:/,
    ];
    for (const literal of crossing) expect(code).toMatch(literal);
  });

  it(`stays within the size budget: gzip -9 ≤ ${GZIP_BUDGET} B`, () => {
    expect(BUDGET_FILE).toBe(CLIENT_IIFE);
    const report = measure(CLIENT_IIFE);
    console.log(formatReport(report));
    console.log(formatReport(measure(CLIENT_ESM)));
    console.log(`budget: gzip ${report.gzip} / ${GZIP_BUDGET} B (${((100 * report.gzip) / GZIP_BUDGET).toFixed(1)} %)`);
    expect(report.gzip).toBeLessThanOrEqual(GZIP_BUDGET);
  });

  it(`tree-shakes to WebSocket alone: a BaseClient given only webSocketTransport bundles no HTTP transport, gzip -9 ≤ ${WEBSOCKET_ONLY_BUDGET} B`, async () => {
    const [alone, all] = await Promise.all([bundleMinimal(WEBSOCKET_ONLY_ENTRY), bundleMinimal('bench/size/unbroken-minimal.mjs')]);
    const code = new TextDecoder().decode(alone);
    const everything = new TextDecoder().decode(all);
    // Marks of what WebSocket does not need: the SSE endpoint, the long-polling connection header,
    // the shared connection's carrier and its per-tab channels. Each is in the bundle of connect().
    for (const mark of ['/sse', 'X-Unbroken-Connection', '/carrier', '|to|']) {
      expect(everything).toContain(mark);
      expect(code).not.toContain(mark);
    }
    const report = measureBytes(WEBSOCKET_ONLY_ENTRY, alone);
    console.log(`${formatReport(report)} (connect() with every transport: gzip ${measureBytes('all', all).gzip} B)`);
    expect(report.gzip).toBeLessThanOrEqual(WEBSOCKET_ONLY_BUDGET);
  }, 60_000);
});

describe(`declarations ${CLIENT_DTS}`, () => {
  it('are one self-contained file that needs neither Node types nor ws', () => {
    const dts = read(CLIENT_DTS);
    expect(dts).not.toMatch(/\/\/\/\s*<reference\s+types=["']node["']/);
    // TSDoc examples legitimately show `import … from 'unbroken-realtime'`: look at code, not comments.
    const code = dts.replace(/\/\*[\s\S]*?\*\//g, '');
    const imports = [...code.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)].map((match) => match[1]);
    expect(imports).toEqual([]);
  });
});

describe(`declarations ${SERVER_DTS}`, () => {
  it('import only node: builtins: no ws, whose types (@types/ws) consumers do not have', () => {
    const code = read(SERVER_DTS).replace(/\/\*[\s\S]*?\*\//g, '');
    const imports = [...code.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)].map((match) => match[1]);
    const references = [...code.matchAll(/\/\/\/\s*<reference\s+types=["']([^"']+)["']/g)].map((match) => match[1]);
    expect(imports.filter((source) => !source?.startsWith('node:'))).toEqual([]);
    expect(references.filter((name) => name !== 'node')).toEqual([]);
  });
});

describe(`server ${SERVER_ESM}`, () => {
  it('imports only node: builtins and runtime dependencies (never a devDependency)', () => {
    const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    const builtins = new Set(builtinModules);
    const packageName = (specifier: string): string =>
      specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? specifier);
    const offending = scan(read(SERVER_ESM))
      .imports.filter((source) => !source.startsWith('./'))
      .filter((source) => !source.startsWith('node:') && !builtins.has(source))
      .filter((source) => !allowed.has(packageName(source)));
    expect(offending).toEqual([]);
  });

  it('never imports ioredis, an optional peer dependency that only unbroken-realtime/redis needs', () => {
    const packages = scan(read(SERVER_ESM)).imports.filter((source) => source === 'ioredis' || source.startsWith('ioredis/'));
    expect(packages).toEqual([]);
    expect(read(SERVER_DTS)).not.toMatch(/from\s+["']ioredis["']/);
  });

  it('loads in Node, and exports what the README documents: no helper of the wire format', async () => {
    const server: Record<string, unknown> = await import(pathToFileURL(abs(SERVER_ESM)).href);
    expect(Object.keys(server).sort()).toEqual(['MemoryStore', 'UnbrokenServerError', 'UnbrokenTypeError', 'createServer']);
  });
});

describe(`Redis store ${REDIS_ESM}`, () => {
  it('imports only ioredis, node: builtins and the server bundle next to it', () => {
    const imports = scan(read(REDIS_ESM)).imports;
    expect(imports.filter((source) => source !== 'ioredis' && source !== './server.mjs' && !source.startsWith('node:'))).toEqual([]);
    expect(imports).toContain('./server.mjs');
  });

  it('was built from src/server/redis alone: the server code it uses comes from ./server.mjs, not a copy', () => {
    const map = JSON.parse(read(`${REDIS_ESM}.map`)) as { sources: string[] };
    expect(map.sources.filter((source) => !/(^|\/)src\/server\/redis\//.test(source))).toEqual([]);
  });

  it('declares its types with imports of ./server.js and ioredis only', () => {
    const code = read(REDIS_DTS).replace(/\/\*[\s\S]*?\*\//g, '');
    const imports = [...code.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)].map((match) => match[1]);
    expect([...new Set(imports)].sort()).toEqual(['./server.js', 'ioredis']);
  });

  it('loads in Node and throws the server bundle’s own error classes', async () => {
    const redis = (await import(pathToFileURL(abs(REDIS_ESM)).href)) as { RedisStore: new (options: { maxMessages: number }) => unknown };
    const server = (await import(pathToFileURL(abs(SERVER_ESM)).href)) as { UnbrokenTypeError: abstract new () => Error };
    expect(() => new redis.RedisStore({ maxMessages: 0 })).toThrow(server.UnbrokenTypeError);
  });
});
