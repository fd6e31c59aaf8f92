// reread: the entries a read whose reply was lost took, read again.
//
// A deliverer's XREADGROUP > moves entries into its consumer's pending list; if the reply is lost
// they would sit there with nobody knowing. Entries this consumer holds after `cursor` (the last
// id the deliverer had read) can only be that read's, since the deliverer holds the lease. A
// history read returns them; it also counts a delivery, so their count is set back to 1 (they
// were never sent). Nothing found: the lost read never ran, or found nothing.
//
// Safe to repeat: a repeat returns the same entries and sets the same count.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] count, ARGV[4] cursor
//
// Returns the XREADGROUP reply (nil when nothing is held after the cursor). Cost: 1 EVALSHA +
// 1 XREADGROUP (+1 XCLAIM when it finds entries).
export const REREAD_LUA = `#!lua flags=allow-key-locking
local stream = KEYS[1]
local group, consumer, count, cursor = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
  'STREAMS', stream, cursor)
local entries = reply and reply[1][2] or {}
if #entries == 0 then return false end
local claim = {'XCLAIM', stream, group, consumer, 0}
for _, entry in ipairs(entries) do claim[#claim + 1] = entry[1] end
claim[#claim + 1] = 'RETRYCOUNT'
claim[#claim + 1] = 1
claim[#claim + 1] = 'JUSTID'
redis.call(unpack(claim))
return reply
`;
