// publish: append messages to a channel and wake its active subscribers, atomically.
//
// Why one script: the wake-up must be atomic with the XADD. A deliverer that finds nothing new
// removes its wake member in the same atomic step (see close.ts); if publish's ZMSCORE/ZADD could
// interleave with that, a message could land with no wake member left and wait for ever. Waking
// here (and not in the kick) also makes the wake-up durable: a lost kick costs latency, never a
// message.
//
// Each entry also holds the publish's trace context when it came with one: `p` its W3C
// traceparent (55 characters) and `s` its tracestate when it has one (at most 512 characters,
// shared/trace.ts). A publish without one stores none: its messages' traces are derived from
// their ids (shared/trace.ts derivedTrace), for no byte.
//
// A lost reply. The caller sends this once; if the reply is lost it cannot know whether the
// messages were stored, and sending it again would store them twice. So the first entry of every
// publish carries the request's nonce (field `n`), and the caller's second try runs in "recover"
// mode: it looks for that nonce among the newest entries (those of the last RECOVER_WINDOW_MS by
// the caller's clock, 100 at a time) and, when it finds it, answers with the ids stored the first
// time (the entries of one script are contiguous) instead of storing again. Recover mode is safe
// to repeat.
//
// Nothing half-written. Each XADD (and the idempotency SET, and the wake-up) runs under pcall;
// when Upstash refuses one (a key over its record size, the database over its capacity), the
// entries this call already added are deleted again and the script answers {3, error}: the
// caller reports storage_full, and no message is left without its wake-up.
//
// KEYS[1] stream     {p}:ch:<ch>
// KEYS[2] registry   {p}:channels
// KEYS[3] subs       {p}:subs:<ch>
// KEYS[4] due        {p}:due
// KEYS[5] state      {p}:state:<ch>           (the trim step's expiry counts)
// KEYS[6] idem       {p}:idem:<ch>:<key>      (only with an Idempotency-Key)
// ARGV[1] channel name (registry member)
// ARGV[2] now, ms (wake score, and where recover mode stops looking back; scripts must not read
//         the clock)
// ARGV[3] wake member prefix  "wake:<ch>/"    (spelled by keys.ts, not here)
// ARGV[4] retry member prefix "retry:<ch>/"
// ARGV[5] marker separator "#": a field <sub>#<marker> (#paused, #pull) keeps <sub> from waking
// ARGV[6] idempotency TTL, seconds
// ARGV[7] nonce (random, per request)
// ARGV[8] "" (first attempt) or "recover" (the reply of an earlier attempt was lost)
// ARGV[9]  default retention max age, ms, or "" (none)       (RETENTION_MAX_AGE_MS)
// ARGV[10] default retention max messages, or "" (none)     (RETENTION_MAX_MESSAGES)
// ARGV[11] MAX_UNDELIVERED_AGE_MS
// ARGV[12] min, ARGV[13] max ms between trims               (TRIM_MIN_INTERVAL_MS, 1 h)
// ARGV[14] channel field prefix "~", ARGV[15] "~retention", ARGV[16] "~trim"
// ARGV[17] JOIN_AFTER_MS: a subscriber woken longer ago than this is being delivered to, and has
//          been for a while: this publish's invocation joins its deliverers (see wake below)
// ARGV[18] traceparent or "" (none came), ARGV[19] tracestate or "": the publish's trace context
//          (shared/trace.ts), written into every entry as fields `p` and `s`, so it costs no
//          command of its own
// ARGV[20] the channel's sweep member "sweep:<ch>" (spelled by keys.ts)
// ARGV[21..] type, data, type, data, ...
//
// Retention (lua/trim.ts): once the `~trim` field says a trim is due, the script trims the
// stream after storing the messages; the channel's `~retention` field ("<maxAgeMs>,<maxMessages>",
// "-" for no limit) overrides the defaults. A trim, and a channel's first publish, also make sure
// the channel's sweep comes within a gap (trim.ts armSweep), so a channel that falls silent is
// still trimmed (lua/sweep.ts).
//
// Returns {0, {ids...}, {name, subscriptionJSON, retryScore or "", ...}} listing the subscribers
// this publish woke (their wake member was absent: nobody was on them, so the caller kicks them;
// or it is older than JOIN_AFTER_MS: their deliverers have had a backlog for that long, so the
// caller's kick joins them, and the member is rescored to now, so the next join comes that much
// later: concurrency grows with a backlog that lasts, one invocation per JOIN_AFTER_MS);
// {1, "id1,id2,..."} when the idempotency key was already used (nothing written); {2, ...} like 0
// when recover mode found the first attempt's entries (the woken are those whose wake member has
// this publish's `now`); {3, "<error>"} when a write was refused (nothing written).
//
// Cost: 1 EVALSHA + N XADD + 1 HGETALL, plus 1 ZMSCORE + 1 ZADD per 400 active subscribers
// (+1 ZADD XX when it joins busy ones)
// (chunks keep unpack() under Lua's stack limit); + 1 XADD + 1 SADD the first time (NOMKSTREAM
// fails, the channel is registered); + 1 GET + 1 SET with an idempotency key. A single publish
// to a channel without subscribers: 3. A publish that finds a trim due adds its cost (trim.ts),
// about once per 1,000 messages; the first publish to a channel adds 1 HSET (the first `~trim`)
// and, with retention, 1 ZADD (its sweep).
// Recover mode adds 1 XREVRANGE per 100 entries looked at,
// and 1 XRANGE when it finds them.
import { TRIM_LUA } from "./trim.ts";

export const PUBLISH_LUA = `#!lua flags=allow-key-locking
local stream, registry, subs, due, state, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local channel, now, wakePrefix, retryPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local markerSeparator, idemTtl, nonce, recovering = ARGV[5], ARGV[6], ARGV[7], ARGV[8] == 'recover'
local defaultMaxAge, defaultMaxMessages = tonumber(ARGV[9]), tonumber(ARGV[10])
local maxUndelivered, minInterval, maxInterval = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local channelPrefix, retentionField, trimField = ARGV[14], ARGV[15], ARGV[16]
local joinAfter = tonumber(ARGV[17])
local traceparent, tracestate, sweepMember = ARGV[18], ARGV[19], ARGV[20]
local FIRST, CHUNK, RECOVER_WINDOW_MS = 21, 400, 60000
local count = (#ARGV - FIRST + 1) / 2

local function failed(reply) return type(reply) == 'table' and reply.err end
${TRIM_LUA}

-- The subscribers that are not paused (nor pull subscriptions), and their settings, from one HGETALL; the channel's own
-- fields (retention, trim) go to \`channelFields\`, and \`subscribed\` says whether any
-- subscription (paused or not) exists.
local channelFields, subscribed = {}, false
local function active()
  local flat = redis.call('HGETALL', subs)
  local paused, names, configs = {}, {}, {}
  for i = 1, #flat, 2 do
    local field = flat[i]
    local marker = string.find(field, markerSeparator, 1, true)
    if string.sub(field, 1, string.len(channelPrefix)) == channelPrefix then
      channelFields[field] = flat[i + 1]
    elseif marker then
      -- paused, or a pull subscription: never woken
      paused[string.sub(field, 1, marker - 1)] = true
    else
      names[#names + 1] = field
      configs[field] = flat[i + 1]
    end
  end
  subscribed = #names > 0
  local out = {}
  for _, name in ipairs(names) do
    if not paused[name] then out[#out + 1] = name end
  end
  return out, configs
end

-- Wakes the active subscribers without a wake member (a deliverer that is on one keeps its
-- member); in recover mode, also reports those woken by the first attempt (member at 'now').
-- Returns the woken as {name, json, retry score or '', ...}, or nil and the error.
local function wake()
  local names, configs = active()
  local woken = {}
  for from = 1, #names, CHUNK do
    local members, chunk = {}, {}
    for j = from, math.min(from + CHUNK - 1, #names) do
      chunk[#chunk + 1] = names[j]
      members[#members + 1] = wakePrefix .. names[j]
      members[#members + 1] = retryPrefix .. names[j]
    end
    local scores = redis.call('ZMSCORE', due, unpack(members))
    local wakes, joins = {}, {}
    for j, name in ipairs(chunk) do
      local score = scores[2 * j - 1]
      local join = score and tonumber(score) + joinAfter <= tonumber(now)
      if not score or join or (recovering and score == now) then
        if not score then
          wakes[#wakes + 1] = now
          wakes[#wakes + 1] = members[2 * j - 1]
        elseif join then
          joins[#joins + 1] = now
          joins[#joins + 1] = members[2 * j - 1]
        end
        woken[#woken + 1] = name
        woken[#woken + 1] = configs[name]
        woken[#woken + 1] = scores[2 * j] or ''
      end
    end
    if #wakes > 0 then
      local added = redis.pcall('ZADD', due, 'NX', unpack(wakes))
      if failed(added) then return nil, added.err end
    end
    if #joins > 0 then
      local moved = redis.pcall('ZADD', due, 'XX', unpack(joins))
      if failed(moved) then return nil, moved.err end
    end
  end
  return woken
end

-- Recover mode: the ids the first attempt stored, or nil when it did not run.
local function stored()
  local floor = (tonumber(now) - RECOVER_WINDOW_MS) .. '-0'
  local top = '+'
  while true do
    local entries = redis.call('XREVRANGE', stream, top, floor, 'COUNT', 100)
    for _, entry in ipairs(entries) do
      local fields = entry[2]
      for k = 1, #fields, 2 do
        if fields[k] == 'n' and fields[k + 1] == nonce then
          local ours = redis.call('XRANGE', stream, entry[1], '+', 'COUNT', count)
          local ids = {}
          for _, e in ipairs(ours) do ids[#ids + 1] = e[1] end
          return ids
        end
      end
    end
    if #entries < 100 then return nil end
    top = '(' .. entries[#entries][1]
  end
end

if recovering then
  local ids = stored()
  if ids then
    local woken, err = wake()
    if not woken then return {3, err} end
    return {2, ids, woken}
  end
end

if idem then
  local previous = redis.call('GET', idem)
  if previous then return {1, previous} end
end

local ids, registered = {}, false
local function undo(err)
  if #ids > 0 then redis.call('XDEL', stream, unpack(ids)) end
  if registered then redis.call('SREM', registry, channel) end
  return {3, err}
end
for i = FIRST, #ARGV, 2 do
  local fields = {}
  if ARGV[i] ~= '' then fields = {'t', ARGV[i]} end
  fields[#fields + 1] = 'd'
  fields[#fields + 1] = ARGV[i + 1]
  if traceparent ~= '' then
    fields[#fields + 1] = 'p'
    fields[#fields + 1] = traceparent
  end
  if tracestate ~= '' then
    fields[#fields + 1] = 's'
    fields[#fields + 1] = tracestate
  end
  if i == FIRST then
    fields[#fields + 1] = 'n'
    fields[#fields + 1] = nonce
  end
  local id = false
  if i == FIRST then
    id = redis.pcall('XADD', stream, 'NOMKSTREAM', '*', unpack(fields))
    if failed(id) then return undo(id.err) end
    if not id then registered = redis.call('SADD', registry, channel) == 1 end
  end
  if not id then
    id = redis.pcall('XADD', stream, '*', unpack(fields))
    if failed(id) then return undo(id.err) end
  end
  ids[#ids + 1] = id
end
if idem then
  local set = redis.pcall('SET', idem, table.concat(ids, ','), 'EX', idemTtl)
  if failed(set) then return undo(set.err) end
end

local woken, err = wake()
if not woken then
  if idem then redis.call('DEL', idem) end
  return undo(err)
end

-- Retention: trim when due (a new channel only starts its clock).
local previous = channelFields[trimField]
local maxAge, maxMessages = defaultMaxAge, defaultMaxMessages
local own = channelFields[retentionField]
if own then
  local age, count = string.match(own, '^([^,]*),([^,]*)$')
  maxAge, maxMessages = tonumber(age), tonumber(count)
end
local o = {
  maxAge = maxAge, maxMessages = maxMessages, maxUndelivered = maxUndelivered,
  groups = subscribed, newest = ids[#ids], previous = previous or false,
  minInterval = minInterval, maxInterval = maxInterval, trimField = trimField, subs = subs,
  due = due, sweepMember = sweepMember,
}
if registered then
  clock(o, now, tonumber(now) + minInterval, 0)
  armSweep(o, tonumber(now))
elseif not previous or tonumber(string.match(previous, '^(%d+)')) <= tonumber(now)
    or #ids >= trimEvery(maxMessages) then
  local trimmed = trim(stream, state, tonumber(now), o)
  if trimmed then
    clock(o, now, trimmed.next, trimmed.after)
    armSweep(o, tonumber(now))
  end
end
return {0, ids, woken}
`;
