// schedule-save: create, change or delete a schedule, with its {p}:due member, in one step.
//
// Why one script: the schedule's JSON and its member must change together. A create must not
// leave a member when the name was taken; a change must not bring back a schedule deleted
// meanwhile (nor its member); and the member always follows the JSON that was written with it,
// so a pause never leaves a run behind, and a resume never misses its member.
//
// KEYS[1] schedules {p}:schedules, KEYS[2] due {p}:due
// ARGV[1] "create" | "update" | "delete"
// ARGV[2] the name, ARGV[3] its #lastRun field, ARGV[4] its member ("schedule:<name>")
// ARGV[5] the schedule's JSON (create, update)
// ARGV[6] its next run, ms; "" for none (paused: the member is removed); "keep" (update only:
//         the member stays as it is)
//
// Returns 1 (done) or 0 (create: the name is taken; update: there is no such schedule). Safe to
// repeat: a create repeated after a lost reply finds its own JSON and answers 1 again; an update
// writes the same again; a delete removes nothing more. Cost: 1 EVALSHA + 1 HSETNX (+1 HGET when
// taken) or 1 HEXISTS + 1 HSET, + 1 ZADD or ZREM (none with "keep"); a delete 1 HDEL + 1 ZREM.
export const SCHEDULE_SAVE_LUA = `#!lua flags=allow-key-locking
local schedules, due = KEYS[1], KEYS[2]
local mode, name, lastRun, member, json, nextAt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if mode == 'delete' then
  redis.call('HDEL', schedules, name, lastRun)
  redis.call('ZREM', due, member)
  return 1
end
if mode == 'create' then
  if redis.call('HSETNX', schedules, name, json) == 0 and redis.call('HGET', schedules, name) ~= json then
    return 0
  end
else
  if redis.call('HEXISTS', schedules, name) == 0 then return 0 end
  redis.call('HSET', schedules, name, json)
end
if nextAt == '' then
  redis.call('ZREM', due, member)
elseif nextAt ~= 'keep' then
  redis.call('ZADD', due, nextAt, member)
end
return 1
`;
