/**
 * What the two HTTP transports share (PROTOCOL.md §7.2–§7.4): the link's one-way life (live until
 * closed by either side, silent after), handing batches to the core, reading error bodies (§9), and
 * the upstream of §7.3.
 */
import {
  CloseCode,
  ERROR_CODES,
  Endpoint,
  SESSION_HEADER,
  UPSTREAM_HEADER,
  closeCodeFor,
  codeForStatus,
  serverCode,
  utf8Length,
  type AckFrame,
} from '../../protocol/index.js';
import { UnbrokenError } from '../errors.js';
import { decodeUnit, oversize, readObject, type FetchLike, type InboundFrame, type LinkContext, type Transport, type TransportCloseInfo, type TransportHandlers } from '../transport.js';

/**
 * Close code of a link that failed without a protocol reason (WebSocket's "closed abnormally"): no
 * code of §9 has it, so the core reads it as `TRANSPORT_ERROR`.
 */
const ABNORMAL = 1006;

/**
 * Requests cancelled together (the polls of a link, or its POSTs). Each request has an AbortController
 * of its own: every request of a link on one long-lived signal would leave an abort listener on it
 * until collected, and Node's fetch warns past 1,500 of them. A request begun after `abort()` is
 * aborted at once, as it would be on an aborted signal.
 */
function cancelTogether() {
  const open = new Set<AbortController>();
  let aborted = false;
  return {
    begin(): AbortController {
      const controller = new AbortController();
      if (aborted) controller.abort();
      else open.add(controller);
      return controller;
    },
    done(controller: AbortController): void {
      open.delete(controller);
    },
    abort(): void {
      aborted = true;
      for (const controller of open) controller.abort();
      open.clear();
    },
  };
}

/**
 * How an upstream batch of messages only begins: the outbox writes its messages in batches of their
 * own (§8), apart from pings, `auth` and `bye`.
 */
const MESSAGES = '[{"t":"msg"';

/** Headers of every request the client makes upstream (§7.3, §3.4). */
export const UPSTREAM_HEADERS = { 'Content-Type': 'application/json', [UPSTREAM_HEADER]: '1' };

/**
 * The failure an HTTP answer other than `200` signals (§9): the code of its error body when a server
 * sends it over HTTP. Without one, the status alone counts only for codes the client retries: a
 * proxy's bare `401` or `403` (a login page, a filter) is a `TRANSPORT_ERROR`, never a reason to
 * stop or to ask for credentials (§13.5). Nor is a bare `404` an unknown session: it is a path no
 * server of the protocol answers, e.g. a URL that misses the endpoint.
 */
export function answerError(status: number, text: string): UnbrokenError {
  const body = readObject(text);
  const byStatus = codeForStatus(status);
  const code = serverCode(body.code) ?? (byStatus && status != 404 && ERROR_CODES[byStatus].action === 'retry' ? byStatus : 'TRANSPORT_ERROR');
  return new UnbrokenError(code, String(body.message ?? `answered ${status} without an error body: a proxy, or not the endpoint`));
}

/** The shared half of an HTTP transport; the downstream half (EventSource or polls) drives it. */
export interface HttpLink {
  /** The transport the core talks to. */
  readonly transport: Transport;
  /** False once the link closed, from either side: nothing is reported after that. */
  live(): boolean;
  /**
   * Fetches `url` (a GET unless `init` says otherwise), cancelled by `close()`. Resolves with the body
   * of a `200` answer, after calling `headers()` when its headers arrived; rejects with an
   * {@link UnbrokenError} with the code of the error body or status (§9) or `MESSAGE_TOO_LARGE`
   * (closing the link), or with what fetch threw.
   */
  request(url: string, init?: RequestInit, headers?: () => void): Promise<string>;
  /**
   * Decodes one unit of the stream (a batch) whole and hands it to the core; fails the link with
   * `MESSAGE_TOO_LARGE` when it is over `maxMessageSize` (§13.5), with `PROTOCOL_ERROR` when it is
   * malformed, and with `TRANSPORT_ERROR` when it holds a `hello` and `helloEnds` is set.
   */
  deliver(text: string, helloEnds?: boolean): void;
  /**
   * Closes the link and reports `cause`: as it is when it is a {@link TransportCloseInfo} or an
   * {@link UnbrokenError}, else as a `TRANSPORT_ERROR` caused by it; does nothing when closed already.
   */
  fail(cause?: unknown): void;
}

/**
 * Makes the shared half. `stop` ends the downstream (closes the EventSource, aborts the poll).
 *
 * Upstream: `POST P/send` with one batch (§7.3), the next one only once the answer to the last
 * began, or once an `ack` on the stream covered everything it carried (§7.3.one-request). Batches
 * written meanwhile wait, and go out merged into one request: the arrays are joined by
 * their text, without parsing them again, up to `hello.max` bytes. The transport reads `max` from the
 * `hello` it hands over; before it, nothing is merged.
 */
export function httpLink(
  fetch: FetchLike,
  url: (endpoint: string) => string,
  handlers: TransportHandlers,
  context: LinkContext,
  stop: () => void,
): HttpLink {
  // Polls and POSTs are cancelled apart: a client that ends its session lets its last POST finish.
  const down = cancelTogether();
  const up = cancelTogether();
  /** Batches waiting for their POST, each with what to call when the server answered it. */
  const queue: { body: string; answered: (() => void) | undefined }[] = [];
  let live = true;
  let max = 0;
  /** `<sid>.<key>` of the hello: names the session on `POST P/send` (§3.4). */
  let session = '';
  /**
   * The POST in flight that the next one waits for (§7.3.one-request), and whether it carries
   * messages only: then an `ack` of every message on the stream says it was processed, as its
   * answer's headers would.
   */
  let posting: { messagesOnly: boolean } | null = null;
  // Built once: every POST of the link goes to the same URL (§7.3: `v` alone), and building a URL
  // was a measurable part of a round trip.
  const sendUrl = url(Endpoint.send);

  // Cookies go only to the page's own origin (fetch's default, and EventSource's without
  // `withCredentials`): the server grants no credentialed CORS. Nothing may come from a cache.
  const request = (target: string, init?: RequestInit, headers?: () => void, lane = down): Promise<string> => {
    const controller = lane.begin();
    // A plain call: a browser's fetch throws "Illegal invocation" when called as another object's method.
    return fetch(target, { signal: controller.signal, ...init, cache: 'no-store' })
      .then(async (response) => {
        const { status } = response;
        if (status === 200 && live) headers?.();
        const text = await response.text();
        if (status !== 200) throw answerError(status, text);
        const tooLarge = oversize(text, context.maxMessageSize);
        if (tooLarge) {
          fail(tooLarge);
          throw tooLarge.error;
        }
        return text;
      })
      .finally(() => lane.done(controller));
  };

  const send = (body: string, init?: RequestInit, headers?: () => void): Promise<string> =>
    request(
      sendUrl,
      {
        method: 'POST',
        headers: { ...UPSTREAM_HEADERS, [SESSION_HEADER]: session },
        body,
        ...init,
      },
      headers,
      up,
    );

  const end = (code: number): void => {
    live = false;
    stop();
    down.abort();
    if (code !== CloseCode.Normal) up.abort();
  };

  /** Closes the link for `cause`: an error, what fetch threw, or a close info (an oversize unit, a handover). */
  const fail = (cause?: unknown): void => {
    if (!live) return;
    end(ABNORMAL);
    if ((cause as TransportCloseInfo | undefined)?.error instanceof UnbrokenError) return handlers.onClose(cause as TransportCloseInfo);
    const error = cause instanceof UnbrokenError ? cause : new UnbrokenError('TRANSPORT_ERROR', String(cause ?? 'the link failed'), cause);
    handlers.onClose({ code: closeCodeFor(error.code, ABNORMAL), error });
  };

  /** The frames of `text`; `undefined` when it is malformed, and the link failed. */
  const decode = (text: string): InboundFrame[] | undefined => {
    try {
      return decodeUnit(text);
    } catch (error) {
      fail(error);
    }
  };

  const deliver = (text: string, helloEnds?: boolean): void => {
    if (!live) return;
    const tooLarge = oversize(text, context.maxMessageSize);
    if (tooLarge) return fail(tooLarge);
    const frames = decode(text);
    if (!frames) return;
    for (const f of frames) {
      if (f.t === 'hello') {
        if (helloEnds) return fail(new UnbrokenError('TRANSPORT_ERROR', 'the server began a new connection'));
        max = f.max;
        session = `${f.sid}.${f.key}`;
      }
    }
    handlers.onFrames(frames);
  };

  /** The POST `sent` no longer holds the next one back: its answer began, or the stream acknowledged it. */
  const release = (sent: { messagesOnly: boolean }): void => {
    if (posting !== sent) return;
    posting = null;
    post();
  };

  /**
   * The answer to a POST is its acknowledgement (§7.3), never stream frames: it goes to `onReply`, so
   * it cannot count as a sign of the stream's life (§11). Returns whether the link is still live.
   */
  const reply = (text: string): boolean => {
    const frames = decode(text);
    const other = frames?.find((f) => f.t !== 'ack');
    if (other) fail(new UnbrokenError('PROTOCOL_ERROR', `expects the answer to a POST to hold an ack, got ${other.t}`));
    // Every frame is an ack here: a frame of another kind failed the link above.
    else for (const f of frames ?? []) if (live) handlers.onReply(f as AckFrame);
    return live;
  };

  const post = (): void => {
    if (posting || !live || !queue.length) return;
    const first = queue.shift()!;
    let body = first.body;
    const answered = [first.answered];
    let size = utf8Length(body);
    let messagesOnly = body.startsWith(MESSAGES);
    // `[a]` and `[b]` make `[a,b]`: one byte less than both. `max` is 0 before the hello: no merging.
    for (let next = queue[0]; next && size + utf8Length(next.body) - 1 <= max; next = queue[0]) {
      size += utf8Length(next.body) - 1;
      body = `${body.slice(0, -1)},${next.body.slice(1)}`;
      messagesOnly &&= next.body.startsWith(MESSAGES);
      answered.push(next.answered);
      queue.shift();
    }
    const sent = (posting = { messagesOnly });
    // The next batch goes once this answer's headers arrived (`request` calls back only for a 200):
    // the server answers after it processed the batch (§7.3.answer-after), so no request overtakes
    // it. Waiting for the body as well would hold a send back behind the echo it caused, which a
    // browser often hands over first; and the echo itself may come with an ack of the batch, which
    // the server also writes only after processing it.
    send(body, {}, () => release(sent))
      .then((text) => {
        if (live && reply(text)) for (const call of answered) if (live) call?.();
      })
      .catch(fail);
  };

  return {
    live: () => live,
    request,
    deliver,
    fail,
    transport: {
      binary: false,
      send: (data, answered) => {
        if (live) {
          queue.push({ body: data as string, answered });
          post();
        }
      },
      settled: () => posting?.messagesOnly && release(posting),
      close: (code) => {
        if (!live) return;
        end(code);
        // The client ends its session (1000): its last batch, the `bye`, must still reach the server,
        // also while the page unloads. What was queued before it was refused to the application already.
        const bye = code === CloseCode.Normal && queue.pop();
        if (bye) send(bye.body, { signal: null, keepalive: true }).catch(() => {});
      },
    },
  };
}
