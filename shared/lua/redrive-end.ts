// redrive-end: remove a pull subscription's redrive marker once its redrive stream is empty.
//
// Atomic, so it cannot race a redrive: lua/redrive.ts adds entries and sets the marker in one
// step, and here the marker goes only if no entry is there. Entries leave the redrive stream only
// when they are done (an ack deletes them, as does dead-lettering), so an empty stream has
// nothing unread and nothing in flight.
//
// KEYS[1] redrive {p}:redrive:<ch>:<sub>, KEYS[2] subs {p}:subs:<ch>
// ARGV[1] the marker field "<sub>#redrive"
//
// Returns 1 when the marker is gone, 0 when entries remain. Safe to repeat. Cost: 1 EVALSHA +
// 1 XLEN (+ 1 HDEL).
export const REDRIVE_END_LUA = `#!lua flags=allow-key-locking
local redrive, subs = KEYS[1], KEYS[2]
if redis.call('XLEN', redrive) > 0 then return 0 end
redis.call('HDEL', subs, ARGV[1])
return 1
`;
