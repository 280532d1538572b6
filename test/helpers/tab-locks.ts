/**
 * Web Locks for simulated tabs in Node: one lock table shared by every tab, each tab with its own
 * view of it (`tab()`), the way a browser's lock manager serves the tabs of one origin. Closing a tab
 * (`crash()`) releases every lock it holds and drops its requests, as a browser does for a tab that
 * closes or crashes. Exclusive locks only, granted in request order.
 */
import type { LockManagerLike } from '../../src/client/transport.js';

interface Request {
  readonly tab: SimulatedTab;
  readonly grant: () => void;
}

export interface SimulatedTab {
  readonly locks: LockManagerLike;
  /** Releases everything this tab holds and forgets what it waits for; its callbacks never resolve a lock again. */
  crash(): void;
  /** Names of the locks this tab holds now. */
  held(): string[];
}

export class LockTable {
  readonly #holders = new Map<string, SimulatedTab>();
  readonly #queues = new Map<string, Request[]>();

  /** The name's holder, or undefined. */
  holder(name: string): SimulatedTab | undefined {
    return this.#holders.get(name);
  }

  tab(): SimulatedTab {
    const table = this;
    let crashed = false;
    const tab: SimulatedTab = {
      locks: {
        request(name, options, callback) {
          return new Promise((resolve, reject) => {
            if (crashed) return reject(new Error('the tab is gone'));
            const request: Request = {
              tab,
              grant: () => {
                options.signal?.removeEventListener('abort', onAbort);
                table.#holders.set(name, tab);
                Promise.resolve()
                  .then(() => callback({ name }))
                  .then(resolve, reject)
                  .finally(() => {
                    if (!crashed && table.#holders.get(name) === tab) table.#release(name);
                  });
              },
            };
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
        },
      },
      crash() {
        crashed = true;
        for (const [name, queue] of table.#queues) table.#queues.set(name, queue.filter((request) => request.tab !== tab));
        for (const [name, holder] of [...table.#holders]) if (holder === tab) table.#release(name);
      },
      held: () => [...table.#holders].filter(([, holder]) => holder === tab).map(([name]) => name),
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
