// finish: the last write of a unit that stops without draining (the endpoint failed or is gone,
// the pass's budget ran out, the pending list is full), or that had nothing new to read.
//
// What the endpoint accepted is acknowledged whatever happens (acks are always right). The rest
// belongs to the lease holder and runs only while the lease still holds the caller's token:
// entries taken but never sent get their delivery count set back to what it was (0 for one read
// ahead, the attempts made for one claimed for a retry: no attempt is counted that was not made),
// the delivery state is recorded, the schedule changes, a 410 pauses the subscription,
// and the lease is released (compare-and-delete).
//
// Safe to repeat when it releases the lease (a repeat finds the lease gone and only acks again),
// which it always does when it counts failures (HINCRBY): the caller never asks for an increment
// without a release. Without one, every write here ends in the same state however often it runs.
//
// The visit's last attempt records and its counters (lua/attempt-writes.ts) are written whatever
// happens, like the acks, once: a run that may be a repeat (one that does not release the lease,
// or finds it gone) applies them only if they are not yet, and one that is not the lease's only
// while the subscription's group exists.
//
// KEYS[1] stream (the unit's), KEYS[2] due {p}:due, KEYS[3] lease, KEYS[4] state {p}:state:<ch>,
// KEYS[5] subs {p}:subs:<ch>, KEYS[6] metrics {p}:metrics:<ch>, KEYS[7] attempt log
// {p}:attempts:<ch>:<sub>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] lease token, ARGV[4] "1" = release the lease,
// ARGV[5] "1" = XDEL acked entries too (redrive stream), ARGV[6] paused field, or "" to leave the
// subscription as it is, ARGV[7] failures field, ARGV[8] failures to add (HINCRBY; "0" none),
// ARGV[9] failingSince field, ARGV[10] disabledAt field, ARGV[11] now (ms), ARGV[12]
// DISABLE_AFTER_MS, ARGV[13] the paused field (to disable), ARGV[14] "1" = this write holds a
// success and the unit was failing (clear failingSince: recovered),
// then: n + n ids to ack; m + m (id, delivery count) pairs never sent; the attempt writes'
// segment (lua/attempt-writes.ts); k + k schedule changes as (how, member, score)
// with how = "set" (ZADD), "lt" (ZADD LT), "xx" (ZADD XX) or "rem" (ZREM; score ignored); then
// state field/value pairs to the end.
//
// The endpoint's health (only while the lease holds): the first failure after a success records
// failingSince; a failure when it is older than DISABLE_AFTER_MS disables the subscription (paused,
// with disabledAt), never deleting it; a success clears failingSince.
//
// Returns 1, 2 (started failing), 3 (disabled), 4 (recovered), or 0 when the lease was not the
// caller's (only the acks were written); -2 or -3 when it was not, but failingSince or disabledAt
// hold this call's time: a repeat after a lost reply, answering what the first run found (+1 or
// 2 HGET, only then). Health adds, only on those paths: 1 HDEL (recovering),
// 1 HSET (first failure) or 1 HGET (later failures), and 1 HEXISTS + 2 HSET (disabling). Cost:
// 1 EVALSHA + (1 XACK) (+1 XDEL) + 1 GET (+1 XCLAIM per delivery count among the unsent)
// (+1 HINCRBY) (+1 HSET) + 1 ZADD or ZREM per schedule change (+1 HSET to pause) (+1 DEL). The
// attempt writes add 1 XADD per record and 1 HINCRBY per counter that moved (+1 HGET when it does
// not release the lease; see lua/attempt-writes.ts).
import { ATTEMPT_WRITES_LUA } from "./attempt-writes.ts";

export const FINISH_LUA = `#!lua flags=allow-key-locking
${ATTEMPT_WRITES_LUA}
local stream, due, lease, state, subs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local metrics, log = KEYS[6], KEYS[7]
local group, consumer, token, release, purge = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local pausedField, failuresField, failures = ARGV[6], ARGV[7], tonumber(ARGV[8])
local failingSinceField, disabledAtField, now = ARGV[9], ARGV[10], tonumber(ARGV[11])
local disableAfter, disableField, recovering = tonumber(ARGV[12]), ARGV[13], ARGV[14] == '1'
local i = 15
local function list(width)
  local n = tonumber(ARGV[i])
  local from = i + 1
  i = i + 1 + n * width
  return from, from + n * width - 1, n
end
local ackFrom, ackTo, acks = list(1)
local unsentFrom, unsentTo, unsent = list(2)
local w
w, i = attemptWrites(i)
if acks > 0 then
  redis.call('XACK', stream, group, unpack(ARGV, ackFrom, ackTo))
  if purge == '1' then redis.call('XDEL', stream, unpack(ARGV, ackFrom, ackTo)) end
end
if redis.call('GET', lease) ~= token then
  applyStray(stream, group, state, log, metrics, w)
  -- Not ours: or ours, and this is a repeat after a lost reply (the first run released the
  -- lease). The first run's health is still readable by its time, so it is not lost.
  if failures > 0 then
    if redis.call('HGET', state, disabledAtField) == ARGV[11] then return -3 end
    if redis.call('HGET', state, failingSinceField) == ARGV[11] then return -2 end
  end
  return 0
end
if unsent > 0 then
  local byCount, counts = {}, {}
  for j = unsentFrom, unsentTo, 2 do
    local count = ARGV[j + 1]
    if not byCount[count] then
      byCount[count] = {'XCLAIM', stream, group, consumer, 0}
      counts[#counts + 1] = count
    end
    local claim = byCount[count]
    claim[#claim + 1] = ARGV[j]
  end
  for _, count in ipairs(counts) do
    local claim = byCount[count]
    claim[#claim + 1] = 'RETRYCOUNT'
    claim[#claim + 1] = count
    claim[#claim + 1] = 'JUSTID'
    redis.call(unpack(claim))
  end
end
local changes = tonumber(ARGV[i])
i = i + 1
for _ = 1, changes do
  local how, member, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if how == 'rem' then
    redis.call('ZREM', due, member)
  elseif how == 'set' then
    redis.call('ZADD', due, score, member)
  else
    redis.call('ZADD', due, string.upper(how), score, member)
  end
  i = i + 3
end
if w.any and (release == '1' or not applied(state, log, w)) then applyWrites(log, metrics, w, true) end
local health = 1
if recovering and redis.call('HDEL', state, failingSinceField) == 1 then health = 4 end
if failures > 0 then
  local total = redis.call('HINCRBY', state, failuresField, failures)
  local since = nil
  if total ~= failures then since = tonumber(redis.call('HGET', state, failingSinceField)) end
  if since == nil then
    redis.call('HSET', state, failingSinceField, ARGV[11])
    if total == failures then health = 2 end
  elseif now - since >= disableAfter and redis.call('HEXISTS', subs, disableField) == 0 then
    redis.call('HSET', subs, disableField, '1')
    redis.call('HSET', state, disabledAtField, ARGV[11])
    health = 3
  end
end
if i <= #ARGV then redis.call('HSET', state, unpack(ARGV, i, #ARGV)) end
if pausedField ~= '' then redis.call('HSET', subs, pausedField, '1') end
if release == '1' then redis.call('DEL', lease) end
return health
`;
