// record: append attempt records to a subscription's attempt log unless they are there already.
//
// Why: the records of a deliverer's requests ride in its next round trip (worker/report.ts: one
// XADD each, in the take's batch), which is sent once; when its reply is lost, nobody knows
// whether they were appended. This appends the ones the newest entries of the log do not hold,
// so the log gets each once. A record is known by its start time, first message id and attempt
// number (two requests cannot share all three: a message's attempt number grows with each try).
// A write that ran is among the newest: it is looked for among as many as it appends plus the
// RECENT more that the subscription's other deliverers may have appended since (they run side by
// side); past that, its records would be logged twice.
//
// Safe to repeat: a repeat finds them all.
//
// KEYS[1] log {p}:attempts:<ch>:<sub>
// ARGV: the records, RECORD_FIELDS.length values each (RECORD_FIELDS of shared/attempt-log.ts: a,
// n, m, f, l, s, d, e, b, t; "" values left out of the entry)
//
// Returns how many it appended. Cost: 1 EVALSHA + 1 XREVRANGE + 1 XADD per record appended.

import { ATTEMPT_LOG_LENGTH, RECORD_FIELDS } from "../attempt-log.ts";

const FIELDS = RECORD_FIELDS.map((f) => `'${f}'`).join(", ");

export const RECORD_LUA = `#!lua flags=allow-key-locking
local RECORD_FIELDS = {${FIELDS}}
local N = #RECORD_FIELDS
local function appendRecord(log, j)
  local add = {'XADD', log, 'NOMKSTREAM', 'MAXLEN', '~', '${ATTEMPT_LOG_LENGTH}', '*'}
  for k = 1, N do
    local v = ARGV[j + k - 1]
    if v ~= '' then
      add[#add + 1] = RECORD_FIELDS[k]
      add[#add + 1] = v
    end
  end
  redis.call(unpack(add))
end
local log, RECENT = KEYS[1], 100
local key = function(a, f, n) return a .. '/' .. f .. '/' .. n end
local seen = {}
for _, entry in ipairs(redis.call('XREVRANGE', log, '+', '-', 'COUNT', #ARGV / N + RECENT)) do
  local f = {}
  for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
  seen[key(f.a or '', f.f or '', f.n or '')] = true
end
local added = 0
for j = 1, #ARGV, N do
  if not seen[key(ARGV[j], ARGV[j + 3], ARGV[j + 1])] then
    appendRecord(log, j)
    added = added + 1
  end
end
return added
`;
