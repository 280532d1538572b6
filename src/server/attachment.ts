/**
 * One server's hold on one Node http(s) server (`attach()`): it takes over the `request` and
 * `upgrade` listeners the http server had (as engine.io does), answers what lies under its path, and
 * passes everything else on to them. A server attached later to the same http server (one that
 * replaces a closed one, README "Restarts") takes over this one's listeners the same way, so the
 * listeners form layers: the newest server's outside, the application's innermost.
 */
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';

type UpgradeListener = (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/** What a server's listener says of itself to a server attached after it (see {@link LAYER}). */
interface Layer<L> {
  /** True when `request` is a poll of a connection this server, or one beneath it, must answer though it closed. */
  holdsPoll(request: http.IncomingMessage): boolean;
  /**
   * A server attached after this one, serving `path`, took over its listeners: a closed server of
   * that path, beneath it, that owes no notice lets go (told down every layer).
   */
  wrapped(path: string): void;
  /** True when what this layer passes on reaches a listener of the application's. */
  reachesApplication(): boolean;
  /** Once its http server closed: the listeners it passes everything to, which stand in its place. */
  passesTo(): readonly Layered<L>[] | null;
}

/**
 * Marks a server's listeners with their {@link Layer}, so that a server attached later passes a poll
 * owed a restart notice to the closed server that holds it (§10.2.missed-notice), answers 404 only
 * when no application listener lies beneath, and unwraps the layers of servers that are gone.
 * `Symbol.for`: a listener of another installed copy of the package is recognised too.
 */
const LAYER = Symbol.for('unbroken-realtime.layer');
type Layered<L> = L & { readonly [LAYER]?: Layer<L> };

/**
 * Set on a request or upgrade a server answers (or will: its handlers may answer later), so that no
 * layer around it answers `404` beside it. `Symbol.for`: servers of other copies see it too.
 */
const ANSWERED = Symbol.for('unbroken-realtime.answered');
type Marked = http.IncomingMessage & { [ANSWERED]?: true };

/** `listeners` with the layers of servers that are gone replaced by what they passed to. */
function unwrap<L>(listeners: readonly Layered<L>[]): Layered<L>[] {
  return listeners.flatMap((listener) => {
    const to = listener[LAYER]?.passesTo();
    return to ? unwrap(to) : [listener];
  });
}

/** What an attachment asks of its server. */
export interface AttachedServer {
  /** Answers a request under the server's path; false for any other. */
  handleRequest(request: http.IncomingMessage, response: http.ServerResponse): boolean;
  /** Answers an upgrade under the server's path; false for any other. */
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** True when `request` continues a connection the server holds and must answer itself, though another server answers its path now. */
  holdsPoll(request: http.IncomingMessage): boolean;
  /** A server attached later, serving `path`, took over this attachment's listeners. */
  wrapped(attachment: Attachment, path: string): void;
  /** The path the server answers under. */
  readonly path: string;
}

/**
 * The attachments on each http server, told in the order they were made when it closes: one `close`
 * listener per http server, however many servers replaced one another on it (restarts in place).
 */
const attachedTo = new WeakMap<http.Server | https.Server, Set<Attachment>>();

export class Attachment {
  readonly httpServer: http.Server | https.Server;
  /**
   * Null once the server is let go — the http server closed, or a server attached later answers for
   * this spent one (§10.2): its listeners only pass requests on.
   */
  #server: AttachedServer | null;
  readonly #onRequest: Layered<http.RequestListener>;
  readonly #onUpgrade: Layered<UpgradeListener>;
  /** Null once let go: a layer a later server still passes through holds nothing of the server. */
  #closed: ((attachment: Attachment) => void) | null;

  /** Takes over `httpServer`'s listeners for `server`; `closed` is called when the http server closes. */
  constructor(httpServer: http.Server | https.Server, server: AttachedServer, closed: (attachment: Attachment) => void) {
    this.httpServer = httpServer;
    this.#server = server;
    // Upgrades are taken over as requests are, so that a server attached later answers its path
    // before the listeners that were there.
    const requestListeners = httpServer.listeners('request') as Layered<http.RequestListener>[];
    const upgradeListeners = httpServer.listeners('upgrade') as Layered<UpgradeListener>[];
    httpServer.removeAllListeners('request');
    httpServer.removeAllListeners('upgrade');
    // Told once they are no longer the http server's, so that one that lets go gives no listener back.
    for (const listener of [...requestListeners, ...upgradeListeners]) listener[LAYER]?.wrapped(server.path);
    const requestLayers = new Beneath(requestListeners);
    const upgradeLayers = new Beneath(upgradeListeners);
    // Asked only where an earlier server is: an application's own listeners cost nothing more.
    const olderHolder = (request: http.IncomingMessage) => requestLayers.holders().find((listener) => listener[LAYER]!.holdsPoll(request));
    const layer = <L>(beneath: Beneath<L>, holdsPoll: Layer<L>['holdsPoll']): Layer<L> => ({
      holdsPoll,
      wrapped: (path) => {
        this.#server?.wrapped(this, path);
        for (const listener of beneath.current()) listener[LAYER]?.wrapped(path);
      },
      reachesApplication: () => beneath.current().some((listener) => listener[LAYER]?.reachesApplication() ?? true),
      passesTo: () => (this.#server === null ? beneath.current() : null),
    });
    this.#onRequest = Object.assign(
      (request: http.IncomingMessage, response: http.ServerResponse) => {
        if (this.#server !== null) {
          const holder = olderHolder(request);
          if (holder) {
            holder.call(httpServer, request, response);
            return;
          }
          if (this.#server.handleRequest(request, response)) {
            (request as Marked)[ANSWERED] = true;
            return;
          }
        }
        for (const listener of requestLayers.current()) listener.call(httpServer, request, response);
        if ((request as Marked)[ANSWERED] !== true && this.#answersNobody(this.#onRequest, 'request')) {
          response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not Found');
        }
      },
      { [LAYER]: layer(requestLayers, (request) => this.#server !== null && (this.#server.holdsPoll(request) || olderHolder(request) !== undefined)) },
    );
    this.#onUpgrade = Object.assign(
      (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        if (this.#server?.handleUpgrade(request, socket, head)) {
          (request as Marked)[ANSWERED] = true;
          return;
        }
        for (const listener of upgradeLayers.current()) listener.call(httpServer, request, socket, head);
        // Other paths belong to other listeners; with none, nobody would ever answer this socket.
        if ((request as Marked)[ANSWERED] !== true && this.#answersNobody(this.#onUpgrade, 'upgrade')) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      },
      { [LAYER]: layer(upgradeLayers, () => false) },
    );
    // §10.2: a closed server keeps answering its path (SERVER_RESTART) until the http server closes.
    this.#closed = closed;
    httpServer.on('request', this.#onRequest);
    httpServer.on('upgrade', this.#onUpgrade);
    let attachments = attachedTo.get(httpServer);
    if (!attachments) {
      const all = new Set<Attachment>();
      attachedTo.set(httpServer, all);
      httpServer.once('close', () => {
        attachedTo.delete(httpServer);
        for (const attachment of [...all]) attachment.#closed?.(attachment);
      });
      attachments = all;
    }
    attachments.add(this);
  }

  /**
   * Lets the server go when a server attached later took over this attachment's listeners: they
   * then pass everything on. False when they are still the http server's, and so answer the path
   * (a closed server's `SERVER_RESTART`, §10.2) until the http server closes or a server replaces it.
   */
  release(): boolean {
    if (this.httpServer.listeners('request').includes(this.#onRequest)) return false;
    this.detach();
    return true;
  }

  /**
   * The http server closed: this server answers nothing more on it, and is let go. Its listeners
   * give way to what they passed to when they are still the http server's; inside a server attached
   * later, they pass every request on until that one's listeners give way in turn, unwrapping them.
   */
  detach(): void {
    this.#server = null;
    this.#closed = null;
    attachedTo.get(this.httpServer)?.delete(this);
    this.#giveBack('request', this.#onRequest);
    this.#giveBack('upgrade', this.#onUpgrade);
  }

  #giveBack<L extends http.RequestListener | UpgradeListener>(event: 'request' | 'upgrade', own: Layered<L>): void {
    const { httpServer } = this;
    if (!httpServer.listeners(event).includes(own)) return;
    httpServer.off(event, own);
    const to = unwrap<L>(own[LAYER]?.passesTo() ?? []);
    for (const listener of [...to].reverse()) httpServer.prependListener(event, listener);
  }

  /**
   * True when a request or upgrade that `own` passed on reached no application listener: nothing
   * beneath it, and nothing beside it on the http server. Only the outermost layer answers then (a
   * layer inside another is not the http server's listener).
   */
  #answersNobody(own: Layered<http.RequestListener> | Layered<UpgradeListener>, event: 'request' | 'upgrade'): boolean {
    if (own[LAYER]!.reachesApplication()) return false;
    const listeners = this.httpServer.listeners(event);
    return listeners.length === 1 && listeners[0] === own;
  }
}

/**
 * The listeners a layer passes on to, with the layers of servers that let go since replaced by what
 * they passed to: a chain of restarts on one http server stays as deep as the servers that still
 * answer something.
 */
class Beneath<L> {
  #listeners: readonly Layered<L>[];
  #holders: readonly Layered<L>[];

  constructor(listeners: readonly Layered<L>[]) {
    this.#listeners = unwrap(listeners);
    this.#holders = this.#listeners.filter((listener) => listener[LAYER] !== undefined);
  }

  current(): readonly Layered<L>[] {
    if (this.#holders.some((listener) => listener[LAYER]!.passesTo() !== null)) {
      this.#listeners = unwrap(this.#listeners);
      this.#holders = this.#listeners.filter((listener) => listener[LAYER] !== undefined);
    }
    return this.#listeners;
  }

  /** The layers of servers among them, which may hold polls. */
  holders(): readonly Layered<L>[] {
    this.current();
    return this.#holders;
  }
}
