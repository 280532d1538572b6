/**
 * The Lua scripts of the shared session state (src/server/shared-state.ts). Keys (`P` is the prefix):
 *
 * - `P:session:<id>` hash: `key`, `user` (the identity as JSON, `''` for none), `processed` (§8),
 *   `born` (the incarnation's mark, shared-state.ts). Expires after its ttl unless touched.
 * - `P:ticket:<ticket>` string: the grant as JSON, `PX` its ttl; taken with `GETDEL` (single use).
 * - `P:tickets:<session>` set: the tickets issued for a session, so that ending it voids them.
 * - `P:poll:<connection>` string: a long-polling connection's record as JSON, its session and its
 *   client's batch limit (`{"session", "max"?}`, §4.1.size), `PX` its ttl.
 * - `P:polls:<session>` set: a session's long-polling connections, so that touching it keeps them.
 *
 * Numbers that Redis keeps (`processed`, ttls) are passed and returned as strings: Lua numbers are
 * doubles, and Redis formats them with 14 significant digits.
 */
import { PRELUDE } from './scripts.js';

/**
 * KEYS session, x:s:<session>, rooms:<session> · ARGV key, user, ttl, born → {created 0|1, key, user,
 * processed, born (nil when made without one)}. A session created under an id starts with nothing
 * addressed to an earlier one of that id (§3.3.same-id: the id is no secret): its index and its
 * memberships go.
 */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local stored = redis.call('HMGET', KEYS[1], 'key', 'user', 'processed', 'born')
  return { 0, stored[1], stored[2], stored[3], stored[4] }
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'key', ARGV[1], 'user', ARGV[2], 'processed', '0', 'born', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return { 1, ARGV[1], ARGV[2], '0', ARGV[4] }
`;

/** KEYS session · ARGV user. */
const SET_USER = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'user', ARGV[1]) end
return 0
`;

/** KEYS session · ARGV first, last → processed before, as a string, or nil for an unknown session. */
const ADVANCE = `
local v = redis.call('HMGET', KEYS[1], 'processed', 'claimed', 'owner', 'until')
if not v[1] then return false end
local processed = tonumber(v[1])
local claimed = tonumber(v[2] or v[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base = processed
if claimed > processed then
  if v[3] == ARGV[3] then
    base = claimed
  elseif tonumber(v[4] or '0') > now then
    return { 'busy', tonumber(v[4]) - now }
  end
end
if tonumber(ARGV[1]) <= base + 1 and tonumber(ARGV[2]) > base then
  redis.call('HSET', KEYS[1], 'claimed', ARGV[2], 'owner', ARGV[3], 'until', now + tonumber(ARGV[4]))
end
return { 'base', base }
`;

/** KEYS session · ARGV upTo → 1, or 0 for an unknown session. Raises processed to upTo. */
const CONFIRM = `
local processed = redis.call('HGET', KEYS[1], 'processed')
if not processed then return 0 end
if tonumber(ARGV[1]) > tonumber(processed) then redis.call('HSET', KEYS[1], 'processed', ARGV[1]) end
return 1
`;

/** KEYS session, rooms, polls · ARGV ttl, poll key prefix → 1, or 0 for an unknown session. */
const TOUCH = `
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
for _, connection in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('PEXPIRE', ARGV[2] .. connection, ARGV[1]) == 0 then redis.call('SREM', KEYS[3], connection) end
end
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1
`;

/**
 * KEYS meta, feed, session, rooms, tickets, polls · ARGV candidate, members prefix, ticket prefix,
 * poll prefix, retention, session id. Ends the session's open memberships at the head (§6.5: they end
 * with the session), each written to the feed as a leave, and keeps its closed ones for the
 * retention, until a session is created under its id (CREATE deletes them, §3.3.same-id-fresh).
 */
const END = `
redis.call('DEL', KEYS[3])
local rooms = redis.call('HGETALL', KEYS[4])
if #rooms > 0 then
  local epoch = epochOf(KEYS[1], KEYS[2], ARGV[1])
  local head = redis.call('HGET', KEYS[1], 'head')
  for i = 1, #rooms, 2 do
    local list = positions(rooms[i + 1])
    if #list % 2 == 1 then
      list[#list + 1] = head
      store(KEYS[4], rooms[i], list)
      redis.call('HDEL', ARGV[2] .. rooms[i], ARGV[6])
      tell(KEYS[2], epoch, ARGV[6], rooms[i], 'l')
    end
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
for _, ticket in ipairs(redis.call('SMEMBERS', KEYS[5])) do redis.call('DEL', ARGV[3] .. ticket) end
for _, connection in ipairs(redis.call('SMEMBERS', KEYS[6])) do redis.call('DEL', ARGV[4] .. connection) end
redis.call('DEL', KEYS[5], KEYS[6])
return 0
`;

/** Adds \`member\` to the set \`key\` and makes the set live at least \`ttl\` ms. */
const REMEMBER = `
local function remember(key, member, ttl)
  redis.call('SADD', key, member)
  if redis.call('PTTL', key) < tonumber(ttl) then redis.call('PEXPIRE', key, ttl) end
end
`;

/** KEYS ticket[, tickets of its session] · ARGV grant, ttl, ticket. */
const PUT_TICKET = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then remember(KEYS[2], ARGV[3], ARGV[2]) end
return 0
`;

/** KEYS poll, polls of its session · ARGV record (JSON: session, max), ttl, connection. */
const PUT_POLL = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
remember(KEYS[2], ARGV[3], ARGV[2])
return 0
`;

export const SESSION_SCRIPTS = {
  unbrokenCreateSession: { lua: CREATE, numberOfKeys: 3 },
  unbrokenSetUser: { lua: SET_USER, numberOfKeys: 1 },
  unbrokenAdvance: { lua: ADVANCE, numberOfKeys: 1 },
  unbrokenConfirm: { lua: CONFIRM, numberOfKeys: 1 },
  unbrokenTouch: { lua: TOUCH, numberOfKeys: 3 },
  unbrokenEndSession: { lua: PRELUDE + END, numberOfKeys: 6 },
  unbrokenPutTicket: { lua: REMEMBER + PUT_TICKET, numberOfKeys: undefined },
  unbrokenPutPoll: { lua: REMEMBER + PUT_POLL, numberOfKeys: 2 },
} as const;
