// close: finish a unit's drain: ack the last batch, and let go only if nothing new arrived.
//
// Why one script: the "nothing new" check and the removal of the unit's wake member must be one
// step. publish (lua/publish.ts) adds a wake member only when there is none; if a message landed
// between a last empty read and a separate ZREM, it would be left with no wake member and no
// deliverer. Here, whatever the XREADGROUP finds is returned and the caller keeps delivering
// (the "busy deliverer looks again before it lets go"); only an empty read removes the member.
//
// KEYS[1] stream (the unit's), KEYS[2] due {p}:due, KEYS[3] lease, KEYS[4] state {p}:state:<ch>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] read count, ARGV[4] wake member,
// ARGV[5] "1" = also release the lease (DEL; the caller checked it still owns it by time),
// ARGV[6] "1" = XDEL acked entries too (the redrive stream keeps nothing delivered),
// ARGV[7] n = number of ids to ack, ARGV[8 .. 7+n] ids, ARGV[8+n ..] state field/value pairs
//
// Returns the XREADGROUP reply when new entries arrived (the acks and the state are written
// either way), or nil when it let go. Cost: 1 EVALSHA + (1 XACK) (+1 XDEL) (+1 HSET) +
// 1 XREADGROUP, and when it lets go + 1 ZREM (+1 DEL).
export const CLOSE_LUA = `
local stream, due, lease, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer, count, wake = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local release, purge, n = ARGV[5], ARGV[6], tonumber(ARGV[7])
if n > 0 then
  redis.call('XACK', stream, group, unpack(ARGV, 8, 7 + n))
  if purge == '1' then redis.call('XDEL', stream, unpack(ARGV, 8, 7 + n)) end
end
if #ARGV > 7 + n then redis.call('HSET', state, unpack(ARGV, 8 + n, #ARGV)) end
local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
if fresh then return fresh end
redis.call('ZREM', due, wake)
if release == '1' then redis.call('DEL', lease) end
return false
`;
