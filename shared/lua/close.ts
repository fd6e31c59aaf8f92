// close: finish a unit's drain: write the last settlement, and let go only if nothing new arrived.
//
// Why one script: the "nothing new" check and the removal of the unit's wake member must be one
// step. publish (lua/publish.ts) adds a wake member only when there is none; if a message landed
// between a last empty read and a separate ZREM, it would be left with no wake member and no
// deliverer. Here, whatever the XREADGROUP finds is returned and the caller keeps delivering (the
// wake member stays, so a deliverer that dies now leaves the unit due); only an empty read removes
// the member.
//
// Acks are written whatever happens (what the endpoint accepted stays accepted); the rest only
// while the lease still holds the caller's token: a deliverer that lost its lease reads nothing
// more and changes no schedule, and the release is a compare-and-delete.
//
// A lost reply: the caller cannot tell whether this ran, and running it again could read (and
// strand) other entries. So its second try passes `cursor`, the last id the deliverer had read:
// entries this consumer holds after it can only be the first run's fresh read, which is returned
// (with their delivery count set back to 1: they were never sent). Found none, the close runs as
// on a first try, which is then safe: acks, the retry member and the state end up the same.
//
// The drain's attempt records and counters (lua/attempt-writes.ts) are written whatever happens,
// like the acks (they are what happened), once: a second try applies them only if the first did
// not, and a close that is not the lease's only while the subscription's group exists.
//
// KEYS[1] stream (the unit's), KEYS[2] due {p}:due, KEYS[3] lease, KEYS[4] state {p}:state:<ch>,
// KEYS[5] metrics {p}:metrics:<ch>, KEYS[6] attempt log {p}:attempts:<ch>:<sub>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] read count, ARGV[4] wake member, ARGV[5] retry member,
// ARGV[6] lease token, ARGV[7] "1" = release the lease when letting go, ARGV[8] "1" = XDEL acked
// entries too (a redrive stream keeps nothing delivered), ARGV[9] cursor ("" on a first try),
// ARGV[10] retry time for messages the endpoint rejected ("" none: ZADD LT), ARGV[11] the
// failingSince field when this write holds a success and the unit was failing ("" otherwise: a
// healthy close pays nothing for it), ARGV[12] n = number of ids to ack, ARGV[13 .. 12+n] ids,
// ARGV[13+n ..] the attempt writes' segment (lua/attempt-writes.ts), then state field/value pairs
// to the end (with the write's mark, <sub>:lastWrite:<h>, when there are attempt writes)
//
// Returns {1, XREADGROUP reply, recovered} when there are entries to deliver, {2, recovered}
// when it let go, {0} when the lease is not the caller's; recovered is 1 when it cleared
// failingSince (+1 HDEL, only with ARGV[11]). Cost: 1 EVALSHA + (1 XACK) (+1 XDEL) + 1 GET (+1 ZADD) (+1 HSET)
// + 1 XREADGROUP, and when it lets go + 1 ZREM (+1 DEL); a second try adds 1 XREADGROUP (and 1
// XCLAIM when it finds the first run's entries). The attempt writes add 1 XADD per record and 1
// HINCRBY per counter that moved (+1 HGET on a second try; see lua/attempt-writes.ts).
import { ATTEMPT_WRITES_LUA } from "./attempt-writes.ts";

export const CLOSE_LUA = `#!lua flags=allow-key-locking
${ATTEMPT_WRITES_LUA}
local stream, due, lease, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local metrics, log = KEYS[5], KEYS[6]
local group, consumer, count, wake, retry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local token, release, purge, cursor, retryAt = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local failingSince, n = ARGV[11], tonumber(ARGV[12])
local w, stateFrom = attemptWrites(13 + n)
if n > 0 then
  redis.call('XACK', stream, group, unpack(ARGV, 13, 12 + n))
  if purge == '1' then redis.call('XDEL', stream, unpack(ARGV, 13, 12 + n)) end
end
if redis.call('GET', lease) ~= token then
  applyStray(stream, group, state, log, metrics, w)
  return {0}
end
if cursor ~= '' then
  local orphans = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
    'STREAMS', stream, cursor)
  local entries = orphans and orphans[1][2] or {}
  if #entries > 0 then
    local claim = {'XCLAIM', stream, group, consumer, 0}
    for _, entry in ipairs(entries) do claim[#claim + 1] = entry[1] end
    claim[#claim + 1] = 'RETRYCOUNT'
    claim[#claim + 1] = 1
    claim[#claim + 1] = 'JUSTID'
    redis.call(unpack(claim))
    return {1, orphans}
  end
end
if retryAt ~= '' then redis.call('ZADD', due, 'LT', retryAt, retry) end
if w.any and (cursor == '' or not applied(state, log, w)) then applyWrites(log, metrics, w, true) end
if #ARGV >= stateFrom then redis.call('HSET', state, unpack(ARGV, stateFrom, #ARGV)) end
local recovered = 0
if failingSince ~= '' then recovered = redis.call('HDEL', state, failingSince) end
local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
  'STREAMS', stream, '>')
if fresh then return {1, fresh, recovered} end
redis.call('ZREM', due, wake)
if release == '1' then redis.call('DEL', lease) end
return {2, recovered}
`;
