/**
 * Every MUST of docs/PROTOCOL.md has a test. This reads the specification, finds each numbered
 * section whose own text (up to the next heading) says MUST, and checks that some test under
 * test/conformance, test/integration or test/unit has a name citing it (`§6.3`, `§5`). A new MUST
 * without a test, or a section renumbered under its tests, fails here.
 *
 * Test names are read with the TypeScript parser, so a `§` in a comment or in a string that is not
 * a test name does not count, and skipped or todo tests do not count either.
 */
import { readFileSync, readdirSync, type Dirent } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SPEC = join(root, 'docs/PROTOCOL.md');
const TEST_DIRECTORIES = ['test/conformance', 'test/integration', 'test/unit'];
const SELF = fileURLToPath(import.meta.url);

interface Section {
  readonly number: string;
  readonly title: string;
  readonly text: string;
}

/** Numbered sections (`## 6. Streams…`, `### 6.3 Resume`), each with its own text only. */
function readSections(markdown: string): Section[] {
  const sections: Section[] = [];
  let current: { number: string; title: string; lines: string[] } | undefined;
  let fenced = false;
  const flush = (): void => {
    if (current) sections.push({ number: current.number, title: current.title, text: current.lines.join('\n') });
  };
  for (const line of markdown.split(/\r?\n/)) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      current = { number: heading[1]!, title: heading[2]!.trim(), lines: [] };
    } else if (!fenced && /^#{1,6}\s/.test(line)) {
      // An unnumbered heading ends the previous section; its text belongs to no section.
      flush();
      current = undefined;
    } else {
      current?.lines.push(line);
    }
  }
  flush();
  return sections;
}

function testFiles(directory: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return /\.test\.[cm]?[jt]sx?$/.test(entry.name) && path !== SELF ? [path] : [];
  });
}

const TEST_FUNCTIONS = new Set(['it', 'test']);
const NOT_RUN = new Set(['skip', 'todo', 'skipIf', 'runIf']);

/** The names of the tests declared in one file: first arguments of `it(…)`, `test.each(…)(…)` and the like. */
function testNames(path: string): string[] {
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const names: string[] = [];
  const calleeRoot = (expression: ts.Expression, modifiers: string[]): string | undefined => {
    if (ts.isIdentifier(expression)) return expression.text;
    if (ts.isPropertyAccessExpression(expression)) {
      modifiers.push(expression.name.text);
      return calleeRoot(expression.expression, modifiers);
    }
    if (ts.isCallExpression(expression)) return calleeRoot(expression.expression, modifiers);
    return undefined;
  };
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const modifiers: string[] = [];
      const rootName = calleeRoot(node.expression, modifiers);
      const first = node.arguments[0];
      // `it.each(table)` is itself a call whose first argument is the table, not a name.
      const isTableCall = modifiers.includes('each') && ts.isPropertyAccessExpression(node.expression);
      if (
        rootName !== undefined &&
        TEST_FUNCTIONS.has(rootName) &&
        !isTableCall &&
        !modifiers.some((modifier) => NOT_RUN.has(modifier)) &&
        first !== undefined &&
        (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first) || ts.isTemplateExpression(first))
      ) {
        names.push(ts.isTemplateExpression(first) ? first.getText(source) : first.text);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return names;
}

/** True when `name` cites section `number` (`§6.3` cites 6.3, not 6.31 or 6.3.1; `§6` cites 6 only). */
function cites(name: string, number: string): boolean {
  const escaped = number.replace(/\./g, '\\.');
  return new RegExp(`§${escaped}(?![0-9]|\\.[0-9])`).test(name);
}

const sections = readSections(readFileSync(SPEC, 'utf8'));
const withMust = sections.filter((section) => /\bMUST\b/.test(section.text));
const files = TEST_DIRECTORIES.flatMap((directory) => testFiles(join(root, directory)));
const names = files.flatMap((path) => testNames(path).map((name) => ({ path: relative(root, path), name })));

describe('PROTOCOL.md coverage', () => {
  it('finds the numbered sections of the specification and the ones that say MUST', () => {
    const numbers = sections.map((section) => section.number);
    expect(numbers).toEqual(expect.arrayContaining(['3.1', '3.3', '6.3', '8', '12']));
    expect(withMust.map((section) => section.number)).toEqual(expect.arrayContaining(['3.1', '5', '6.3', '8']));
    // A heading's own MUST-free text (e.g. §6, whose rules live in §6.1–§6.4) is not required.
    expect(withMust.map((section) => section.number)).not.toContain('1');
  });

  it('finds test names to check against', () => {
    expect(names.length).toBeGreaterThan(0);
  });

  it.each(withMust.map((section) => [`${section.number} ${section.title}`, section] as const))(
    'section %s, which says MUST, is cited by at least one test name',
    (_label, section) => {
      const citing = names.filter(({ name }) => cites(name, section.number));
      expect(
        citing.length,
        `no test name under ${TEST_DIRECTORIES.join(', ')} cites §${section.number} (${section.title}); ` +
          `name a test after the MUST it checks, e.g. it('§${section.number} …')`,
      ).toBeGreaterThan(0);
    },
  );

  it('every section a test name cites exists in the specification', () => {
    const known = new Set(sections.map((section) => section.number));
    const unknown = names.flatMap(({ path, name }) =>
      [...name.matchAll(/§(\d+(?:\.\d+)*)/g)].map((match) => match[1]!).filter((number) => !known.has(number)).map((number) => `${path}: §${number} in "${name}"`),
    );
    expect(unknown).toEqual([]);
  });
});
