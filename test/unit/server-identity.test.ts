/**
 * The application's `authenticate` hook as the server runs it (PROTOCOL.md §3.5): what counts as a
 * refusal, what says the check cannot be made now (AUTH_UNAVAILABLE), and how often that is reported.
 * End to end over every transport: test/integration/auth.test.ts.
 */
import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { UnbrokenServerError } from '../../src/server/errors.js';
import { AUTH_REPORT_EVERY, AuthReports, authenticateRequest, type Identity } from '../../src/server/identity.js';

const request = {} as http.IncomingMessage;
const now = () => 1_000;
const ignore = (): void => undefined;

describe('authenticateRequest', () => {
  it('refuses on a throw of any other error, as jwt.verify refuses a bad token', async () => {
    const verify = (): null => {
      throw new Error('invalid signature');
    };
    expect(await authenticateRequest(verify, request, undefined, now, ignore)).toBeNull();
  });

  it('passes AUTH_UNAVAILABLE on, also from another copy of the package (by name)', async () => {
    const ours = new UnbrokenServerError('AUTH_UNAVAILABLE', 'the users database is down');
    await expect(authenticateRequest(() => Promise.reject(ours), request, undefined, now, ignore)).rejects.toBe(ours);
    const theirs = Object.assign(new Error('down'), { name: 'UnbrokenServerError', code: 'AUTH_UNAVAILABLE' });
    const otherCopy = (): null => {
      throw theirs;
    };
    // As this copy's error, so that the server's `error` event always carries one class.
    const passed = await authenticateRequest(otherCopy, request, undefined, now, ignore).then(
      () => null,
      (error: unknown) => error,
    );
    expect(passed).toBeInstanceOf(UnbrokenServerError);
    expect(passed).toMatchObject({ code: 'AUTH_UNAVAILABLE', message: 'down', cause: theirs });
  });

  it('refuses on a thrown value that throws when read: a code getter, a revoked proxy', async () => {
    const codeThrows = Object.defineProperty(new Error('odd'), 'code', {
      get() {
        throw new Error('not readable');
      },
    });
    const revoked = Proxy.revocable(new Error('gone'), {});
    revoked.revoke();
    for (const thrown of [codeThrows, revoked.proxy]) {
      const check = (): null => {
        throw thrown;
      };
      expect(await authenticateRequest(check, request, undefined, now, ignore)).toBeNull();
    }
  });

  it('refuses an identity whose fields cannot be read (a getter or proxy that throws)', async () => {
    // Awaited, so `then` is read first: only the identity's own fields throw.
    const throwing = new Proxy({}, {
      get(_target, key) {
        if (key === 'then') return undefined;
        throw new Error('not readable');
      },
    });
    const reported: string[] = [];
    expect(await authenticateRequest(() => throwing as Identity, request, undefined, now, (error) => reported.push(error.code))).toBeNull();
    expect(reported).toEqual(['INVALID_IDENTITY']);
  });

  it('refuses what is neither an identity nor a refusal, and reports it as INVALID_IDENTITY: nothing else would say why every user is refused', async () => {
    const at = Date.UTC(2026, 11, 4);
    const clock = () => at;
    const inAnHour = at + 3_600_000;
    const cases: [unknown, string][] = [
      [{ id: 42 }, 'expects id to be a string of 1–256 characters, got number'],
      [{ id: '' }, 'expects id to be a string of 1–256 characters, got 0 characters'],
      [{ id: '42', expiresAt: Math.floor(inAnHour / 1000) }, `expects expiresAt in ms since the epoch, got ${Math.floor(inAnHour / 1000)}: seconds, or a duration?`],
      [{ id: '42', expiresAt: 3_600_000 }, 'expects expiresAt in ms since the epoch, got 3600000: seconds, or a duration?'],
      [{ id: '42', expiresAt: 0 }, 'expects expiresAt in ms since the epoch, got 0: seconds, or a duration?'],
      [{ id: '42', expiresAt: new Date(inAnHour) }, 'expects expiresAt to be ms since the epoch, got a Date'],
      [{ id: '42', expiresAt: String(inAnHour) }, 'expects expiresAt to be ms since the epoch, got string'],
      ['alice', 'expects an object { id, expiresAt? }, got string'],
      [true, 'expects an object { id, expiresAt? }, got boolean'],
    ];
    for (const [returned, why] of cases) {
      const reported: UnbrokenServerError[] = [];
      expect(await authenticateRequest(() => returned as Identity, request, undefined, clock, (error) => reported.push(error))).toBeNull();
      expect(reported.map(({ code, message }) => ({ code, message }))).toEqual([{ code: 'INVALID_IDENTITY', message: `authenticate returned no identity (${why}): the client is refused` }]);
    }
    // A refusal (any falsy value: `return user && {…}`), and an identity that expired already (a stale
    // token let through), are no fault; nor is a clock of the application's own, near 0.
    const reported: unknown[] = [];
    for (const returned of [null, undefined, false, '', 0, { id: '42', expiresAt: at - 1 }]) {
      expect(await authenticateRequest(() => returned as Identity, request, undefined, clock, (error) => reported.push(error))).toBeNull();
    }
    expect(reported).toEqual([]);
    expect(await authenticateRequest(() => ({ id: '42', expiresAt: inAnHour }), request, undefined, clock, (error) => reported.push(error))).toEqual({ id: '42', expiresAt: inAnHour });
    expect(await authenticateRequest(() => ({ id: '42', expiresAt: 60_000 }), request, undefined, () => 5, (error) => reported.push(error))).toEqual({ id: '42', expiresAt: 60_000 });
    expect(reported).toEqual([]);
  });
});

describe('AUTH_UNAVAILABLE reports', () => {
  it('reports the first at once, then at most one per interval, counting the ones held back', () => {
    let clock = 0;
    const reported: string[] = [];
    const reports = new AuthReports(() => clock, (error) => reported.push(error.message));
    const error = new UnbrokenServerError('AUTH_UNAVAILABLE', 'down');
    reports.add(error);
    for (let n = 0; n < 1_000; n++) reports.add(error);
    expect(reported).toEqual(['down']);
    clock += AUTH_REPORT_EVERY - 1;
    reports.add(error);
    expect(reported).toHaveLength(1);
    clock += 1;
    reports.add(error);
    expect(reported).toEqual(['down', 'down (and 1001 more since the last report)']);
  });

  it('counts each code apart: a flood of one does not hold back the first of another', () => {
    const reported: string[] = [];
    const reports = new AuthReports(() => 0, (error) => reported.push(`${error.code} ${error.message}`));
    for (let n = 0; n < 3; n++) reports.add(new UnbrokenServerError('AUTH_UNAVAILABLE', 'down'));
    reports.add(new UnbrokenServerError('INVALID_IDENTITY', 'no identity'));
    expect(reported).toEqual(['AUTH_UNAVAILABLE down', 'INVALID_IDENTITY no identity']);
  });
});
