/**
 * The server's `error` event always carries an UnbrokenServerError, so a listener reads its `code`
 * without a check: a store of the application's that reports a plain `Error` (its `onError`, a
 * rejected `ready()`) is reported as `STORE_ERROR` with that error as its `cause`; the server's own
 * errors pass as they are.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, UnbrokenServerError, createServer } from '../../src/server/index.js';
import { asServerError } from '../../src/server/errors.js';
import { deferred } from '../helpers/signals.js';
import { requestTicket } from '../helpers/raw-ticket.js';
import { startServer } from '../helpers/start-server.js';

/** A memory store whose troubles the test raises: `report` calls its `onError` listeners; `ready()` rejects with `notReady`. */
class TroubledStore extends MemoryStore {
  readonly #listeners = new Set<(error: Error) => void>();
  constructor(readonly notReady?: Error) {
    super();
  }
  override ready(): Promise<void> {
    return this.notReady ? Promise.reject(this.notReady) : Promise.resolve();
  }
  onError(listener: (error: Error) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  report(error: Error): void {
    for (const listener of this.#listeners) listener(error);
  }
}

describe("the server's error event", () => {
  it('says a server made on a store its first server closed cannot serve: ready() rejects, and a send rejects with STORE_ERROR', async () => {
    const first = createServer();
    await first.close();
    const second = createServer({ store: first.store });
    second.on('error', () => undefined);
    await expect(second.ready()).rejects.toMatchObject({ code: 'STORE_ERROR', message: expect.stringContaining('pass it as `store`') });
    await expect(second.broadcast('hi')).rejects.toMatchObject({ code: 'STORE_ERROR' });
    await second.close();
  });

  it('reports an identity from authenticate that is none (a number as id) as INVALID_IDENTITY, and refuses the client', async () => {
    const started = await startServer({ authenticate: () => ({ id: 42 }) as unknown as { id: string } });
    try {
      const reported = deferred<UnbrokenServerError>();
      started.server.on('error', (error) => reported.resolve(error));
      const answer = await requestTicket(started.baseUrl, { credentials: 'token' });
      expect([answer.status, JSON.parse(answer.text).code]).toEqual([401, 'UNAUTHORIZED']);
      expect(await reported.promise).toMatchObject({ code: 'INVALID_IDENTITY', message: expect.stringContaining('expects id to be a string') });
    } finally {
      await started.close();
    }
  });

  it("reports a plain Error of the store's onError as STORE_ERROR, with the store's error as its cause", async () => {
    const store = new TroubledStore();
    const server = createServer({ store });
    const reported = deferred<UnbrokenServerError>();
    server.on('error', (error) => reported.resolve(error));
    const lost = new Error('connection lost');
    store.report(lost);
    const error = await reported.promise;
    expect(error).toBeInstanceOf(UnbrokenServerError);
    expect(error.code).toBe('STORE_ERROR');
    expect(error.message).toBe('the store failed: Error: connection lost');
    expect(error.cause).toBe(lost);
    await server.close();
  });

  it('reports a store whose ready() rejects with a plain Error as STORE_ERROR, and ready() rejects with that error', async () => {
    const refused = new Error('ECONNREFUSED');
    const server = createServer({ store: new TroubledStore(refused) });
    const reported = deferred<UnbrokenServerError>();
    server.on('error', (error) => reported.resolve(error));
    await expect(server.ready()).rejects.toBe(refused);
    const error = await reported.promise;
    expect(error.code).toBe('STORE_ERROR');
    expect(error.cause).toBe(refused);
    await server.close();
  });

  it("passes the server's own errors as they are, and describes a thrown value String() cannot print", () => {
    const own = new UnbrokenServerError('ENCODE_ERROR', 'message 1 could not be encoded');
    expect(asServerError('INTERNAL_ERROR', 'failed', own)).toBe(own);
    const odd = asServerError('INTERNAL_ERROR', 'a message could not be delivered', Object.create(null));
    expect(odd.code).toBe('INTERNAL_ERROR');
    expect(odd.message).toBe('a message could not be delivered: [object Object]');
  });
});
