/**
 * Web Locks for simulated tabs in Node: one lock table shared by every tab, each tab with its own
 * view of it (`tab()`), the way a browser's lock manager serves the tabs of one origin. Closing a tab
 * (`crash()`) releases every lock it holds and drops its requests, as a browser does for a tab that
 * closes or crashes. Exclusive locks only, granted in request order; a request with `steal` is granted
 * at once, and the request that held the lock rejects with an `AbortError`, as the Web Locks API has
 * it (https://w3c.github.io/web-locks/#dom-lockoptions-steal).
 *
 * Each tab also has its own BroadcastChannel constructor over Node's real one, so that a tab can hang
 * (`hang()`), as a page stuck in a long task or suspended without a `freeze` event does: it then hears
 * and posts nothing, and is told of no lock granted or taken from it, until `wake()` runs all of that
 * in order. Its timers and sockets go on: from the other tabs' side it is silent all the same.
 */
import type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike } from '../../src/client/transport.js';

interface Request {
  readonly tab: SimulatedTab;
  readonly grant: () => void;
  /** Rejects the request's promise: its lock was stolen. */
  readonly stolen: () => void;
}

export interface SimulatedTab {
  readonly locks: LockManagerLike;
  readonly BroadcastChannel: BroadcastChannelConstructor;
  /** From now on the tab hears, posts and is told nothing (see above). */
  hang(): void;
  /** Runs, in order, what the tab missed while it hung; it goes on as usual. */
  wake(): void;
  /** Releases everything this tab holds and forgets what it waits for; its callbacks never resolve a lock again. */
  crash(): void;
  /** Names of the locks this tab holds now. */
  held(): string[];
}

export class LockTable {
  readonly #holders = new Map<string, Request>();
  readonly #queues = new Map<string, Request[]>();

  /** The name's holder, or undefined. */
  holder(name: string): SimulatedTab | undefined {
    return this.#holders.get(name)?.tab;
  }

  /**
   * A tab's view of the table. `locksFrom`: its lock requests reach the table only once this settles,
   * as a fresh page's first request can take longer than the page's own network requests.
   */
  tab(tabOptions: { locksFrom?: Promise<unknown> } = {}): SimulatedTab {
    const table = this;
    let crashed = false;
    /** While the tab hangs, what it would have done; null while it runs. */
    let missed: (() => void)[] | null = null;
    const run = (step: () => void): void => void (missed ? missed.push(step) : step());
    class TabChannel implements BroadcastChannelLike {
      onmessage: BroadcastChannelLike['onmessage'] = null;
      readonly #channel: BroadcastChannel;
      constructor(name: string) {
        this.#channel = new BroadcastChannel(name);
        this.#channel.onmessage = (event) => run(() => this.onmessage?.({ data: (event as MessageEvent).data }));
      }
      postMessage(message: unknown): void {
        run(() => this.#channel.postMessage(message));
      }
      close(): void {
        run(() => this.#channel.close());
      }
    }
    const tab: SimulatedTab = {
      BroadcastChannel: TabChannel,
      hang: () => void (missed ??= []),
      wake() {
        // What the missed steps do meanwhile queues behind them: the tab's own order holds.
        for (let step = missed?.shift(); step; step = missed?.shift()) step();
        missed = null;
      },
      locks: {
        request(name, options, callback) {
          const ask = (): Promise<unknown> => new Promise((resolve, reject) => {
            if (crashed) return reject(new Error('the tab is gone'));
            if (options.steal && options.signal) return reject(new DOMException('steal with a signal', 'NotSupportedError'));
            const request: Request = {
              tab,
              grant: () => {
                options.signal?.removeEventListener('abort', onAbort);
                table.#holders.set(name, request);
                new Promise<void>((granted) => run(granted))
                  .then(() => callback({ name }))
                  .then(resolve, reject)
                  .finally(() => {
                    if (!crashed && table.#holders.get(name) === request) table.#release(name);
                  });
              },
              stolen: () => run(() => reject(new DOMException('the lock was stolen', 'AbortError'))),
            };
            if (options.steal) {
              const held = table.#holders.get(name);
              table.#holders.delete(name);
              held?.stolen();
              return request.grant();
            }
            const onAbort = (): void => {
              const queue = table.#queues.get(name) ?? [];
              const index = queue.indexOf(request);
              if (index < 0) return;
              queue.splice(index, 1);
              reject(new DOMException('aborted', 'AbortError'));
            };
            if (options.signal?.aborted) return reject(new DOMException('aborted', 'AbortError'));
            options.signal?.addEventListener('abort', onAbort);
            const queue = table.#queues.get(name) ?? [];
            table.#queues.set(name, queue);
            queue.push(request);
            table.#next(name);
          });
          return tabOptions.locksFrom ? tabOptions.locksFrom.then(ask) : ask();
        },
      },
      crash() {
        crashed = true;
        for (const [name, queue] of table.#queues) table.#queues.set(name, queue.filter((request) => request.tab !== tab));
        for (const [name, holder] of [...table.#holders]) if (holder.tab === tab) table.#release(name);
      },
      held: () => [...table.#holders].filter(([, holder]) => holder.tab === tab).map(([name]) => name),
    };
    return tab;
  }

  #release(name: string): void {
    this.#holders.delete(name);
    this.#next(name);
  }

  #next(name: string): void {
    if (this.#holders.has(name)) return;
    const request = this.#queues.get(name)?.shift();
    request?.grant();
  }
}
