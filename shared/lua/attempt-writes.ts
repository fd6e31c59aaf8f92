// attempt-writes: the Lua functions the close and finish scripts (lua/close.ts, lua/finish.ts)
// and the record script (lua/record.ts) share to write a drain's attempt log records
// ({p}:attempts:<ch>:<sub>) and delivery counters ({p}:metrics:<ch>). Not a script of its own:
// each of those embeds it after its first line.
//
// Once per write, however often it runs. A close or finish can run twice for one write (its
// reply lost: the close's second try, the finish's repeat), and HINCRBY and XADD are not safe to
// repeat. So each write carries an id, kept in the state hash by the same script that applies it
// (its mark, <sub>:lastWrite:<h>, riding in the state's HSET); a run that may be a repeat applies
// it only if its mark does not hold its id yet (1 HGET, only on those paths). The mark is one of
// 16, picked by the lease token's first hex digit: a repeat comes some 50 to 150 ms after its first
// run, and a deliverer that took the lease meanwhile (the first run let it go) and wrote marks its
// own field, 15 times in 16. When the mark does not match, the write's last record is looked for
// among the log's newest 50 entries too (+1 XREVRANGE). So a write is applied twice only if both
// miss: another deliverer with a token of the same first digit wrote between the write and its
// repeat, and either this write carried no record (counters only) or more than 50 records were
// logged in between. Then one drain's records and counts are written twice, never more. The record script, which follows a lost read or claim
// (a pipeline cannot compare), looks for its records among the newest of the log instead.
//
// A deleted subscription gets nothing back: a write not made under the lease appends with
// NOMKSTREAM and only while the subscription's consumer group exists.
//
// The segment of ARGV a write takes, from index i: write id ("" when there is nothing to
// write), the mark's state field <sub>:lastWrite:<h>, r, then r records of 9 values each (RECORD_FIELDS of
// shared/attempt-log.ts: a, n, m, f, l, s, d, e, b; "" left out of the entry), then c, then c
// (metrics field, delta) pairs.
//
// Cost: 1 XADD per record and 1 HINCRBY per counter that moved; where the run may be a repeat,
// +1 HGET (+1 XREVRANGE when the mark does not match); a write not made under the lease also +1 XPENDING (that the group exists: an XACK on a
// deleted stream answers 0, not an error) and +1 HSET of the id.

import { ATTEMPT_LOG_LENGTH } from "../attempt-log.ts";

export const ATTEMPT_WRITES_LUA = `
local RECORD_FIELDS = {'a', 'n', 'm', 'f', 'l', 's', 'd', 'e', 'b'}
local function attemptWrites(i)
  local w = {id = ARGV[i], marker = ARGV[i + 1]}
  local r = tonumber(ARGV[i + 2])
  w.records, w.recordsEnd = i + 3, i + 2 + r * 9
  local c = tonumber(ARGV[w.recordsEnd + 1])
  w.counts, w.countsEnd = w.recordsEnd + 2, w.recordsEnd + 1 + c * 2
  w.any = w.id ~= ''
  return w, w.countsEnd + 1
end
local function appendRecord(log, j, make)
  local add = {'XADD', log}
  if not make then add[#add + 1] = 'NOMKSTREAM' end
  add[#add + 1] = 'MAXLEN'
  add[#add + 1] = '~'
  add[#add + 1] = '${ATTEMPT_LOG_LENGTH}'
  add[#add + 1] = '*'
  for k = 1, 9 do
    local v = ARGV[j + k - 1]
    if v ~= '' then
      add[#add + 1] = RECORD_FIELDS[k]
      add[#add + 1] = v
    end
  end
  redis.call(unpack(add))
end
local RECENT = 50
local function recordKey(a, f, n) return a .. '/' .. f .. '/' .. n end
local function applied(state, log, w)
  if redis.call('HGET', state, w.marker) == w.id then return true end
  if w.recordsEnd < w.records then return false end
  local j = w.recordsEnd - 8
  local last = recordKey(ARGV[j], ARGV[j + 3], ARGV[j + 1])
  for _, entry in ipairs(redis.call('XREVRANGE', log, '+', '-', 'COUNT', RECENT)) do
    local f = {}
    for k = 1, #entry[2], 2 do f[entry[2][k]] = entry[2][k + 1] end
    if recordKey(f.a or '', f.f or '', f.n or '') == last then return true end
  end
  return false
end
local function applyWrites(log, metrics, w, make)
  for j = w.records, w.recordsEnd, 9 do appendRecord(log, j, make) end
  for j = w.counts, w.countsEnd, 2 do redis.call('HINCRBY', metrics, ARGV[j], ARGV[j + 1]) end
end
local function applyStray(stream, group, state, log, metrics, w)
  if not w.any or applied(state, log, w) then return end
  local pending = redis.pcall('XPENDING', stream, group)
  if type(pending) == 'table' and pending.err then return end
  applyWrites(log, metrics, w, false)
  redis.call('HSET', state, w.marker, w.id)
end
`;
