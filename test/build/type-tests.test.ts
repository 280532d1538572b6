/**
 * The type tests (test/types/*.test-d.ts) run nowhere but in `tsc --noEmit` (`npm run typecheck`, part
 * of `npm test`): vitest does not collect them. This makes sure tsconfig.json keeps covering them, so
 * that a change to its `include`/`exclude` cannot silently turn them off.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const typeTestDir = path.join(root, 'test', 'types');
const typeTests = readdirSync(typeTestDir).filter((file) => file.endsWith('.test-d.ts'));

describe('type tests', () => {
  it('exist for the client and the server', () => {
    expect(typeTests).toEqual(expect.arrayContaining(['client.test-d.ts', 'server.test-d.ts']));
  });

  it.each(typeTests)('test/types/%s is in the program tsc --noEmit checks', (file) => {
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    });
    expect(parsed?.errors ?? []).toEqual([]);
    const files = new Set(parsed?.fileNames.map((name) => path.resolve(name)));
    expect(files.has(path.join(typeTestDir, file))).toBe(true);
  });
});
