// @ts-check
// The chat example: rooms, sign-in by cookie, and the last lines of a room shown again after a reload.
//   npm run example:chat                   → http://localhost:8080
//   npm run example:chat -- --port 3000    (or PORT=3000; --host/HOST to listen elsewhere)
//
// One Node HTTP server serves the page, its script, the built client, two form endpoints and the
// realtime endpoint at /realtime:
//   POST /sign-in   a display name → a signed, HttpOnly cookie (cookie.mjs)
//   POST /sign-out  the cookie cleared and refused from then on, the user's realtime sessions ended
// The realtime server's `authenticate` reads that cookie; a client without a valid one is refused
// with UNAUTHORIZED, and the page shows the sign-in form.
//
// What the page sends, and what the server does with it:
//   { type: 'join', room }        leave the current room, join this one, get its history
//   { type: 'say', room, text }   a line to a room the session is in
// and what it receives: `welcome` { name, rooms }, `history` { room, lines }, `chat` (one line),
// `refused` { reason }.
//
// Two kinds of replay meet here:
// - Within a session (a dropped connection, a switch of transport), the protocol resumes the stream
//   from the client's last event id: every line of its room arrives once and in order.
// - A reload is a new session, and a new session gets no messages from before it existed. So this
//   server keeps the last HISTORY lines of each room and sends them to a session that joins, and
//   remembers each user's room, so that a reload lands in the same one.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createServer } from 'unbroken-realtime/server';
import { readSignIn, signInCookie, signOutCookie } from './cookie.mjs';

/**
 * The rooms, in the order the page lists them; a new user starts in the first.
 * @type {[string, ...string[]]}
 */
export const ROOMS = ['general', 'random'];
/** Lines kept per room for those who join later. */
export const HISTORY = 50;
/** Longest line, in characters. */
export const MAX_TEXT = 500;
/** Longest display name, in characters. */
export const MAX_NAME = 32;
/** Users whose last room is remembered; past it the longest unseen is forgotten. */
const MAX_REMEMBERED = 10_000;
/** Sign-outs remembered (see `signedOut`); past it the oldest is forgotten, to bound memory. */
const MAX_SIGNED_OUT = 100_000;
/** Largest sign-in form body, bytes. */
const MAX_FORM = 1024;

// Control characters (C0, DEL, C1): no line break or escape sequence hides in a name or a line.
const CONTROL = /\p{Cc}/u;

const here = new URL('./', import.meta.url);
const dist = new URL('../../dist/', import.meta.url);

/** @type {Record<string, [file: URL, type: string]>} */
const FILES = {
  '/': [new URL('index.html', here), 'text/html; charset=utf-8'],
  '/chat.js': [new URL('chat.js', here), 'text/javascript; charset=utf-8'],
  '/unbroken-realtime.mjs': [new URL('unbroken-realtime.mjs', dist), 'text/javascript; charset=utf-8'],
  '/unbroken-realtime.mjs.map': [new URL('unbroken-realtime.mjs.map', dist), 'application/json; charset=utf-8'],
};

/**
 * A line of a room.
 * @typedef {object} Line
 * @property {string} room
 * @property {number} n its number in the room, from 1. A line said while a session joins can reach
 *   it twice, in the history and live; the page keeps one copy by this number.
 * @property {string} from the speaker's display name
 * @property {string} text
 * @property {number} at when it was said, ms since the epoch
 */

/**
 * What the page may send, or `null` when `data` is none of it.
 * @param {unknown} data
 * @returns {{ type: 'join', room: string } | { type: 'say', room: string, text: string } | null}
 */
function parseRequest(data) {
  if (typeof data !== 'object' || data === null) return null;
  const { type, room, text } = /** @type {Record<string, unknown>} */ (data);
  if (typeof room !== 'string' || !ROOMS.includes(room)) return null;
  if (type === 'join') return { type, room };
  if (type === 'say' && typeof text === 'string') return { type, room, text };
  return null;
}

/**
 * `text` trimmed, when it has 1 to `max` characters and no control character; else `null`.
 * @param {string} text
 * @param {number} max
 */
function cleanText(text, max) {
  // Checked before trimming too: a megabyte of spaces is not worth trimming.
  if (text.length > 2 * max) return null;
  const trimmed = text.trim();
  const length = [...trimmed].length;
  return length >= 1 && length <= max && !CONTROL.test(trimmed) ? trimmed : null;
}

/**
 * The form body of a request, read up to MAX_FORM bytes; `null` past it.
 * @param {http.IncomingMessage} request
 */
async function readForm(request) {
  /** @type {Buffer[]} */
  const chunks = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += chunk.length;
    if (bytes > MAX_FORM) return null;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * True when a form was posted from this site. The cookie is SameSite=Lax, so another site's form
 * cannot use it; this also stops another site from signing a visitor in under a name it picked.
 * @param {http.IncomingMessage} request
 */
function postedHere(request) {
  const origin = request.headers.origin;
  // Browsers send Origin with every POST; a request without one comes from no page.
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/**
 * @typedef {object} ChatOptions
 * @property {number} [port] 0 picks a free one. Default 8080.
 * @property {string} [host] Default 127.0.0.1.
 * @property {string} [secret] the key that signs cookies. Default: `CHAT_SECRET`, else random, so
 *   every sign-in ends with the process.
 * @property {import('unbroken-realtime/server').ServerOptions} [realtime] more options of the realtime
 *   server, e.g. a shorter `retry` (the clients' reconnect delay floor) for a test
 */

/**
 * @typedef {object} Chat
 * @property {string} url the page, e.g. http://127.0.0.1:8080/
 * @property {number} port
 * @property {import('unbroken-realtime/server').UnbrokenServer} realtime
 * @property {(room: string, from: string, text: string) => Promise<Line>} post says a line in a room,
 *   as the server: kept for the history and sent to the room's members; resolves once stored
 * @property {() => Promise<void>} close stops the server, cutting every connection
 */

/**
 * Starts the chat server.
 * @param {ChatOptions} [options]
 * @returns {Promise<Chat>}
 */
export async function startChatServer({ port = 8080, host = '127.0.0.1', secret = process.env.CHAT_SECRET, realtime: options } = {}) {
  const key = secret || randomBytes(32).toString('base64url');
  /** The last lines of each room, oldest first. @type {Map<string, Line[]>} */
  const history = new Map(ROOMS.map((room) => [room, []]));
  /** How many lines each room has had. @type {Map<string, number>} */
  const counts = new Map(ROOMS.map((room) => [room, 0]));
  /** The room each user was in last, by user id, least recently set first. @type {Map<string, string>} */
  const lastRoom = new Map();
  /**
   * Sign-ins that signed out, by user id, with when their cookie expires: until then the cookie is
   * still valid wherever a copy of it is — another tab about to reconnect, a stolen copy — so the
   * server refuses it by its id. Oldest first.
   * @type {Map<string, number>}
   */
  const signedOut = new Map();

  const httpServer = http.createServer((request, response) => {
    serveHttp(request, response).catch((error) => {
      report(error);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end();
    });
  });
  const sockets = new Set();
  httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  // Attached after the application's handler: requests under /realtime go to the realtime server,
  // the others to serveHttp.
  const realtime = createServer({
    ...options,
    path: '/realtime',
    // Runs for every connection attempt (its ticket request carries the page's cookies): no valid
    // cookie, no connection.
    authenticate(request) {
      const signIn = readSignIn(request.headers.cookie, key);
      return signIn && !signedOut.has(signIn.id) ? { id: signIn.id, name: signIn.name } : null;
    },
  }).attach(httpServer);

  realtime.on('connection', (session) => {
    const user = userOf(session);
    void session.send({ name: user.name, rooms: ROOMS }, { event: 'welcome' }).catch(report);
    // A new session: a first visit, or a reload. Back to the room the user was in.
    enter(session, lastRoom.get(user.id) ?? ROOMS[0]);
  });

  realtime.on('message', (data, session) => {
    const request = parseRequest(data);
    if (request === null) return refuse(session, `expects { type: 'join' | 'say', room: ${ROOMS.join(' | ')} }`);
    if (request.type === 'join') return enter(session, request.room);
    if (!session.rooms.has(request.room)) return refuse(session, `join ${request.room} before you speak in it`);
    const text = cleanText(request.text, MAX_TEXT);
    if (text === null) return refuse(session, `a line has 1 to ${MAX_TEXT} characters, none of them a control character`);
    void post(request.room, userOf(session).name, text).catch(report);
  });

  realtime.on('error', report);

  /**
   * Moves a session to `room`, then sends it the room's history. Membership takes effect at the call,
   * before the history is read, so a line said meanwhile is in the history, arrives live, or both —
   * never neither; the page keeps one copy by its number.
   * @param {import('unbroken-realtime/server').Session} session
   * @param {string} room
   */
  function enter(session, room) {
    for (const other of [...session.rooms]) if (other !== room) session.leave(other).catch(report);
    session.join(room).catch(report);
    remember(userOf(session).id, room);
    void session.send({ room, lines: [...(history.get(room) ?? [])] }, { event: 'history' }).catch(report);
  }

  /** @param {string} userId @param {string} room */
  function remember(userId, room) {
    lastRoom.delete(userId);
    lastRoom.set(userId, room);
    if (lastRoom.size > MAX_REMEMBERED) lastRoom.delete(lastRoom.keys().next().value ?? '');
  }

  /** @type {Chat['post']} */
  async function post(room, from, text) {
    const lines = history.get(room);
    if (!lines) throw new TypeError(`expects one of the rooms ${ROOMS.join(', ')}, got ${JSON.stringify(room)}`);
    const n = (counts.get(room) ?? 0) + 1;
    counts.set(room, n);
    const line = { room, n, from, text, at: Date.now() };
    lines.push(line);
    if (lines.length > HISTORY) lines.shift();
    await realtime.to(room).send(line, { event: 'chat' });
    return line;
  }

  /** @param {import('unbroken-realtime/server').Session} session @param {string} reason */
  function refuse(session, reason) {
    void session.send({ reason }, { event: 'refused' }).catch(report);
  }

  /** @param {http.IncomingMessage} request @param {http.ServerResponse} response */
  async function serveHttp(request, response) {
    const { pathname } = new URL(request.url ?? '/', 'http://chat');
    if (request.method === 'POST' && (pathname === '/sign-in' || pathname === '/sign-out')) {
      if (!postedHere(request)) return void response.writeHead(403, { 'content-type': 'text/plain' }).end('posted from another site');
      if (pathname === '/sign-in') return signIn(request, response);
      return signOut(request, response);
    }
    const file = request.method === 'GET' ? FILES[pathname] : undefined;
    if (!file) return void response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    const body = await readFile(file[0]).catch(() => null);
    if (body === null) return void response.writeHead(500, { 'content-type': 'text/plain' }).end('run npm run build first');
    response.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' }).end(body);
  }

  /** @param {http.IncomingMessage} request @param {http.ServerResponse} response */
  async function signIn(request, response) {
    const form = await readForm(request);
    const name = cleanText(form?.get('name') ?? '', MAX_NAME);
    if (name === null) return void response.writeHead(303, { location: '/?sign-in=invalid' }).end();
    const cookie = signInCookie({ id: randomUUID(), name }, key, { secure: isHttps(request) });
    response.writeHead(303, { location: '/', 'set-cookie': cookie }).end();
  }

  /** @param {http.IncomingMessage} request @param {http.ServerResponse} response */
  async function signOut(request, response) {
    const signIn = readSignIn(request.headers.cookie, key);
    if (signIn) {
      const now = Date.now();
      for (const [id, expires] of signedOut) {
        if (expires > now && signedOut.size < MAX_SIGNED_OUT) break;
        signedOut.delete(id);
      }
      signedOut.set(signIn.id, signIn.exp);
      // The user's other tabs are told UNAUTHORIZED at once; their retry, which may still carry the
      // cookie, is refused, and they show the sign-in form.
      realtime.disconnect((session) => session.user?.id === signIn.id);
    }
    response.writeHead(303, { location: '/', 'set-cookie': signOutCookie() }).end();
  }

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, host, () => resolve(undefined));
  });
  const address = /** @type {import('node:net').AddressInfo} */ (httpServer.address());
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;

  /** @type {Promise<void> | undefined} */
  let closing;
  return {
    url: `http://${shown.includes(':') ? `[${shown}]` : shown}:${address.port}/`,
    port: address.port,
    realtime,
    post,
    close() {
      closing ??= (async () => {
        for (const socket of sockets) socket.destroy();
        httpServer.closeAllConnections();
        // Every connection is gone, so this ends sessions and timers without waiting on any client.
        await realtime.close();
        await new Promise((resolve) => httpServer.close(() => resolve(undefined)));
      })();
      return closing;
    },
  };
}

/**
 * The signed-in user of a session: `authenticate` admitted no session without one.
 * @param {import('unbroken-realtime/server').Session} session
 * @returns {{ id: string, name: string }}
 */
function userOf(session) {
  return { id: String(session.user?.id), name: String(session.user?.name) };
}

/** @param {http.IncomingMessage} request */
function isHttps(request) {
  return 'encrypted' in request.socket && request.socket.encrypted === true;
}

/** @param {unknown} error */
function report(error) {
  console.error('chat:', error);
}

/** True when this file is the program (`node examples/chat/server.mjs`), not imported by a test. */
async function isMain() {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(await realpath(entry)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (await isMain()) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  const port = Number(values.port ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`unbroken chat: expects --port (or PORT) to be a port number, got ${values.port ?? process.env.PORT}`);
    process.exit(1);
  }
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  const chat = await startChatServer({ port, host }).catch((error) => {
    console.error(`unbroken chat: cannot start: ${error.message}`);
    process.exit(1);
  });
  const url = host === '127.0.0.1' || host === '0.0.0.0' ? chat.url.replace('127.0.0.1', 'localhost') : chat.url;
  console.log(`unbroken chat: ${url}`);
  const shutdown = () => void chat.close().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
