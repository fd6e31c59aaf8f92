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
// KEYS[5] lease, KEYS[6] state {p}:state:<ch>, KEYS[7] due {p}:due
// ARGV[1] name, ARGV[2] paused field, ARGV[3] id ("" for a subscription stored without one),
// ARGV[4] group, ARGV[5] n = number of state fields, ARGV[6 .. 5+n] state fields,
// ARGV[6+n] pull marker field, ARGV[7+n] redrive marker field, ARGV[8+n ..] due members
// (wake/retry of both units)
//
// Returns 1 (deleted), 0 (no such subscription) or -1 (the name is another subscription's now).
// Cost: 1 EVALSHA + 1 HGET + 1 HDEL + 1 XGROUP DESTROY + 1 DEL + 1 HDEL + 1 ZREM.
export const UNSUBSCRIBE_LUA = `#!lua flags=allow-key-locking
local subs, stream, dlq, redrive, lease, state, due =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local name, pausedField, id, group, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local json = redis.call('HGET', subs, name)
if not json then return 0 end
local stored = string.match(json, '"id":"([^"]*)"') or ''
if stored ~= id then return -1 end
redis.call('HDEL', subs, name, pausedField, ARGV[6 + n], ARGV[7 + n])
redis.pcall('XGROUP', 'DESTROY', stream, group)
redis.call('DEL', dlq, redrive, lease)
redis.call('HDEL', state, unpack(ARGV, 6, 5 + n))
redis.call('ZREM', due, unpack(ARGV, 8 + n, #ARGV))
return 1
`;
