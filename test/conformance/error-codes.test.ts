/**
 * The code table lives in one place, `ERROR_CODES` (src/protocol/codes.ts); docs/PROTOCOL.md §9 and
 * the README's "Errors" table describe it. This reads both documents and compares them with the code,
 * so a code added, removed or changed in one place and not the others fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/protocol/index.js';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The lines of a markdown document from the heading matching `heading` to the next heading of its level or above. */
function section(markdown: string, heading: RegExp): string[] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => heading.test(line));
  if (start < 0) throw new Error(`no heading matching ${heading}`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const end = lines.findIndex((line, index) => index > start && /^#+\s/.test(line) && /^#+/.exec(line)![0].length <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The body rows of the first markdown table in `lines`, as trimmed cells. */
function tableRows(lines: readonly string[]): string[][] {
  const first = lines.findIndex((line) => line.trim().startsWith('|'));
  if (first < 0) throw new Error('no table');
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.trim().startsWith('|')) break;
    rows.push(line.trim().replace(/^\||\|$/g, '').split('|').map((cell) => cell.trim()));
  }
  return rows;
}

/** The code named in a table's first cell: the first backticked word. */
function codeOf(cell: string): string {
  const match = /`([A-Z_]+)`/.exec(cell);
  if (!match) throw new Error(`expects a backticked code in ${JSON.stringify(cell)}`);
  return match[1]!;
}

const numberOrNone = (cell: string): number | undefined => (cell === '—' ? undefined : Number(cell));

describe('the error code table', () => {
  const codes = Object.keys(ERROR_CODES).sort();

  it('§9 of PROTOCOL.md lists every code once, with the close code, HTTP status and action of ERROR_CODES', () => {
    const rows = tableRows(section(read('docs/PROTOCOL.md'), /^## 9\. /));
    const documented = rows.map((cells) => {
      const [code, close, http, action] = cells;
      return { code: codeOf(code!), close: numberOrNone(close!), http: numberOrNone(http!), action: action! };
    });
    expect(documented.map((row) => row.code).sort()).toEqual(codes);
    for (const row of documented) {
      const info: { action: string; close?: number; http?: number } = ERROR_CODES[row.code as ErrorCode];
      // Codes that only ever reject one `send()` are documented as "(the send)"; the table holds them as fatal.
      const action = row.action === '(the send)' ? 'fatal' : row.action;
      expect({ code: row.code, close: row.close, http: row.http, action }).toEqual({
        code: row.code,
        close: info.close,
        http: info.http,
        action: info.action,
      });
    }
  });

  it('the README "Errors" table names every code of §9, and no other', () => {
    const rows = tableRows(section(read('README.md'), /^##+ Errors\b/));
    const named = new Set(rows.map((cells) => codeOf(cells[0]!)));
    expect([...named].sort()).toEqual(codes);
  });
});
