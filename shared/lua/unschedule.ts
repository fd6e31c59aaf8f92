// unschedule: drop the schedule of subscriptions that are paused or gone, unless that changed.
//
// A pass that loaded a subscription as paused (or missing) drops its {p}:due members. A separate
// ZREM could land after a resume that happened since the load, and undo the resume's wake-up; so
// each subscription is checked again here, in the same step as the ZREM.
//
// KEYS[1] due {p}:due, KEYS[2..] subs hashes {p}:subs:<ch> (one per channel involved)
// ARGV: per subscription: the KEYS index of its subs hash, its name, its paused field (its pull
// marker "<name>#pull" for a pull subscription, which is never scheduled), n, then n
// due members
//
// Returns how many subscriptions were unscheduled. Safe to repeat. Cost: 1 EVALSHA + per
// subscription 1 HEXISTS (+1 HEXISTS) (+1 ZREM).
export const UNSCHEDULE_LUA = `#!lua flags=allow-key-locking
local due, dropped, i = KEYS[1], 0, 1
while i <= #ARGV do
  local subs, name, paused, n = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local gone = redis.call('HEXISTS', subs, name) == 0
  if gone or redis.call('HEXISTS', subs, paused) == 1 then
    redis.call('ZREM', due, unpack(ARGV, i + 4, i + 3 + n))
    dropped = dropped + 1
  end
  i = i + 4 + n
end
return dropped
`;
