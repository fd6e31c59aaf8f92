// pull: a pull's new messages in one round trip: ack what the consumer is done with, read new
// messages for it, and lease them, atomically, within a byte budget.
//
// Why a script: the lease (XCLAIM IDLE, see shared/pull-lease.ts) needs the ids the read
// returned, so without a script a pull is two round trips (XACK + XREADGROUP, then XCLAIM), and
// the ids cross the network twice more. Here they stay inside Redis. Atomic, so no entry is ever
// read without its lease: whatever a run took is leased, even if its reply is lost.
//
// Bytes. The read's COUNT comes from the largest message the Worker has seen (shared/pull.ts), so
// a run may read messages larger than expected. It keeps entries, in order, while their field
// values fit the budget (always the first), and gives the rest back: XCLAIM IDLE base RETRYCOUNT
// 0, a lease that has already run out with no attempt counted, so the next pull that looks takes
// them over as first attempts. Its reply therefore stays within the budget (and under Upstash's
// 10 MB), whatever the messages' sizes.
//
// Answer. The run writes each kept message's JSON text itself (what routes/pull.ts answers, see
// PulledMessage in shared/pull-read.ts), so the Worker does no work per message: the stored data
// `d` is already JSON text, the type is quoted with `"`, `\` and control characters escaped as
// \u00XX (once per distinct type: plain Lua, since Upstash does not document cjson), and
// publishedAt is the ISO-8601 text of the id's milliseconds (of `o`, a redriven message's
// original id), computed with integer civil-from-days arithmetic as JS's toISOString would write
// it (Redis' Lua has no os.date). Fresh reads are first attempts: attempt 1.
//
// Types. Entries the subscription's types filter leaves out (a `*` in a pattern matches any run
// of characters; patterns are A-Za-z0-9._-* only, see the subscription schema) are acked here,
// neither leased nor answered.
//
// KEYS[1] stream {p}:ch:<ch>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] count, ARGV[4] lease idle (LEASE_BASE_MS - the
// visibility timeout), ARGV[5] LEASE_BASE_MS, ARGV[6] byte budget, ARGV[7] n, the number of type
// patterns (0: no filter), ARGV[8..7+n] the patterns, ARGV[8+n..] ids to XACK first
//
// Returns {acked, json (the JSON array text of the kept messages), count (how many), largest
// (bytes of the largest entry read)}, or {acked, error} when the read was refused (Upstash's
// pending limit: the XACK stays done, nothing was read).
//
// Cost: 1 EVALSHA + 1 XREADGROUP + 1 XCLAIM when it read any it keeps: 3 for a pull that returns
// messages, 2 for one that finds none; +1 XACK when it acks (a pull's 3 and an ack's 1), +1 XACK
// when the types filter left some out, +1 XCLAIM when it gave some back.
//
// Lost reply: running it again does not end in the same state (a second run reads further), but
// nothing is lost or handed out twice: the first run's messages are leased to this consumer and
// come back when their lease runs out, with `attempt` counted. So shared/pull.ts runs it again.
export const PULL_LUA = `#!lua flags=allow-key-locking
local stream = KEYS[1]
local group, consumer, count, idle, base = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local budget = tonumber(ARGV[6])
local ntypes = tonumber(ARGV[7])
local patterns = {}
for i = 1, ntypes do
  -- A glob as an anchored Lua pattern: magic characters escaped, each * as .*
  local p = string.gsub(ARGV[7 + i], '[%^%$%(%)%%%.%[%]%+%-%?]', '%%%0')
  patterns[i] = '^' .. string.gsub(p, '%*', '.*') .. '$'
end
local acked = 0
if #ARGV > 7 + ntypes then acked = redis.call('XACK', stream, group, unpack(ARGV, 8 + ntypes)) end
local read = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
if type(read) == 'table' and read.err then return {acked, read.err} end
if not read then return {acked, '[]', 0, 0} end
local function wanted(t)
  if ntypes == 0 then return true end
  if not t then return false end
  for _, p in ipairs(patterns) do
    if string.find(t, p) then return true end
  end
  return false
end
-- Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted).
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end
local isoMs, iso = nil, nil
local function isoOf(id)
  local ms = string.sub(id, 1, string.find(id, '-', 1, true) - 1)
  if ms ~= isoMs then
    local t = tonumber(ms)
    local days = math.floor(t / 86400000)
    local rest = t - days * 86400000
    local y, m, d = civil(days)
    local year = y <= 9999 and string.format('%04d', y) or string.format('+%06d', y)
    iso = string.format('%s-%02d-%02dT%02d:%02d:%02d.%03dZ', year, m, d, math.floor(rest / 3600000),
      math.floor(rest / 60000) % 60, math.floor(rest / 1000) % 60, rest % 1000)
    isoMs = ms
  end
  return iso
end
local quoted = {}
local kept, texts, over, skipped, bytes, largest = {}, {}, {}, {}, 0, 0
for _, entry in ipairs(read[1][2]) do
  local fields, size, t, d, o = entry[2], 0, nil, nil, nil
  for j = 1, #fields, 2 do
    local name, value = fields[j], fields[j + 1]
    size = size + #value
    if name == 't' then t = value elseif name == 'd' then d = value elseif name == 'o' then o = value end
  end
  if size > largest then largest = size end
  if not wanted(t) then
    skipped[#skipped + 1] = entry[1]
  elseif #kept == 0 or (#over == 0 and bytes + size <= budget) then
    bytes = bytes + size
    kept[#kept + 1] = entry[1]
    local q = 'null'
    if t then
      q = quoted[t]
      if not q then
        q = '"' .. string.gsub(t, '[%c"\\\\]', function(c) return string.format('\\\\u%04x', string.byte(c)) end) .. '"'
        quoted[t] = q
      end
    end
    local from = ''
    if o then from = ',"redrivenFrom":"' .. o .. '"' end
    texts[#texts + 1] = '{"id":"' .. entry[1] .. '","type":' .. q .. ',"data":' .. (d or 'null') ..
      ',"publishedAt":"' .. isoOf(o or entry[1]) .. '","attempt":1' .. from .. '}'
  else
    over[#over + 1] = entry[1]
  end
end
-- unpack() spreads only as the last argument, so each XCLAIM is built as a table.
if #kept > 0 then
  local lease = {'XCLAIM', stream, group, consumer, '0'}
  for _, id in ipairs(kept) do lease[#lease + 1] = id end
  for _, word in ipairs({'IDLE', idle, 'JUSTID'}) do lease[#lease + 1] = word end
  redis.call(unpack(lease))
end
if #skipped > 0 then redis.call('XACK', stream, group, unpack(skipped)) end
if #over > 0 then
  local back = {'XCLAIM', stream, group, consumer, '0'}
  for _, id in ipairs(over) do back[#back + 1] = id end
  for _, word in ipairs({'IDLE', base, 'RETRYCOUNT', '0', 'JUSTID'}) do back[#back + 1] = word end
  redis.call(unpack(back))
end
return {acked, '[' .. table.concat(texts, ',') .. ']', #kept, largest}
`;
