// redrive: move dead letters back into delivery, atomically.
//
// Dead letters go to the subscription's redrive stream, which the worker reads with the
// subscription's group like the channel itself (same retries, same dead-lettering), so redriven
// messages reach only this subscriber and keep their original ids. Moving (XADD there, XDEL here)
// in one script means a message is never in both places, nor in neither.
//
// A pull subscription's redrive stream is read by pulls instead (functions/pull.ts): its
// entries get ids 0-<n> (numbered from the stream's last generated id: no publish makes such an
// id, so an id says which stream it is in), and instead of a wake the subscription's redrive marker is set, which tells pulls to look.
//
// Each XADD runs under pcall: when Upstash refuses one (the redrive stream at its record size, the
// database full), the script stops there and deletes from the dead letters only what it moved,
// so every message is in exactly one of the two streams.
//
// KEYS[1] dlq {p}:dlq:<ch>:<sub>, KEYS[2] redrive {p}:redrive:<ch>:<sub>, KEYS[3] due {p}:due,
// KEYS[4] subs {p}:subs:<ch>
// ARGV[1] group (the subscription's consumer group), ARGV[2] the redrive unit's wake member (""
// for a pull subscription), ARGV[3] now (ms), ARGV[4] limit (how many, oldest first, when no ids
// are given), ARGV[5] the redrive marker field (a pull subscription's; "" for push), ARGV[6] the
// XADD id ("*"; "0-*" for pull), ARGV[7..] dead-letter ids to move (none = the oldest <limit>)
//
// Returns {moved, refusal or "", missing ids...}. Safe to repeat (moved entries are gone from the
// dead letters). Cost: 1 EVALSHA + 1 XGROUP CREATE + per message (1 XRANGE when by id) + 1 XADD,
// + 1 XRANGE (oldest) + 1 XDEL + 1 ZADD (push) or 1 XINFO STREAM + 1 HSET (pull).
export const REDRIVE_LUA = `#!lua flags=allow-key-locking
local dlq, redrive, due, subs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, wake, now, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local marker, addId = ARGV[5], ARGV[6]
redis.pcall('XGROUP', 'CREATE', redrive, group, '0', 'MKSTREAM')
local entries, missing = {}, {}
if #ARGV < 7 then
  entries = redis.call('XRANGE', dlq, '-', '+', 'COUNT', limit)
else
  for i = 7, #ARGV do
    local found = redis.call('XRANGE', dlq, ARGV[i], ARGV[i])
    if found[1] then entries[#entries + 1] = found[1] else missing[#missing + 1] = ARGV[i] end
  end
end
-- A pull subscription's ids are 0-<n>, numbered here from the stream's last generated id, not
-- by XADD 0-* (Redis 7's form, which Upstash, at the 6.2 protocol, may refuse).
local seq = nil
if addId == '0-*' then
  local info = redis.call('XINFO', 'STREAM', redrive)
  for j = 1, #info, 2 do
    if info[j] == 'last-generated-id' then seq = tonumber(string.match(info[j + 1], '^0%-(%d+)$')) end
  end
  seq = seq or 0
end
local moved, refused = {}, ''
for _, entry in ipairs(entries) do
  local fields, keep = entry[2], {}
  for j = 1, #fields, 2 do
    local f = fields[j]
    if f == 'o' or f == 't' or f == 'd' or f == 'p' or f == 's' or f == 'm' or f == 'k' then
      keep[#keep + 1] = f
      keep[#keep + 1] = fields[j + 1]
    end
  end
  local id = addId
  if seq then seq = seq + 1; id = '0-' .. seq end
  local added = redis.pcall('XADD', redrive, id, unpack(keep))
  if type(added) == 'table' and added.err then
    refused = added.err
    break
  end
  moved[#moved + 1] = entry[1]
end
if #moved > 0 then
  redis.call('XDEL', dlq, unpack(moved))
  if wake ~= '' then redis.call('ZADD', due, 'LT', now, wake) end
  if marker ~= '' then redis.call('HSET', subs, marker, '1') end
end
local out = {#moved, refused}
for _, id in ipairs(missing) do out[#out + 1] = id end
return out
`;
