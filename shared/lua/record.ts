// record: append attempt records to a subscription's attempt log unless they are there already.
//
// Why: the records of a read or a claim ride in its pipeline (worker/store.ts), which is sent
// once; when its reply is lost, nobody knows whether they were appended. This appends the ones
// the newest entries of the log do not hold, so the log gets each once. A record is known by its
// start time, first message id and attempt number (two requests cannot share all three: a
// message's attempt number grows with each try). Only its deliverer appends to the log, one
// write after the other, so a write that ran is among the newest; a deliverer that lost its
// lease meanwhile (it appends too) could push it further back, and its records would then be
// logged twice.
//
// Safe to repeat: a repeat finds them all.
//
// KEYS[1] log {p}:attempts:<ch>:<sub>
// ARGV: the records, 9 values each (see lua/attempt-writes.ts)
//
// Returns how many it appended. Cost: 1 EVALSHA + 1 XREVRANGE + 1 XADD per record appended.

import { ATTEMPT_WRITES_LUA } from "./attempt-writes.ts";

export const RECORD_LUA = `#!lua flags=allow-key-locking
${ATTEMPT_WRITES_LUA}
local log = KEYS[1]
local key = function(a, f, n) return a .. '/' .. f .. '/' .. n end
local seen = {}
for _, entry in ipairs(redis.call('XREVRANGE', log, '+', '-', 'COUNT', #ARGV / 9)) do
  local f = {}
  for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
  seen[key(f.a or '', f.f or '', f.n or '')] = true
end
local added = 0
for j = 1, #ARGV, 9 do
  if not seen[key(ARGV[j], ARGV[j + 3], ARGV[j + 1])] then
    appendRecord(log, j, false)
    added = added + 1
  end
end
return added
`;
