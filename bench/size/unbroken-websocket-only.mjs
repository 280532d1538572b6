// The minimal use of unbroken-minimal.mjs on WebSocket alone: what a bundler keeps of the ESM entry
// when the application never falls back. Bundled by bench/size.mjs.
import { connect } from '../../dist/unbroken-realtime.mjs';

const client = connect('/realtime', { transports: ['websocket'] });
client.on('message', ({ data }) => console.log(data));
client.send('hello').then(() => console.log('acknowledged'));
