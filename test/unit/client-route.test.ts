/**
 * Routing as pure data (PROTOCOL.md §13.3): the first route, the next after a failed connect, after
 * a held-back stream, the upgrade — computed from plain values, with no client and no clock.
 */
import { describe, expect, it } from 'vitest';
import {
  TransportSelector,
  UPGRADE_ROUTE,
  bufferedRoute,
  fallbackRoute,
  firstRoute,
  pick,
  upgradesFrom,
  type AvailableTransport,
} from '../../src/client/transport-selector.js';
import type { TransportName } from '../../src/client/index.js';
import { longPollingTransport } from '../../src/client/transports/long-polling.js';
import { sseTransport } from '../../src/client/transports/sse.js';
import { webSocketTransport } from '../../src/client/transports/websocket.js';

const ALL: TransportName[] = ['websocket', 'sse', 'long-polling'];
const available = (...names: TransportName[]): AvailableTransport[] =>
  names.map((name) => ({ name, make: () => ({ binary: false, send: () => {}, close: () => {} }), bufferable: name === 'sse' }));

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

  it('falls back to the next transport that can run, or to none when the list is exhausted', () => {
    const all = available(...ALL);
    expect(fallbackRoute('websocket', 'refused', all)).toEqual({ name: 'sse', reason: 'refused' });
    expect(fallbackRoute('sse', 'buffered', all)).toEqual({ name: 'long-polling', reason: 'buffered' });
    expect(fallbackRoute('websocket', 'silent', available('websocket', 'long-polling'))).toEqual({ name: 'long-polling', reason: 'silent' });
    expect(fallbackRoute('long-polling', 'refused', all)).toBeNull();
  });

  it('names why the client left a transport by what its definition says a stall means', () => {
    const selector = new TransportSelector([webSocketTransport, sseTransport, longPollingTransport], null, 'http://x/realtime', 0, 0);
    for (const name of ALL) {
      expect(selector.leftReason(name, { kind: 'refused' })).toBe('refused');
      expect(selector.leftReason(name, { kind: 'timeout', linkUp: false })).toBe('timeout');
    }
    // The link came up and no hello followed: a silent upgrade, a held-back event stream, a poll that never came back.
    expect(selector.leftReason('websocket', { kind: 'timeout', linkUp: true })).toBe('silent');
    expect(selector.leftReason('sse', { kind: 'timeout', linkUp: true })).toBe('buffered');
    expect(selector.leftReason('long-polling', { kind: 'timeout', linkUp: true })).toBe('timeout');
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
