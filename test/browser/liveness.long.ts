/**
 * The page-lifecycle checks that `npm test` leaves out (lifecycle.ts): `visibilitychange` and
 * `pageshow`, dispatched as the browser would. Run by `npm run chaos`.
 */
import { TRIGGERS, describeLifecycle } from './lifecycle.js';

describeLifecycle([TRIGGERS.visibilitychange, TRIGGERS.pageshow]);
