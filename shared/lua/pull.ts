// pull: a pull's new messages in one round trip: ack what the consumer is done with, read new
// messages for it, and lease them, atomically, within a byte budget.
//
// Why a script: the lease (XCLAIM IDLE, see shared/pull-lease.ts) needs the ids the read
// returned, so without a script a pull is two round trips (XACK + XREADGROUP, then XCLAIM), and
// the ids cross the network twice more. Here they stay inside Redis. Atomic, so no entry is ever
// read without its lease: whatever a run took is leased, even if its reply is lost.
//
// Bytes. The read's COUNT comes from the largest message the Worker has seen (shared/pull.ts), so
// a run may read messages larger than expected. It keeps entries, in order, while their field
// values fit the budget (always the first), and gives the rest back: XCLAIM IDLE base RETRYCOUNT
// 0, a lease that has already run out with no attempt counted, so the next pull that looks takes
// them over as first attempts. Its reply therefore stays within the budget (and under Upstash's
// 10 MB), whatever the messages' sizes.
//
// KEYS[1] stream {p}:ch:<ch>
// ARGV[1] group, ARGV[2] consumer, ARGV[3] count, ARGV[4] lease idle (LEASE_BASE_MS - the
// visibility timeout), ARGV[5] LEASE_BASE_MS, ARGV[6] byte budget, ARGV[7..] ids to XACK first
//
// Returns {acked, entries ([[id, [field, value, ...]], ...]), largest (bytes of the largest entry
// read)}, or {acked, error} when the read was refused (Upstash's pending limit: the XACK stays
// done, nothing was read).
//
// Cost: 1 EVALSHA + 1 XREADGROUP + 1 XCLAIM when it read any: 3 for a pull that returns messages,
// 2 for one that finds none; +1 XACK when it acks (a pull's 3 and an ack's 1), +1 XCLAIM when it
// gave some back.
//
// Lost reply: running it again does not end in the same state (a second run reads further), but
// nothing is lost or handed out twice: the first run's messages are leased to this consumer and
// come back when their lease runs out, with `attempt` counted. So shared/pull.ts runs it again.
export const PULL_LUA = `#!lua flags=allow-key-locking
local stream = KEYS[1]
local group, consumer, count, idle, base = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local budget = tonumber(ARGV[6])
local acked = 0
if #ARGV > 6 then acked = redis.call('XACK', stream, group, unpack(ARGV, 7)) end
local read = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
if type(read) == 'table' and read.err then return {acked, read.err} end
if not read then return {acked, {}, 0} end
local kept, over, bytes, largest = {}, {}, 0, 0
for _, entry in ipairs(read[1][2]) do
  local size = 0
  for j = 2, #entry[2], 2 do size = size + #entry[2][j] end
  if size > largest then largest = size end
  if #kept == 0 or (#over == 0 and bytes + size <= budget) then
    bytes = bytes + size
    kept[#kept + 1] = entry
  else
    over[#over + 1] = entry[1]
  end
end
-- unpack() spreads only as the last argument, so each XCLAIM is built as a table.
local lease = {'XCLAIM', stream, group, consumer, '0'}
for _, entry in ipairs(kept) do lease[#lease + 1] = entry[1] end
for _, word in ipairs({'IDLE', idle, 'JUSTID'}) do lease[#lease + 1] = word end
redis.call(unpack(lease))
if #over > 0 then
  local back = {'XCLAIM', stream, group, consumer, '0'}
  for _, id in ipairs(over) do back[#back + 1] = id end
  for _, word in ipairs({'IDLE', base, 'RETRYCOUNT', '0', 'JUSTID'}) do back[#back + 1] = word end
  redis.call(unpack(back))
end
return {acked, kept, largest}
`;
