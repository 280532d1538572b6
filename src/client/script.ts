/**
 * The `<script>` bundle (global `Unbroken`): the ESM entry's API less what only a bundler can use.
 * `BaseClient` and the transport definitions exist so that a bundler leaves out the transports an
 * application does not import; a script tag carries all three anyway, and `connect()` with
 * `transports` names picks among them.
 */
export { Client, connect } from './connect.js';
export { TRANSITIONS } from './events.js';
export { UnbrokenError, isUnbrokenError } from './errors.js';
