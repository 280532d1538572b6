/**
 * Which transport the next attempt uses (PROTOCOL.md §13.3), as data: the fallback order, what each
 * transport's stall means, which transport the client upgrades to, and the {@link Route} — the
 * decision itself, a plain value the pure functions below compute and the {@link TransportSelector}
 * keeps (with the memory of the transport that worked).
 */
import type { TransportChangeReason } from './events.js';
import type { TransportEnvironment, TransportFactory, TransportName } from './transport.js';
import { longPolling } from './transports/long-polling.js';
import { shared } from './transports/shared.js';
import { sse } from './transports/sse.js';
import { webSocket, webSocketProbe, type UpgradeProbe } from './transports/websocket.js';

/** What the selector knows of one transport. */
interface TransportEntry {
  /** Its factory, when it can run in `env`. */
  make(env: TransportEnvironment): TransportFactory | undefined;
  /** What it means when its link came up but no `hello` followed in time (§13.3). */
  stalled: 'silent' | 'buffered' | 'timeout';
  /**
   * Whether a proxy may hold its stream back while letting it open: then the client checks an open
   * stream with pings whose pongs must come down it (§13.3, "Checking an open stream").
   */
  bufferable: boolean;
}

const TRANSPORTS: { readonly [N in TransportName]: TransportEntry } = {
  // Every attempt starts with its ticket request (§3.4): no transport runs without fetch.
  websocket: { make: (env) => env.WebSocket && env.fetch && webSocket(env.WebSocket), stalled: 'silent', bufferable: false },
  sse: { make: (env) => env.EventSource && env.fetch && shareable('sse', env, sse(env.EventSource, env.fetch)), stalled: 'buffered', bufferable: true },
  // A poll answer is a whole response: a buffering proxy passes it on when it ends.
  'long-polling': { make: (env) => env.fetch && shareable('long-polling', env, longPolling(env.fetch)), stalled: 'timeout', bufferable: false },
};

/**
 * The HTTP transports hold one of the browser's six connections per host each: where Web Locks and
 * BroadcastChannel exist, the tabs share one (§7.5), and `own` serves when they cannot. A WebSocket
 * does not count against that limit, so each tab keeps its own.
 */
function shareable(transport: 'sse' | 'long-polling', env: TransportEnvironment, own: TransportFactory): TransportFactory {
  const { locks, BroadcastChannel, EventSource, fetch } = env;
  return locks && BroadcastChannel && fetch ? shared(transport, { locks, BroadcastChannel, EventSource, fetch }, own) : own;
}

/** The transport a client on a fallback probes and moves back to (§7.1.1). */
const UPGRADE_TO: TransportName = 'websocket';

/** The default fallback order. */
export const DEFAULT_TRANSPORTS = Object.keys(TRANSPORTS) as TransportName[];

/** Throws a `TypeError` when `names` is empty or names an unknown transport. */
export function checkTransports(names: readonly string[]): void {
  const unknown = names.find((name) => !Object.hasOwn(TRANSPORTS, name));
  if (!names.length || unknown !== undefined) {
    throw new TypeError(`unbroken: transports expects names among ${DEFAULT_TRANSPORTS.join(', ')}, got ${JSON.stringify(names)}`);
  }
}

/** A transport that can run here. */
export interface AvailableTransport {
  name: TransportName;
  make: TransportFactory;
  /** See {@link TransportEntry.bufferable}. */
  bufferable: boolean;
}

/** The transports of `names` that can run in `env`, in the order of `names`. */
export function availableTransports(names: readonly TransportName[], env: TransportEnvironment): AvailableTransport[] {
  const found: AvailableTransport[] = [];
  for (const name of names) {
    const make = TRANSPORTS[name].make(env);
    if (make) found.push({ name, make, bufferable: TRANSPORTS[name].bufferable });
  }
  return found;
}

/**
 * Where the next attempt goes: a transport (`null`: the first of the list that can run), and why it
 * was chosen — the `reason` of the `transport` event when the attempt opens on a new transport.
 */
export interface Route {
  readonly name: TransportName | null;
  readonly reason: TransportChangeReason;
}

/** How an attempt that never said `hello` failed: refused, or nothing in time (with its link up or not). */
export type FailedConnect = { kind: 'refused' } | { kind: 'timeout'; linkUp: boolean };

/** The first route: the remembered transport while its memory is valid and it is listed, else the list's first. */
export function firstRoute(names: readonly TransportName[], remembered: { name?: unknown; until?: unknown } | null, now: number): Route {
  const name = remembered?.name as TransportName | undefined;
  return name !== undefined && names.includes(name) && Number(remembered?.until ?? 0) > now
    ? { name, reason: 'remembered' }
    : { name: null, reason: 'initial' };
}

/** The transport a route picks among those that can run: its own, else the first. */
export function pick(route: Route, available: readonly AvailableTransport[]): AvailableTransport | undefined {
  return available.find(({ name }) => name === route.name) ?? available[0];
}

/**
 * The route after `failed` could not connect: the next transport of the list, named by what the
 * client saw (§13.3); `null` when the list is exhausted (the client backs off, then starts over).
 */
export function fallbackRoute(failed: TransportName, how: FailedConnect, available: readonly AvailableTransport[]): Route | null {
  const next = nextTransport(failed, available);
  return next ? { name: next.name, reason: leftReason(failed, how) } : null;
}

/** The transport listed after `name` among those that can run, if any. */
export function nextTransport(name: TransportName, available: readonly AvailableTransport[]): AvailableTransport | undefined {
  return available[available.findIndex((t) => t.name === name) + 1];
}

/** Why a client leaves `failed` for another transport before its `hello`, from what it saw of it (§13.3). */
export function leftReason(failed: TransportName, how: FailedConnect): TransportChangeReason {
  return how.kind === 'refused' ? 'refused' : how.linkUp ? TRANSPORTS[failed].stalled : 'timeout';
}

/** The route after an open stream of `from` was found held back: the next transport, or `null` when none is left. */
export function bufferedRoute(from: TransportName, available: readonly AvailableTransport[]): Route | null {
  const next = nextTransport(from, available);
  return next ? { name: next.name, reason: 'buffered' } : null;
}

/** The route after a successful upgrade probe. */
export const UPGRADE_ROUTE: Route = { name: UPGRADE_TO, reason: 'upgrade' };

/** Whether a client on `current` probes for an upgrade: the upgrade transport is listed before it. */
export function upgradesFrom(current: TransportName, names: readonly TransportName[]): boolean {
  const target = names.indexOf(UPGRADE_TO);
  return target >= 0 && names.indexOf(current) > target;
}

/** Where a client remembers the transport that worked. */
export interface RouteMemory {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Keeps the route of one client and the memory of what worked for its endpoint (§13.3). The client
 * core asks it where to go and tells it what happened; it never branches on a transport's name.
 */
export class TransportSelector {
  #route: Route;
  readonly #names: readonly TransportName[];
  readonly #memory: RouteMemory | null;
  readonly #key: string;
  readonly #rememberFor: number;

  constructor(names: readonly TransportName[], memory: RouteMemory | null, endpoint: string, rememberFor: number, now: number) {
    this.#names = names;
    this.#memory = memory;
    this.#key = `unbroken:transport:${endpoint}`;
    this.#rememberFor = rememberFor;
    let remembered: { name?: unknown; until?: unknown } | null = null;
    try {
      remembered = Object(JSON.parse(this.#memory?.getItem(this.#key) ?? 'null')) as typeof remembered;
    } catch {
      // Unreadable memory is no memory.
    }
    this.#route = firstRoute(names, remembered, now);
  }

  /** The current route. */
  get route(): Route {
    return this.#route;
  }

  /** Follows `route`, e.g. one computed by {@link fallbackRoute}. `null`: start over from the first. */
  follow(route: Route | null): void {
    // Starting over keeps the last reason: it is why the client is not on the first transport now.
    this.#route = route ?? { name: null, reason: this.#route.reason };
  }

  /** A transport said `hello`: the client stays on it, and remembers it (the list's first needs no memory). */
  connected(name: TransportName, now: number): void {
    this.#route = { name, reason: this.#route.reason };
    try {
      if (name === this.#names[0]) this.#memory?.removeItem(this.#key);
      else this.#memory?.setItem(this.#key, JSON.stringify({ name, until: now + this.#rememberFor }));
    } catch {
      // Storage full or forbidden: the client works the same, it only forgets.
    }
  }

  /** The transports of the list that can run in `env`. */
  available(env: TransportEnvironment): AvailableTransport[] {
    return availableTransports(this.#names, env);
  }

  /** The upgrade probe for a client on `current`, when it should probe and can. */
  upgradeProbe(current: TransportName, env: TransportEnvironment): UpgradeProbe | undefined {
    return upgradesFrom(current, this.#names) && env.WebSocket ? webSocketProbe(env.WebSocket) : undefined;
  }
}
