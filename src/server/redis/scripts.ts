/**
 * The Lua scripts of the Redis store. Every write that must be ordered with appends — a batch of
 * appends and their index entries, a join, a leave, the end of a session — is one script: Redis runs a script
 * alone, so a join's position is the head as of the join for every process (docs/PROTOCOL.md §6.5),
 * and the membership change it writes to the feed lies between the messages before and after it.
 *
 * Positions are bare stream ids (`<ms>-<seq>`); the epoch is added by the caller. Keys (`P` is the
 * store's prefix):
 *
 * - `P:meta` hash: `epoch`, `start` (the position the epoch began after), `head` (the last message's
 *   id) and `trimmed` (the newest message id evicted: stream ids are not consecutive, so "the id
 *   before the oldest retained" is known only by remembering it). A cursor before `trimmed` is
 *   `expired`.
 * - `P:feed` stream: every message once, and every change of membership — a join or a leave that
 *   changed one, the end of a session's open memberships — as a small entry of its own, and the
 *   beginning of each epoch (codec.ts), `XADD *`: the one order the blocking reader tells
 *   subscribers (reader.ts). Trimmed by age, and by count to the oldest retained message.
 * - `P:x:messages` stream: the ids of every retained message, which is what `maxMessages` counts:
 *   membership entries do not count, so joins and leaves never evict a message. A membership entry
 *   goes with the messages before it (count) or when older than maxAge (age, also checked by joins
 *   and leaves, so that churn without messages stays bounded by age).
 * - `P:x:all`, `P:x:s:<session>`, `P:x:r:<room>` streams: the ids of the messages to everyone, to one
 *   session, to one room — same ids as the feed, given explicitly, so a read merges only the lists
 *   of one session. Trimmed to the oldest retained message when written; each expires 2 × maxAge
 *   after its last entry (by then every entry is past retention; the slack covers ids that run ahead
 *   of the clock after it stepped back). A session's index follows retention, not the session's ttl:
 *   messages sent to a session that is away stay part of its stream (§6.1) while it lives; a session
 *   created again under its id starts without it (§3.3.same-id-fresh: session-scripts.ts, CREATE).
 * - `P:rooms:<session>` hash: room → the session's membership intervals there, as positions
 *   `from to from to … [from]` (an odd count: the last one is open). Closed intervals are dropped
 *   once retention passed their end.
 * - `P:members:<room>` hash: session → where its open membership began. An index for `members`,
 *   checked against `P:rooms:<session>` when read, so an entry whose session expired is dropped.
 *
 * Ages are measured with Redis's clock (`TIME`, and the `<ms>` of `XADD *` ids): one clock for all
 * processes. A script makes no randomness (Redis wants scripts deterministic in what they decide):
 * a caller that may create the epoch passes a fresh random candidate.
 */

/** Helpers shared by the scripts. */
const PRELUDE = `
local function split(id)
  return string.match(id, '^(%d+)-(%d+)$')
end

-- Canonical decimals of any length (stream ids are unsigned 64-bit: past a double's precision).
local function cmpnum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function cmp(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  local c = cmpnum(am, bm)
  if c ~= 0 then return c end
  return cmpnum(as, bs)
end

-- The epoch, created from the caller's candidate when there is none (a new or lost history).
local function epochOf(meta, feed, candidate)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then return epoch end
  -- Normally the feed is gone with the epoch; if it is not, the new epoch starts after it.
  local last = redis.call('XREVRANGE', feed, '+', '-', 'COUNT', 1)
  local start = last[1] and last[1][1] or '0-0'
  redis.call('HSET', meta, 'epoch', candidate, 'start', start, 'head', start)
  -- Wakes every blocking reader at once (codec.ts): its subscribers learn that the history was lost
  -- now, not at the next message, and a read of the new epoch does not wait for one.
  redis.call('XADD', feed, '*', 'e', candidate, 'b', '')
  return candidate
end

-- Evicts the entries older than maxAge ms, and remembers the newest evicted message id.
local function trimAge(meta, feed, messages, maxAge)
  local time = redis.call('TIME')
  local oldest = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) - maxAge + 1
  if oldest <= 0 then return end
  local bound = string.format('%.0f', oldest)
  -- Nothing to evict, nearly always: said by the oldest entry. (XREVRANGE from a bound before the
  -- first entry walks the whole stream in Redis 7.0: an append would cost in proportion to retention.)
  local first = redis.call('XRANGE', messages, '-', '+', 'COUNT', 1)[1]
  if first and cmp(first[1], bound .. '-0') < 0 then
    local last = redis.call('XREVRANGE', messages, '(' .. bound .. '-0', '-', 'COUNT', 1)[1]
    if last then
      redis.call('HSET', meta, 'trimmed', last[1])
      redis.call('XTRIM', messages, 'MINID', bound)
    end
  end
  redis.call('XTRIM', feed, 'MINID', bound)
end

-- Evicts the oldest messages past maxMessages, and the membership entries before the oldest kept;
-- remembers the newest evicted message id.
local function trimCount(meta, feed, messages, maxMessages)
  local excess = redis.call('XLEN', messages) - maxMessages
  if excess <= 0 then return end
  local gone = redis.call('XRANGE', messages, '-', '+', 'COUNT', excess)
  redis.call('HSET', meta, 'trimmed', gone[#gone][1])
  redis.call('XTRIM', messages, 'MAXLEN', maxMessages)
  local oldest = redis.call('XRANGE', messages, '-', '+', 'COUNT', 1)[1][1]
  redis.call('XTRIM', feed, 'MINID', oldest)
end

-- Writes a change of membership to the feed (codec.ts), after every message appended so far.
local function tell(feed, epoch, session, room, change)
  redis.call('XADD', feed, '*', 'e', epoch, 's', session, 'r', room, 'm', change)
end

-- Where a stream can be resumed from at the earliest — the newest evicted id, or the epoch's start
-- when nothing was evicted — and the head.
local function floorOf(meta)
  local position = redis.call('HMGET', meta, 'head', 'start', 'trimmed')
  local floor = position[2]
  if position[3] and cmp(position[3], floor) > 0 then floor = position[3] end
  return floor, position[1]
end

local function positions(value)
  local list = {}
  if value then
    for position in string.gmatch(value, '%S+') do list[#list + 1] = position end
  end
  return list
end

-- The intervals of \`list\` that still cover a retained message.
local function retained(list, floor)
  local kept = {}
  for i = 1, #list, 2 do
    local to = list[i + 1]
    if to == nil or cmp(to, floor) > 0 then
      kept[#kept + 1] = list[i]
      if to then kept[#kept + 1] = to end
    end
  end
  return kept
end

local function store(rooms, room, list)
  if #list == 0 then
    redis.call('HDEL', rooms, room)
  else
    redis.call('HSET', rooms, room, table.concat(list, ' '))
  end
end

-- Memberships live as long as their session (a crashed process leaks nothing); without session state,
-- open ones until their leave and closed ones for the retention.
local function keepRooms(rooms, session, retention)
  if redis.call('EXISTS', rooms) == 0 then return end
  local ttl = redis.call('PTTL', session)
  if ttl > 0 then
    redis.call('PEXPIRE', rooms, ttl)
    return
  end
  if ttl == -1 then
    redis.call('PERSIST', rooms)
    return
  end
  for _, value in ipairs(redis.call('HVALS', rooms)) do
    if #positions(value) % 2 == 1 then
      redis.call('PERSIST', rooms)
      return
    end
  end
  redis.call('PEXPIRE', rooms, retention)
end
`;

/**
 * KEYS meta, feed · ARGV candidate → {epoch, head, start, tail}: `tail` is the feed's last entry, a
 * membership change after the head or the head itself — where a reader starting now begins.
 */
const HEAD = `
local epoch = epochOf(KEYS[1], KEYS[2], ARGV[1])
local position = redis.call('HMGET', KEYS[1], 'head', 'start')
local tail = position[1]
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if last and cmp(last[1], tail) > 0 then tail = last[1] end
return { epoch, position[1], position[2], tail }
`;

/**
 * KEYS meta, feed, x:messages, index… (each index stream of the batch once) · ARGV candidate,
 * maxMessages, maxAge, indexTtl, count, then `count` messages, each: n, n positions in KEYS of its
 * index streams, to, event, kind, data → {epoch, id…}, an id per message in order (append-batch.ts).
 * Evicts by age first and by count after the adds, as MemoryStore does.
 */
const APPEND = `
local epoch = epochOf(KEYS[1], KEYS[2], ARGV[1])
trimAge(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[3]))
local reply = { epoch }
local at = 6
local id
for _ = 1, tonumber(ARGV[5]) do
  local indexes = tonumber(ARGV[at])
  local first = at + 1
  at = first + indexes
  local fields = { 'e', epoch, 't', ARGV[at], 'k', ARGV[at + 2], 'd', ARGV[at + 3] }
  if ARGV[at + 1] ~= '' then
    fields[#fields + 1] = 'n'
    fields[#fields + 1] = ARGV[at + 1]
  end
  at = at + 4
  id = redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('XADD', KEYS[3], id, 'm', '')
  for i = first, first + indexes - 1 do
    redis.call('XADD', KEYS[tonumber(ARGV[i])], id, 'm', '')
  end
  reply[#reply + 1] = id
end
redis.call('HSET', KEYS[1], 'head', id)
trimCount(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[2]))
local oldest = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1][1]
for i = 4, #KEYS do
  redis.call('XTRIM', KEYS[i], 'MINID', oldest)
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return reply
`;

/**
 * KEYS meta, feed, x:messages, x:all, x:s:<session>, rooms:<session> · ARGV candidate, maxAge,
 * limit, epoch of \`after\`, position of \`after\` ('' when it is no id of this store), room index
 * prefix → {epoch, cursor, gap or '', more, head, entries}. Semantics of MessageStore.read; the
 * entries are messages only, as the ids come from the index streams.
 */
const READ = `
local meta, feed = KEYS[1], KEYS[2]
local epoch = epochOf(meta, feed, ARGV[1])
trimAge(meta, feed, KEYS[3], tonumber(ARGV[2]))
local limit = tonumber(ARGV[3])
local floor, head = floorOf(meta)
local start, gap
if ARGV[5] == '' then
  gap, start = 'invalid-id', head
elseif ARGV[4] ~= epoch then
  gap, start = 'unknown-epoch', floor
elseif cmp(ARGV[5], head) > 0 then
  gap, start = 'invalid-id', head
elseif cmp(ARGV[5], floor) < 0 then
  gap, start = 'expired', floor
else
  start = ARGV[5]
end

-- Up to limit + 1 ids from each list of the session: enough to fill the page and tell \`more\`.
local found = {}
local function take(key, from, to)
  for _, entry in ipairs(redis.call('XRANGE', key, '(' .. from, to, 'COUNT', limit + 1)) do
    found[#found + 1] = entry[1]
  end
end
take(KEYS[4], start, '+')
take(KEYS[5], start, '+')
local rooms = redis.call('HGETALL', KEYS[6])
for i = 1, #rooms, 2 do
  local room, list = rooms[i], positions(rooms[i + 1])
  local kept = retained(list, floor)
  if #kept ~= #list then store(KEYS[6], room, kept) end
  for j = 1, #kept, 2 do
    local from, to = kept[j], kept[j + 1]
    if to == nil or cmp(to, start) > 0 then
      take(ARGV[6] .. room, cmp(from, start) > 0 and from or start, to or '+')
    end
  end
end

table.sort(found, function(a, b) return cmp(a, b) < 0 end)
local entries, more, previous = {}, 0, nil
for _, id in ipairs(found) do
  -- A message to several rooms of the session is listed once per room: it counts once.
  if id ~= previous then
    if #entries == limit then
      more = 1
      break
    end
    local entry = redis.call('XRANGE', feed, id, id)[1]
    if entry then entries[#entries + 1] = entry end
    previous = id
  end
end
return { epoch, start, gap or '', more, head, entries }
`;

/**
 * KEYS meta, feed, x:messages, rooms:<session>, members:<room>, session:<session>, x:r:<room> · ARGV
 * candidate, room, session, retention, maxAge → {epoch, from}. A join that begins a membership writes it to the
 * feed, after the message at `from`.
 */
const JOIN = `
local epoch = epochOf(KEYS[1], KEYS[2], ARGV[1])
local list = positions(redis.call('HGET', KEYS[4], ARGV[2]))
if #list % 2 == 1 then return { epoch, list[#list] } end
trimAge(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[5]))
local floor, head = floorOf(KEYS[1])
list = retained(list, floor)
list[#list + 1] = head
store(KEYS[4], ARGV[2], list)
redis.call('HSET', KEYS[5], ARGV[3], head)
keepRooms(KEYS[4], KEYS[6], ARGV[4])
tell(KEYS[2], epoch, ARGV[3], ARGV[2], 'j')
return { epoch, head }
`;

/** Same keys and arguments as JOIN → {epoch, to}, or nil when the session was not in the room. */
const LEAVE = `
local epoch = epochOf(KEYS[1], KEYS[2], ARGV[1])
local list = positions(redis.call('HGET', KEYS[4], ARGV[2]))
if #list % 2 == 0 then return false end
trimAge(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[5]))
local head = redis.call('HGET', KEYS[1], 'head')
-- A membership no message to the room fell in selects nothing, now or later: dropped, not closed, so
-- that joining and leaving a quiet room keeps nothing (a closed one waits for the floor to pass it).
local last = redis.call('XREVRANGE', KEYS[7], '+', '-', 'COUNT', 1)[1]
if last == nil or cmp(last[1], list[#list]) <= 0 then
  list[#list] = nil
else
  list[#list + 1] = head
end
store(KEYS[4], ARGV[2], list)
redis.call('HDEL', KEYS[5], ARGV[3])
keepRooms(KEYS[4], KEYS[6], ARGV[4])
tell(KEYS[2], epoch, ARGV[3], ARGV[2], 'l')
return { epoch, head }
`;

/** KEYS members:<room> · ARGV rooms key prefix, room → the sessions in the room now. */
const MEMBERS = `
local present = {}
for _, session in ipairs(redis.call('HKEYS', KEYS[1])) do
  if #positions(redis.call('HGET', ARGV[1] .. session, ARGV[2])) % 2 == 1 then
    present[#present + 1] = session
  else
    redis.call('HDEL', KEYS[1], session)
  end
end
return present
`;

/** The scripts as ioredis commands: name → Lua and key count (`undefined`: the caller passes it). */
export const MESSAGE_SCRIPTS = {
  unbrokenHead: { lua: PRELUDE + HEAD, numberOfKeys: 2 },
  unbrokenAppend: { lua: PRELUDE + APPEND, numberOfKeys: undefined },
  unbrokenRead: { lua: PRELUDE + READ, numberOfKeys: 6 },
  unbrokenJoin: { lua: PRELUDE + JOIN, numberOfKeys: 7 },
  unbrokenLeave: { lua: PRELUDE + LEAVE, numberOfKeys: 7 },
  unbrokenMembers: { lua: PRELUDE + MEMBERS, numberOfKeys: 1 },
} as const;

export { PRELUDE };
