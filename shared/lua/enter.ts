// enter: let a channel's due delayed messages into it, at most `limit` of them, atomically: each
// is appended to the stream and removed from the delayed set and hash in the same step, then the
// channel's subscribers are woken and its retention applied as after a publish (append.ts).
//
// Why one script: a message must enter exactly once. Two runs at once (the cron and a timer
// task, or a task that comes twice) run one after the other, and the second finds gone what the
// first let in; an invocation killed before the script ran left everything as it was, after it,
// everything done; a repeat after a lost reply finds nothing more (or the next messages) due.
// Only the woken list of a lost reply is lost: with `recovering`, a repeat that lets messages in
// also reports the subscribers whose wake member is at this `now` (the repeat sends the same).
//
// The entry: t (type, when it had one), d (data), p and s (the publish's trace context, when it
// came with one) and m, the id publish answered (delayed.ts), which every read of the message
// shows as `delayedId` (encode.ts). Its stream id is the time it entered: it is a message of the
// channel from then on, in stream order with the others.
//
// The timer. The channel's timer member in {p}:due is set to the earliest due time left (ZADD),
// or removed when none is left, so the cron's ZRANGE finds the channel again exactly when the
// next one is due; a cancel leaves the member as it was, and the run it brings costs the minimum.
//
// A refused XADD (the stream at its record size, the database full) stops the moving there: what
// entered stays entered, the rest stays delayed, and the refusal is answered. A refused wake-up
// sends what entered back to waiting (XDEL), so that no message is left without its wake-up.
//
// KEYS[1] stream {p}:ch:<ch>, KEYS[2] registry {p}:channels, KEYS[3] subs {p}:subs:<ch>,
// KEYS[4] due {p}:due, KEYS[5] state {p}:state:<ch>, KEYS[6] delayed {p}:delayed:<ch>,
// KEYS[7] messages {p}:delayed-messages:<ch>
// ARGV[1] channel name, ARGV[2] now (ms: the wake-up's time, as a publish's), ARGV[3] limit,
// ARGV[4] the timer member "delay:<ch>",
// ARGV[5] wake member prefix "wake:<ch>/", ARGV[6] retry member prefix "retry:<ch>/",
// ARGV[7] marker separator "#", ARGV[8] default retention max age ("" none), ARGV[9] max
// messages ("" none), ARGV[10] MAX_UNDELIVERED_AGE_MS, ARGV[11] min, ARGV[12] max ms between
// trims, ARGV[13] "~", ARGV[14] "~retention", ARGV[15] "~trim", ARGV[16] JOIN_AFTER_MS,
// ARGV[17] byte budget: the run stops before the message that would take the data it appended
// past it (the first always goes), so that one run holds Redis briefly however large they are,
// ARGV[18] due by (ms): the timer's time, the messages due by it enter (the cron's scheduled time,
// which a test passes in; never later than now in production), ARGV[19] the channel's sweep
// member "sweep:<ch>" (append.ts retain)
//
// Returns {entered, {name, subscriptionJSON, retry score or '', ...} woken, next due time or ''
// (none left), 1 when more are due now (the limit stopped it) else 0, refusal or '', 1 when this
// run moved the timer member (ZADD CH) else 0}. Of two runs at once, only the first moves it: the
// caller that sends the next timer task on a move sends one, so tasks never multiply.

//
// Cost: nothing due, 4: 1 EVALSHA + 1 ZRANGE (what is due) + 1 ZRANGE (the earliest left) + 1
// ZADD or ZREM (the timer). k entering: + 1 HMGET per 100 + k XADD + 1 ZREM + 1 HDEL + the
// wake-up (1 HGETALL, + 1 ZMSCORE (+1 ZADD) per 400 subscribers), and a trim when one is due
// (trim.ts): 7 + k + k / 100 without subscribers, one more with (+1 ZADD when it wakes one):
// about 1.03 commands per message for a run of 500.
import { APPEND_LUA } from "./append.ts";

export const ENTER_LUA = `#!lua flags=allow-key-locking
local stream, registry, subs, due, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local delayed, messages = KEYS[6], KEYS[7]
local channel, now, limit, timer = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local budget, dueBy, SLICE = tonumber(ARGV[17]), ARGV[18], 100

local function failed(reply) return type(reply) == 'table' and reply.err end
${APPEND_LUA}
local a = {
  subs = subs, due = due, now = now, wakePrefix = ARGV[5], retryPrefix = ARGV[6],
  markerSeparator = ARGV[7], maxAge = tonumber(ARGV[8]), maxMessages = tonumber(ARGV[9]),
  maxUndelivered = tonumber(ARGV[10]), minInterval = tonumber(ARGV[11]),
  maxInterval = tonumber(ARGV[12]), channelPrefix = ARGV[13], retentionField = ARGV[14],
  trimField = ARGV[15], joinAfter = tonumber(ARGV[16]), recovering = true,
  sweepMember = ARGV[19],
}

local ready = redis.call('ZRANGE', delayed, '-inf', dueBy, 'BYSCORE', 'LIMIT', 0, limit)
local ids, gone, registered, refused, woken = {}, {}, false, '', {}
local bytes, full = 0, false

-- Appends one message (its stored value); false when Redis refused it.
local function append(id, value)
  -- With an ordering key: a line more, before the data (lua/publish.ts).
  local _, t, p, s, k, d = string.match(value, '^(%d*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n(.*)$')
  if not k then _, t, p, s, d = string.match(value, '^(%d*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n(.*)$') end
  local fields = {}
  if t and t ~= '' then fields = {'t', t} end
  fields[#fields + 1] = 'd'
  fields[#fields + 1] = d or 'null'
  if p and p ~= '' then
    fields[#fields + 1] = 'p'
    fields[#fields + 1] = p
  end
  if s and s ~= '' then
    fields[#fields + 1] = 's'
    fields[#fields + 1] = s
  end
  fields[#fields + 1] = 'm'
  fields[#fields + 1] = id
  if k then
    fields[#fields + 1] = 'k'
    fields[#fields + 1] = k
  end
  local entry = false
  if #ids == 0 then
    entry = redis.pcall('XADD', stream, 'NOMKSTREAM', '*', unpack(fields))
    if not failed(entry) and not entry then
      registered = redis.call('SADD', registry, channel) == 1
    end
  end
  if not entry then entry = redis.pcall('XADD', stream, '*', unpack(fields)) end
  if failed(entry) then
    refused = entry.err
    return false
  end
  ids[#ids + 1] = entry
  return true
end

-- In slices of SLICE, so that the data read at once stays small; within the byte budget.
for from = 1, #ready, SLICE do
  local slice = {unpack(ready, from, math.min(from + SLICE - 1, #ready))}
  local stored = redis.call('HMGET', messages, unpack(slice))
  for j, id in ipairs(slice) do
    local value = stored[j]
    if value then
      if #gone > 0 and bytes + #value > budget then
        full = true
        break
      end
      bytes = bytes + #value
      if not append(id, value) then break end
    end
    -- A message whose data is missing (never, unless the hash was edited by hand) just goes.
    gone[#gone + 1] = id
  end
  if full or refused ~= '' then break end
end

if #ready > 0 then
  if #ids > 0 then
    local err
    woken, err = wake(a)
    if not woken then
      -- No message without its wake-up: they go back to waiting, as if this run had not been.
      redis.call('XDEL', stream, unpack(ids))
      if registered then redis.call('SREM', registry, channel) end
      ids, gone, woken, refused = {}, {}, {}, err
    end
  end
  if #gone > 0 then
    redis.call('ZREM', delayed, unpack(gone))
    redis.call('HDEL', messages, unpack(gone))
  end
  if #ids > 0 then retain(a, stream, state, ids, registered) end
end

local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
local nextAt, more, moved = '', 0, 0
if first[1] then
  moved = redis.call('ZADD', due, 'CH', first[2], timer)
  nextAt = first[2]
  if tonumber(nextAt) <= tonumber(dueBy) and refused == '' then more = 1 end
else
  redis.call('ZREM', due, timer)
end
return {#ids, woken, nextAt, more, refused, moved}
`;
