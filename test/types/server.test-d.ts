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
  type Payload,
  type Sendable,
  type ServerErrorCode,
  type RoomTarget,
  type ServerEvents,
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
// Always the server's error: its code is read without a check.
realtime.on('error', (error) => expectTypeOf(error.code).toEqualTypeOf<ServerErrorCode>());
// A listener written for any Error still fits.
realtime.on('error', (error: Error) => error.message);
expectTypeOf<SessionEndReason>().toEqualTypeOf<'bye' | 'timeout' | 'closed' | 'shutdown' | 'disconnected'>();
expectTypeOf(realtime.on('connection', () => {})).toEqualTypeOf<() => void>();
expectTypeOf(realtime.once('close', () => {})).toEqualTypeOf<() => void>();

// Rooms: membership on the session, one target for one room or several.
realtime.on('join', (session, room) => {
  expectTypeOf(session).toExtend<Session>();
  expectTypeOf(room).toEqualTypeOf<string>();
  expectTypeOf(session.join('lobby')).toEqualTypeOf<Promise<void>>();
  expectTypeOf(session.leave('lobby')).toEqualTypeOf<Promise<void>>();
  expectTypeOf(session.rooms).toEqualTypeOf<ReadonlySet<string>>();
});
realtime.on('leave', (_session, room) => expectTypeOf(room).toEqualTypeOf<string>());
expectTypeOf(realtime.to('lobby').send({ text: 'hi' }, { event: 'chat' })).toEqualTypeOf<Promise<string>>();
expectTypeOf(realtime.to(['lobby', 'kitchen']).sessions()).resolves.items.toExtend<Session>();
// @ts-expect-error: a room is named by a string
realtime.to(42);
// @ts-expect-error: a leave listener gets the room's name, not a number
realtime.on('leave', (_session: Session, room: number) => room);

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

// Defaults: without type arguments, messages are any Payload both ways (as before the parameters).
expectTypeOf(createServer()).toEqualTypeOf<UnbrokenServer<Payload, Payload>>();
expectTypeOf<UnbrokenServer>().toEqualTypeOf<UnbrokenServer<Payload, Payload>>();
expectTypeOf<Session>().toEqualTypeOf<Session<Payload, Payload>>();
expectTypeOf<ServerEvents['message']>().toEqualTypeOf<[data: Payload, session: Session]>();
realtime.on('message', (data) => expectTypeOf(data).toEqualTypeOf<Payload>());
// The default takes every Payload, and a value typed with an interface (no index signature) as well,
// checked at any depth as a typed server's Outgoing is.
declare const anyPayload: Payload;
expectTypeOf(realtime.broadcast(anyPayload)).toEqualTypeOf<Promise<string>>();
interface Notice {
  text: string;
  tags: string[];
}
interface Dated {
  at: Date;
}
declare const notice: Notice;
declare const dated: Dated;
expectTypeOf(realtime.broadcast(notice)).toEqualTypeOf<Promise<string>>();
realtime.on('connection', (session) => void session.send(notice));
void realtime.to('lobby').send(notice);
// @ts-expect-error: a Date would arrive as a string
void realtime.broadcast(dated);
// @ts-expect-error: undefined has no JSON form
void realtime.broadcast(undefined);
// What compiled against the default before still does: a helper over Payload, and a test double.
function broadcastAny<T extends Payload>(data: T): Promise<string> {
  return realtime.broadcast(data);
}
void broadcastAny;
const double: Pick<Session, 'send'> = { send: (_data: Payload) => Promise.resolve('id') };
void double;

// Typed messages: `Incoming` types message data, `Outgoing` what broadcast() and session.send() take.
// Interfaces (no index signature, so no Payload) are sendable when their fields are JSON or bytes.
interface ChatIn {
  text: string;
  replyTo?: string;
}
interface ChatOut {
  text: string;
  from: string;
  at: number;
  attachment?: Uint8Array;
  mentions: readonly string[];
}
const chat = createServer<ChatIn, ChatOut>({ path: '/chat' });
expectTypeOf(chat).toEqualTypeOf<UnbrokenServer<ChatIn, ChatOut>>();
chat.on('message', (data, session) => {
  expectTypeOf(data).toEqualTypeOf<ChatIn>();
  expectTypeOf(session).toEqualTypeOf<Session<ChatIn, ChatOut>>();
  expectTypeOf(session.send({ text: data.text, from: 'bot', at: 0, mentions: [] })).toEqualTypeOf<Promise<string>>();
  // @ts-expect-error: a ChatOut needs `from`
  void session.send({ text: data.text, at: 0, mentions: [] });
  // @ts-expect-error: a string is a Payload, but not a ChatOut
  void session.send('hello');
});
chat.on('connection', (session) => expectTypeOf(session.send).parameter(0).toEqualTypeOf<ChatOut>());
chat.once('close', (session) => expectTypeOf(session).toEqualTypeOf<Session<ChatIn, ChatOut>>());
expectTypeOf(chat.sessions).toEqualTypeOf<ReadonlyMap<string, Session<ChatIn, ChatOut>>>();
// A helper for the sessions of any server takes Session<unknown, never>: it reads, joins and closes; it cannot send.
function roomsOf(session: Session<unknown, never>): ReadonlySet<string> {
  // @ts-expect-error: what the session takes is not known here
  void session.send('hello');
  return session.rooms;
}
chat.on('connection', (session) => roomsOf(session));
realtime.on('connection', (session) => roomsOf(session));
// The same for room targets and servers: a helper for any of them sends nothing.
function membersOf(target: RoomTarget<unknown, never>): Promise<unknown[]> {
  return target.sessions();
}
void membersOf(chat.to('lobby'));
function watchAll(server: UnbrokenServer<unknown, never>): void {
  server.on('message', (data, session) => void [data, session.id]);
  // @ts-expect-error: what the server takes is not known here
  void server.broadcast('hello');
}
watchAll(chat);
watchAll(realtime);
// A helper for default sessions may send any Payload, which a ChatOut session does not take.
declare function greet(session: Session): void;
// @ts-expect-error: a Session<ChatIn, ChatOut> is no Session<Payload, Payload>
chat.on('connection', (session) => greet(session));
void chat.broadcast({ text: 'hi', from: 'server', at: Date.now(), mentions: ['ada'] }, { event: 'chat' });
// @ts-expect-error: `at` is a number
void chat.broadcast({ text: 'hi', from: 'server', at: '12:00', mentions: [] });
// @ts-expect-error: a message listener gets ChatIn, not a number
chat.on('message', (data: number) => data);

// `unknown` as Incoming makes the application validate what clients send.
createServer<unknown>().on('message', (data) => expectTypeOf(data).toEqualTypeOf<unknown>());

// What JSON cannot carry is not a valid Outgoing, at any depth.
interface WithCallback {
  text: string;
  done: () => void;
}
class Temperature {
  constructor(readonly celsius: number) {}
  fahrenheit(): number {
    return (this.celsius * 9) / 5 + 32;
  }
}
// @ts-expect-error: a function is neither JSON nor bytes
createServer<unknown, () => string>();
// @ts-expect-error: a function field would be left out of the JSON
createServer<unknown, WithCallback>();
// @ts-expect-error: undefined has no JSON form
createServer<unknown, string | undefined>();
// @ts-expect-error: symbols have no JSON form
createServer<unknown, { id: symbol }>();
// @ts-expect-error: JSON.stringify throws on a bigint
createServer<unknown, { count: bigint }>();
// @ts-expect-error: an instance with methods would arrive without them
createServer<unknown, Temperature>();
// @ts-expect-error: a Date would arrive as a string
createServer<unknown, { at: Date }>();
// @ts-expect-error: an undefined array element would arrive as null
createServer<unknown, { scores: (number | undefined)[] }>();
// @ts-expect-error: `unknown` may be anything; Outgoing must be known to be sendable
createServer<unknown, unknown>();

// Sendable<T> holds T exactly for sendable types: recursive interfaces, bytes (Buffer too), tuples,
// records, unions, an undefined-able property, Payload inside an interface.
type Check<T extends Sendable<T>> = T;
interface Tree {
  label: string;
  children: Tree[];
}
type Accepted = [
  Check<Tree>,
  Check<Buffer>,
  Check<[x: number, y: number]>,
  Check<Record<string, ChatIn>>,
  Check<{ kind: 'joined'; who: string } | { kind: 'left'; who: string; reason: string | undefined }>,
  Check<{ raw: Payload; bytes: Uint8Array }>,
  Check<'on' | 'off' | null>,
];
expectTypeOf<Accepted[0]>().toEqualTypeOf<Tree>();
// A generic helper carries the constraint along.
function relay<T extends Sendable<T>>(server: UnbrokenServer<unknown, T>, data: T): Promise<string> {
  return server.broadcast(data);
}
declare const trees: UnbrokenServer<unknown, Tree>;
expectTypeOf(relay(trees, { label: 'root', children: [] })).toEqualTypeOf<Promise<string>>();

// Options.
const options: ServerOptions[] = [
  {},
  { path: '/realtime', heartbeatInterval: 15_000, retry: 1_000, maxMessageSize: 1 << 20 },
  { allowedOrigins: ['https://app.example'] },
  { allowedOrigins: new Set(['https://app.example']) },
  { allowedOrigins: (origin) => origin.endsWith('.example') },
  { store: new MemoryStore({ maxMessages: 10_000, maxAge: 300_000 }) },
  { now: () => 0, random: () => 0.5 },
];
void options;
// @ts-expect-error: durations are numbers of ms
createServer({ heartbeatInterval: '15s' });
// @ts-expect-error: a list of origins, not one origin (a string would match no origin at all)
createServer({ allowedOrigins: 'https://app.example' });
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
