/**
 * Every MUST of docs/PROTOCOL.md has a test. Each sentence of the specification that says MUST is one
 * requirement and ends with a label, `[§6.3.present]`: its section, a dot and a name. This reads the
 * specification and checks that every such sentence carries exactly one label, that labels are unique
 * and sit in the section they name, and that some test under test/conformance, test/integration or
 * test/unit has a name citing each label (`it('§6.3.present …')`). A new MUST without a label or a
 * test, a test citing a label that does not exist, or a section renumbered under its tests fails here.
 *
 * Test names are read with the TypeScript parser, so a `§` in a comment or in a string that is not
 * a test name does not count, and skipped, todo or expected-to-fail tests do not count either.
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

// ---------------------------------------------------------------------------------------------
// The specification

interface Section {
  readonly number: string;
  readonly title: string;
}

/** One sentence of the specification's prose (paragraphs, list items, table rows; not code). */
interface Sentence {
  /** The numbered section it belongs to; undefined under an unnumbered heading. */
  readonly section: string | undefined;
  /** The line of PROTOCOL.md where it starts, from 1. */
  readonly line: number;
  readonly text: string;
  /** True when it says MUST (or MUST NOT) outside a code span. */
  readonly must: boolean;
  /** The labels it carries, `§6.3.present`, without brackets. */
  readonly labels: readonly string[];
}

/** A label as written in the specification: `[§<section>.<name>]`. */
const SPEC_LABEL = /\[(§\d+(?:\.\d+)*\.[a-z][a-z0-9-]*)\]/g;
/** A label cited in a test name, with or without brackets. */
const CITED_LABEL = /§(\d+(?:\.\d+)*)\.([a-z][a-z0-9-]*)/g;
/**
 * Where one sentence ends and the next begins: after `.`, `!` or `?` (and the labels that follow it),
 * before a capital, a parenthesis, emphasis or a code span — but not after "e.g." or "i.e.".
 * Code spans are masked with U+0001 first, so their dots and capitals do not count.
 */
const SENTENCE_BREAK = /(?<!\b(?:e\.g|i\.e)\.)(?<=[.!?](?:\s+\[§[^\]\s]+\])*)\s+(?=[A-Z(*\u0001])/g;

const sectionOf = (label: string): string => /^§(\d+(?:\.\d+)*)\./.exec(label)![1]!;

function readSpecification(markdown: string): { sections: Section[]; sentences: Sentence[] } {
  const sections: Section[] = [];
  const sentences: Sentence[] = [];
  let section: string | undefined;
  let intro = true;
  let fenced = false;
  let block: { section: string | undefined; line: number; lines: string[] } | undefined;

  const flush = (): void => {
    if (!block) return;
    const text = block.lines.join(' ');
    // Where each line of the block starts in `text`, to give each sentence the line it starts on.
    const starts = block.lines.map((_, i) => block!.lines.slice(0, i).reduce((length, line) => length + line.length + 1, 0));
    const lineAt = (offset: number): number => block!.line + starts.filter((start) => start <= offset).length - 1;
    const masked = text.replace(/`[^`]*`/g, (span) => '\u0001'.repeat(span.length));
    const cuts = [0, ...[...masked.matchAll(SENTENCE_BREAK)].map((match) => match.index), text.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const raw = text.slice(cuts[i], cuts[i + 1]);
      const sentence = raw.trim();
      sentences.push({
        section: block.section,
        line: lineAt(cuts[i]! + raw.length - raw.trimStart().length),
        text: sentence,
        must: /\bMUST\b/.test(masked.slice(cuts[i], cuts[i + 1])),
        labels: [...sentence.matchAll(SPEC_LABEL)].map((match) => match[1]!),
      });
    }
    block = undefined;
  };

  markdown.split(/\r?\n/).forEach((line, index) => {
    if (/^\s*```/.test(line)) {
      flush();
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      // The intro, under the title and before the first `##`, explains the key words: not requirements.
      if (heading[1]!.length === 2) intro = false;
      const numbered = /^(\d+(?:\.\d+)*)\.?\s+(.*)$/.exec(heading[2]!);
      section = numbered?.[1];
      if (numbered) sections.push({ number: numbered[1]!, title: numbered[2]!.trim() });
      return;
    }
    const tableRow = /^\s*\|/.test(line);
    if (intro || line.trim() === '') return flush();
    // A list item or a table row starts a block of its own; other lines continue the current one.
    if (tableRow || /^\s*(?:[-*+]|\d+\.)\s/.test(line)) flush();
    block ??= { section, line: index + 1, lines: [] };
    block.lines.push(line.trim());
    if (tableRow) flush();
  });
  flush();
  return { sections, sentences };
}

// ---------------------------------------------------------------------------------------------
// The test names

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
const SUITE_FUNCTIONS = new Set(['describe', 'suite']);
/** Modifiers of tests that do not run, or whose body is expected to fail: they check nothing. */
const NOT_RUN = new Set(['skip', 'todo', 'skipIf', 'runIf', 'fails']);

/**
 * The names of the tests declared in one file: first arguments of `it(…)`, `test.each(…)(…)` and the
 * like, leaving out tests that do not run and everything inside a skipped `describe`.
 */
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
      const runs = !modifiers.some((modifier) => NOT_RUN.has(modifier));
      if (rootName !== undefined && SUITE_FUNCTIONS.has(rootName) && !runs) return;
      const first = node.arguments[0];
      // `it.each(table)` is itself a call whose first argument is the table, not a name.
      const isTableCall = modifiers.includes('each') && ts.isPropertyAccessExpression(node.expression);
      if (
        rootName !== undefined &&
        TEST_FUNCTIONS.has(rootName) &&
        !isTableCall &&
        runs &&
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

/** The labels a test name cites: `§6.3.present` (brackets optional); `§6.3` alone cites a section only. */
function citedLabels(name: string): string[] {
  return [...name.matchAll(CITED_LABEL)].map((match) => `§${match[1]}.${match[2]}`);
}

// ---------------------------------------------------------------------------------------------

const { sections, sentences } = readSpecification(readFileSync(SPEC, 'utf8'));
const requirements = sentences.filter((sentence) => sentence.must);
const labelled = sentences.filter((sentence) => sentence.labels.length > 0);
const files = TEST_DIRECTORIES.flatMap((directory) => testFiles(join(root, directory)));
const names = files.flatMap((path) => testNames(path).map((name) => ({ path: relative(root, path), name })));

const where = (sentence: Sentence): string =>
  `PROTOCOL.md:${sentence.line} "${sentence.text.length > 90 ? `${sentence.text.slice(0, 90)}…` : sentence.text}"`;

describe('PROTOCOL.md coverage', () => {
  it('finds the numbered sections, and the requirements outside code and the intro', () => {
    expect(sections.map((section) => section.number)).toEqual(expect.arrayContaining(['3.1', '3.3', '6.3', '8', '12']));
    expect(requirements.length).toBeGreaterThan(50);
    // The intro's "The key words MUST, MUST NOT…" is not a requirement; fenced code is not prose.
    expect(requirements.every((sentence) => sentence.section !== undefined)).toBe(true);
    expect(requirements.some((sentence) => /key words/.test(sentence.text))).toBe(false);
    // "It MUST NOT send a `hello`…" follows another MUST sentence in the same list item: two requirements.
    expect(requirements.filter((sentence) => sentence.section === '3.1').map((sentence) => sentence.text.slice(0, 14))).toContain(
      'It MUST NOT se',
    );
  });

  it('finds test names to check against', () => {
    expect(names.length).toBeGreaterThan(0);
  });

  it('every sentence that says MUST carries exactly one label', () => {
    const wrong = requirements
      .filter((sentence) => sentence.labels.length !== 1)
      .map((sentence) => `${where(sentence)} carries ${sentence.labels.length === 0 ? 'no label' : sentence.labels.join(', ')}`);
    expect(
      wrong,
      'end each MUST sentence with one label, `[§<section>.<name>]`, a name not used before (PROTOCOL.md, intro)',
    ).toEqual([]);
  });

  it('every label sits on a MUST sentence of the section it names', () => {
    const misplaced = labelled.flatMap((sentence) =>
      sentence.labels
        .filter((label) => !sentence.must || sectionOf(label) !== sentence.section)
        .map((label) =>
          sentence.must
            ? `${label} sits in ${sentence.section === undefined ? 'an unnumbered section' : `§${sentence.section}`}: ${where(sentence)}`
            : `${label} sits on a sentence without MUST: ${where(sentence)}`,
        ),
    );
    expect(misplaced).toEqual([]);
  });

  it('labels are unique', () => {
    const seen = new Map<string, Sentence>();
    const duplicates: string[] = [];
    for (const sentence of labelled) {
      for (const label of sentence.labels) {
        const first = seen.get(label);
        if (first) duplicates.push(`${label} on lines ${first.line} and ${sentence.line}`);
        else seen.set(label, sentence);
      }
    }
    expect(duplicates).toEqual([]);
  });

  it('every requirement is cited by at least one test name', () => {
    const cited = new Set(names.flatMap(({ name }) => citedLabels(name)));
    const uncited = requirements
      .flatMap((sentence) => sentence.labels.map((label) => ({ label, sentence })))
      .filter(({ label }) => !cited.has(label))
      .map(({ label, sentence }) => `${label}: ${where(sentence)}`);
    expect(
      uncited,
      `no test name under ${TEST_DIRECTORIES.join(', ')} cites these requirements; ` +
        `name the test that checks one after its label, e.g. it('§6.3.present …')`,
    ).toEqual([]);
  });

  it('every label a test name cites exists in the specification', () => {
    const known = new Set(labelled.flatMap((sentence) => sentence.labels));
    const unknown = names.flatMap(({ path, name }) =>
      citedLabels(name)
        .filter((label) => !known.has(label))
        .map((label) => `${path}: ${label} in "${name}"`),
    );
    expect(unknown).toEqual([]);
  });

  it('every section a test name cites exists in the specification', () => {
    const known = new Set(sections.map((section) => section.number));
    const unknown = names.flatMap(({ path, name }) =>
      [...name.matchAll(/§(\d+(?:\.\d+)*)/g)]
        .map((match) => match[1]!)
        .filter((number) => !known.has(number))
        .map((number) => `${path}: §${number} in "${name}"`),
    );
    expect(unknown).toEqual([]);
  });
});
