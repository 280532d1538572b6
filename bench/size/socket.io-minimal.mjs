// A minimal use of socket.io-client: connect, listen, send. Bundled by bench/size.mjs.
import { io } from 'socket.io-client';

const socket = io();
socket.on('message', (data) => console.log(data));
socket.emit('message', 'hello', () => console.log('acknowledged'));
