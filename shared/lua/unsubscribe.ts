// unsubscribe: remove a subscription and everything that belongs to it, atomically.
//
// Why one script: a delivery pass that finds the config gone must also find the group and the
// schedule gone, or it would recreate the group (NOGROUP handling) for a subscription that no
// longer exists. What a pass has in flight fails its next step with NOGROUP and is dropped.
//
// KEYS[1] subs {p}:subs:<ch>, KEYS[2] stream {p}:ch:<ch>, KEYS[3] dlq, KEYS[4] redrive stream,
// KEYS[5] lease, KEYS[6] state {p}:state:<ch>, KEYS[7] due {p}:due
// ARGV[1] name, ARGV[2] paused field, ARGV[3] n = number of state fields,
// ARGV[4 .. 3+n] state fields, ARGV[4+n ..] due members (wake/retry of both units)
//
// Returns 1 (deleted) or 0 (no such subscription). Cost: 1 EVALSHA + 1 HDEL + 1 XGROUP DESTROY
// + 1 DEL + 1 HDEL + 1 ZREM.
export const UNSUBSCRIBE_LUA = `
local subs, stream, dlq, redrive, lease, state, due =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local name, pausedField, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HDEL', subs, name, pausedField) == 0 then return 0 end
redis.pcall('XGROUP', 'DESTROY', stream, name)
redis.call('DEL', dlq, redrive, lease)
redis.call('HDEL', state, unpack(ARGV, 4, 3 + n))
redis.call('ZREM', due, unpack(ARGV, 4 + n, #ARGV))
return 1
`;
