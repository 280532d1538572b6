/**
 * Carriers (docs/PROTOCOL.md §7.5): one held downstream request that carries the connections of
 * several sessions, one channel each, so the tabs of a browser share one of its six HTTP/1.1
 * connections per host instead of taking one each. A carrier is an SSE stream (`GET P/carrier`) or a
 * series of long polls (`GET P/carrier-poll`). It belongs to no session: each session's connection is
 * opened on it with that session's own ticket (`POST P/attach`), so identity, limits and the session
 * core stay exactly as on a stream of its own — a channel is one more {@link Connection}.
 */
import type http from 'node:http';
import {
  CARRIER_HEADER,
  CARRIER_ID_PATTERN,
  CARRIER_VERSION,
  CHANNEL_PATTERN,
  QueryParam,
  carrierLine,
  encodeBatch,
  noticeLine,
  type ErrorCode,
  type TransportName,
} from '../../protocol/index.js';
import type { CloseReason, Connection, ConnectionHandle, TextBatch, TextBytes } from '../connection.js';
import { BodyBytes, readJsonBody, refuseBeforeBody, refuseBody } from '../body.js';
import { UPSTREAM_HEADERS_MISSING, admit, admitRequest, answerError, answerJson, corsHeaders, hasUpstreamHeaders, queryValue } from '../http.js';
import { randomToken } from '../tickets.js';
import type { TransportContext } from './context.js';
import { PollOutlet, sseOutlet, type Outlet } from './carrier-outlets.js';
import { admitByTicket } from './ticket.js';

/** The bounds of a carrier (§7.5, §12.1). */
export const CARRIER_LIMITS = {
  /** Channels one carrier holds at once: a browser's tabs of one site, with room to spare. */
  maxChannels: 64,
  /** Ms a carrier may hold no channel before the server ends it. */
  idleTimeout: 30_000,
  /** Largest body of `POST P/attach` and `POST P/detach`, in bytes. */
  maxBodyBytes: 8_192,
} as const;

/** Why a carrier request whose `v` does not name the carriers' version is refused (§7.5.version). */
const BELOW_CARRIER_VERSION = `a carrier expects v to name ${CARRIER_VERSION}`;

/** One carrier and its channels. */
class Carrier {
  readonly id = randomToken();
  readonly channels = new Map<string, ChannelConnection>();
  outlet: Outlet | null = null;
  #ended = false;
  #idleSince: number;

  constructor(
    readonly transport: Extract<TransportName, 'sse' | 'long-polling'>,
    readonly address: string,
    readonly registry: CarrierRegistry,
  ) {
    this.#idleSince = registry.context.now();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Ends the carrier and every connection on it; `why` goes out as its last notice when it can. */
  end(why: { code: ErrorCode; message: string } | null): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const channel of [...this.channels.values()]) channel.drop();
    if (this.outlet?.end(why && noticeLine({ kind: 'end', ...why }))) this.registry.forgetLater(this);
    else this.registry.forget(this);
  }

  answeredLast(): void {
    this.registry.forget(this);
  }

  /** Called every heartbeat: the carrier's own heartbeat, and its end after a while with no channel. */
  tick(now: number): void {
    if (this.channels.size > 0) this.#idleSince = now;
    else if (now - this.#idleSince >= CARRIER_LIMITS.idleTimeout) this.end({ code: 'TRANSPORT_ERROR', message: 'the carrier held no channel' });
  }

  /** Every channel may write again (the buffer drained, a poll arrived). */
  resume(): void {
    for (const channel of [...this.channels.values()]) channel.resume();
  }

  detach(channel: ChannelConnection): void {
    if (this.channels.get(channel.channel) === channel) this.channels.delete(channel.channel);
  }
}

/** A session's connection on a carrier. */
class ChannelConnection implements Connection {
  readonly transport: TransportName;
  readonly polled: boolean;
  #handle: ConnectionHandle | null = null;
  #closed = false;

  constructor(
    readonly carrier: Carrier,
    readonly channel: string,
  ) {
    this.transport = carrier.transport;
    this.polled = carrier.transport === 'long-polling';
  }

  bind(handle: ConnectionHandle): void {
    this.#handle = handle;
  }

  writable(): boolean {
    return !this.#closed && this.carrier.outlet !== null && this.carrier.outlet.writable();
  }

  write(batch: TextBatch): void {
    if (!this.#closed) this.carrier.outlet?.push(carrierLine(this.channel, batch.text));
  }

  writeTextBytes(batch: TextBytes): void {
    if (!this.#closed) this.carrier.outlet?.push(carrierLine(this.channel, ''), batch.bytes);
  }

  bufferedBytes(): number {
    return this.carrier.outlet?.buffered() ?? 0;
  }

  resume(): void {
    if (!this.#closed) this.#handle?.resume();
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    // What a stream of its own would have said last: the error frame, or the shutdown notice when the
    // core could not write it (a carrier that takes no more now); once is enough.
    if (reason.kind === 'error') this.write({ text: encodeBatch([{ t: 'error', code: reason.code, message: reason.message }]) });
    else if (reason.kind === 'restart' && !reason.written) this.write({ text: reason.notice });
    this.drop();
  }

  /** The link is gone without a word: the carrier ended, or the client detached the channel. */
  drop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.carrier.detach(this);
    // On the next microtask: `close` may run while the hub is still connecting this link.
    queueMicrotask(() => this.#handle?.closed());
  }
}

/** The carriers of one server, and the four endpoints of §7.5. */
export class CarrierRegistry {
  readonly #carriers = new Map<string, Carrier>();
  readonly #timer: NodeJS.Timeout;

  constructor(readonly context: TransportContext) {
    this.#timer = setInterval(() => this.#tick(), Math.max(50, Math.min(context.heartbeatInterval, 5_000)));
    this.#timer.unref();
  }

  get size(): number {
    return this.#carriers.size;
  }

  /**
   * Forgets an ended carrier once its client took its last answer, or after the `2 × hb` ms in which
   * a live one would have polled (§7.5): until then that poll finds it, and it counts as a connection
   * of its address.
   */
  forgetLater(carrier: Carrier): void {
    setTimeout(() => this.forget(carrier), 2 * this.context.heartbeatInterval).unref();
  }

  forget(carrier: Carrier): void {
    if (this.#carriers.get(carrier.id) !== carrier) return;
    this.#carriers.delete(carrier.id);
    this.context.limits.connectionClosed(carrier.address);
  }

  /** Ends every carrier (server shutdown: the sessions' notices went out on their channels before). */
  close(): void {
    clearInterval(this.#timer);
    for (const carrier of [...this.#carriers.values()]) carrier.end({ code: 'SERVER_RESTART', message: 'the server is shutting down' });
  }

  /** Serves `GET P/carrier`: an SSE stream whose first event names the carrier. */
  openStream(request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
    const carrier = this.#open(request, url, 'sse', (code, message) => {
      // As a stream's refusal (§7.2): a proxy must pass it on at once, not hold it in a buffer.
      response.writeHead(200, {
        ...corsHeaders(request),
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        'X-Accel-Buffering': 'no',
      });
      response.end(`data: ${noticeLine({ kind: 'end', code, message })}\n\n`);
    });
    if (!carrier) return;
    response.writeHead(200, {
      ...corsHeaders(request),
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    request.socket.setNoDelay(true);
    carrier.outlet = sseOutlet(carrier, response);
    response.once('close', () => carrier.end(null));
    carrier.outlet.push(noticeLine({ kind: 'open', id: carrier.id, hb: this.context.heartbeatInterval }));
  }

  /** True when `request` is a poll of one of this server's polled carriers, an ended one's last included (§7.5, §10.2). */
  continues(request: http.IncomingMessage): boolean {
    return this.#find(request.headers[CARRIER_HEADER.toLowerCase()])?.outlet instanceof PollOutlet;
  }

  /** Serves `GET P/carrier-poll`: the first poll opens a carrier and is answered at once with its id. */
  poll(request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
    const header = request.headers[CARRIER_HEADER.toLowerCase()];
    if (header === undefined) {
      const carrier = this.#open(request, url, 'long-polling', (code, message) => answerError(request, response, code, message));
      if (!carrier) return;
      const outlet = new PollOutlet(carrier, this.context);
      carrier.outlet = outlet;
      outlet.push(noticeLine({ kind: 'open', id: carrier.id, hb: this.context.heartbeatInterval }));
      outlet.hold(response, 0);
      return;
    }
    // A poll of an open carrier creates nothing, and goes on during a shutdown (the sessions'
    // notices leave on it); its origin and version are checked as the opening poll's were (§3.2,
    // §7.5.version), as the next poll of a connection of its own is (long-polling.ts).
    const admission = admit(request, url, this.context.originAllowed);
    if (!admission.ok) return answerError(request, response, admission.code, admission.message);
    if (admission.version < CARRIER_VERSION) return answerError(request, response, 'UNSUPPORTED_VERSION', BELOW_CARRIER_VERSION);
    const carrier = this.#find(header);
    const answers = Number(queryValue(url, 'n'));
    if (!carrier || !(carrier.outlet instanceof PollOutlet)) {
      // §10.2.answer-after-close: once closed, every request under the path that nothing holds is the restart's.
      if (!this.context.hub.accepting) answerError(request, response, 'SERVER_RESTART', 'the server is shutting down');
      else answerError(request, response, 'UNKNOWN_SESSION', 'no such carrier: open a new one');
      return;
    }
    if (!carrier.outlet.hold(response, answers)) {
      carrier.end(null);
      answerError(request, response, 'UNKNOWN_SESSION', 'the carrier ended: an answer was lost or polls overlapped');
    }
  }

  /** Serves `POST P/attach`: opens the connection of the session its ticket names on a channel. */
  attach(request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
    const admission = admitRequest(this.context, request, url, 'connection');
    if (!admission.ok) return this.#refuseBeforeBody(request, response, admission.code, admission.message);
    void this.#readTarget(request, response, 'channel').then((target) => {
      if (!target) return;
      const { carrier, channel } = target;
      if (carrier.channels.has(channel)) return answerError(request, response, 'PROTOCOL_ERROR', 'this channel is in use on the carrier');
      if (carrier.channels.size >= CARRIER_LIMITS.maxChannels) {
        return answerError(request, response, 'TOO_MANY_CONNECTIONS', `a carrier holds at most ${CARRIER_LIMITS.maxChannels} channels`);
      }
      const connection = new ChannelConnection(carrier, channel);
      // Taken before the ticket is redeemed, so two attaches cannot both claim the channel meanwhile.
      carrier.channels.set(channel, connection);
      admitByTicket(
        this.context,
        url,
        admission.address,
        ({ grant, prepared }) => {
          if (carrier.ended) return answerError(request, response, 'UNKNOWN_SESSION', 'the carrier ended');
          const last = queryValue(url, QueryParam.lastEventId);
          const handle = this.context.hub.connect(connection, { version: admission.version, ...grant, last, request, address: admission.address }, prepared);
          connection.bind(handle);
          answerJson(request, response, '{}');
        },
        (code, message) => {
          connection.drop();
          answerError(request, response, code, message);
        },
        () => {
          if (!response.destroyed) return false;
          connection.drop();
          return true;
        },
      );
    });
  }

  /** Serves `POST P/detach`: the channels named go away, as a stream of their own would when closed. */
  detach(request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
    const admission = admitRequest(this.context, request, url, 'upstream');
    if (!admission.ok) return this.#refuseBeforeBody(request, response, admission.code, admission.message);
    void this.#readTarget(request, response, 'channels').then((target) => {
      if (!target) return;
      for (const channel of target.channels) target.carrier.channels.get(channel)?.drop();
      answerJson(request, response, '{}');
    });
  }

  #open(request: http.IncomingMessage, url: URL, transport: Carrier['transport'], refuse: (code: ErrorCode, message: string) => void): Carrier | null {
    const admission = admitRequest(this.context, request, url, 'probe');
    if (!admission.ok) {
      refuse(admission.code, admission.message);
      return null;
    }
    if (admission.version < CARRIER_VERSION) {
      refuse('UNSUPPORTED_VERSION', BELOW_CARRIER_VERSION);
      return null;
    }
    // A carrier holds a request open: it counts as a connection of its address (§12.1).
    const carrier = new Carrier(transport, admission.address, this);
    this.context.limits.connectionOpened(admission.address);
    this.#carriers.set(carrier.id, carrier);
    return carrier;
  }

  #find(id: unknown): Carrier | undefined {
    return typeof id === 'string' && CARRIER_ID_PATTERN.test(id) ? this.#carriers.get(id) : undefined;
  }

  #refuseBeforeBody(request: http.IncomingMessage, response: http.ServerResponse, code: ErrorCode, message: string): void {
    refuseBeforeBody(request, response, { maxMessageSize: CARRIER_LIMITS.maxBodyBytes, bodyTimeout: this.context.bodyTimeout }, code, message);
  }

  /** Reads the body of attach or detach: `{carrier, channel}` or `{carrier, channels}`; answers a refusal itself. */
  async #readTarget<K extends 'channel' | 'channels'>(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    field: K,
  ): Promise<(K extends 'channel' ? { carrier: Carrier; channel: string } : { carrier: Carrier; channels: string[] }) | null> {
    if (!hasUpstreamHeaders(request)) {
      this.#refuseBeforeBody(request, response, 'FORBIDDEN', UPSTREAM_HEADERS_MISSING);
      return null;
    }
    const read = await readJsonBody(request, CARRIER_LIMITS.maxBodyBytes, 2, this.context.bodyTimeout, new BodyBytes(this.context.limits, request));
    if (!read.ok) {
      refuseBody(request, response, read);
      return null;
    }
    const body = (typeof read.value === 'object' && read.value !== null ? read.value : {}) as Record<string, unknown>;
    const value = body[field];
    const channels = field === 'channel' ? [value] : value;
    const valid =
      Array.isArray(channels) && channels.length <= CARRIER_LIMITS.maxChannels && channels.every((c) => typeof c === 'string' && CHANNEL_PATTERN.test(c));
    if (!valid) {
      answerError(request, response, 'PROTOCOL_ERROR', `expects ${field} to be ${field === 'channel' ? 'a channel id' : `up to ${CARRIER_LIMITS.maxChannels} channel ids`}`);
      return null;
    }
    const carrier = this.#find(body.carrier);
    // An ended carrier stays findable for its last poll only (`forgetLater`).
    if (!carrier || carrier.ended) {
      if (!this.context.hub.accepting) answerError(request, response, 'SERVER_RESTART', 'the server is shutting down');
      else answerError(request, response, 'UNKNOWN_SESSION', 'no such carrier');
      return null;
    }
    const found = field === 'channel' ? { carrier, channel: value as string } : { carrier, channels: value as string[] };
    return found as K extends 'channel' ? { carrier: Carrier; channel: string } : { carrier: Carrier; channels: string[] };
  }

  #tick(): void {
    const now = this.context.now();
    for (const carrier of [...this.#carriers.values()]) {
      carrier.tick(now);
      if (carrier.ended) continue;
      const outlet = carrier.outlet;
      if (outlet instanceof PollOutlet) {
        if (outlet.heartbeat(now)) carrier.end(null);
      } else outlet?.push(noticeLine({ kind: 'hb' }));
    }
  }
}
