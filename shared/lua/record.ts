// record: append attempt records to a subscription's attempt log unless they are there already.
//
// Why: the records of a deliverer's requests ride in its next round trip (worker/report.ts: one
// XADD per ten, in the take's batch), which is sent once; when its reply is lost, nobody knows
// whether they were appended. This appends the ones the newest entries of the log do not hold, so
// the log gets each once. A record is known by its start time, first message id and attempt
// number (two requests cannot share all three: a message's attempt number grows with each try).
// A write that ran is among the newest entries: it is looked for in the entries it made (one per
// RECORDS_PER_ENTRY records) plus the RECENT more that the subscription's other deliverers may
// have appended since (they run side by side); past that, its records would be logged twice. An
// entry holds its records as shared/attempt-log.ts says: the first under the plain field names,
// the i-th under the names followed by i; this reads them so, and appends the missing ones so,
// RECORDS_PER_ENTRY to an entry.
//
// Safe to repeat: a repeat finds them all.
//
// KEYS[1] log {p}:attempts:<ch>:<sub>
// ARGV: the records, RECORD_FIELDS.length values each (RECORD_FIELDS of shared/attempt-log.ts: a,
// n, m, f, l, s, d, e, b, t, h; "" values left out of the entry)
//
// Returns how many it appended. Cost: 1 EVALSHA + 1 XREVRANGE, + 1 XADD per 10 records appended.

import { ATTEMPT_LOG_LENGTH, RECORD_FIELDS, RECORDS_PER_ENTRY } from "../attempt-log.ts";

const FIELDS = RECORD_FIELDS.map((f) => `'${f}'`).join(", ");

export const RECORD_LUA = `#!lua flags=allow-key-locking
local RECORD_FIELDS = {${FIELDS}}
local N = #RECORD_FIELDS
local log, RECENT = KEYS[1], 100
local function name(field, i) if i == 0 then return field end return field .. i end
local key = function(a, f, n) return a .. '/' .. (f or '') .. '/' .. (n or '') end
local seen = {}
local made = math.ceil(#ARGV / N / ${RECORDS_PER_ENTRY})
for _, entry in ipairs(redis.call('XREVRANGE', log, '+', '-', 'COUNT', made + RECENT)) do
  local f = {}
  for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
  local i = 0
  while f[name('a', i)] do
    seen[key(f[name('a', i)], f[name('f', i)], f[name('n', i)])] = true
    i = i + 1
  end
end
-- An entry holds at most CHUNK records (RECORDS_PER_ENTRY), as the worker writes them.
local CHUNK = ${RECORDS_PER_ENTRY}
local add, inEntry, added = {}, 0, 0
local function flush()
  if inEntry == 0 then return end
  redis.call('XADD', log, 'NOMKSTREAM', 'MAXLEN', '~', '${ATTEMPT_LOG_LENGTH}', '*', unpack(add))
  add, inEntry = {}, 0
end
for j = 1, #ARGV, N do
  if not seen[key(ARGV[j], ARGV[j + 3], ARGV[j + 1])] then
    for k = 1, N do
      local v = ARGV[j + k - 1]
      if v ~= '' then
        add[#add + 1] = name(RECORD_FIELDS[k], inEntry)
        add[#add + 1] = v
      end
    end
    inEntry, added = inEntry + 1, added + 1
    if inEntry == CHUNK then flush() end
  end
end
flush()
return added
`;
