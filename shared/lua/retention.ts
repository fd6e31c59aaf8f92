// retention: change a channel's retention (the subs hash's `~retention` field, "<maxAgeMs>,
// <maxMessages>" with "-" for no limit: lua/publish.ts reads it), only while the channel exists,
// and have the channel swept now (its member in {p}:due moved to now if later: ZADD LT), so the
// new retention applies at the next cron whether anybody publishes or not (lua/sweep.ts).
//
// Why one script: the existence check and the write must be one step, or a channel deleted in
// between would get its subs hash back holding only this field (or a sweep member). Safe to
// repeat: it writes the same value again.
//
// KEYS[1] stream {p}:ch:<ch>, KEYS[2] subs {p}:subs:<ch>, KEYS[3] due {p}:due
// ARGV[1] the retention field, ARGV[2] the value when the channel has none of its own (the
// defaults), ARGV[3] new max age, ARGV[4] new max messages: a number, "-" (no limit), or "" (keep;
// both kept: nothing is written, and a channel on the defaults stays on them), ARGV[5] the
// channel's sweep member "sweep:<ch>", ARGV[6] now (ms)
//
// Returns 1 (written) or 0 (no such channel). Cost: 1 EVALSHA + 1 EXISTS + 1 HGET + 1 HSET + 1
// ZADD (an empty change: 1 EVALSHA + 1 EXISTS + 1 ZADD).
export const RETENTION_LUA = `#!lua flags=allow-key-locking
local stream, subs, due = KEYS[1], KEYS[2], KEYS[3]
local field, defaults, age, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local sweep, now = ARGV[5], ARGV[6]
if redis.call('EXISTS', stream) == 0 then return 0 end
if age ~= '' or count ~= '' then
  local current = redis.call('HGET', subs, field) or defaults
  local oldAge, oldCount = string.match(current, '^([^,]*),([^,]*)$')
  if age == '' then age = oldAge end
  if count == '' then count = oldCount end
  redis.call('HSET', subs, field, age .. ',' .. count)
end
redis.call('ZADD', due, 'LT', now, sweep)
return 1
`;
