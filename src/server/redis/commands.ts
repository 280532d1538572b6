/**
 * The store's Lua scripts as ioredis commands (`defineCommand`: EVALSHA, with the script sent once per
 * connection and again after Redis lost its script cache), and a typed way to call them.
 */
import type { Redis } from 'ioredis';
import { MESSAGE_SCRIPTS } from './scripts.js';
import { SESSION_SCRIPTS } from './session-scripts.js';

const SCRIPTS = { ...MESSAGE_SCRIPTS, ...SESSION_SCRIPTS };

export type ScriptName = keyof typeof SCRIPTS;
export type ScriptArg = string | number | Buffer;

type ScriptCommand = (...args: ScriptArg[]) => Promise<unknown>;

/**
 * Defines every script on `redis` under its name (`unbroken…`, and `unbroken…Buffer` for replies as
 * Buffers). Defining them again — a second store on the same client — changes nothing.
 */
export function defineScripts(redis: Redis): void {
  const commands = redis as unknown as Record<string, unknown>;
  for (const [name, { lua, numberOfKeys }] of Object.entries(SCRIPTS)) {
    if (typeof commands[name] === 'function') continue;
    redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
  }
}

/**
 * Runs script `name` on `redis` (where {@link defineScripts} defined it). With `buffers`, strings in
 * the reply are Buffers: for replies that carry message data, which may be bytes.
 */
export function runScript(redis: Redis, name: ScriptName, args: readonly ScriptArg[], buffers = false): Promise<unknown> {
  const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[buffers ? `${name}Buffer` : name];
  if (typeof command !== 'function') return Promise.reject(new Error(`script ${name} is not defined on this connection`));
  return command.apply(redis, [...args]);
}

/** How reports name a script: `unbrokenCreateSession` → `createSession`. */
export function scriptLabel(name: ScriptName): string {
  return name.charAt(8).toLowerCase() + name.slice(9);
}

/** Reads a reply field as a string, whether it came as a string or as a Buffer. */
export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number') return String(value);
  throw new Error(`unexpected reply from Redis: ${JSON.stringify(value)}`);
}

/** Reads a reply that must be an array of at least `length` items. */
export function items(value: unknown, length: number): unknown[] {
  if (!Array.isArray(value) || value.length < length) throw new Error(`unexpected reply from Redis: ${JSON.stringify(value)}`);
  return value;
}
