/**
 * Explicit signals for tests: a test awaits the event it needs instead of sleeping and hoping.
 * The test runner's own timeout is the only deadline.
 */

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves once `condition()` holds, re-checking each time `wake` is called. */
export function when(condition: () => boolean): { promise: Promise<void>; wake(): void } {
  const signal = deferred();
  const wake = () => {
    if (condition()) signal.resolve();
  };
  wake();
  return { promise: signal.promise, wake };
}

/** Yields to the event loop once, so I/O callbacks run between two steps of a test's own loop. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
