// publish: append messages to a channel and wake its active subscribers, atomically.
//
// Why one script: the wake-up must be atomic with the XADD. A deliverer that finds nothing new
// removes its wake member in the same atomic step (see release.ts); if publish's ZMSCORE/ZADD
// could interleave with that, a message could land with no wake member left and wait for ever.
// Waking here (and not in the kick) also makes the wake-up durable: a lost kick costs latency,
// never a message.
//
// KEYS[1] stream     {p}:ch:<ch>
// KEYS[2] registry   {p}:channels
// KEYS[3] subs       {p}:subs:<ch>
// KEYS[4] due        {p}:due
// KEYS[5] idem       {p}:idem:<ch>:<key>      (only with an Idempotency-Key)
// ARGV[1] channel name (registry member)
// ARGV[2] now, ms (wake score; passed in: scripts must not read the clock)
// ARGV[3] wake member prefix  "wake:<ch>/"    (spelled by keys.ts, not here)
// ARGV[4] retry member prefix "retry:<ch>/"
// ARGV[5] paused field suffix "#paused"
// ARGV[6] idempotency TTL, seconds
// ARGV[7..] type, data, type, data, ...      (type "" = none)
//
// Returns {0, {ids...}, {name, subscriptionJSON, retryScore or "", ...}} listing the subscribers
// this publish woke (their wake member was absent: nobody was on them, so the caller kicks them);
// or {1, "id1,id2,..."} when the idempotency key was already used (nothing written).
//
// Cost: 1 EVALSHA + N XADD + 1 HGETALL, plus 1 ZMSCORE + 1 ZADD when the channel has active
// subscribers; + 1 XADD + 1 SADD the first time (NOMKSTREAM fails, the channel is registered);
// + 1 GET + 1 SET with an idempotency key. A single publish to a channel without subscribers: 3.
export const PUBLISH_LUA = `
local stream, registry, subs, due, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local channel, now, wakePrefix, retryPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pausedSuffix, idemTtl = ARGV[5], ARGV[6]

if idem then
  local previous = redis.call('GET', idem)
  if previous then return {1, previous} end
end

local ids = {}
for i = 7, #ARGV, 2 do
  local fields = {'d', ARGV[i + 1]}
  if ARGV[i] ~= '' then fields = {'t', ARGV[i], 'd', ARGV[i + 1]} end
  local id = false
  if i == 7 then id = redis.call('XADD', stream, 'NOMKSTREAM', '*', unpack(fields)) end
  if not id then
    if i == 7 then redis.call('SADD', registry, channel) end
    id = redis.call('XADD', stream, '*', unpack(fields))
  end
  ids[#ids + 1] = id
end
if idem then redis.call('SET', idem, table.concat(ids, ','), 'EX', idemTtl) end

local flat = redis.call('HGETALL', subs)
local paused, names, configs = {}, {}, {}
local suffixLength = string.len(pausedSuffix)
for i = 1, #flat, 2 do
  local field = flat[i]
  if string.sub(field, -suffixLength) == pausedSuffix then
    paused[string.sub(field, 1, -suffixLength - 1)] = true
  else
    names[#names + 1] = field
    configs[field] = flat[i + 1]
  end
end
local members, active = {}, {}
for _, name in ipairs(names) do
  if not paused[name] then
    active[#active + 1] = name
    members[#members + 1] = wakePrefix .. name
    members[#members + 1] = retryPrefix .. name
  end
end
if #active == 0 then return {0, ids, {}} end

local scores = redis.call('ZMSCORE', due, unpack(members))
local wakes, woken = {}, {}
for j, name in ipairs(active) do
  if not scores[2 * j - 1] then
    wakes[#wakes + 1] = now
    wakes[#wakes + 1] = members[2 * j - 1]
    woken[#woken + 1] = name
    woken[#woken + 1] = configs[name]
    woken[#woken + 1] = scores[2 * j] or ''
  end
end
if #wakes > 0 then redis.call('ZADD', due, 'NX', unpack(wakes)) end
return {0, ids, woken}
`;
