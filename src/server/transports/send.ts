/**
 * HTTP upstream (docs/PROTOCOL.md §7.3): `POST P/send` carries one batch of client frames for the SSE
 * and long-polling transports, and answers with the frames it produced (acks, pongs).
 */
import type http from 'node:http';
import { ProtocolViolation, decodeClientBatch, encodeBatch, type ServerFrame } from '../../protocol/index.js';
import { UPSTREAM_HEADERS_MISSING, admitRequest, answerBatch, answerError, hasUpstreamHeaders } from '../http.js';
import { toUpstream, type UpstreamFrame } from '../connection.js';
import { UnbrokenServerError } from '../errors.js';
import type { ServerSession } from '../session.js';
import type { TransportContext } from './context.js';
import { BODIES_BUSY, BodyBytes, answerAndStopReading, decodeUtf8, refuseBeforeBody } from '../body.js';
import { sessionOfHeader } from './ticket.js';

/** Serves `POST P/send`. */
export function handleSend(context: TransportContext, request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
  const { hub } = context;
  const admission = admitRequest(context, request, url, 'upstream');
  if (!admission.ok) {
    refuseBeforeBody(request, response, context, admission.code, admission.message);
    return;
  }
  if (!hasUpstreamHeaders(request)) {
    refuseBeforeBody(request, response, context, 'FORBIDDEN', UPSTREAM_HEADERS_MISSING);
    return;
  }
  // §3.4: the session is named by X-Unbroken-Session: <sid>.<key>; a wrong key is no session at all.
  const found = sessionOfHeader(context, request);
  if (found instanceof Promise) {
    // A store shared by several processes: the session may be learnt from it (cluster.ts). The body
    // stays unread meanwhile (no 'data' listener yet).
    found.then(
      (session) => {
        if (!request.destroyed) serveSession(context, request, response, session);
      },
      (error: unknown) => {
        hub.fail(new UnbrokenServerError('STORE_ERROR', 'a request could not be served: the store failed', { cause: error }));
        refuseBeforeBody(request, response, context, 'INTERNAL_ERROR', 'the server could not reach its store; retry later');
      },
    );
    return;
  }
  serveSession(context, request, response, found);
}

/** The rest of `POST P/send` once its session is known (`null`: none, or a wrong key). */
function serveSession(context: TransportContext, request: http.IncomingMessage, response: http.ServerResponse, found: ServerSession | null): void {
  const { hub, maxMessageSize, bodyTimeout } = context;
  if (found === null) {
    refuseBeforeBody(request, response, context, 'UNKNOWN_SESSION', 'no such session: connect downstream first');
    return;
  }
  const session: ServerSession = found;
  const sid = session.id;
  if (session.expired) {
    // §3.5: past expiry nothing more is taken from this identity until it authenticates again.
    refuseBeforeBody(request, response, context, 'UNAUTHORIZED', 'the identity expired; authenticate again');
    return;
  }
  const tooLarge = (size: number) =>
    answerAndStopReading(request, response, 'MESSAGE_TOO_LARGE', `expects a body of at most ${maxMessageSize} bytes, got ${size}`);
  const declared = Number(request.headers['content-length']);
  if (declared > maxMessageSize) {
    tooLarge(declared);
    return;
  }
  request.on('error', () => undefined);
  // §12.1: a session past its inbound rate is slowed, not refused. Its body stays unread (in the
  // socket's buffers, where TCP flow control holds the rest) until the budget is back; the client
  // starts no further request before this one's answer began (§7.3), so its outbox waits meanwhile.
  const wait = hub.inboundWait(sid);
  if (wait === 0) {
    readBody();
    return;
  }
  const timer = setTimeout(readBody, wait);
  request.once('close', () => clearTimeout(timer));

  function readBody(): void {
    if (request.destroyed) return;
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const counted = new BodyBytes(context.limits, request);
    /** Refuses the body while it arrives: nothing more of it is read or kept. */
    const refuse = (answer: () => void): void => {
      refused = true;
      chunks.length = 0;
      clearTimeout(deadline);
      counted.release();
      answer();
    };
    request.once('close', () => counted.release());
    // §12.1: the whole body within `bodyTimeout`, however slowly it trickles in.
    const deadline = setTimeout(() => refuse(() => answerAndStopReading(request, response, 'REQUEST_TIMEOUT', `expects the body within ${bodyTimeout} ms`)), bodyTimeout);
    deadline.unref?.();
    request.once('close', () => clearTimeout(deadline));
    request.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxMessageSize) return refuse(() => tooLarge(size));
      if (!counted.take(chunk.length)) return refuse(() => answerAndStopReading(request, response, 'RATE_LIMITED', BODIES_BUSY));
      chunks.push(chunk);
    });
    request.on('end', () => {
      clearTimeout(deadline);
      // With a shared store the body is held until its claim settled (below); the request's
      // `close` gives its bytes back too, whatever ended it.
      if (hub.cluster === null) counted.release();
      if (refused || response.headersSent) return;
      // Nothing is processed after the server began to shut down (§8, §10.2).
      if (!hub.accepting) {
        answerError(request, response, 'SERVER_RESTART', 'the server is shutting down');
        return;
      }
      // The session may have ended, and another been created with its id, while the body arrived.
      if (session.ended || (hub.cluster === null && hub.sessions.get(sid) !== session)) {
        answerError(request, response, 'UNKNOWN_SESSION', 'the session ended: connect downstream first');
        return;
      }
      let frames: UpstreamFrame[];
      try {
        frames = toUpstream(decodeClientBatch(decodeUtf8(Buffer.concat(chunks, size), 'a body')));
      } catch (error) {
        answerProtocolError(error);
        return;
      }
      if (hub.cluster === null) {
        process(frames);
        return;
      }
      // §8 across processes: the batch's messages are marked processed in the store first.
      hub.cluster
        .claim(session, frames, () => process(frames))
        .then(
          (known) => {
            if (known) return;
            hub.cluster?.lost(session);
            answerError(request, response, 'UNKNOWN_SESSION', 'the session ended: connect downstream first');
          },
          (error: unknown) => {
            if (error instanceof ProtocolViolation) {
              answerProtocolError(error);
              return;
            }
            hub.fail(new UnbrokenServerError('STORE_ERROR', `a batch of session ${sid} could not be marked processed`, { cause: error }));
            answerError(request, response, 'INTERNAL_ERROR', 'the server could not reach its store; retry later');
          },
        )
        .finally(() => counted.release());
    });
  }

  function process(frames: readonly UpstreamFrame[]): void {
    let replies: ServerFrame[];
    try {
      replies = hub.processUpstream(session, frames, request);
    } catch (error) {
      answerProtocolError(error);
      return;
    }
    // The answer goes out after the downstream writes this batch caused (they flush in a microtask
    // queued meanwhile, links.ts): a client reads what reaches it first first, and an echo that
    // waited behind its POST's answer cost a round trip that much more.
    const answer = encodeBatch(replies);
    queueMicrotask(() => answerBatch(request, response, answer));
  }

  function answerProtocolError(error: unknown): void {
    const message = error instanceof ProtocolViolation ? error.message : 'the batch could not be processed';
    answerError(request, response, 'PROTOCOL_ERROR', message);
  }
}
