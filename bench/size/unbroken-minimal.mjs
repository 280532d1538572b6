// A minimal use of unbroken: connect, listen, send. Bundled by bench/size.mjs.
import { connect } from '../../dist/unbroken-realtime.mjs';

const client = connect('/realtime');
client.on('message', ({ data }) => console.log(data));
client.send('hello').then(() => console.log('acknowledged'));
