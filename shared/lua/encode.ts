// encode: the Lua functions that write a stream entry as the JSON text of a message, as webhooks
// and pulls carry it. Not a script of its own: lua/take.ts embeds it after its first line.
//
// The one place a message's JSON is made, for push and pull alike, inside Redis: the Worker then
// only joins the texts (parsing and serializing per message was most of a pull's time in the
// Worker). The stored data `d` is already JSON text; the type is quoted with `"`, `\` and control
// characters escaped as \u00XX (once per distinct type: plain Lua, since Upstash does not
// document cjson); publishedAt is the ISO-8601 text of the id's milliseconds (of `o`, a redriven
// message's original id), computed with integer civil-from-days arithmetic as JS's toISOString
// writes it (Redis' Lua has no os.date). A redriven message also carries its `redrivenFrom`.
//
//   {"id":"<o or entry id>","type":<"t" or null>,"data":<d>,"publishedAt":"<iso>","attempt":<n>}
//
// The id is the message's: a redriven entry's original id for push (its webhook body names the
// message, not the redrive stream), the entry's own for pull (ids are what a pull acks by).
// A delayed message (shared/delayed.ts) carries the id its publish answered (`m`) as `delayedId`,
// a message published with an ordering key (`k`) the key as `orderingKey`.
// Last come the publish's trace context (`p`, `s`: shared/trace.ts), the one derived from the
// message id for an entry stored without one, and `"tracestate"` only when there is one:
//
//   ...,"attempt":<n>[,"redrivenFrom":"<o>"][,"delayedId":"<m>"][,"orderingKey":<k>],"traceparent":"<p>"
//   [,"tracestate":"<s>"]}
//
// encodeEntry(entry, attempt, ownId) returns the text, the message id, the entry's data bytes
// (the sum of its field values: what the byte budgets count), its traceparent (stored or derived),
// its tracestate ('' when none) and its ordering key (nil when none).

export const ENCODE_LUA = `
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
-- The ISO-8601 text of an id's milliseconds (its text before the dash).
local function isoOf(ms)
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
local function quote(t)
  local q = quoted[t]
  if not q then
    q = '"' .. string.gsub(t, '[%c"\\\\]', function(c) return string.format('\\\\u%04x', string.byte(c)) end) .. '"'
    quoted[t] = q
  end
  return q
end
-- The fields of an entry: type, data, original id (redrive), the bytes of all its values, its
-- trace context, a delayed message's id, and its ordering key.
local function fieldsOf(entry)
  local fields, size, t, d, o, p, s, m, k = entry[2], 0, nil, nil, nil, nil, nil, nil, nil
  for j = 1, #fields, 2 do
    local name, value = fields[j], fields[j + 1]
    size = size + #value
    if name == 't' then t = value elseif name == 'd' then d = value elseif name == 'o' then o = value
    elseif name == 'p' then p = value elseif name == 's' then s = value elseif name == 'm' then m = value
    elseif name == 'k' then k = value end
  end
  return t, d, o, size, p, s, m, k
end
-- The bytes of an entry's field values alone, for the read's budget: fieldsOf's size without
-- looking at the names (per entry read, before the rest of its fields are needed).
local function sizeOf(entry)
  local fields, size = entry[2], 0
  for j = 2, #fields, 2 do size = size + #fields[j] end
  return size
end
-- The trace of an entry stored without one, from its message id (shared/trace.ts derivedTrace,
-- the same text), around the channel's seed, which the script sets (setTraceSeed) before any
-- entry is encoded. The parts of one millisecond are made once (a batch shares a few).
local seedHead, seedSpan = '', ''
local function setTraceSeed(seed)
  seedHead, seedSpan = '00-' .. string.sub(seed, 1, 12), '-' .. string.sub(seed, 13, 20)
end
local function hex32(n) return string.format('%04x%04x', math.floor(n / 65536), n % 65536) end
local derivedMs, derivedHead, derivedTail, seqHex = nil, nil, nil, {}
-- Of the id's two parts, as texts (its milliseconds and its sequence number).
local function derivedTrace(ms, seq)
  if ms ~= derivedMs then
    local t = tonumber(ms)
    derivedHead = seedHead .. string.format('%06x%06x', math.floor(t / 16777216) % 16777216, t % 16777216)
    derivedTail = seedSpan .. hex32(t % 4294967296) .. '-00'
    derivedMs = ms
  end
  local h = seqHex[seq]
  if not h then
    h = hex32(tonumber(seq) % 4294967296)
    seqHex[seq] = h
  end
  return derivedHead .. h .. derivedTail
end
-- Attempt numbers as text, made once each (a number in a concatenation is formatted every time).
local attemptText = {}
local function encodeEntry(entry, attempt, ownId)
  local t, d, o, size, p, s, m, k = fieldsOf(entry)
  -- The message id's parts, cut once for its date and its derived trace.
  local named = o or entry[1]
  local dash = string.find(named, '-', 1, true)
  local ms = string.sub(named, 1, dash - 1)
  if not p then p = derivedTrace(ms, string.sub(named, dash + 1)) end
  local a = attemptText[attempt]
  if not a then
    a = tostring(attempt)
    attemptText[attempt] = a
  end
  local id = entry[1]
  if o and not ownId then id = o end
  local from = ''
  if o and ownId then from = ',"redrivenFrom":"' .. o .. '"' end
  if m then from = from .. ',"delayedId":"' .. m .. '"' end
  if k then from = from .. ',"orderingKey":' .. quote(k) end
  local text = '{"id":"' .. id .. '","type":' .. (t and quote(t) or 'null') .. ',"data":' .. (d or 'null') ..
    ',"publishedAt":"' .. isoOf(ms) .. '","attempt":' .. a .. from ..
    ',"traceparent":"' .. p .. '"' .. (s and (',"tracestate":' .. quote(s)) or '') .. '}'
  return text, id, size, p, s or '', k
end
`;
