/**
 * One server's hold on one Node http(s) server (`attach()`): it takes over the `request` and
 * `upgrade` listeners the http server had (as engine.io does), answers what lies under its path, and
 * passes everything else on to them. A server attached later to the same http server (one that
 * replaces a closed one, README "Restarts") takes over this one's listeners the same way.
 */
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';

type UpgradeListener = (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Marks a server's request listener with the question "is this a poll of a connection you hold?",
 * so that a server attached later passes such a poll on to it: a closed server holds the restart
 * notice of a connection that held no poll when it closed (§10.2.missed-notice). `Symbol.for`:
 * another installed copy of the package is asked too.
 */
const HOLDS_POLL = Symbol.for('unbroken-realtime.holdsPoll');
type RequestListener = http.RequestListener & { readonly [HOLDS_POLL]?: (request: http.IncomingMessage) => boolean };

/** What an attachment asks of its server. */
export interface AttachedServer {
  /** Answers a request under the server's path; false for any other. */
  handleRequest(request: http.IncomingMessage, response: http.ServerResponse): boolean;
  /** Answers an upgrade under the server's path; false for any other. */
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** True when `request` continues a connection the server holds and must answer itself, though another server answers its path now. */
  holdsPoll(request: http.IncomingMessage): boolean;
}

export class Attachment {
  readonly httpServer: http.Server | https.Server;
  readonly #previous: readonly RequestListener[];
  readonly #previousUpgrade: readonly UpgradeListener[];
  /** Set once the http server closed: from then on, this one's listeners only pass requests on. */
  #detached = false;
  readonly #onRequest: RequestListener;
  readonly #onUpgrade: UpgradeListener;
  readonly #onClose: () => void;

  /** Takes over `httpServer`'s listeners for `server`; `closed` is called when the http server closes. */
  constructor(httpServer: http.Server | https.Server, server: AttachedServer, closed: (attachment: Attachment) => void) {
    this.httpServer = httpServer;
    const previous: RequestListener[] = httpServer.listeners('request') as http.RequestListener[];
    this.#previous = previous;
    httpServer.removeAllListeners('request');
    // Upgrades are taken over the same way, so that a server attached later answers its path before
    // the listeners that were there.
    this.#previousUpgrade = httpServer.listeners('upgrade') as UpgradeListener[];
    httpServer.removeAllListeners('upgrade');
    // Asked only where an earlier server is: an application's own listeners cost nothing more.
    const holders = previous.filter((listener) => listener[HOLDS_POLL] !== undefined);
    const olderHolder = (request: http.IncomingMessage) => (holders.length === 0 ? undefined : holders.find((listener) => listener[HOLDS_POLL]?.(request) === true));
    this.#onRequest = Object.assign(
      (request: http.IncomingMessage, response: http.ServerResponse) => {
        if (!this.#detached) {
          const holder = olderHolder(request);
          if (holder) {
            holder.call(httpServer, request, response);
            return;
          }
          if (server.handleRequest(request, response)) return;
        }
        this.#passOn(request, response);
      },
      { [HOLDS_POLL]: (request: http.IncomingMessage) => !this.#detached && (server.holdsPoll(request) || olderHolder(request) !== undefined) },
    );
    this.#onUpgrade = (request, socket, head) => {
      if (!this.#detached && server.handleUpgrade(request, socket, head)) return;
      for (const listener of this.#previousUpgrade) listener.call(httpServer, request, socket, head);
      if (this.#previousUpgrade.length === 0 && httpServer.listenerCount('upgrade') === 1) {
        // Other paths belong to other listeners; with none, nobody would ever answer this socket.
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    };
    // §10.2: a closed server keeps answering its path (SERVER_RESTART) until the http server closes.
    this.#onClose = () => closed(this);
    httpServer.on('request', this.#onRequest);
    httpServer.on('upgrade', this.#onUpgrade);
    httpServer.once('close', this.#onClose);
  }

  /**
   * The http server closed: this server answers nothing more on it. Its listeners give way to the
   * ones they took over when they are still the http server's; inside a server attached later, they
   * stay and pass every request on, so each listener of the application still runs once.
   */
  detach(): void {
    this.#detached = true;
    const { httpServer } = this;
    httpServer.off('close', this.#onClose);
    if (httpServer.listeners('request').includes(this.#onRequest)) {
      httpServer.off('request', this.#onRequest);
      for (const listener of [...this.#previous].reverse()) httpServer.prependListener('request', listener);
    }
    if (httpServer.listeners('upgrade').includes(this.#onUpgrade)) {
      httpServer.off('upgrade', this.#onUpgrade);
      for (const listener of [...this.#previousUpgrade].reverse()) httpServer.prependListener('upgrade', listener);
    }
  }

  #passOn(request: http.IncomingMessage, response: http.ServerResponse): void {
    const { httpServer } = this;
    if (this.#previous.length === 0 && httpServer.listenerCount('request') === 1) {
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not Found');
      return;
    }
    for (const listener of this.#previous) listener.call(httpServer, request, response);
  }
}
