// schedule-next: after a schedule's run, record it and move the schedule's member to its next
// run, unless someone else already moved it.
//
// Two cron invocations may run the same due schedule at once (they overlap, or one is retried),
// and the API may change it meanwhile (PATCH moves or removes the member, DELETE removes it). So
// the member moves only if it still has the score the run found due: the first run to get here
// moves it, a second finds it moved and leaves it, and a change made by the API since stands. The
// last run is recorded only while the schedule exists (a deleted one gets no field back), and only
// forwards (an older run finishing late does not hide a newer one).
//
// KEYS[1] schedules {p}:schedules, KEYS[2] due {p}:due
// ARGV[1] the name, ARGV[2] its #lastRun field, ARGV[3] its member ("schedule:<name>")
// ARGV[4] the score the run found due, ms; ARGV[5] the next run, ms, or "" (none: removed)
// ARGV[6] the run published, ms, or "" (none)
//
// Returns 1 when it moved the member, 0 when the member had moved. Safe to repeat. Cost: 1
// EVALSHA + 1 ZSCORE (+1 ZADD or ZREM), + 1 HEXISTS + 1 HGET (+1 HSET) with a run.
export const SCHEDULE_NEXT_LUA = `#!lua flags=allow-key-locking
local schedules, due = KEYS[1], KEYS[2]
local name, lastRun, member, dueAt, nextAt, runAt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if runAt ~= '' and redis.call('HEXISTS', schedules, name) == 1 then
  local last = redis.call('HGET', schedules, lastRun)
  if not last or tonumber(last) < tonumber(runAt) then redis.call('HSET', schedules, lastRun, runAt) end
end
local score = redis.call('ZSCORE', due, member)
if not score or tonumber(score) ~= tonumber(dueAt) then return 0 end
if nextAt == '' then redis.call('ZREM', due, member) else redis.call('ZADD', due, nextAt, member) end
return 1
`;
