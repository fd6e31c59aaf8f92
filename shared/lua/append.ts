// append: what follows new entries in a channel, whoever added them: wake its subscribers, and
// trim it when a trim is due. Not a script of its own: the publish script (publish.ts) and the
// script that lets due delayed messages into their channel (enter.ts) embed it, so that a message
// entering late wakes and trims exactly as one published now.
//
// It defines, for the embedding script (which defines `failed(reply)` before it):
//
//   wake(o)    wakes the active subscribers that have no wake member (a deliverer on one keeps
//              its member), joins those woken more than `joinAfter` ms ago (rescored to now), and
//              with `o.recovering` also reports those whose member is at `now` (an earlier run of
//              the same call woke them). Returns the woken as {name, json, retry score or '', ...},
//              or nil and the error of a refused ZADD. It reads the subs hash with one HGETALL,
//              what it found left in `o.loaded` for the caller's roster (shared/roster.ts, see
//              active), and leaves the channel's own fields in `o.channelFields`, and
//              `o.subscribed` true when any subscription (paused or not) exists. With `o.roster`
//              (what that HGETALL says, as the caller knows it: {names, configs, trim, retention,
//              subscribed}, at most ROSTER_TTL_MS old) it reads nothing; without its configs a
//              woken subscriber's json is '' (the caller has it).
//   retain(o, stream, state, ids, registered)
//              the retention step once the entries `ids` (oldest first) are in: a channel just
//              created (`registered`) only starts its trim clock; otherwise, when the `~trim`
//              field says a trim is due (or this call alone added a trim's worth), trim.ts's trim.
//              Either also makes sure the channel's sweep comes within a gap (trim.ts armSweep),
//              so a channel that falls silent is still trimmed (lua/sweep.ts). With `o.roster`, a
//              trim the copy says is due is checked against the stored `~trim` first (1 HGET:
//              another isolate may have trimmed since). `o.trimValue` is left with the `~trim`
//              value it wrote or read, for the caller's copy.
//
// `o` holds: subs, due (keys); now (ms, as the string the caller sent), wakePrefix, retryPrefix,
// markerSeparator, channelPrefix, joinAfter (ms), recovering; and for retain: maxAge, maxMessages
// (the defaults, nil for no limit), maxUndelivered, minInterval, maxInterval, retentionField,
// trimField, sweepMember ("sweep:<ch>").
//
// Cost: wake, 1 HGETALL (none with a roster) + 1 ZMSCORE + 1 ZADD per 400 active subscribers (+1 ZADD XX when it joins
// busy ones; chunks keep unpack() under Lua's stack limit); retain, nothing unless a trim is due
// (trim.ts), + 1 HSET for a new channel; with retention, + 1 ZADD LT (the sweep) either way.
import { TRIM_LUA } from "./trim.ts";

export const APPEND_LUA = `
${TRIM_LUA}
local WAKE_CHUNK = 400

-- The subscribers that are not paused (nor pull subscriptions), and their settings, from one
-- HGETALL; the channel's own fields (retention, trim) go to o.channelFields. What it found is left
-- in o.loaded for the caller's roster: {"1" when any subscription exists else "", ~trim or "",
-- ~retention or "", then name, settings of each active one}.
local function active(o)
  if o.roster then
    o.channelFields = {}
    -- Only a publish's roster has the channel's own fields (retain needs them).
    if o.trimField then
      o.channelFields[o.trimField] = o.roster.trim
      o.channelFields[o.retentionField] = o.roster.retention
    end
    o.subscribed = o.roster.subscribed
    return o.roster.names, o.roster.configs or {}
  end
  local flat = redis.call('HGETALL', o.subs)
  local paused, names, configs = {}, {}, {}
  o.channelFields = {}
  for i = 1, #flat, 2 do
    local field = flat[i]
    local marker = string.find(field, o.markerSeparator, 1, true)
    if string.sub(field, 1, string.len(o.channelPrefix)) == o.channelPrefix then
      o.channelFields[field] = flat[i + 1]
    elseif marker then
      -- paused, or a pull subscription: never woken
      paused[string.sub(field, 1, marker - 1)] = true
    else
      names[#names + 1] = field
      configs[field] = flat[i + 1]
    end
  end
  o.subscribed = #names > 0
  local out = {}
  o.loaded = {
    o.subscribed and '1' or '', o.channelFields[o.trimField] or '',
    o.channelFields[o.retentionField] or '',
  }
  for _, name in ipairs(names) do
    if not paused[name] then
      out[#out + 1] = name
      o.loaded[#o.loaded + 1] = name
      o.loaded[#o.loaded + 1] = configs[name]
    end
  end
  return out, configs
end

local function wake(o)
  local names, configs = active(o)
  local now = o.now
  local woken = {}
  for from = 1, #names, WAKE_CHUNK do
    local members, chunk = {}, {}
    for j = from, math.min(from + WAKE_CHUNK - 1, #names) do
      chunk[#chunk + 1] = names[j]
      members[#members + 1] = o.wakePrefix .. names[j]
      members[#members + 1] = o.retryPrefix .. names[j]
    end
    local scores = redis.call('ZMSCORE', o.due, unpack(members))
    local wakes, joins = {}, {}
    for j, name in ipairs(chunk) do
      local score = scores[2 * j - 1]
      local join = score and tonumber(score) + o.joinAfter <= tonumber(now)
      if not score or join or (o.recovering and score == now) then
        if not score then
          wakes[#wakes + 1] = now
          wakes[#wakes + 1] = members[2 * j - 1]
        elseif join then
          joins[#joins + 1] = now
          joins[#joins + 1] = members[2 * j - 1]
        end
        woken[#woken + 1] = name
        woken[#woken + 1] = configs[name] or ''
        woken[#woken + 1] = scores[2 * j] or ''
      end
    end
    if #wakes > 0 then
      local added = redis.pcall('ZADD', o.due, 'NX', unpack(wakes))
      if failed(added) then return nil, added.err end
    end
    if #joins > 0 then
      local moved = redis.pcall('ZADD', o.due, 'XX', unpack(joins))
      if failed(moved) then return nil, moved.err end
    end
  end
  return woken
end

-- Retention: trim when due (a new channel only starts its clock).
local function retain(o, stream, state, ids, registered)
  local now = tonumber(o.now)
  local fields = o.channelFields or {}
  local previous = fields[o.trimField]
  local maxAge, maxMessages = o.maxAge, o.maxMessages
  local own = fields[o.retentionField]
  if own then
    local age, count = string.match(own, '^([^,]*),([^,]*)$')
    maxAge, maxMessages = tonumber(age), tonumber(count)
  end
  local t = {
    maxAge = maxAge, maxMessages = maxMessages, maxUndelivered = o.maxUndelivered,
    groups = o.subscribed, newest = ids[#ids], previous = previous or false,
    minInterval = o.minInterval, maxInterval = o.maxInterval, trimField = o.trimField,
    subs = o.subs, due = o.due, sweepMember = o.sweepMember,
  }
  local function due(value) return not value or tonumber(string.match(value, '^(%d+)')) <= now end
  if registered then
    o.trimValue = clock(t, o.now, now + o.minInterval, 0)
    armSweep(t, now)
    return
  end
  local many = #ids >= trimEvery(maxMessages)
  if o.roster and (many or due(previous)) then
    -- The copy may be behind a trim another isolate made: the stored clock decides.
    previous = redis.call('HGET', o.subs, o.trimField)
    t.previous = previous or false
    o.trimValue = previous or ''
  end
  if many or due(previous) then
    local trimmed = trim(stream, state, now, t)
    if trimmed then
      o.trimValue = clock(t, o.now, trimmed.next, trimmed.after)
      armSweep(t, now)
    end
  end
end
`;
