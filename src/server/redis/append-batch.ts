/**
 * Appends sent to Redis together: the appends called in one turn of the microtask queue (a broadcast
 * loop, a burst of `session.send`) go out as one call of the append script, which stores them in
 * order and answers every id at once. Per message this saves the script call's own cost in Redis and
 * in ioredis (its arguments, reply and timer), and the random epoch candidate of each call.
 *
 * Order: a batch is sent before any other command of the store (`flush()`), so that a join, a leave,
 * a read or a session command called after an `append` reaches Redis after it, as the store's
 * contract says (src/server/store.ts, `join`).
 *
 * Failure: a message that cannot be encoded fails its own `append` at once. A failed script call
 * (Redis unreachable, out of memory) rejects every append of its batch, as it rejected each append
 * before; as before, a script that fails part-way may have stored the messages before the failure.
 */
import type { Address, NewMessage, StoredMessage } from '../index.js';
import { encodeMessage, storedMessage, type EncodedMessage } from './codec.js';
import { items, text, type ScriptArg } from './commands.js';
import { candidateEpoch, formatId } from './ids.js';

/**
 * Most messages in one script call: a script holds Redis for its whole run (about 20 µs per message
 * measured), so a batch stays within a few milliseconds.
 */
export const MAX_BATCH_MESSAGES = 128;
/** Most bytes of data in one script call, so that one batch never carries many large messages. */
export const MAX_BATCH_BYTES = 1024 * 1024;

interface Pending {
  readonly message: NewMessage;
  readonly encoded: EncodedMessage;
  resolve(stored: StoredMessage): void;
  reject(error: unknown): void;
}

export interface AppendBatchOptions {
  /** The store's fixed keys: meta, feed and the message list, in the script's order. */
  readonly fixedKeys: readonly string[];
  /** The index streams a message to `to` is listed in. */
  indexKeys(to: Address): string[];
  /** The script's arguments after its keys and before the messages: retention and ttls. */
  readonly settings: readonly ScriptArg[];
  /** Runs the append script with these arguments (the key count first). */
  run(args: ScriptArg[]): Promise<unknown>;
}

export class AppendBatch {
  readonly #options: AppendBatchOptions;
  #pending: Pending[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(options: AppendBatchOptions) {
    this.#options = options;
  }

  /**
   * Stores `message` with the next batch (`dataText`: its data's JSON text, when the caller has it).
   * Throws, as `append` rejects, when it cannot be encoded.
   */
  add(message: NewMessage, dataText?: string): Promise<StoredMessage> {
    const encoded = encodeMessage(message, dataText);
    return new Promise((resolve, reject) => {
      this.#pending.push({ message, encoded, resolve, reject });
      // UTF-16 units of JSON text: near enough to its bytes for a bound.
      this.#bytes += encoded.data.length;
      if (this.#pending.length >= MAX_BATCH_MESSAGES || this.#bytes >= MAX_BATCH_BYTES) {
        this.flush();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /** Sends the appends called so far, if any. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#bytes = 0;
    this.#options.run(this.#args(batch)).then(
      (reply) => {
        let ids: unknown[];
        try {
          ids = items(reply, batch.length + 1);
        } catch (error) {
          for (const entry of batch) entry.reject(error);
          return;
        }
        const epoch = text(ids[0]);
        batch.forEach((entry, index) => entry.resolve(storedMessage(formatId(epoch, text(ids[index + 1])), entry.message)));
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
      },
    );
  }

  /**
   * KEYS: the fixed keys, then every index stream of the batch once. ARGV: a candidate epoch, the
   * settings, the message count, then per message: how many index streams, their positions in KEYS,
   * and its encoded fields (scripts.ts, APPEND).
   */
  #args(batch: readonly Pending[]): ScriptArg[] {
    const { fixedKeys, indexKeys, settings } = this.#options;
    const keys = [...fixedKeys];
    const positions = new Map<string, number>();
    const perMessage: ScriptArg[] = [];
    for (const { message, encoded } of batch) {
      const indexes = indexKeys(message.to);
      perMessage.push(indexes.length);
      for (const key of indexes) {
        let position = positions.get(key);
        if (position === undefined) {
          keys.push(key);
          position = keys.length;
          positions.set(key, position);
        }
        perMessage.push(position);
      }
      perMessage.push(encoded.to, encoded.event, encoded.kind, encoded.data);
    }
    return [keys.length, ...keys, candidateEpoch(), ...settings, batch.length, ...perMessage];
  }
}
