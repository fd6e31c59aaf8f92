// dead-letter: park messages that used their last attempt, and only then acknowledge them; keep
// the dead letters within their bounds, counting what the bounds remove.
//
// Why a script: Upstash pipelines are not transactions, so an XADD to the dead letters followed
// by the XACK in one pipeline would still ack a message whose copy the XADD failed to store, and
// it would be gone. Here each copy is stored under pcall and only the stored ones are acked; a
// refused XADD (the dead letters at their record size, the database full) leaves the rest pending.
// The copy is made from the stream inside Redis, so no message data travels in the request (a
// batch of large messages stays far below the 10 MB request limit).
//
// Bounds (dead-letter-bounds.ts): dead letters that died before the min id (now -
// DEAD_LETTER_MAX_AGE_MS) are trimmed first, and then, once the copies are read, the oldest until
// the rest and the copies fit in DEAD_LETTER_MAX_BYTES, so their room is free before the copies are
// stored and the record never grows past the bound for them; after the copies, the oldest past
// DEAD_LETTER_MAX_MESSAGES (and past the byte bound, when the copies alone are over it). The trims
// are exact (no "~"), and their replies say how many went: those counts are added to the
// subscription's state, so no dead letter leaves without a trace. A run that parks more than a
// maximum drops some of its own copies, counted the same way.
//
// The sweep. Dead letters also expire while nothing is parked: the park moves the channel's sweep
// member (lua/sweep.ts) to when its oldest letter expires, if that is sooner (ZADD LT).
//
// Safe to repeat: XCLAIM returns only entries still pending for the group, so a repeat after a
// lost reply finds the ones already parked acked, and parks nothing twice; its trims, with the
// same min id and maximum, find nothing more to remove, so nothing is counted twice. The messages
// parked are counted in the delivery counters (<sub>:deadLettered, shared/counters.ts) by the
// same run, so exactly once too.
//
// KEYS[1] stream (the unit's), KEYS[2] dlq {p}:dlq:<ch>:<sub>, KEYS[3] state {p}:state:<ch>,
// KEYS[4] metrics {p}:metrics:<ch>, KEYS[5] due {p}:due
// ARGV[1] group, ARGV[2] consumer, ARGV[3] "1" = XDEL acked entries too (redrive stream),
// ARGV[4] min id (older dead letters are trimmed), ARGV[5] max dead letters,
// ARGV[6] <sub>:deadLettersExpired, ARGV[7] <sub>:deadLettersDropped (state fields),
// ARGV[8] <sub>:deadLettered (metrics field), ARGV[9] max bytes of dead letters,
// ARGV[10] DEAD_LETTER_MAX_AGE_MS, ARGV[11] the channel's sweep member "sweep:<ch>",
// ARGV[12..] entry id, attempts made, last error; repeated
//
// Dead-letter fields: o (the original message id: the entry id, or a redrive entry's own o),
// t, d, p and s (its trace context, shared/trace.ts), m (a delayed message's id, so a redriven
// one still carries it), k (its ordering key, likewise), a (attempts), e (last error), c (the
// bytes of the subscription's dead letters up to this one: dead-letter-bounds.ts).
//
// Returns {parked, refusal or "", expired, dropped}. Cost: 1 EVALSHA + 1 XCLAIM + 1 XADD per
// message + 1 XACK (+1 XDEL) + 1 HINCRBY (the counter), and for the bounds 2 XTRIM + 1 XREVRANGE
// + 1 XRANGE + 1 ZADD (+1 HINCRBY when any expired, +1 when any were dropped; dropping for bytes,
// + 1 XLEN + 1 XRANGE + 1 XTRIM): 5 to 7 more per run, whatever the number of messages, unless
// the byte bound drops.
import { DEAD_LETTER_BOUNDS_LUA } from "./dead-letter-bounds.ts";

export const DEAD_LETTER_LUA = `#!lua flags=allow-key-locking
local stream, dlq, state, metrics, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer, purge = ARGV[1], ARGV[2], ARGV[3]
local minId, maxLen, expiredField, droppedField = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local deadField, maxBytes, maxAge, sweep = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local FIRST = 12
${DEAD_LETTER_BOUNDS_LUA}
local expired = redis.call('XTRIM', dlq, 'MINID', minId)
local claim, meta = {'XCLAIM', stream, group, consumer, 0}, {}
for i = FIRST, #ARGV, 3 do
  claim[#claim + 1] = ARGV[i]
  meta[ARGV[i]] = {ARGV[i + 1], ARGV[i + 2]}
end
local claimed = redis.call(unpack(claim))
local copies, incoming = {}, 0
for _, entry in ipairs(claimed) do
  local id, fields = entry[1], entry[2]
  local copy = {'o', id}
  for j = 1, #fields, 2 do
    local f = fields[j]
    if f == 'o' then
      copy[2] = fields[j + 1]
    elseif f == 't' or f == 'd' or f == 'p' or f == 's' or f == 'm' or f == 'k' then
      copy[#copy + 1] = f
      copy[#copy + 1] = fields[j + 1]
    end
  end
  copy[#copy + 1] = 'a'
  copy[#copy + 1] = meta[id][1]
  copy[#copy + 1] = 'e'
  copy[#copy + 1] = meta[id][2]
  local size = letterBytes(copy)
  copies[#copies + 1] = { id = id, fields = copy, size = size }
  incoming = incoming + size
end
-- Room for the copies first: the oldest go until what is left and the copies fit.
local ending = lettersEnd(dlq)
local dropped, oldest = dropBytes(dlq, ending, maxBytes - incoming)
local stored, refused, firstStored = {}, '', nil
for _, copy in ipairs(copies) do
  ending = ending + copy.size
  copy.fields[#copy.fields + 1] = 'c'
  copy.fields[#copy.fields + 1] = ending
  local added = redis.pcall('XADD', dlq, '*', unpack(copy.fields))
  if type(added) == 'table' and added.err then
    refused = added.err
    break
  end
  firstStored = firstStored or added
  stored[#stored + 1] = copy.id
end
if #stored > 0 then
  redis.call('XACK', stream, group, unpack(stored))
  if purge == '1' then redis.call('XDEL', stream, unpack(stored)) end
  redis.call('HINCRBY', metrics, deadField, #stored)
end
dropped = dropped + redis.call('XTRIM', dlq, 'MAXLEN', maxLen)
if incoming > maxBytes then
  -- The copies alone are over the bound: the oldest of them go too.
  local more, left = dropBytes(dlq, ending, maxBytes)
  dropped, oldest = dropped + more, left
end
if expired > 0 then redis.call('HINCRBY', state, expiredField, expired) end
if dropped > 0 then redis.call('HINCRBY', state, droppedField, dropped) end
-- The sweep comes when the oldest letter expires, if nothing sooner wants it.
local oldestId = (oldest and oldest[1]) or firstStored
if oldestId then redis.call('ZADD', due, 'LT', idMs(oldestId) + maxAge, sweep) end
return {#stored, refused, expired, dropped}
`;
