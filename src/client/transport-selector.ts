/**
 * Which transport the next attempt uses (PROTOCOL.md §13.3), as data: the client's list of transport
 * definitions is the fallback order and says what each one's stall means; the transport the client
 * upgrades to is named here; the {@link Route} is the decision itself, a plain value the pure
 * functions below compute and the {@link TransportSelector} keeps (with the memory of the transport
 * that worked). Nothing here imports a transport: the client uses only those it is given.
 */
import { UnbrokenError } from './errors.js';
import type { TransportChangeReason } from './events.js';
import type { TransportDefinition, TransportEnvironment, TransportFactory, TransportName, UpgradeProbe } from './transport.js';

/** The transport a client on a fallback probes and moves back to (§7.1.1). */
const UPGRADE_TO: TransportName = 'websocket';

/**
 * Throws a `TypeError` unless `transports` is a non-empty list of transport definitions: the client's
 * fallback order (§13.3). A name that `Client` could not look up arrives here as itself.
 */
export function checkDefinitions(transports: unknown): asserts transports is readonly TransportDefinition[] {
  const list = transports as readonly (Partial<TransportDefinition> | null)[];
  if (!Array.isArray(list) || !list.length || list.some((t) => !t?.make)) {
    const nameOf = (t: Partial<TransportDefinition> | null) => t?.name ?? t;
    const got = Array.isArray(list) ? list.map(nameOf) : nameOf(list as Partial<TransportDefinition> | null);
    throw new TypeError(`unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got ${JSON.stringify(got)}`);
  }
}

/** A transport that can run here. */
export interface AvailableTransport {
  name: TransportName;
  make: TransportFactory;
  /** See {@link TransportDefinition.bufferable}. */
  bufferable: boolean;
}

/** The transports of `transports` that can run in `env`, in their order. */
export function availableTransports(transports: readonly TransportDefinition[], env: TransportEnvironment): AvailableTransport[] {
  const found: AvailableTransport[] = [];
  for (const transport of transports) {
    const make = transport.make(env);
    if (make) found.push({ ...transport, make });
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

/** `NO_TRANSPORT`: none of `transports` can run here, and what each needs. */
export function noTransport(transports: readonly TransportDefinition[]): UnbrokenError {
  const hint = 'each needs fetch (for its ticket), websocket a WebSocket and sse an EventSource too; in Node, pass `ws` as the WebSocket option and `eventsource` (its EventSource) as EventSource';
  return new UnbrokenError('NO_TRANSPORT', `cannot run ${transports.map((t) => t.name).join(', ')} here: ${hint}`);
}

/**
 * The route after `failed` could not connect: the next transport of the list, with `reason`, what
 * the client saw of the failed one ({@link TransportSelector.leftReason}, §13.3); `null` when the list
 * is exhausted (the client backs off, then starts over).
 */
export function fallbackRoute(failed: TransportName, reason: TransportChangeReason, available: readonly AvailableTransport[]): Route | null {
  const next = nextTransport(failed, available);
  return next ? { name: next.name, reason } : null;
}

/** The transport listed after `name` among those that can run, if any. */
export function nextTransport(name: TransportName, available: readonly AvailableTransport[]): AvailableTransport | undefined {
  return available[available.findIndex((t) => t.name === name) + 1];
}

/**
 * Why a client leaves a transport for another before its `hello`, from what it saw of it (§13.3):
 * `stalled` is what the failed transport's stall means ({@link TransportDefinition.stalled}).
 */
export function leftReason(stalled: TransportDefinition['stalled'], how: FailedConnect): TransportChangeReason {
  return how.kind === 'refused' ? 'refused' : how.linkUp ? stalled : 'timeout';
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
  readonly #transports: readonly TransportDefinition[];
  readonly #memory: RouteMemory | null;
  readonly #key: string;
  readonly #rememberFor: number;

  constructor(transports: readonly TransportDefinition[], memory: RouteMemory | null, endpoint: string, rememberFor: number, now: number) {
    this.#transports = transports;
    this.#memory = memory;
    this.#key = `unbroken:transport:${endpoint}`;
    this.#rememberFor = rememberFor;
    let remembered: { name?: unknown; until?: unknown } | null = null;
    try {
      remembered = Object(JSON.parse(this.#memory?.getItem(this.#key) ?? 'null')) as typeof remembered;
    } catch {
      // Unreadable memory is no memory.
    }
    this.#route = firstRoute(transports.map((t) => t.name), remembered, now);
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
      if (name === this.#transports[0]!.name) this.#memory?.removeItem(this.#key);
      else this.#memory?.setItem(this.#key, JSON.stringify({ name, until: now + this.#rememberFor }));
    } catch {
      // Storage full or forbidden: the client works the same, it only forgets.
    }
  }

  /** The transports of the list that can run in `env`. */
  available(env: TransportEnvironment): AvailableTransport[] {
    return availableTransports(this.#transports, env);
  }

  /** Why the client leaves `failed` before its `hello`, from what it saw of it. */
  leftReason(failed: TransportName, how: FailedConnect): TransportChangeReason {
    // Every attempt's transport comes from this list.
    return leftReason(this.#transports.find((t) => t.name === failed)!.stalled, how);
  }

  /** The upgrade probe for a client on `current`, when it should probe and can. */
  upgradeProbe(current: TransportName, env: TransportEnvironment): UpgradeProbe | undefined {
    return upgradesFrom(current, this.#transports.map((t) => t.name)) ? this.#transports.find((t) => t.name === UPGRADE_TO)?.makeProbe?.(env) : undefined;
  }
}
