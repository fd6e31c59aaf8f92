// unsubscribe: remove a subscription and everything that belongs to it, atomically.
//
// Why one script: a delivery pass that finds the config gone must also find the group and the
// schedule gone, or it would recreate the group (NOGROUP handling) for a subscription that no
// longer exists. What a pass has in flight fails its next step with NOGROUP and is dropped.
//
// The caller names the subscription it loaded (its id and group). If the name now belongs to
// another subscription (deleted and created again in between), nothing is removed and the script
// answers -1, so the caller looks again instead of destroying a group it does not know.
//
// KEYS[1] subs {p}:subs:<ch>, KEYS[2] stream {p}:ch:<ch>, KEYS[3] dlq, KEYS[4] redrive stream,
// KEYS[5] pace {p}:pace:<ch>:<sub>, KEYS[6] state {p}:state:<ch>, KEYS[7] due {p}:due, KEYS[8] metrics
// {p}:metrics:<ch>, KEYS[9] attempt log {p}:attempts:<ch>:<sub>, KEYS[10] lanes {p}:lanes:<ch>:<sub>
// ARGV[1] name, ARGV[2] paused field, ARGV[3] id ("" for a subscription stored without one),
// ARGV[4] group, ARGV[5] n = number of state fields, ARGV[6 .. 5+n] state fields,
// ARGV[6+n] m = number of metrics fields, ARGV[7+n .. 6+n+m] metrics fields,
// ARGV[7+n+m] pull marker field, ARGV[8+n+m] redrive marker field, ARGV[9+n+m ..] due members
// (wake/retry of both units)
//
// Returns 1 (deleted), 0 (no such subscription) or -1 (the name is another subscription's now).
// Cost: 1 EVALSHA + 1 HGET + 1 HDEL + 1 XGROUP DESTROY + 1 DEL + 2 HDEL + 1 ZREM.
export const UNSUBSCRIBE_LUA = `#!lua flags=allow-key-locking
local subs, stream, dlq, redrive, pace, state, due =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local metrics, log = KEYS[8], KEYS[9]
local name, pausedField, id, group, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local m = tonumber(ARGV[6 + n])
local json = redis.call('HGET', subs, name)
if not json then return 0 end
local stored = string.match(json, '"id":"([^"]*)"') or ''
if stored ~= id then return -1 end
redis.call('HDEL', subs, name, pausedField, ARGV[7 + n + m], ARGV[8 + n + m])
redis.pcall('XGROUP', 'DESTROY', stream, group)
redis.call('DEL', dlq, redrive, pace, log, KEYS[10])
redis.call('HDEL', state, unpack(ARGV, 6, 5 + n))
redis.call('HDEL', metrics, unpack(ARGV, 7 + n, 6 + n + m))
redis.call('ZREM', due, unpack(ARGV, 9 + n + m, #ARGV))
return 1
`;
