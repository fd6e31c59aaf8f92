// ledger: what deliverer runs owe the subscriptions' bookkeeping, written together (worker/
// ledger.ts): the attempt log's records, and the counters and delivery state of runs that only
// succeeded. A run used to write its own report at its end (lua/report.ts: 8 commands) and its
// records with each round trip (1 XADD per round): most of what a lone message cost. An isolate
// now keeps them for up to a second and writes those of every run it made meanwhile at once.
//
// For each subscription, only if it is still the one the runs delivered to (its JSON's id: one
// deleted meanwhile, or replaced by a new one of the same name, gets nothing):
//   - its counters moved (HINCRBY each)
//   - its state, when the runs' last success is later than the one stored: lastSuccessAt,
//     lastAckedId, and failures back to 0 unless a failure was reported since that success
//     (another isolate's run, written at once: lastErrorAt later than the success)
//   - its records appended (lua/log-entries.ts: XADD NOMKSTREAM MAXLEN ~), ten to an entry
// Once, however often it runs: the first run keeps a mark under the write's id ({p}:written:<id>,
// 5 minutes: a repeat comes within seconds), and a repeat that finds it writes nothing.
//
// KEYS[1] written {p}:written:<id>; then per channel: subs {p}:subs:<ch>, state {p}:state:<ch>,
// metrics {p}:metrics:<ch>, then the attempt log {p}:attempts:<ch>:<sub> of each of its
// subscriptions, in the order ARGV names them
// ARGV[1] the attempt log's length (ATTEMPT_LOG_LENGTH); then per channel: n, then n
// subscriptions, each: name, id ("" stored without one), last success's time (ms; 0 none), its
// last acked id ("" none), the state's fields failures, lastSuccessAt, lastAckedId, lastErrorAt,
// k, then k (metrics field, delta) pairs, e, then e log entries, each: f, then f field/value pairs
//
// Returns 1, or 0 for a repeat. Cost: 1 EVALSHA + 1 GET + 1 SET; per channel 1 HMGET (the
// subscriptions), + 1 HMGET (their state) when a success is owed; per subscription 1 HINCRBY per
// counter, + 1 HSET with a later success, + 1 XADD per log entry. A repeat: 1 EVALSHA + 1 GET.
import { LOG_ENTRIES_LUA } from "./log-entries.ts";

export const LEDGER_LUA = `#!lua flags=allow-key-locking
${LOG_ENTRIES_LUA}
local written, logLength = KEYS[1], ARGV[1]
if redis.call('GET', written) then return 0 end
local a, k = 2, 2
while k <= #KEYS do
  local subs, state, metrics = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  k = k + 3
  local n = tonumber(ARGV[a])
  a = a + 1
  local starts, names, fields, succeeded = {}, {}, {}, false
  for s = 1, n do
    starts[s] = a
    names[s] = ARGV[a]
    fields[2 * s - 1], fields[2 * s] = ARGV[a + 5], ARGV[a + 7]
    if tonumber(ARGV[a + 2]) > 0 then succeeded = true end
    a = appendLog(nil, nil, a + 9 + 2 * tonumber(ARGV[a + 8]), false)
  end
  local jsons = redis.call('HMGET', subs, unpack(names))
  local stored = {}
  if succeeded then stored = redis.call('HMGET', state, unpack(fields)) end
  for s = 1, n do
    local i = starts[s]
    local json = jsons[s]
    local live = json and (string.match(json, '"id":"([^"]*)"') or '') == ARGV[i + 1]
    local successAt = tonumber(ARGV[i + 2])
    local j = i + 9
    for _ = 1, tonumber(ARGV[i + 8]) do
      if live then redis.call('HINCRBY', metrics, ARGV[j], ARGV[j + 1]) end
      j = j + 2
    end
    if live and successAt > 0 and successAt > (tonumber(stored[2 * s - 1]) or 0) then
      local set = {ARGV[i + 5], ARGV[i + 2]}
      if ARGV[i + 3] ~= '' then
        set[3], set[4] = ARGV[i + 6], ARGV[i + 3]
      end
      if (tonumber(stored[2 * s]) or 0) <= successAt then
        set[#set + 1], set[#set + 2] = ARGV[i + 4], '0'
      end
      redis.call('HSET', state, unpack(set))
    end
    appendLog(KEYS[k], logLength, j, live)
    k = k + 1
  end
end
redis.call('SET', written, '1', 'EX', 300)
return 1
`;
