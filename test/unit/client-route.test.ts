/**
 * Routing as pure data (PROTOCOL.md §13.3): the first route, the next after a failed connect, after
 * a held-back stream, the upgrade — computed from plain values, with no client and no clock.
 */
import { describe, expect, it } from 'vitest';
import {
  UPGRADE_ROUTE,
  bufferedRoute,
  fallbackRoute,
  firstRoute,
  pick,
  upgradesFrom,
  type AvailableTransport,
} from '../../src/client/transport-selector.js';
import type { TransportName } from '../../src/client/index.js';

const ALL: TransportName[] = ['websocket', 'sse', 'long-polling'];
const STALLED = { websocket: 'silent', sse: 'buffered', 'long-polling': 'timeout' } as const;
const available = (...names: TransportName[]): AvailableTransport[] =>
  names.map((name) => ({
    name,
    make: () => ({ binary: false, send: () => {}, close: () => {} }),
    bufferable: name === 'sse',
    stalled: STALLED[name],
  }));

describe('routes (§13.3)', () => {
  it('starts on a remembered transport while its memory is valid and it is listed, else on the first', () => {
    expect(firstRoute(ALL, { name: 'sse', until: 2_000 }, 1_000)).toEqual({ name: 'sse', reason: 'remembered' });
    expect(firstRoute(ALL, { name: 'sse', until: 1_000 }, 1_000)).toEqual({ name: null, reason: 'initial' });
    expect(firstRoute(['websocket'], { name: 'sse', until: 2_000 }, 1_000)).toEqual({ name: null, reason: 'initial' });
    expect(firstRoute(ALL, { name: 'carrier-pigeon', until: 2_000 }, 1_000)).toEqual({ name: null, reason: 'initial' });
    expect(firstRoute(ALL, null, 1_000)).toEqual({ name: null, reason: 'initial' });
  });

  it('picks the route’s transport when it can run, else the first that can', () => {
    expect(pick({ name: 'sse', reason: 'remembered' }, available(...ALL))?.name).toBe('sse');
    expect(pick({ name: 'sse', reason: 'remembered' }, available('websocket', 'long-polling'))?.name).toBe('websocket');
    expect(pick({ name: null, reason: 'initial' }, available('long-polling'))?.name).toBe('long-polling');
    expect(pick({ name: null, reason: 'initial' }, [])).toBeUndefined();
  });

  it('falls back to the next transport that can run, named by what the failed one showed', () => {
    const all = available(...ALL);
    expect(fallbackRoute('websocket', { kind: 'refused' }, all)).toEqual({ name: 'sse', reason: 'refused' });
    expect(fallbackRoute('websocket', { kind: 'timeout', linkUp: false }, all)).toEqual({ name: 'sse', reason: 'timeout' });
    expect(fallbackRoute('websocket', { kind: 'timeout', linkUp: true }, all)).toEqual({ name: 'sse', reason: 'silent' });
    expect(fallbackRoute('sse', { kind: 'timeout', linkUp: true }, all)).toEqual({ name: 'long-polling', reason: 'buffered' });
    expect(fallbackRoute('websocket', { kind: 'refused' }, available('websocket', 'long-polling'))).toEqual({
      name: 'long-polling',
      reason: 'refused',
    });
    expect(fallbackRoute('long-polling', { kind: 'refused' }, all)).toBeNull();
  });

  it('leaves a held-back stream for the next transport, or stays when none is left', () => {
    expect(bufferedRoute('sse', available(...ALL))).toEqual({ name: 'long-polling', reason: 'buffered' });
    expect(bufferedRoute('sse', available('websocket', 'sse'))).toBeNull();
  });

  it('probes for an upgrade only from a transport listed after the upgrade target', () => {
    expect(UPGRADE_ROUTE).toEqual({ name: 'websocket', reason: 'upgrade' });
    expect(upgradesFrom('sse', ALL)).toBe(true);
    expect(upgradesFrom('long-polling', ALL)).toBe(true);
    expect(upgradesFrom('websocket', ALL)).toBe(false);
    expect(upgradesFrom('sse', ['sse', 'websocket'])).toBe(false);
    expect(upgradesFrom('sse', ['sse', 'long-polling'])).toBe(false);
  });
});
