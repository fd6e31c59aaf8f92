// delayed-page: a page of a channel's delayed messages, by due time (ties by id), after a cursor.
//
// Why a script: a page starts at a rank, and ranks move whenever earlier messages enter the
// channel (which they keep doing); reading the rank and the page in one step keeps them together.
// The cursor is the last message of the previous page, by its due time and id: found by ZRANK
// while it still waits; once it has entered or been cancelled, the page starts after its place,
// counted from its due time (ZCOUNT) and the ids of that time that sort before it, so a page never
// repeats a message nor skips one that was there all along.
//
// KEYS[1] delayed {p}:delayed:<ch>, KEYS[2] messages {p}:delayed-messages:<ch>, KEYS[3] stream
// {p}:ch:<ch> (does the channel exist)
// ARGV[1] the cursor's due time ("" from the start), ARGV[2] its id, ARGV[3] limit, ARGV[4] byte
// budget: the page ends before the message that would take its stored values past it (the first
// is always in), so a page of large messages is shorter, never too large for the Worker
//
// Returns {exists, {id, due, stored value, ...}, 1 when another page follows else 0}. Read-only. Cost: 1 EVALSHA + 1 EXISTS + 1 ZRANGE + 1 HMGET (none on an
// empty page), + 1 ZRANK after a cursor (+ 1 ZCOUNT and 1 ZRANGE per 1,000 messages due in the
// same millisecond as a cursor that is gone).
export const DELAYED_PAGE_LUA = `#!lua flags=no-writes,allow-key-locking
local delayed, messages, stream = KEYS[1], KEYS[2], KEYS[3]
local afterDue, afterId, limit, budget = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local CHUNK = 1000
-- The sorted set's own order of members (memcmp), not Lua's (strcoll: the locale's).
local function sortsBefore(x, y)
  for i = 1, math.min(#x, #y) do
    local bx, by = string.byte(x, i), string.byte(y, i)
    if bx ~= by then return bx < by end
  end
  return #x < #y
end
local exists = redis.call('EXISTS', stream)
local start = 0
if afterDue ~= '' then
  local rank = redis.call('ZRANK', delayed, afterId)
  if rank then
    start = rank + 1
  else
    start = redis.call('ZCOUNT', delayed, '-inf', '(' .. afterDue)
    local offset = 0
    while true do
      local same = redis.call('ZRANGE', delayed, afterDue, afterDue, 'BYSCORE', 'LIMIT', offset, CHUNK)
      local before = 0
      for _, id in ipairs(same) do
        if sortsBefore(id, afterId) then before = before + 1 end
      end
      start = start + before
      if before < CHUNK then break end
      offset = offset + CHUNK
    end
  end
end
local page = redis.call('ZRANGE', delayed, start, start + limit, 'WITHSCORES')
local out, more, bytes = {}, 0, 0
if #page > 0 then
  local ids = {}
  for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
  if #ids > limit then
    more = 1
    ids[#ids] = nil
  end
  local values = redis.call('HMGET', messages, unpack(ids))
  for j, id in ipairs(ids) do
    local value = values[j] or ''
    bytes = bytes + #value
    if j > 1 and bytes > budget then
      more = 1
      break
    end
    out[#out + 1] = id
    out[#out + 1] = page[2 * j]
    out[#out + 1] = value
  end
end
return {exists, out, more}
`;
