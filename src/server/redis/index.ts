/**
 * `unbroken-realtime/redis`: the Redis store, shared by several server processes (needs the `ioredis`
 * package, an optional peer dependency).
 */
export { RedisStore, type RedisStoreOptions } from './redis-store.js';
