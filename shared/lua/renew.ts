// renew: extend a lease only while it still holds the caller's token (compare-and-expire).
//
// A deliverer renews its lease before a batch the lease might not outlive; a plain PEXPIRE could
// extend the lease of the deliverer after it. Safe to repeat.
//
// KEYS[1] lease; ARGV[1] token, ARGV[2] new TTL (ms). Returns 1 (renewed) or 0 (not the
// caller's). Cost: 1 EVALSHA + 1 GET (+1 PEXPIRE).
export const RENEW_LUA = `#!lua flags=allow-key-locking
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;
