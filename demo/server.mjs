// The demo: one command serves the page and the realtime endpoint on embedded defaults.
//   npm run demo            → http://localhost:8080
//   PORT=3000 npm run demo  → another port; HOST=0.0.0.0 to try it from a phone on your network
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from '../dist/server.mjs';

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
const root = new URL('..', import.meta.url);

const files = {
  '/': ['demo/index.html', 'text/html; charset=utf-8'],
  '/demo.css': ['demo/demo.css', 'text/css; charset=utf-8'],
  '/demo.js': ['demo/demo.js', 'text/javascript; charset=utf-8'],
  '/unbroken.iife.min.js': ['dist/unbroken.iife.min.js', 'text/javascript; charset=utf-8'],
  '/unbroken.mjs': ['dist/unbroken.mjs', 'text/javascript; charset=utf-8'],
};

const httpServer = http.createServer(async (request, response) => {
  const pathname = new URL(request.url ?? '/', 'http://demo').pathname;
  const file = files[pathname];
  if (!file) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  try {
    const body = await readFile(new URL(file[0], root));
    response.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' }).end(body);
  } catch {
    response.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot read ${file[0]}: run npm run build`);
  }
});

const realtime = createServer({ path: '/realtime' }).attach(httpServer);

// The classic example: greet each new session, answer each message.
realtime.on('connection', (session) => {
  void session.send('world', { event: 'greeting' });
});
realtime.on('message', (data, session) => {
  void session.send({ echo: data, reply: 'server: reply' }, { event: 'echo' });
});
realtime.on('error', (error) => console.error('realtime:', error));

// A numbered ticker: the page counts lost and duplicated messages from these numbers.
let tick = 0;
const ticker = setInterval(() => {
  tick += 1;
  void realtime.broadcast({ n: tick, at: Date.now() }, { event: 'tick' });
}, 250);

httpServer.listen(port, host, () => {
  const shown = host === '127.0.0.1' || host === '0.0.0.0' ? 'localhost' : host;
  console.log(`unbroken demo: http://${shown}:${port}/`);
});

async function shutdown() {
  clearInterval(ticker);
  await realtime.close();
  httpServer.close();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
