// report: what a deliverer's run did to its subscription, written once at its end (worker/
// report.ts): the delivery state (failures in a row, last error, last success, last acked id),
// the delivery counters, the endpoint's health, and a pause on 410 Gone.
//
// Written once per run, not per request: at batch size 1 a write per request would be several
// commands per message. Once however often it runs: the caller sends it once, and again after a
// lost reply; the first run that writes also keeps what it answered under the run's write id
// ({p}:written:<id>, for 5 minutes: a repeat comes within seconds), and a repeat that finds it
// writes nothing and answers the same.
//
// Only for the subscription the run delivered to: one deleted meanwhile (or replaced by a new one
// of the same name, whose JSON has another id) gets nothing back.
//
// The endpoint's health: the first failure after a success records failingSince; a failure when
// it is older than DISABLE_AFTER_MS disables the subscription (paused, with disabledAt), never
// deleting it; a success clears failingSince (`recovering`: the run holds a success and the
// subscription was failing when it began).
//
// With it, the attempt records its subscription owes (the isolate's ledger's, worker/ledger.ts,
// then the run's own), appended in order, RECORDS_PER_ENTRY to an entry (lua/log-entries.ts): a report written at
// once takes its subscription's records along, so the log keeps them in the order they were made.
//
// KEYS[1] subs {p}:subs:<ch>, KEYS[2] state {p}:state:<ch>, KEYS[3] metrics {p}:metrics:<ch>,
// KEYS[4] written {p}:written:<write id>, KEYS[5] the attempt log {p}:attempts:<ch>:<sub>
// ARGV[1] name, ARGV[2] id ("" for a subscription stored without one), ARGV[3] failures field,
// ARGV[4] failures to add (HINCRBY; "0" none), ARGV[5] failingSince field, ARGV[6] disabledAt
// field, ARGV[7] now (ms), ARGV[8] DISABLE_AFTER_MS, ARGV[9] paused field, ARGV[10] "1"
// recovering, ARGV[11] "1" pause (410), ARGV[12] the log's length (ATTEMPT_LOG_LENGTH), ARGV[13]
// e, then e log entries, each: f, then f field/value pairs; then n, then n (metrics field,
// delta) pairs, then state field/value pairs to the end.
//
// Returns 1, 2 (started failing), 3 (disabled), 4 (recovered), or 0 when the subscription is
// gone. Cost: 1 EVALSHA + 1 GET + 1 HGET + 1 XADD per log entry + 1 HINCRBY per counter that
// moved (+1 HSET of the state) + 1 SET; health, only on those paths: 1 HDEL (recovering), 1
// HINCRBY + 1 HSET (first failure) or + 1 HGET (later failures), and 1 HEXISTS + 2 HSET
// (disabling); + 1 HSET to pause. A repeat: 1 EVALSHA + 1 GET.
import { LOG_ENTRIES_LUA } from "./log-entries.ts";

export const REPORT_LUA = `#!lua flags=allow-key-locking
${LOG_ENTRIES_LUA}
local subs, state, metrics, written = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, id = ARGV[1], ARGV[2]
local failuresField, failures = ARGV[3], tonumber(ARGV[4])
local failingSinceField, disabledAtField, now = ARGV[5], ARGV[6], tonumber(ARGV[7])
local disableAfter, pausedField = tonumber(ARGV[8]), ARGV[9]
local recovering, pause = ARGV[10] == '1', ARGV[11] == '1'
local answered = redis.call('GET', written)
if answered then return tonumber(answered) end
local json = redis.call('HGET', subs, name)
if not json or (string.match(json, '"id":"([^"]*)"') or '') ~= id then return 0 end
local j = appendLog(KEYS[5], ARGV[12], 13, true)
local counts = tonumber(ARGV[j])
local stateFrom = j + 1 + 2 * counts
for c = j + 1, stateFrom - 1, 2 do redis.call('HINCRBY', metrics, ARGV[c], ARGV[c + 1]) end
local health = 1
if recovering and redis.call('HDEL', state, failingSinceField) == 1 then health = 4 end
if failures > 0 then
  local total = redis.call('HINCRBY', state, failuresField, failures)
  local since = nil
  if total ~= failures then since = tonumber(redis.call('HGET', state, failingSinceField)) end
  if since == nil then
    redis.call('HSET', state, failingSinceField, ARGV[7])
    if total == failures then health = 2 end
  elseif now - since >= disableAfter and redis.call('HEXISTS', subs, pausedField) == 0 then
    redis.call('HSET', subs, pausedField, '1')
    redis.call('HSET', state, disabledAtField, ARGV[7])
    health = 3
  end
end
if #ARGV >= stateFrom then redis.call('HSET', state, unpack(ARGV, stateFrom, #ARGV)) end
if pause then redis.call('HSET', subs, pausedField, '1') end
redis.call('SET', written, health, 'EX', 300)
return health
`;
