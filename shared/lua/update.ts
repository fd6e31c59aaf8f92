// update: replace a subscription's settings, pause or resume it, and wake it, atomically.
//
// Why one script: the write must only happen while the subscription exists (HSET alone would
// resurrect one deleted a moment ago, without its group), and a resume must wake the
// subscription in the same step, or a publish in between could find it paused and not wake it.
//
// KEYS[1] subs {p}:subs:<ch>, KEYS[2] due {p}:due, KEYS[3] state {p}:state:<ch>, KEYS[4] stream
// {p}:ch:<ch>, KEYS[5] (only when `ordered` changes) lanes {p}:lanes:<ch>:<sub>: deleted, so that
// no lane of before holds a key (what was parked comes back as a dead reader's entries do:
// lua/take.ts)
// ARGV[1] name, ARGV[2] subscription JSON, ARGV[3] paused field,
// ARGV[4] "1" pause, "0" resume, "" leave as is, ARGV[5] now (ms),
// ARGV[6] failingSince field, ARGV[7] disabledAt field (a resume clears disabledAt and restarts
// a failing subscription's clock at now: it comes back with a fresh DISABLE_AFTER_MS, and its
// first success is still its recovery),
// ARGV[8] the channel's roster timer "roster:<ch>" ("" pull), set (ZADD GT) to ARGV[9] on a resume when
// the stream's last entry is at least as recent as ARGV[10] (ms; see subscribe.ts), ARGV[11..]
// due members to make due now (ZADD LT: added if absent, moved earlier if later)
//
// Returns 1 (updated), 2 (resumed, and the roster timer set) or 0 (no such subscription). Cost: 1 EVALSHA + 1 HEXISTS + 1 HSET
// (+1 HSET to pause, or 2 HDEL + 1 HEXISTS (+1 HSET) + 1 XREVRANGE (+1 ZADD) to resume) (+1 ZADD when waking) (+1 DEL
// when `ordered` changes).
export const UPDATE_LUA = `#!lua flags=allow-key-locking
local subs, due, state = KEYS[1], KEYS[2], KEYS[3]
local name, json, pausedField, paused, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local failingSince, disabledAt, roster, rosterAt = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local armed = 1
if redis.call('HEXISTS', subs, name) == 0 then return 0 end
redis.call('HSET', subs, name, json)
if KEYS[5] then redis.call('DEL', KEYS[5]) end
if paused == '1' then redis.call('HSET', subs, pausedField, '1') end
if paused == '0' then
  redis.call('HDEL', subs, pausedField)
  redis.call('HDEL', state, disabledAt)
  if redis.call('HEXISTS', state, failingSince) == 1 then redis.call('HSET', state, failingSince, now) end
  local last = roster ~= '' and redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)[1]
  if last and tonumber(string.match(last[1], '^(%d+)')) >= tonumber(ARGV[10]) then
    redis.call('ZADD', due, 'GT', rosterAt, roster)
    armed = 2
  end
end
if #ARGV >= 11 then
  local wakes = {}
  for i = 11, #ARGV do
    wakes[#wakes + 1] = now
    wakes[#wakes + 1] = ARGV[i]
  end
  redis.call('ZADD', due, 'LT', unpack(wakes))
end
return armed
`;
