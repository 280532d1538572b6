/**
 * The carrier a holder tab keeps open for every tab of its group (PROTOCOL.md §7.5): an EventSource
 * on `GET P/carrier`, or one `GET P/carrier-poll` after another. It hands each line to `onLine` and
 * says once when it ended; reopening is the group's business (tab-group.ts).
 */
import { CARRIER_HEADER, CARRIER_VERSION, Endpoint, QueryParam, parseCarrierLines, type CarrierLine } from '../protocol/index.js';
import { endpointAt, type Clock } from './options.js';
import type { EventSourceConstructor, FetchLike } from './transport.js';

/** What a carrier reports. */
export interface CarrierHandlers {
  /** The carrier's response began (its headers arrived): its first line may still be held back by a proxy. */
  onLinkUp(): void;
  onLine(line: CarrierLine): void;
  /**
   * The carrier ended; `opened` says whether it had opened. One that never did (a version-1 server, a
   * network that blocks the request) leaves each tab to connect on its own meanwhile.
   */
  onEnd(opened: boolean): void;
}

/** An open carrier. */
export interface CarrierLink {
  close(): void;
}

/** What opening a carrier takes from the tab. */
export interface CarrierEnvironment {
  readonly EventSource?: EventSourceConstructor | undefined;
  readonly fetch: FetchLike;
  readonly clock: Clock;
}

/** Liveness: a carrier that sent nothing for this many of its heartbeat intervals is dead (§11). */
const SILENT_BEATS = 2;
/** The deadline for the first line, before the carrier said its heartbeat interval. */
const FIRST_LINE_MS = 10_000;

/** The URL of a carrier endpoint: the version that has carriers, and nothing else (§7.5). */
export function carrierUrl(base: string, endpoint: string, answers?: number): string {
  const url = endpointAt(base, endpoint);
  url.searchParams.set(QueryParam.version, `${CARRIER_VERSION}`);
  if (answers !== undefined) url.searchParams.set('n', `${answers}`);
  return url.href;
}

/** Opens a carrier of `transport` at the endpoint `base`. */
export function openCarrier(transport: 'sse' | 'long-polling', base: string, env: CarrierEnvironment, handlers: CarrierHandlers): CarrierLink {
  // fetch is called as a plain function: a browser's fetch throws when called as another object's method.
  const { clock, fetch } = env;
  let live = true;
  let opened = false;
  let deadline: unknown;
  let beat = FIRST_LINE_MS;
  const down = new AbortController();
  let source: { close(): void } | undefined;

  const end = (): void => {
    if (!live) return;
    live = false;
    clock.clearTimeout(deadline);
    source?.close();
    down.abort();
    handlers.onEnd(opened);
  };
  const alive = (): void => {
    clock.clearTimeout(deadline);
    deadline = clock.setTimeout(end, SILENT_BEATS * beat);
  };
  /** Reads one unit; false when the carrier ended on it. */
  const read = (text: string): boolean => {
    let lines: CarrierLine[];
    try {
      lines = parseCarrierLines(text);
    } catch {
      end();
      return false;
    }
    alive();
    for (const line of lines) {
      if (!live) return false;
      if ('notice' in line) {
        const { notice } = line;
        if (notice.kind === 'open') {
          opened = true;
          beat = Math.min(Math.max(notice.hb, 100), 300_000) + 1_000;
        }
        if (notice.kind === 'end') {
          end();
          return false;
        }
      }
      handlers.onLine(line);
    }
    return live;
  };
  alive();

  if (transport === 'sse' && env.EventSource) {
    const stream = new env.EventSource(carrierUrl(base, Endpoint.carrier));
    source = stream;
    stream.onopen = () => live && handlers.onLinkUp();
    stream.onmessage = ({ data }) => live && read(data);
    stream.onerror = end;
  } else {
    let answers = 0;
    let carrierId = '';
    const poll = (): void => {
      const init: RequestInit = { signal: down.signal, cache: 'no-store', headers: carrierId ? { [CARRIER_HEADER]: carrierId } : {} };
      fetch(carrierUrl(base, Endpoint.carrierPoll, carrierId ? answers : undefined), init)
        .then(async (response) => {
          if (live && !carrierId && response.status === 200) handlers.onLinkUp();
          const text = await response.text();
          if (!live) return;
          // A version-1 server answers 426 (UNSUPPORTED_VERSION), or 404 for a path it does not serve.
          if (response.status !== 200) return end();
          answers++;
          if (!read(text)) return;
          poll();
        })
        .catch(end);
    };
    const onLine = handlers.onLine;
    handlers = {
      ...handlers,
      onLine: (line) => {
        if ('notice' in line && line.notice.kind === 'open') carrierId = line.notice.id;
        onLine(line);
      },
    };
    poll();
  }
  return { close: end };
}
