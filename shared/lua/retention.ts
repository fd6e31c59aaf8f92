// retention: change a channel's retention (the subs hash's `~retention` field, "<maxAgeMs>,
// <maxMessages>" with "-" for no limit: lua/publish.ts reads it), only while the channel exists.
//
// Why one script: the existence check and the write must be one step, or a channel deleted in
// between would get its subs hash back holding only this field. Safe to repeat: it writes the same
// value again.
//
// KEYS[1] stream {p}:ch:<ch>, KEYS[2] subs {p}:subs:<ch>
// ARGV[1] the retention field, ARGV[2] the value when the channel has none of its own (the
// defaults), ARGV[3] new max age, ARGV[4] new max messages: a number, "-" (no limit), or "" (keep)
//
// Returns 1 (written) or 0 (no such channel). Cost: 1 EVALSHA + 1 EXISTS + 1 HGET + 1 HSET.
export const RETENTION_LUA = `#!lua flags=allow-key-locking
local stream, subs = KEYS[1], KEYS[2]
local field, defaults, age, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', stream) == 0 then return 0 end
local current = redis.call('HGET', subs, field) or defaults
local oldAge, oldCount = string.match(current, '^([^,]*),([^,]*)$')
if age == '' then age = oldAge end
if count == '' then count = oldCount end
redis.call('HSET', subs, field, age .. ',' .. count)
return 1
`;
