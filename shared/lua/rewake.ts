// rewake: a channel's `roster` timer (shared/roster.ts). A subscriber became active (made,
// resumed) through one isolate; a publish through another, whose copy of the channel's roster
// was up to ROSTER_TTL_MS old, may have appended messages without waking it. Once every such copy
// has run out, this wakes, as a publish does (append.ts wake: its wake member set to now when it
// has none; a deliverer on it keeps its own), each active subscriber whose group has not read
// up to the stream's last entry, so what such a publish appended is delivered. One that has
// read everything is left alone: a burst of new subscriptions costs no visit of its own.
//
// The timer member is removed only when due (a change since moved it on: it stays, for its own
// run). Safe twice and at once: a second run finds the wake members there and wakes nobody; a
// repeat after a lost reply (the same `now`) reports those the first woke (their member is at
// `now`: append.ts wake, recovering), so the caller still kicks them.
//
// KEYS[1] subs {p}:subs:<ch>, KEYS[2] due {p}:due, KEYS[3] stream {p}:ch:<ch>
// ARGV[1] now (ms), ARGV[2] the timer member "roster:<ch>", ARGV[3] wake member prefix
// "wake:<ch>/", ARGV[4] retry member prefix "retry:<ch>/", ARGV[5] the paused marker's suffix
// "#paused", ARGV[6] the pull marker's "#pull", ARGV[7] JOIN_AFTER_MS (a subscriber woken longer
// ago is joined, as by a publish)
//
// Returns {name, subscriptionJSON, retry score or '', ...}: the woken, for the caller's kick, as
// a publish's. Cost: 1 EVALSHA + 1 ZSCORE (+1 ZREM) + 1 XREVRANGE, and with messages: 1 XINFO
// GROUPS, and with groups behind: 1 HMGET + 1 ZMSCORE (+1 ZADD) per 400 (+1 ZADD XX joining).
import { APPEND_LUA } from "./append.ts";

export const REWAKE_LUA = `#!lua flags=allow-key-locking
local function failed(reply) return type(reply) == 'table' and reply.err end
${APPEND_LUA}
local subs, due, stream = KEYS[1], KEYS[2], KEYS[3]
local now, member = ARGV[1], ARGV[2]
local pausedSuffix, pullSuffix = ARGV[5], ARGV[6]
local at = redis.call('ZSCORE', due, member)
if at and tonumber(at) <= tonumber(now) then redis.call('ZREM', due, member) end
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
if not last then return {} end

-- The subscriptions whose group has not read up to the last entry (trim.ts idLess, subOf).
local behind = {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, delivered
  for k = 1, #group, 2 do
    if group[k] == 'name' then name = group[k + 1] end
    if group[k] == 'last-delivered-id' then delivered = group[k + 1] end
  end
  if name and delivered and idLess(delivered, last[1]) then behind[#behind + 1] = subOf(name) end
end
if #behind == 0 then return {} end

-- Of those, the active ones (not paused, not pulled), woken as a publish wakes (append.ts wake).
local fields = {}
for _, name in ipairs(behind) do
  fields[#fields + 1] = name
  fields[#fields + 1] = name .. pausedSuffix
  fields[#fields + 1] = name .. pullSuffix
end
local stored = redis.call('HMGET', subs, unpack(fields))
local names, configs = {}, {}
for j, name in ipairs(behind) do
  if stored[3 * j - 2] and not stored[3 * j - 1] and not stored[3 * j] then
    names[#names + 1] = name
    configs[name] = stored[3 * j - 2]
  end
end
if #names == 0 then return {} end
local woken, err = wake({
  subs = subs, due = due, now = now, wakePrefix = ARGV[3], retryPrefix = ARGV[4],
  joinAfter = tonumber(ARGV[7]), roster = {names = names, configs = configs},
  -- A repeat after a lost reply (the same now) reports those the first run woke, for the kick.
  recovering = true,
})
if not woken then return redis.error_reply(err) end
return woken
`;
