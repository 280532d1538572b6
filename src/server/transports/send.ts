/**
 * HTTP upstream (docs/PROTOCOL.md §7.3): `POST P/send` carries one batch of client frames for the SSE
 * and long-polling transports, and answers with the frames it produced (acks, pongs).
 */
import type http from 'node:http';
import { ProtocolViolation, decodeClientBatch, encodeBatch, type ServerFrame } from '../../protocol/index.js';
import { answerBatch, answerError, hasUpstreamHeaders } from '../http.js';
import { toUpstream } from '../connection.js';
import { admitRequest, type TransportContext } from './context.js';
import { sessionOfHeader } from './ticket.js';

/** Serves `POST P/send`. */
export function handleSend(context: TransportContext, request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
  const { hub, maxMessageSize } = context;
  const admission = admitRequest(context, request, url);
  if (!admission.ok) {
    answerError(request, response, admission.code, admission.message);
    return;
  }
  if (!hasUpstreamHeaders(request)) {
    answerError(request, response, 'FORBIDDEN', 'expects Content-Type: application/json and X-Unbroken: 1');
    return;
  }
  // §3.4: the session is named by X-Unbroken-Session: <sid>.<key>; a wrong key is no session at all.
  const session = sessionOfHeader(context, request);
  if (session === null) {
    answerError(request, response, 'UNKNOWN_SESSION', 'no such session: connect downstream first');
    return;
  }
  const sid = session.id;
  if (session.expired) {
    // §3.5: past expiry nothing more is taken from this identity until it authenticates again.
    answerError(request, response, 'UNAUTHORIZED', 'the identity expired; authenticate again');
    return;
  }
  const tooLarge = (size: number) =>
    answerError(request, response, 'MESSAGE_TOO_LARGE', `expects a body of at most ${maxMessageSize} bytes, got ${size}`);
  const declared = Number(request.headers['content-length']);
  if (declared > maxMessageSize) {
    tooLarge(declared);
    return;
  }

  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  request.on('data', (chunk: Buffer) => {
    if (refused) return; // the rest is read and dropped, so the client gets to see the answer
    size += chunk.length;
    if (size > maxMessageSize) {
      refused = true;
      chunks.length = 0;
      tooLarge(size);
      return;
    }
    chunks.push(chunk);
  });
  request.on('error', () => undefined);
  request.on('end', () => {
    if (refused || response.headersSent) return;
    // Nothing is processed after the server began to shut down (§8, §10.2).
    if (!hub.accepting) {
      answerError(request, response, 'SERVER_RESTART', 'the server is shutting down');
      return;
    }
    // The session may have ended, and another been created with its id, while the body arrived.
    if (hub.sessions.get(sid) !== session) {
      answerError(request, response, 'UNKNOWN_SESSION', 'the session ended: connect downstream first');
      return;
    }
    let replies: ServerFrame[] | null;
    try {
      replies = hub.upstream(sid, toUpstream(decodeClientBatch(Buffer.concat(chunks, size).toString('utf8'))), request);
    } catch (error) {
      const message = error instanceof ProtocolViolation ? error.message : 'the batch could not be processed';
      answerError(request, response, 'PROTOCOL_ERROR', message);
      return;
    }
    if (replies === null) {
      answerError(request, response, 'UNKNOWN_SESSION', 'the session ended: connect downstream first');
      return;
    }
    answerBatch(request, response, encodeBatch(replies));
  });
}
