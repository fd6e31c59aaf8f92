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
// Bounds: dead letters that died before the min id (now - DEAD_LETTER_MAX_AGE_MS) are trimmed
// first, so their room is free before the copies are stored; after the copies, the oldest past
// DEAD_LETTER_MAX_MESSAGES. Both are exact XTRIMs (no "~"), whose replies say how many went: those
// counts are added to the subscription's state, so no dead letter leaves without a trace. A run
// that parks more than the maximum drops some of its own copies, counted the same way.
//
// Safe to repeat: XCLAIM returns only entries still pending for the group, so a repeat after a
// lost reply finds the ones already parked acked, and parks nothing twice; its trims, with the
// same min id and maximum, find nothing more to remove, so nothing is counted twice. The messages
// parked are counted in the delivery counters (<sub>:deadLettered, shared/counters.ts) by the
// same run, so exactly once too.
//
// KEYS[1] stream (the unit's), KEYS[2] dlq {p}:dlq:<ch>:<sub>, KEYS[3] state {p}:state:<ch>,
// KEYS[4] metrics {p}:metrics:<ch>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] "1" = XDEL acked entries too (redrive stream),
// ARGV[4] min id (older dead letters are trimmed), ARGV[5] max dead letters,
// ARGV[6] <sub>:deadLettersExpired, ARGV[7] <sub>:deadLettersDropped (state fields),
// ARGV[8] <sub>:deadLettered (metrics field), ARGV[9..] entry id, attempts made, last error;
// repeated
//
// Dead-letter fields: o (the original message id: the entry id, or a redrive entry's own o),
// t, d, p and s (its trace context, shared/trace.ts), m (a delayed message's id, so a redriven
// one still carries it), a (attempts), e (last error).
//
// Returns {parked, refusal or "", expired, dropped}. Cost: 1 EVALSHA + 1 XCLAIM + 1 XADD per
// message + 1 XACK (+1 XDEL) + 1 HINCRBY (the counter), and for the bounds 2 XTRIM (+1 HINCRBY
// when any expired, +1 when any were dropped): 2 to 4 more per run, whatever the number of
// messages.
export const DEAD_LETTER_LUA = `#!lua flags=allow-key-locking
local stream, dlq, state, metrics = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer, purge = ARGV[1], ARGV[2], ARGV[3]
local minId, maxLen, expiredField, droppedField = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local deadField = ARGV[8]
local expired = redis.call('XTRIM', dlq, 'MINID', minId)
local claim, meta = {'XCLAIM', stream, group, consumer, 0}, {}
for i = 9, #ARGV, 3 do
  claim[#claim + 1] = ARGV[i]
  meta[ARGV[i]] = {ARGV[i + 1], ARGV[i + 2]}
end
local claimed = redis.call(unpack(claim))
local stored, refused = {}, ''
for _, entry in ipairs(claimed) do
  local id, fields = entry[1], entry[2]
  local copy = {'o', id}
  for j = 1, #fields, 2 do
    local f = fields[j]
    if f == 'o' then
      copy[2] = fields[j + 1]
    elseif f == 't' or f == 'd' or f == 'p' or f == 's' or f == 'm' then
      copy[#copy + 1] = f
      copy[#copy + 1] = fields[j + 1]
    end
  end
  copy[#copy + 1] = 'a'
  copy[#copy + 1] = meta[id][1]
  copy[#copy + 1] = 'e'
  copy[#copy + 1] = meta[id][2]
  local added = redis.pcall('XADD', dlq, '*', unpack(copy))
  if type(added) == 'table' and added.err then
    refused = added.err
    break
  end
  stored[#stored + 1] = id
end
if #stored > 0 then
  redis.call('XACK', stream, group, unpack(stored))
  if purge == '1' then redis.call('XDEL', stream, unpack(stored)) end
  redis.call('HINCRBY', metrics, deadField, #stored)
end
local dropped = redis.call('XTRIM', dlq, 'MAXLEN', maxLen)
if expired > 0 then redis.call('HINCRBY', state, expiredField, expired) end
if dropped > 0 then redis.call('HINCRBY', state, droppedField, dropped) end
return {#stored, refused, expired, dropped}
`;
