/**
 * Global setup of the `browser` project: the reference server on loopback, and the network
 * conditions layer in front of it, for the tests that run inside Chromium. They learn the URLs
 * through `inject()`.
 */
import type { TestProject } from 'vitest/node';
import { startNetworkConditions } from '../../demo/network-conditions.mjs';
import { startServer } from '../helpers/start-server.js';

/** The server's heartbeat interval, ms: a dead link is found within twice that. */
const HEARTBEAT = 500;
/** Ms between two numbered ticker messages. */
const TICK = 50;

declare module 'vitest' {
  export interface ProvidedContext {
    /** The realtime endpoint, direct: `http://127.0.0.1:PORT/realtime`. */
    realtimeUrl: string;
    /** The same endpoint through the network conditions layer. */
    proxiedUrl: string;
    /** The conditions layer's control endpoint (see demo/network-conditions.mjs). */
    controlUrl: string;
    /** An endpoint of a server that admits its own origin only, so it refuses the test pages' (§3.2). */
    refusingUrl: string;
    heartbeat: number;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The tests run in a page vitest serves on its own loopback origin, cross-origin to this server
  // (which is same-origin only by default, §3.2): admit loopback pages.
  const started = await startServer({
    heartbeatInterval: HEARTBEAT,
    retry: 50,
    allowedOrigins: (origin) => /^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?$/.test(origin),
  });
  const { server } = started;
  server.on('connection', (session) => {
    void session.send('world', { event: 'greeting' });
  });
  // Echoes each message back as it came, JSON or bytes.
  server.on('message', (data, session) => {
    session.send(data, { event: 'echo' }).catch(() => {});
  });
  let n = 0;
  const ticker = setInterval(() => {
    n += 1;
    server.broadcast({ n }, { event: 'tick' }).catch(() => {});
  }, TICK);

  const refusing = await startServer({ heartbeatInterval: HEARTBEAT, retry: 50 });
  project.provide('refusingUrl', refusing.baseUrl);
  const network = await startNetworkConditions({ target: { port: started.port }, controlPath: '/__network' });
  const proxied = `http://127.0.0.1:${network.port}`;
  project.provide('realtimeUrl', started.baseUrl);
  project.provide('proxiedUrl', `${proxied}/realtime`);
  project.provide('controlUrl', `${proxied}/__network`);
  project.provide('heartbeat', HEARTBEAT);

  return async () => {
    clearInterval(ticker);
    await network.close();
    await started.close();
    await refusing.close();
  };
}
