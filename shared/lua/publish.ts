// publish: append messages to a channel and wake its active subscribers, atomically; store the
// delayed ones for later (delayed.ts), in the same step.
//
// Why one script: the wake-up must be atomic with the XADD. A deliverer that finds nothing new
// removes its wake member in the same atomic step (see close.ts); if publish's ZMSCORE/ZADD could
// interleave with that, a message could land with no wake member left and wait for ever. Waking
// here (and not in the kick) also makes the wake-up durable: a lost kick costs latency, never a
// message. The wake-up and the retention step after it are append.ts's, shared with enter.ts,
// which lets delayed messages in when they are due.
//
// Each entry also holds the publish's trace context when it came with one: `p` its W3C
// traceparent (55 characters) and `s` its tracestate when it has one (at most 512 characters,
// shared/trace.ts). A publish without one stores none: its messages' traces are derived from
// their ids (shared/trace.ts derivedTrace), for no byte.
//
// Delayed messages (a due time in their quadruple) are not appended: each goes to the channel's
// delayed set (ZSET id -> due time) and hash (id -> "<now>\n<type>\n<traceparent>\n<tracestate>\n
// [<ordering key>\n]<data>": data last, and JSON text holds no raw newline, nor a key a control
// character, so the number of lines says whether a key is there), under the id "d<nonce>-<index>" (its
// index in the request): no stream id has a letter, so it never collides with one, and a repeat of
// the request (recover mode) knows it. The channel's timer member in {p}:due is moved to the
// earliest due time (ZADD LT), so the cron, or the timer task the caller sends, lets them in
// (enter.ts). A delay longer than the channel keeps messages (its retention's max age, its own or
// the default) is refused before anything is written. A publish of delayed messages only, to a
// channel that does not exist yet, creates it as a publish would: an empty stream, registered.
//
// A lost reply. The caller sends this once; if the reply is lost it cannot know whether the
// messages were stored, and sending it again would store them twice. So the first entry of every
// publish carries the request's nonce (field `n`), and the caller's second try runs in "recover"
// mode: it looks for that nonce among the newest entries (those of the last RECOVER_WINDOW_MS by
// the caller's clock, 100 at a time) and, when it finds it, answers with the ids stored the first
// time (the entries of one script are contiguous) instead of storing again. A publish of delayed
// messages only has no entry: its first delayed message is still in the delayed set, or it has
// entered since and its entry carries the id (field `m`). Recover mode is safe to repeat.
//
// Nothing half-written. Each write (XADD, the delayed HSET and ZADDs, the idempotency SET, and the
// wake-up) runs under pcall; when Upstash refuses one (a key over its record size, the database
// over its capacity), what this call already wrote is deleted again and the script answers
// {3, error}: the caller reports storage_full, and no message is left without its wake-up.
//
// KEYS[1] stream     {p}:ch:<ch>
// KEYS[2] registry   {p}:channels
// KEYS[3] subs       {p}:subs:<ch>
// KEYS[4] due        {p}:due
// KEYS[5] state      {p}:state:<ch>           (the trim step's expiry counts)
// KEYS[6] delayed    {p}:delayed:<ch>         (the delayed messages' due times)
// KEYS[7] messages   {p}:delayed-messages:<ch> (the delayed messages)
// KEYS[8] idem       {p}:idem:<ch>:<key>      (only with an Idempotency-Key)
// ARGV[1] channel name (registry member)
// ARGV[2] now, ms (wake score, and where recover mode stops looking back; scripts must not read
//         the clock)
// ARGV[3] wake member prefix  "wake:<ch>/"    (spelled by keys.ts, not here)
// ARGV[4] retry member prefix "retry:<ch>/"
// ARGV[5] marker separator "#": a field <sub>#<marker> (#paused, #pull) keeps <sub> from waking
// ARGV[6] idempotency TTL, seconds
// ARGV[7] nonce (random, per request)
// ARGV[8] "" (first attempt) or "recover" (the reply of an earlier attempt was lost)
// ARGV[9]  default retention max age, ms, or "" (none)       (RETENTION_MAX_AGE_MS)
// ARGV[10] default retention max messages, or "" (none)     (RETENTION_MAX_MESSAGES)
// ARGV[11] MAX_UNDELIVERED_AGE_MS
// ARGV[12] min, ARGV[13] max ms between trims               (TRIM_MIN_INTERVAL_MS, 1 h)
// ARGV[14] channel field prefix "~", ARGV[15] "~retention", ARGV[16] "~trim"
// ARGV[17] JOIN_AFTER_MS: a subscriber woken longer ago than this is being delivered to, and has
//          been for a while: this publish's invocation joins its deliverers (see wake below)
// ARGV[18] traceparent or "" (none came), ARGV[19] tracestate or "": the publish's trace context
//          (shared/trace.ts), written into every entry as fields `p` and `s`, so it costs no
//          command of its own
// ARGV[20] the channel's timer member "delay:<ch>" (keys.ts timerMember)
// ARGV[21] the channel's sweep member "sweep:<ch>" (keys.ts sweepMember)
// ARGV[22] "1": the caller has the channel's roster (shared/roster.ts: what the subs hash says,
//          at most ROSTER_TTL_MS old), in ARGV[23] its `~trim` value ("" none), ARGV[24] its
//          `~retention` ("" none), ARGV[25] "1" when any subscription exists, ARGV[26] n, then
//          the n active subscribers' names: no HGETALL; "": read the hash, and answer it
// ARGV[27 + n..] type, data, due, ordering key, type, data, due, ordering key, ...: due is "" for a
//          message appended now, else the time (ms, later than now) it enters the channel; the
//          ordering key "" for none, else written into its entry as field `k` (no command of its
//          own; an ordered subscription delivers a key's messages one at a time: lua/take.ts)
//
// Retention (lua/trim.ts): once the `~trim` field says a trim is due, the script trims the
// stream after storing the messages; the channel's `~retention` field ("<maxAgeMs>,<maxMessages>",
// "-" for no limit) overrides the defaults. A trim, and a channel's first publish, also make sure
// the channel's sweep comes within a gap (trim.ts armSweep), so a channel that falls silent is
// still trimmed (lua/sweep.ts).
//
// Returns {0, {ids...}, {name, subscriptionJSON or "" (with a roster), retryScore or "", ...},
// timerAt, roster, trim} listing the
// subscribers this publish woke (their wake member was absent: nobody was on them, so the caller
// kicks them; or it is older than JOIN_AFTER_MS: their deliverers have had a backlog for that
// long, so the caller's kick joins them, and the member is rescored to now, so the next join
// comes that much later: concurrency grows with a backlog that lasts, one invocation per
// JOIN_AFTER_MS), and timerAt, the earliest due time of its delayed messages when it moved the
// channel's timer member earlier (the caller sends a timer task for it), else ""; roster what
// the subs hash said when it was read (append.ts active), else nil; trim the `~trim` value written
// or read, else "" (the caller's roster keeps both);
// {1, "id1,id2,..."} when the idempotency key was already used (nothing written); {2, ...} like 0
// when recover mode found the first attempt's messages (the woken are those whose wake member has
// this publish's `now`; timerAt its delayed messages' earliest, moved or not); {3, "<error>"}
// when a write was refused (nothing written); {4, maxAgeMs} when a delay is longer than the
// channel's retention keeps messages (nothing written).
//
// Cost: 1 EVALSHA + N XADD + 1 HGETALL (none with a roster: an isolate reads a channel's once a
// second), plus 1 ZMSCORE + 1 ZADD per 400 active subscribers
// (+1 ZADD XX when it joins busy ones)
// (chunks keep unpack() under Lua's stack limit); + 1 XADD + 1 SADD the first time (NOMKSTREAM
// fails, the channel is registered); + 1 GET + 1 SET with an idempotency key. A single publish
// to a channel without subscribers: 2 with a roster, else 3. A publish that finds a trim due adds
// its cost (trim.ts; + 1 HGET with a roster),
// about once per 1,000 messages; the first publish to a channel adds 1 HSET (the first `~trim`)
// and, with retention, 1 ZADD (its sweep).
// Delayed messages, however many: + 1 HGET (the retention) + 1 HSET + 1 ZADD (the set) + 1 ZADD
// (the timer); with no message appended now, + 1 EXISTS and no XADD, HGETALL nor wake-up (+ 1
// XADD + 1 SADD creating the channel): a publish of delayed messages to a channel is 6.
// Recover mode adds 1 XREVRANGE per 100 entries looked at, and 1 XRANGE when it finds them (or,
// delayed messages only, 1 ZSCORE first).
import { APPEND_LUA } from "./append.ts";

export const PUBLISH_LUA = `#!lua flags=allow-key-locking
local stream, registry, subs, due, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local delayedDue, delayedMessages, idem = KEYS[6], KEYS[7], KEYS[8]
local channel, now = ARGV[1], ARGV[2]
local idemTtl, nonce, recovering = ARGV[6], ARGV[7], ARGV[8] == 'recover'
local defaultMaxAge = tonumber(ARGV[9])
local traceparent, tracestate, timerMember = ARGV[18], ARGV[19], ARGV[20]
local RECOVER_WINDOW_MS = 60000
local FIRST = 27 + tonumber(ARGV[26])
local roster = nil
if ARGV[22] == '1' then
  local names = {}
  for i = 27, FIRST - 1 do names[#names + 1] = ARGV[i] end
  roster = {
    names = names, trim = ARGV[23] ~= '' and ARGV[23] or nil,
    retention = ARGV[24] ~= '' and ARGV[24] or nil, subscribed = ARGV[25] == '1',
  }
end

local function failed(reply) return type(reply) == 'table' and reply.err end
${APPEND_LUA}
local a = {
  subs = subs, due = due, now = now, wakePrefix = ARGV[3], retryPrefix = ARGV[4],
  markerSeparator = ARGV[5], channelPrefix = ARGV[14], joinAfter = tonumber(ARGV[17]),
  recovering = recovering, maxAge = defaultMaxAge, maxMessages = tonumber(ARGV[10]),
  maxUndelivered = tonumber(ARGV[11]), minInterval = tonumber(ARGV[12]),
  maxInterval = tonumber(ARGV[13]), retentionField = ARGV[15], trimField = ARGV[16],
  sweepMember = ARGV[21], roster = roster,
}
local function news() return a.loaded or false, a.trimValue or '' end

-- The messages: how many are appended now, how many delayed, and when the first and last are due.
local immediate, delayed, earliest, latest, firstDelayed = 0, 0, nil, nil, nil
local timerAt = ''
for i = FIRST, #ARGV, 4 do
  local at = tonumber(ARGV[i + 2])
  if at then
    delayed = delayed + 1
    if not earliest or at < earliest then earliest, timerAt = at, ARGV[i + 2] end
    if not latest or at > latest then latest = at end
    firstDelayed = firstDelayed or i
  else
    immediate = immediate + 1
  end
end
local function delayedId(i) return 'd' .. nonce .. '-' .. string.format('%d', (i - FIRST) / 4) end

-- Every message's id in the request's order, from the ids of the appended ones.
local function inOrder(appended)
  local out, k = {}, 0
  for i = FIRST, #ARGV, 4 do
    if ARGV[i + 2] == '' then
      k = k + 1
      out[#out + 1] = appended[k]
    else
      out[#out + 1] = delayedId(i)
    end
  end
  return out
end

-- Recover mode: the ids of the messages the first attempt appended, or nil when it did not run.
local function stored()
  if immediate == 0 and redis.call('ZSCORE', delayedDue, delayedId(firstDelayed)) then return {} end
  local field, value = 'n', nonce
  if immediate == 0 then field, value = 'm', delayedId(firstDelayed) end
  local floor = (tonumber(now) - RECOVER_WINDOW_MS) .. '-0'
  local top = '+'
  while true do
    local entries = redis.call('XREVRANGE', stream, top, floor, 'COUNT', 100)
    for _, entry in ipairs(entries) do
      local fields = entry[2]
      for k = 1, #fields, 2 do
        if fields[k] == field and fields[k + 1] == value then
          if immediate == 0 then return {} end
          local ours = redis.call('XRANGE', stream, entry[1], '+', 'COUNT', immediate)
          local ids = {}
          for _, e in ipairs(ours) do ids[#ids + 1] = e[1] end
          return ids
        end
      end
    end
    if #entries < 100 then return nil end
    top = '(' .. entries[#entries][1]
  end
end

if recovering then
  local appended = stored()
  if appended then
    local woken = {}
    if immediate > 0 then
      local err
      woken, err = wake(a)
      if not woken then return {3, err} end
    end
    local hash, trimValue = news()
    return {2, inOrder(appended), woken, timerAt, hash, trimValue}
  end
end

if idem then
  local previous = redis.call('GET', idem)
  if previous then return {1, previous} end
end

-- A delay longer than the channel keeps messages: refused before anything is written.
if delayed > 0 then
  local maxAge = defaultMaxAge
  local own = redis.call('HGET', subs, a.retentionField)
  if own then maxAge = tonumber(string.match(own, '^([^,]*),')) end
  if maxAge and latest - tonumber(now) > maxAge then return {4, maxAge} end
end

local ids, registered, created, kept = {}, false, false, {}
local function undo(err)
  if #ids > 0 then redis.call('XDEL', stream, unpack(ids)) end
  if created then
    redis.call('DEL', stream)
    redis.call('HDEL', subs, a.trimField)
  end
  if registered then redis.call('SREM', registry, channel) end
  if #kept > 0 then
    redis.call('HDEL', delayedMessages, unpack(kept))
    redis.call('ZREM', delayedDue, unpack(kept))
  end
  return {3, err}
end
for i = FIRST, #ARGV, 4 do
  if ARGV[i + 2] == '' then
    local fields = {}
    if ARGV[i] ~= '' then fields = {'t', ARGV[i]} end
    fields[#fields + 1] = 'd'
    fields[#fields + 1] = ARGV[i + 1]
    if traceparent ~= '' then
      fields[#fields + 1] = 'p'
      fields[#fields + 1] = traceparent
    end
    if tracestate ~= '' then
      fields[#fields + 1] = 's'
      fields[#fields + 1] = tracestate
    end
    if ARGV[i + 3] ~= '' then
      fields[#fields + 1] = 'k'
      fields[#fields + 1] = ARGV[i + 3]
    end
    local first = #ids == 0
    if first then
      fields[#fields + 1] = 'n'
      fields[#fields + 1] = nonce
    end
    local id = false
    if first then
      id = redis.pcall('XADD', stream, 'NOMKSTREAM', '*', unpack(fields))
      if failed(id) then return undo(id.err) end
      if not id then registered = redis.call('SADD', registry, channel) == 1 end
    end
    if not id then
      id = redis.pcall('XADD', stream, '*', unpack(fields))
      if failed(id) then return undo(id.err) end
    end
    ids[#ids + 1] = id
  end
end

if delayed > 0 then
  if immediate == 0 and redis.call('EXISTS', stream) == 0 then
    -- The channel, as a first publish makes it: a stream (empty: MAXLEN 0), registered.
    local made = redis.pcall('XADD', stream, 'MAXLEN', '0', '*', 'd', 'null')
    if failed(made) then return undo(made.err) end
    created = true
    registered = redis.call('SADD', registry, channel) == 1
  end
  local messages, scores = {}, {}
  for i = FIRST, #ARGV, 4 do
    if ARGV[i + 2] ~= '' then
      local id = delayedId(i)
      messages[#messages + 1] = id
      local key = ARGV[i + 3] ~= '' and (ARGV[i + 3] .. '\\n') or ''
      messages[#messages + 1] = now .. '\\n' .. ARGV[i] .. '\\n' .. traceparent .. '\\n' .. tracestate .. '\\n' .. key .. ARGV[i + 1]
      scores[#scores + 1] = ARGV[i + 2]
      scores[#scores + 1] = id
    end
  end
  local set = redis.pcall('HSET', delayedMessages, unpack(messages))
  if failed(set) then return undo(set.err) end
  for k = 1, #messages, 2 do kept[#kept + 1] = messages[k] end
  local added = redis.pcall('ZADD', delayedDue, unpack(scores))
  if failed(added) then return undo(added.err) end
  -- The timer comes at the earliest due time; a later one waits for the timer's run before it.
  local moved = redis.pcall('ZADD', due, 'LT', 'CH', timerAt, timerMember)
  if failed(moved) then return undo(moved.err) end
  if moved == 0 then timerAt = '' end
end

local all = inOrder(ids)
if idem then
  local set = redis.pcall('SET', idem, table.concat(all, ','), 'EX', idemTtl)
  if failed(set) then return undo(set.err) end
end

if immediate == 0 then
  -- A channel this made starts its trim clock (and its sweep) now, as a first publish's does:
  -- once nothing is left to undo.
  if created and registered then retain(a, stream, state, {}, true) end
  local hash, trimValue = news()
  return {0, all, {}, timerAt, hash, trimValue}
end
local woken, err = wake(a)
if not woken then
  if idem then redis.call('DEL', idem) end
  return undo(err)
end
retain(a, stream, state, ids, registered)
local hash, trimValue = news()
return {0, all, woken, timerAt, hash, trimValue}
`;
