// attempt-writes: the Lua functions the close and finish scripts (lua/close.ts, lua/finish.ts)
// and the record script (lua/record.ts) share to write a drain's attempt log records
// ({p}:attempts:<ch>:<sub>) and delivery counters ({p}:metrics:<ch>). Not a script of its own:
// each of those embeds it after its first line.
//
// Once per write, however often it runs. A close or finish can run twice for one write (its
// reply lost: the close's second try, the finish's repeat), and HINCRBY and XADD are not safe to
// repeat. So each write carries an id, kept in the state hash (<sub>:lastWrite) by the same
// script that applies it; a run that may be a repeat applies it only if that field does not hold
// its id yet (1 HGET, only on those paths). The record script, which follows a lost read or claim
// (a pipeline cannot compare), looks for its records among the newest of the log instead.
//
// A deleted subscription gets nothing back: a write not made under the lease appends with
// NOMKSTREAM and only while the subscription's consumer group exists.
//
// The segment of ARGV a write takes, from index i: write id ("" when there is nothing to
// write), the state field <sub>:lastWrite, r, then r records of 9 values each (RECORD_FIELDS of
// shared/attempt-log.ts: a, n, m, f, l, s, d, e, b; "" left out of the entry), then c, then c
// (metrics field, delta) pairs.
//
// Cost: 1 XADD per record and 1 HINCRBY per counter that moved; where the run may be a repeat,
// +1 HGET; a write not made under the lease also +1 XPENDING (that the group exists: an XACK on a
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
local function applied(state, w)
  return redis.call('HGET', state, w.marker) == w.id
end
local function applyWrites(log, metrics, w, make)
  for j = w.records, w.recordsEnd, 9 do appendRecord(log, j, make) end
  for j = w.counts, w.countsEnd, 2 do redis.call('HINCRBY', metrics, ARGV[j], ARGV[j + 1]) end
end
local function applyStray(stream, group, state, log, metrics, w)
  if not w.any or applied(state, w) then return end
  local pending = redis.pcall('XPENDING', stream, group)
  if type(pending) == 'table' and pending.err then return end
  applyWrites(log, metrics, w, false)
  redis.call('HSET', state, w.marker, w.id)
end
`;
