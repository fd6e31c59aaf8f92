// drop-channel: delete a channel and everything of it, atomically.
//
// Why one script: nobody may see half a channel. The stream, its subscriptions (settings, consumer
// groups, which live in the stream, delivery state, schedule, pace slots, dead letters, redrive
// streams, attempt logs, delivery counters), its delayed messages (and their timer), its sweep
// member and its registry entry go together, or, when the subscriptions are not what the caller
// expects, nothing goes. A delayed message's timer that runs after finds none left
// (lua/enter.ts), so none enters a deleted channel.
//
// Subscriptions. The caller names the subscriptions it found (their keys must be in KEYS). Without
// "force", any subscription answers -2 with their names: the caller reports 409. With "force",
// a set of subscriptions other than the one given (one created or deleted since the caller looked)
// answers -1 and the caller looks again. A subscription is deleted as DELETE of a subscription
// deletes it (lua/unsubscribe.ts); here the group goes with the stream and the hashes as a whole.
//
// A race with publish. Publish (lua/publish.ts) and this script both lock the stream key, so one
// runs wholly before the other: a publish before is deleted with the channel; a publish after finds
// no stream and creates the channel again (new stream, registered again), with no subscriptions.
// A deliverer in the middle of a run finds its group gone (NOGROUP) and stops; its report writes
// nothing for a subscription that no longer exists (lua/report.ts), and a schedule member it
// re-adds for one is dropped by the next pass (unschedule.ts).
//
// allow-oom: Redis refuses a flagged script when it is over maxmemory unless it says so, and
// deleting is the way out of a full database. The script only reads and deletes.
//
// KEYS[1] stream {p}:ch:<ch>, KEYS[2] subs {p}:subs:<ch>, KEYS[3] state {p}:state:<ch>,
// KEYS[4] registry {p}:channels, KEYS[5] due {p}:due, KEYS[6] metrics {p}:metrics:<ch>,
// KEYS[7] delayed {p}:delayed:<ch>, KEYS[8] delayed messages {p}:delayed-messages:<ch>,
// KEYS[9..] each given subscription's dlq, redrive stream, pace key, attempt log and lanes
// ARGV[1] channel name (registry member), ARGV[2] "force" or "", ARGV[3] n, ARGV[4 .. 3+n] the
// subscriptions' names, ARGV[4+n ..] their {p}:due members (wake and retry of both units), and
// last the channel's own: its timer "delay:<ch>", its sweep "sweep:<ch>" (lua/sweep.ts) and its
// roster timer "roster:<ch>" (shared/roster.ts)
//
// Returns {1, messages deleted, delayed messages deleted}; {0} when there is no such channel
// (nothing to delete: a repeat after a lost reply gets this too); {-2, {names}} when it has
// subscriptions and no "force"; {-1} when its subscriptions are not the ones given.
//
// Cost: 1 EVALSHA + 1 EXISTS (+1 SISMEMBER) + 1 HKEYS, then to delete: 1 XLEN + 1 ZCARD + 1 DEL +
// 1 SREM, + 1 ZREM per 1,000 {p}:due members, + 1 DEL per 1,000 subscriptions' keys (chunks keep
// unpack() under Lua's stack limit). A channel without subscriptions: 8.
export const DROP_CHANNEL_LUA = `#!lua flags=allow-key-locking,allow-oom
local stream, subs, state, registry, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local metrics = KEYS[6]
local channel, force, n = ARGV[1], ARGV[2] == 'force', tonumber(ARGV[3])
local CHUNK = 1000

-- command [key] list[from .. to], in chunks; nothing when from > to.
local function chunked(command, key, list, from, to)
  for i = from, to, CHUNK do
    local last = math.min(i + CHUNK - 1, to)
    if key then
      redis.call(command, key, unpack(list, i, last))
    else
      redis.call(command, unpack(list, i, last))
    end
  end
end

if redis.call('EXISTS', stream, subs) == 0 and redis.call('SISMEMBER', registry, channel) == 0 then
  return {0}
end
local names = {}
for _, field in ipairs(redis.call('HKEYS', subs)) do
  if string.match(field, '^[%w%._%-]+$') then names[#names + 1] = field end
end
if #names > 0 and not force then return {-2, names} end
local given = {}
for i = 4, 3 + n do given[ARGV[i]] = true end
if #names ~= n then return {-1} end
for _, name in ipairs(names) do
  if not given[name] then return {-1} end
end

local messages = redis.call('XLEN', stream)
local delayedCount = redis.call('ZCARD', KEYS[7])
redis.call('DEL', stream, subs, state, metrics, KEYS[7], KEYS[8])
chunked('DEL', nil, KEYS, 9, #KEYS)
chunked('ZREM', due, ARGV, 4 + n, #ARGV)
redis.call('SREM', registry, channel)
return {1, messages, delayedCount}
`;
