// subscribe: register a subscription and create its consumer group, atomically.
//
// Why one script: the hash entry and the group must appear together. A name already in the hash
// answers 0 before anything is written; a group that cannot be created (a malformed start id)
// answers Redis' error before anything is written either. A group left over under the same name
// (BUSYGROUP) is moved to the requested start rather than trusted.
//
// KEYS[1] subs      {p}:subs:<ch>
// KEYS[2] stream    {p}:ch:<ch>
// KEYS[3] registry  {p}:channels
// KEYS[4] due       {p}:due
// KEYS[5] log       {p}:attempts:<ch>:<name>, made empty for a push subscription (the worker
//                   appends with NOMKSTREAM: see keys.ts)
// ARGV[1] name, ARGV[2] subscription JSON, ARGV[3] group start id ("$", "0" or an id),
// ARGV[4] channel name, ARGV[5] now (ms), ARGV[6] the main unit's wake member, or "" when
// starting at "$" (nothing to deliver yet) or for a pull subscription; history to deliver makes
// a push subscription due now,
// ARGV[7] the consumer group's name (see subscription.ts: <name>~<id>)
// ARGV[8] the channel's trim field "~trim", ARGV[9] its first value (lua/trim.ts), set only if
// the channel has none, ARGV[10] the pull marker field "<name>#pull" of a pull subscription, or "",
// ARGV[11] the channel's sweep member "sweep:<ch>", ARGV[12] when it is swept at the latest: set
// with the first `~trim` (ZADD LT), so that a channel made here, then published to within its
// first trim interval and never again, is still swept (lua/sweep.ts), ARGV[13] the channel's
// roster timer "roster:<ch>" for a push subscription, else "", ARGV[14] when it runs (ZADD GT):
// once no isolate's copy of the roster predates this one (shared/roster.ts), ARGV[15] since
// when a copy may be held (ms): set only when the stream's last entry is that recent (a copy
// is read by a publish that appends: none since, no copy that can still be used)
//
// Returns 1 (created), 2 (created, and the roster timer set) or 0 (the name is taken). Cost: 1 EVALSHA + 1 HEXISTS + 1 XGROUP CREATE
// (+1 XGROUP SETID) + 1 HSET + 1 HSETNX + 1 SADD (+1 ZADD: wake) (+1 XADD MAXLEN 0, push only)
// (+1 ZADD: the sweep, when the channel had no `~trim`) (+1 XREVRANGE (+1 ZADD): the roster timer, push only).
export const SUBSCRIBE_LUA = `#!lua flags=allow-key-locking
local subs, stream, registry, due, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, json, startId, channel, now, wake = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local group, trimField, firstTrim, pullMarker = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local sweep, sweepAt, roster, rosterAt, rosterSince = ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15]
if redis.call('HEXISTS', subs, name) == 1 then return 0 end
local created = redis.pcall('XGROUP', 'CREATE', stream, group, startId, 'MKSTREAM')
if type(created) == 'table' and created.err then
  if not string.find(created.err, 'BUSYGROUP', 1, true) then return created end
  redis.call('XGROUP', 'SETID', stream, group, startId)
end
if pullMarker ~= '' then
  redis.call('HSET', subs, name, json, pullMarker, '1')
else
  redis.call('HSET', subs, name, json)
  -- An empty stream: an entry added and trimmed away in the same command.
  redis.call('XADD', log, 'MAXLEN', 0, '*', 'made', now)
end
if redis.call('HSETNX', subs, trimField, firstTrim) == 1 then
  redis.call('ZADD', due, 'LT', sweepAt, sweep)
end
redis.call('SADD', registry, channel)
if wake ~= '' then redis.call('ZADD', due, now, wake) end
if roster ~= '' then
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if last and tonumber(string.match(last[1], '^(%d+)')) >= tonumber(rosterSince) then
    redis.call('ZADD', due, 'GT', rosterAt, roster)
    return 2
  end
end
return 1
`;
