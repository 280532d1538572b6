/**
 * Type tests of the public client API, checked by `tsc --noEmit` (nothing here runs).
 */
import { EventSource as NodeEventSource } from 'eventsource';
import { WebSocket as MockWebSocket } from 'mock-socket';
import { expectTypeOf } from 'vitest';
import NodeWebSocket from 'ws';
import {
  BaseClient,
  connect,
  isUnbrokenError,
  longPollingTransport,
  webSocketTransport,
  type Client,
  type ClientOptions,
  type ConnectionState,
  type ErrorCode,
  type GapEvent,
  type ScheduleEvent,
  type Sendable,
  type StateCause,
  type TransportName,
  type UnbrokenError,
  type UnbrokenMessage,
} from '../../src/client/index.js';

interface Chat {
  text: string;
}

declare const client: Client<Chat>;

// Payloads follow the event name.
client.on('message', (message) => expectTypeOf(message).toEqualTypeOf<UnbrokenMessage<Chat>>());
client.on('message:chat', (message) => expectTypeOf(message.data).toEqualTypeOf<Chat>());
client.on('state', ({ from, to, cause }) => {
  expectTypeOf(from).toEqualTypeOf<ConnectionState>();
  expectTypeOf(to).toEqualTypeOf<ConnectionState>();
  expectTypeOf(cause).toEqualTypeOf<StateCause>();
  expectTypeOf<'connected' | 'close-called' | 'HEARTBEAT_TIMEOUT'>().toExtend<StateCause>();
});
client.on('open', ({ transport, sessionId, resumed }) => {
  expectTypeOf(transport).toEqualTypeOf<TransportName>();
  expectTypeOf(sessionId).toEqualTypeOf<string>();
  expectTypeOf(resumed).toEqualTypeOf<boolean>();
});
client.on('close', ({ error }) => expectTypeOf(error).toEqualTypeOf<UnbrokenError | null>());
client.on('gap', (gap) => expectTypeOf(gap).toEqualTypeOf<GapEvent>());
client.on('error', (error) => expectTypeOf(error.code).toEqualTypeOf<ErrorCode>());
client.on('transport', ({ previous }) => expectTypeOf(previous).toEqualTypeOf<TransportName | null>());
expectTypeOf(client.on('open', () => {})).toEqualTypeOf<() => void>();
expectTypeOf(client.once('open', () => {})).toEqualTypeOf<() => void>();

// Wrong event names and payloads do not compile.
// @ts-expect-error: no such event
client.on('mesage', () => {});
// @ts-expect-error: a lifecycle event has no data
client.on('open', ({ data }: UnbrokenMessage) => data);
// @ts-expect-error: the state payload has no code
client.on('state', ({ code }: { code: string }) => code);

// Methods and properties.
expectTypeOf(client.send({ text: 'hi' })).toEqualTypeOf<Promise<void>>();
expectTypeOf(client.ping()).toEqualTypeOf<Promise<number>>();
expectTypeOf(client.state).toEqualTypeOf<ConnectionState>();
expectTypeOf(client.transport).toEqualTypeOf<TransportName | null>();
expectTypeOf(client.lastEventId).toEqualTypeOf<string | null>();
expectTypeOf(client.sessionId).toEqualTypeOf<string | null>();
// @ts-expect-error: read-only
client.state = 'open';

client.on('schedule', (event) => expectTypeOf(event).toEqualTypeOf<ScheduleEvent>());

// send() takes what it can send: JSON values and bytes; nothing else compiles.
declare const anyClient: Client;
expectTypeOf(anyClient.send({ a: [1, 'two', null, true] })).toEqualTypeOf<Promise<void>>();
anyClient.send(new Uint8Array([1, 2]));
anyClient.send(new ArrayBuffer(2));
anyClient.send(new DataView(new ArrayBuffer(2)));
// @ts-expect-error: a function is not JSON
anyClient.send(() => 1);
// @ts-expect-error: undefined is not JSON
anyClient.send(undefined);
// An object property may be undefined: JSON leaves the key out (as for a typed client's Outgoing);
// an array element may not (it would arrive as null).
anyClient.send({ a: undefined as undefined | number });
// @ts-expect-error: an undefined array element
anyClient.send([1, undefined as undefined | number]);
// @ts-expect-error: a Date serialises to a string, not to itself: send the string
anyClient.send(new Date());

// connect<Incoming, Outgoing>() types the data received and the data sent.
const chat = connect<Chat, { say: string }>('/realtime');
chat.on('message', ({ data }) => expectTypeOf(data).toEqualTypeOf<Chat>());
chat.send({ say: 'hi' });
// @ts-expect-error: not the outgoing type
chat.send({ text: 'hi' });
// @ts-expect-error: Outgoing must be something send() can carry
connect<Chat, { handler: () => void }>('/realtime');

// An interface is a valid Outgoing, as on the server (it has no index signature, so it is no
// JsonValue); what JSON cannot carry is not, at any depth.
interface Say {
  say: string;
  to?: string;
  mentions: { who: string; at: number }[];
}
interface SayWhen {
  say: string;
  when: Date;
}
const interfaced = connect<Chat, Say>('/realtime');
expectTypeOf(interfaced.send({ say: 'hi', mentions: [] })).toEqualTypeOf<Promise<void>>();
// @ts-expect-error: a Date would arrive as a string
connect<Chat, SayWhen>('/realtime');
// @ts-expect-error: an undefined array element would arrive as null
connect<Chat, { scores: (number | undefined)[] }>('/realtime');
// @ts-expect-error: a bigint has no JSON form
connect<Chat, { count: bigint }>('/realtime');
// Bytes of every kind, alone or as the whole of the data.
connect<Chat, Uint8Array | ArrayBuffer | DataView>('/realtime');
// `Sendable` alone is a JSON value or bytes; a generic helper carries `Sendable<T>` along.
expectTypeOf<Sendable>().toEqualTypeOf<import('../../src/protocol/index.js').JsonValue | ArrayBuffer | ArrayBufferView>();
function sendAll<I, T extends Sendable<T>>(client: Client<I, T>, items: readonly T[]): Promise<void[]> {
  return Promise.all(items.map((item) => client.send(item)));
}
expectTypeOf(sendAll(interfaced, [{ say: 'a', mentions: [] }])).toEqualTypeOf<Promise<void[]>>();
// The default client takes a value typed with an interface too (it has no index signature), checked
// the same way at any depth, and a generic helper needs nothing but `T extends Sendable<T>`.
declare const said: Say;
declare const saidWhen: SayWhen;
expectTypeOf(anyClient.send(said)).toEqualTypeOf<Promise<void>>();
// @ts-expect-error: a Date would arrive as a string
anyClient.send(saidWhen);
function sendOne<T extends Sendable<T>>(item: T): Promise<void> {
  return anyClient.send(item);
}
expectTypeOf(sendOne(said)).toEqualTypeOf<Promise<void>>();
// What compiled against the default before still does: helpers over JSON values, and the parameter
// type read back (it still takes null).
function sendJson<T extends import('../../src/protocol/index.js').JsonValue>(item: T): Promise<void> {
  return anyClient.send(item);
}
void sendJson;
const readBack: Parameters<Client['send']>[0] = null;
void readBack;

// connect() infers the data type from its type argument; unknown by default.
expectTypeOf(connect('/realtime')).toEqualTypeOf<Client<unknown>>();
expectTypeOf(connect<Chat>('/realtime')).toEqualTypeOf<Client<Chat>>();

// Implementations fit without casts: the DOM's, the `ws` and `eventsource` packages', mock-socket's.
const options: ClientOptions[] = [
  { WebSocket: globalThis.WebSocket },
  { WebSocket: NodeWebSocket },
  { WebSocket: MockWebSocket },
  { EventSource: globalThis.EventSource, fetch: globalThis.fetch },
  { EventSource: NodeEventSource },
  { transports: ['websocket', 'long-polling'] },
];
void options;
// @ts-expect-error: unknown transport name
connect('/realtime', { transports: ['carrier-pigeon'] });

// A BaseClient takes the transports themselves, which it must be given, and is what connect() makes.
const base = new BaseClient<{ text: string }>('/realtime', { transports: [webSocketTransport, longPollingTransport], WebSocket: NodeWebSocket });
expectTypeOf(base.state).toEqualTypeOf<ConnectionState>();
expectTypeOf(connect('/realtime')).toMatchTypeOf<BaseClient>();
// @ts-expect-error: names are for connect(); a BaseClient takes transport definitions
new BaseClient('/realtime', { transports: ['websocket'] });
// @ts-expect-error: a BaseClient has no default transports
new BaseClient('/realtime', {});
// @ts-expect-error: only the transports of this package are transports
new BaseClient('/realtime', { transports: [{ name: 'websocket' }] });
// connect() takes the imported transports as well as names, mixed, and a constant list.
connect('/realtime', { transports: [webSocketTransport, 'long-polling'] });
connect('/realtime', { transports: ['websocket', 'sse'] as const });
// @ts-expect-error: only the transports of this package are transports, for connect() too
connect('/realtime', { transports: [{ name: 'websocket' }] });

// The guard narrows.
declare const unknownError: unknown;
if (isUnbrokenError(unknownError)) expectTypeOf(unknownError.code).toEqualTypeOf<ErrorCode>();
