// release: delete a lease only while it still holds the caller's token (compare-and-delete).
//
// A plain DEL could delete the lease of the deliverer after this one, if this one's had expired
// and been taken meanwhile. Safe to repeat.
//
// KEYS[1] lease; ARGV[1] token. Returns 1 (released) or 0 (not the caller's).
// Cost: 1 EVALSHA + 1 GET (+1 DEL).
export const RELEASE_LUA = `#!lua flags=allow-key-locking
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;
