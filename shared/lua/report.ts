// report: what a deliverer's run did to its subscription, written once at its end (worker/
// report.ts): the delivery state (failures in a row, last error, last success, last acked id),
// the delivery counters, the endpoint's health, and a pause on 410 Gone.
//
// Written once per run, not per request: at batch size 1 a write per request would be several
// commands per message. Once however often it runs: the caller sends it once, and after a lost
// reply again with `repeat`; the run's counters and failure count (HINCRBY, not safe to repeat)
// are then applied only if the run's mark (lua/attempt-writes.ts: <sub>:lastWrite:<h>, riding in
// the state's HSET) does not hold the run's write id yet.
//
// Only for the subscription the run delivered to: one deleted meanwhile (or replaced by a new one
// of the same name, whose JSON has another id) gets nothing back.
//
// The endpoint's health: the first failure after a success records failingSince; a failure when
// it is older than DISABLE_AFTER_MS disables the subscription (paused, with disabledAt), never
// deleting it; a success clears failingSince (`recovering`: the run holds a success and the
// subscription was failing when it began).
//
// KEYS[1] subs {p}:subs:<ch>, KEYS[2] state {p}:state:<ch>, KEYS[3] metrics {p}:metrics:<ch>,
// KEYS[4] attempt log {p}:attempts:<ch>:<sub>
// ARGV[1] name, ARGV[2] id ("" for a subscription stored without one), ARGV[3] "1" = a repeat
// after a lost reply, ARGV[4] failures field, ARGV[5] failures to add (HINCRBY; "0" none),
// ARGV[6] failingSince field, ARGV[7] disabledAt field, ARGV[8] now (ms), ARGV[9]
// DISABLE_AFTER_MS, ARGV[10] paused field, ARGV[11] "1" recovering, ARGV[12] "1" pause (410),
// then the attempt writes' segment (lua/attempt-writes.ts: no records, the counters), then state
// field/value pairs to the end (with the run's mark when it has counters).
//
// Returns 1, 2 (started failing), 3 (disabled), 4 (recovered), or 0 when the subscription is gone;
// a repeat whose first run was applied answers what that run found of failing and disabled (by
// its time). Cost: 1 EVALSHA + 1 HGET + 1 HINCRBY per counter that moved + 1 HSET (+1 HGET on a
// repeat); health, only on those paths: 1 HDEL (recovering), 1 HINCRBY + 1 HSET (first failure)
// or + 1 HGET (later failures), and 1 HEXISTS + 2 HSET (disabling); + 1 HSET to pause.
import { ATTEMPT_WRITES_LUA } from "./attempt-writes.ts";

export const REPORT_LUA = `#!lua flags=allow-key-locking
${ATTEMPT_WRITES_LUA}
local subs, state, metrics, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, id, repeating = ARGV[1], ARGV[2], ARGV[3] == '1'
local failuresField, failures = ARGV[4], tonumber(ARGV[5])
local failingSinceField, disabledAtField, now = ARGV[6], ARGV[7], tonumber(ARGV[8])
local disableAfter, pausedField = tonumber(ARGV[9]), ARGV[10]
local recovering, pause = ARGV[11] == '1', ARGV[12] == '1'
local json = redis.call('HGET', subs, name)
if not json or (string.match(json, '"id":"([^"]*)"') or '') ~= id then return 0 end
local w, stateFrom = attemptWrites(13)
if repeating and w.any and redis.call('HGET', state, w.marker) == w.id then
  if failures > 0 then
    if redis.call('HGET', state, disabledAtField) == ARGV[8] then return 3 end
    if redis.call('HGET', state, failingSinceField) == ARGV[8] then return 2 end
  end
  return 1
end
applyWrites(log, metrics, w, false)
local health = 1
if recovering and redis.call('HDEL', state, failingSinceField) == 1 then health = 4 end
if failures > 0 then
  local total = redis.call('HINCRBY', state, failuresField, failures)
  local since = nil
  if total ~= failures then since = tonumber(redis.call('HGET', state, failingSinceField)) end
  if since == nil then
    redis.call('HSET', state, failingSinceField, ARGV[8])
    if total == failures then health = 2 end
  elseif now - since >= disableAfter and redis.call('HEXISTS', subs, pausedField) == 0 then
    redis.call('HSET', subs, pausedField, '1')
    redis.call('HSET', state, disabledAtField, ARGV[8])
    health = 3
  end
end
if #ARGV >= stateFrom then redis.call('HSET', state, unpack(ARGV, stateFrom, #ARGV)) end
if pause then redis.call('HSET', subs, pausedField, '1') end
return health
`;
