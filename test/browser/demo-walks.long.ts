/**
 * The demo page's fallback walks that `npm test` leaves out (it keeps the hanging upgrade, and the
 * whole chain covers a refused upgrade and a buffered stream): each way of falling back on its own,
 * lifted again, with nothing lost or repeated. Run by `npm run chaos`.
 */
import { describe, it } from 'vitest';
import { FALLBACKS, useDemoPage, walkFallback } from './demo-walks.js';

describe('the demo page, every fallback on its own', () => {
  const context = useDemoPage();
  it.each([FALLBACKS.blocked, FALLBACKS.silent, FALLBACKS.buffered])(
    '$conditions: falls back to $transport, returns to websocket when lifted, and loses or repeats nothing',
    (fallback) => walkFallback(context, fallback),
  );
});
