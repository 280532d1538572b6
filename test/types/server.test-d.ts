/**
 * Type tests of the public server API (`unbroken-realtime/server`), checked by `tsc --noEmit` (nothing
 * here runs; test/build/type-tests.test.ts makes sure tsc covers this file).
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { expectTypeOf } from 'vitest';
import {
  MemoryStore,
  UnbrokenServerError,
  UnbrokenTypeError,
  createServer,
  type ArgumentErrorCode,
  type MessageStore,
  type ServerErrorCode,
  type ServerOptions,
  type Session,
  type SessionEndReason,
  type TransportName,
  type UnbrokenServer,
} from '../../src/server/index.js';

const realtime = createServer();
expectTypeOf(realtime).toExtend<UnbrokenServer>();

// attach() takes node:http and node:https servers and returns the server itself, for chaining.
expectTypeOf(realtime.attach(http.createServer())).toEqualTypeOf(realtime);
expectTypeOf(realtime.attach(https.createServer())).toEqualTypeOf(realtime);
// @ts-expect-error: a plain TCP server speaks no HTTP
realtime.attach(net.createServer());
// @ts-expect-error: a port is not a server
realtime.attach(8080);

// Listeners get the arguments of their event; on()/once() return the function that removes them.
realtime.on('connection', (session) => {
  expectTypeOf(session.id).toEqualTypeOf<string>();
  expectTypeOf(session.transport).toEqualTypeOf<TransportName | null>();
  expectTypeOf(session.connected).toEqualTypeOf<boolean>();
  expectTypeOf(session.send('world')).toEqualTypeOf<Promise<string>>();
  expectTypeOf(session.send({ text: 'hi' }, { event: 'chat' })).toEqualTypeOf<Promise<string>>();
  expectTypeOf(session.close()).toEqualTypeOf<void>();
  // @ts-expect-error: read-only
  session.id = 'another';
});
realtime.on('message', (_data, session) => expectTypeOf(session).toExtend<Session>());
realtime.on('close', (session, reason) => {
  expectTypeOf(session).toExtend<Session>();
  expectTypeOf(reason).toEqualTypeOf<SessionEndReason>();
});
realtime.on('error', (error) => expectTypeOf(error).toExtend<Error>());
expectTypeOf<SessionEndReason>().toEqualTypeOf<'bye' | 'timeout' | 'closed' | 'shutdown' | 'disconnected'>();
expectTypeOf(realtime.on('connection', () => {})).toEqualTypeOf<() => void>();
expectTypeOf(realtime.once('close', () => {})).toEqualTypeOf<() => void>();

// Wrong event names and listener signatures do not compile.
// @ts-expect-error: no such event (it is `connection`)
realtime.on('connect', () => {});
// @ts-expect-error: the close reason is a string union, not a number
realtime.on('close', (_session: Session, reason: number) => reason);
// @ts-expect-error: a connection listener gets a session, not a socket
realtime.on('connection', (socket: net.Socket) => socket);

// Sending: JSON values and bytes, resolving to the message id.
expectTypeOf(realtime.broadcast({ time: Date.now() }, { event: 'tick' })).toEqualTypeOf<Promise<string>>();
expectTypeOf(realtime.broadcast(new Uint8Array([1, 2]))).toEqualTypeOf<Promise<string>>();
// @ts-expect-error: a function is neither JSON nor bytes
void realtime.broadcast(() => 'tick');
// @ts-expect-error: the event name goes in the options object
void realtime.broadcast('hi', 'chat');
expectTypeOf(realtime.sessions).toEqualTypeOf<ReadonlyMap<string, Session>>();
expectTypeOf(realtime.close()).toEqualTypeOf<Promise<void>>();

// Options.
const options: ServerOptions[] = [
  {},
  { path: '/realtime', heartbeatInterval: 15_000, retry: 1_000, maxMessageSize: 1 << 20 },
  { allowedOrigins: ['https://app.example'] },
  { allowedOrigins: (origin) => origin.endsWith('.example') },
  { store: new MemoryStore({ maxMessages: 10_000, maxAge: 300_000 }) },
  { now: () => 0, random: () => 0.5 },
];
void options;
// @ts-expect-error: durations are numbers of ms
createServer({ heartbeatInterval: '15s' });
// @ts-expect-error: the server attaches to an http server; it does not listen itself
createServer({ port: 8080 });

// Stores: MemoryStore is one MessageStore; the server exposes the one it uses.
expectTypeOf(new MemoryStore()).toExtend<MessageStore>();
expectTypeOf(realtime.store).toEqualTypeOf<MessageStore>();

// Errors carry codes to branch on.
declare const serverError: UnbrokenServerError;
expectTypeOf(serverError).toExtend<Error>();
expectTypeOf(serverError.code).toEqualTypeOf<ServerErrorCode>();
declare const typeError: UnbrokenTypeError;
expectTypeOf(typeError).toExtend<TypeError>();
expectTypeOf(typeError.code).toEqualTypeOf<ArgumentErrorCode>();
expectTypeOf<'SERVER_CLOSED'>().toExtend<ServerErrorCode>();
expectTypeOf<'INVALID_EVENT_NAME'>().toExtend<ArgumentErrorCode>();
