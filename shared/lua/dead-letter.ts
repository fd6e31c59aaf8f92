// dead-letter: park messages that used their last attempt, and only then acknowledge them.
//
// Why a script: Upstash pipelines are not transactions, so an XADD to the dead letters followed
// by the XACK in one pipeline would still ack a message whose copy the XADD failed to store, and
// it would be gone. Here each copy is stored under pcall and only the stored ones are acked; a
// refused XADD (the dead letters at their record size, the database full) leaves the rest pending.
// The copy is made from the stream inside Redis, so no message data travels in the request (a
// batch of large messages stays far below the 10 MB request limit).
//
// Safe to repeat: XCLAIM returns only entries still pending for the group, so a repeat after a
// lost reply finds the ones already parked acked, and parks nothing twice.
//
// KEYS[1] stream (the unit's), KEYS[2] dlq {p}:dlq:<ch>:<sub>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] "1" = XDEL acked entries too (redrive stream),
// ARGV[4..] entry id, attempts made, last error; repeated
//
// Dead-letter fields: o (the original message id: the entry id, or a redrive entry's own o),
// t, d, a (attempts), e (last error).
//
// Returns {parked, refusal or ""}. Cost: 1 EVALSHA + 1 XCLAIM + 1 XADD per message + 1 XACK
// (+1 XDEL).
export const DEAD_LETTER_LUA = `#!lua flags=allow-key-locking
local stream, dlq = KEYS[1], KEYS[2]
local group, consumer, purge = ARGV[1], ARGV[2], ARGV[3]
local claim, meta = {'XCLAIM', stream, group, consumer, 0}, {}
for i = 4, #ARGV, 3 do
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
    elseif f == 't' or f == 'd' then
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
end
return {#stored, refused}
`;
