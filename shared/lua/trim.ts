// trim: a channel's retention, applied inside the publish script (publish.ts), at most once per
// trim interval, so trimming rides on a round trip that happens anyway and costs no request; and
// by the sweep (sweep.ts), for channels nobody publishes to. The same step, the same rules.
//
// What may go. Nothing a subscription (active or paused) has not acknowledged, unless it is older
// than MAX_UNDELIVERED_AGE_MS: a subscription's floor is its oldest pending entry, or the entry
// after its last delivered one, and the protected floor is the lowest of them, raised to
// now - MAX_UNDELIVERED_AGE_MS. Below that floor the retention decides: entries older than
// maxAgeMs, and the oldest beyond maxMessages. Both trims are approximate (MINID ~), so Redis
// frees whole stream nodes (about 100 entries) and never more than asked: the stream keeps at
// least maxMessages and, by node, a little more.
//
// Expiry is never silent. A subscription whose floor lies below the protected floor (it fell
// behind by more than MAX_UNDELIVERED_AGE_MS) loses what is trimmed above its floor: the trim goes
// in bands, one per such subscription's floor, and each band's count (XTRIM's reply) is added to
// `<sub>:expired` of every subscription whose floor lies below it ({p}:state:<ch>), with
// `<sub>:lastExpiredAt`. Its pending entries that are gone are acknowledged (there is nothing
// left to deliver). A band's count can include a few entries of the band below (a node that
// straddles it): the count errs high, never low.
//
// When next. The step answers "<next>:<length after>:<now>" for the subs hash field `~trim`
// (its caller writes it: `clock`), which publish's HGETALL reads anyway: the next trim comes once
// about TRIM_EVERY entries (or half of maxMessages) have been added, judged from the rate since the
// last one, within a tenth of the age limits and between the min and max intervals. A publish
// that alone adds that many trims at once, so a burst cannot outrun the rate.
//
// The sweep. A channel that goes silent is trimmed by the sweep (sweep.ts), at its member
// "sweep:<ch>" in {p}:due. A trim by publish moves that member to now + `sweepGap` if it is later
// or absent (`armSweep`: ZADD LT, 1 command per trim, none per publish), so a channel with
// retention that has had messages since its last sweep has one, and one that keeps being
// published to is swept once a gap (the sweep moves it on by a gap itself). The gap is a tenth of the age limits, like the trim
// interval, but never held to the max interval: a silent channel needs no hourly look.
//
// Cost, when a trim is due: 1 XLEN + 1 XTRIM per retention kind that applies (age, count) + 1
// HSET (+1 ZADD LT, the sweep, with retention); with subscriptions, + 1 XINFO GROUPS + 1 XPENDING
// per subscription with pending entries;
// per expiring subscription, + 1 XTRIM per kind, 1 XPENDING, 1 XACK (when some were pending),
// 1 HINCRBY and 1 HSET, and once for them all 1 XRANGE (the first entry kept). Every call runs
// under pcall: a failing trim never fails the publish.
// The XPENDINGs are spread: the next trim waits for 100 more messages per subscription that had
// messages in flight, so a channel with many busy subscriptions trims less often, not dearer.
//
// It defines `trim(stream, state, now, o)` for publish.ts and sweep.ts to call, which answers
// {next = ms, after = length after, removed = entries trimmed}, or nil when it could not look
// at the groups (nothing trimmed); `clock(o, now, next, after)` writes `~trim` (and answers it); and
// `armSweep(o, now)`, where `o` holds:
//   maxAge, maxMessages       retention (nil: no limit of that kind)
//   maxUndelivered            ms a subscription may fall behind before its oldest messages expire
//   groups                    true when the channel has subscriptions (XINFO GROUPS is needed)
//   newest                    the id of the newest entry (the bound when nothing is protected)
//   previous                  the last `~trim` value, or false
//   minInterval, maxInterval  bounds of the time between trims (ms)
//   subs, trimField           {p}:subs:<ch> and "~trim"
//   due, sweepMember          {p}:due and "sweep:<ch>" (armSweep only)
export const TRIM_LUA = `
local TRIM_EVERY = 1000

-- How many added entries make a trim due (the count limit's half, at most TRIM_EVERY).
local function trimEvery(maxMessages)
  if not maxMessages then return TRIM_EVERY end
  return math.max(1, math.min(TRIM_EVERY, math.floor(maxMessages / 2)))
end

-- An id's parts stay decimal strings: a Lua number is exact only to 2^53, and an id part goes to
-- 2^64 - 1 (a subscription may start at any id). Redis writes them without leading zeros, so the
-- longer of two is the larger, and two of one length compare as strings.
local MAX_PART = '18446744073709551615'

local function idParts(id)
  return string.match(id, '^(%d+)%-(%d+)$')
end

local function partLess(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

local function idLess(a, b)
  local am, as = idParts(a)
  local bm, bs = idParts(b)
  if am ~= bm then return partLess(am, bm) end
  return partLess(as, bs)
end

-- A decimal string plus one.
local function increment(digits)
  local i = #digits
  while i > 0 and string.sub(digits, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #digits) end
  return string.sub(digits, 1, i - 1) .. (tonumber(string.sub(digits, i, i)) + 1) .. string.rep('0', #digits - i)
end

-- The id after this one; the largest id has none, and is its own.
local function nextId(id)
  local ms, seq = idParts(id)
  if seq ~= MAX_PART then return ms .. '-' .. increment(seq) end
  if ms ~= MAX_PART then return increment(ms) .. '-0' end
  return id
end

-- The subscription a consumer group belongs to: groups are "<name>~<id>", or "<name>".
local function subOf(group)
  return string.match(group, '^([^~]+)')
end

local function number(reply)
  if type(reply) == 'number' then return reply end
  return 0
end

local function trim(stream, state, now, o)
  local floors, safe, inFlight = {}, nil, 0
  if o.groups then
    local groups = redis.pcall('XINFO', 'GROUPS', stream)
    if type(groups) ~= 'table' or groups.err then return nil end
    for _, g in ipairs(groups) do
      local info = {}
      for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
      local floor = nextId(info['last-delivered-id'])
      if tonumber(info['pending']) > 0 then
        local summary = redis.pcall('XPENDING', stream, info['name'])
        if type(summary) ~= 'table' or summary.err then return nil end
        floor = summary[2]
        inFlight = inFlight + 1
      end
      floors[#floors + 1] = { group = info['name'], floor = floor }
      if safe == nil or idLess(floor, safe) then safe = floor end
    end
  end
  local length = number(redis.pcall('XLEN', stream))
  local protected = nextId(o.newest)
  local lagging = {}
  if safe ~= nil then
    protected = safe
    local expiry = (now - o.maxUndelivered) .. '-0'
    if idLess(safe, expiry) then
      protected = expiry
      for _, f in ipairs(floors) do
        if idLess(f.floor, expiry) then lagging[#lagging + 1] = f end
      end
      table.sort(lagging, function(a, b) return idLess(a.floor, b.floor) end)
    end
  end

  -- The bands: below the lowest floor (nobody needs it), then up to each lagging floor in turn,
  -- then up to the protected floor. Each trims what the retention wants gone below its bound.
  local bounds = {}
  for _, f in ipairs(lagging) do bounds[#bounds + 1] = f.floor end
  bounds[#bounds + 1] = protected
  local ageFloor = o.maxAge and ((now - o.maxAge) .. '-0') or nil
  local excess = o.maxMessages and (length - o.maxMessages) or 0
  local removed = 0
  local lost = {}
  for i, bound in ipairs(bounds) do
    local n = 0
    if ageFloor then
      local to = bound
      if idLess(ageFloor, bound) then to = ageFloor end
      n = n + number(redis.pcall('XTRIM', stream, 'MINID', '~', to))
    end
    if excess - n > 0 then
      n = n + number(redis.pcall('XTRIM', stream, 'MINID', '~', bound, 'LIMIT', excess - n))
    end
    excess = excess - n
    removed = removed + n
    -- Band i > 1 lies above the floors of lagging[1 .. i - 1]: they lost its entries.
    for j = 1, i - 1 do lost[j] = (lost[j] or 0) + n end
  end

  -- What the expiring subscriptions had pending below the first entry kept is gone: acked.
  local firstId = protected
  if removed > 0 and #lagging > 0 then
    local first = redis.pcall('XRANGE', stream, '-', '+', 'COUNT', 1)
    if type(first) == 'table' and first[1] then firstId = first[1][1] end
  end
  for j, f in ipairs(lagging) do
    if (lost[j] or 0) > 0 then
      local sub = subOf(f.group)
      local gone = redis.pcall('XPENDING', stream, f.group, '-', '(' .. firstId, 1000)
      if type(gone) == 'table' and not gone.err and #gone > 0 then
        local ids = {}
        for _, p in ipairs(gone) do ids[#ids + 1] = p[1] end
        redis.pcall('XACK', stream, f.group, unpack(ids))
      end
      redis.pcall('HINCRBY', state, sub .. ':expired', lost[j])
      redis.pcall('HSET', state, sub .. ':lastExpiredAt', now)
    end
  end

  -- When next: once about TRIM_EVERY entries (or half of maxMessages) will have come.
  -- Each subscription with messages in flight costs an XPENDING: spread over 100 messages each.
  local every = math.max(trimEvery(o.maxMessages), 100 * inFlight)
  local interval = o.maxInterval
  if o.previous then
    local _, before, at = string.match(o.previous, '^(%d+):(%d+):(%d+)$')
    local added = length - tonumber(before or length)
    local elapsed = now - tonumber(at or now)
    if added > 0 and elapsed > 0 then interval = math.floor(every * elapsed / added) end
  else
    interval = o.minInterval
  end
  -- Age limits are kept to a tenth of their length.
  local cap = math.floor(o.maxUndelivered / 10)
  if o.maxAge then cap = math.min(cap, math.floor(o.maxAge / 10)) end
  interval = math.max(o.minInterval, math.min(o.maxInterval, cap, interval))
  return { next = now + interval, after = length - removed, removed = removed }
end

-- The trim clock: when the next trim is due, the length it left, when it ran. Answers the value.
local function clock(o, now, next, after)
  local value = next .. ':' .. after .. ':' .. now
  redis.pcall('HSET', o.subs, o.trimField, value)
  return value
end

-- The time between two sweeps of a channel: a tenth of its age limits, at least minInterval.
local function sweepGap(o)
  local gap = math.floor(o.maxUndelivered / 10)
  if o.maxAge then gap = math.min(gap, math.floor(o.maxAge / 10)) end
  return math.max(o.minInterval, gap)
end

-- A channel with retention is swept a gap from now at the latest (sweep.ts).
local function armSweep(o, now)
  if o.maxAge or o.maxMessages then
    redis.pcall('ZADD', o.due, 'LT', now + sweepGap(o), o.sweepMember)
  end
end
`;
