// The minimal use of unbroken on WebSocket alone: connect, listen, send with a BaseClient given only
// the WebSocket transport, so that a bundler leaves the HTTP transports out. Bundled by bench/size.mjs.
import { BaseClient, webSocketTransport } from '../../dist/unbroken-realtime.mjs';

const client = new BaseClient('/realtime', { transports: [webSocketTransport] });
client.on('message', ({ data }) => console.log(data));
client.send('hello').then(() => console.log('acknowledged'));
