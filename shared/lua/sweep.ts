// sweep: enforce a channel's retention and its subscriptions' dead-letter bounds now, whether or
// not anybody publishes to it, and say when the channel is swept next. Run by the cron when the
// channel's member "sweep:<ch>" in {p}:due comes due (worker/sweep.ts).
//
// Why: publish applies retention (trim.ts) only as it publishes, and a park bounds dead letters
// only as it parks; a channel that goes silent would keep its backlog, and a subscription that
// stops failing its expired dead letters, for ever.
//
// The same rules. Messages go by the trim step itself (trim.ts, with the channel's own retention
// or the defaults): nothing a subscription has not acknowledged, unless it fell behind by more
// than MAX_UNDELIVERED_AGE_MS, and then what it loses is counted on it (<sub>:expired). Dead
// letters go by DEAD_LETTER_MAX_AGE_MS, _MAX_MESSAGES and _MAX_BYTES (dead-letter-bounds.ts),
// oldest first, counted (<sub>:deadLettersExpired, <sub>:deadLettersDropped).
//
// When next: the member is set to the earliest of
//   now + the gap (trim.ts sweepGap: a tenth of the age limits), while the channel has retention
//     and holds messages (or the trim could not look at its groups);
//   each subscription's oldest dead letter's time of death + DEAD_LETTER_MAX_AGE_MS.
// With neither, it is removed and `~trim` is written due now, so the next publish trims and sets
// it again (trim.ts armSweep): until a publish, nothing is there that a sweep could remove. A
// deleted channel (no stream) only loses the member: nothing else is written, so no hash of it
// comes back.
//
// Safe to repeat, and to run twice at once: a second run trims nothing more (the bounds are the
// same), and counts only what its own XTRIMs removed.
//
// KEYS[1] stream {p}:ch:<ch>, KEYS[2] subs {p}:subs:<ch>, KEYS[3] state {p}:state:<ch>,
// KEYS[4] due {p}:due, KEYS[5..] each subscription's dead letters {p}:dlq:<ch>:<sub>
// ARGV[1] the sweep member "sweep:<ch>", ARGV[2] now (ms), ARGV[3] default retention max age or
// "" (none), ARGV[4] default max messages or "", ARGV[5] MAX_UNDELIVERED_AGE_MS,
// ARGV[6] TRIM_MIN_INTERVAL_MS, ARGV[7] the max ms between trims, ARGV[8] "~retention",
// ARGV[9] "~trim", ARGV[10] DEAD_LETTER_MAX_AGE_MS, ARGV[11] _MAX_MESSAGES, ARGV[12] _MAX_BYTES,
// ARGV[13..] the state fields <sub>:deadLettersExpired, <sub>:deadLettersDropped of each
// dead-letter key, in KEYS' order
//
// Returns {messages trimmed, dead letters expired, dead letters dropped, next sweep ms or -1},
// or {-1} when there is no such channel.
//
// Cost: 1 EVALSHA + 1 EXISTS + 1 HMGET + the trim step (1 XINFO GROUPS + 1 XPENDING per
// subscription with messages in flight + 1 XLEN + 1 XTRIM per retention kind that applies, and
// the expiry's when a subscription fell behind) + 1 HSET + 1 ZADD or ZREM; per subscription
// 1 XRANGE, and with dead letters + 1 XTRIM + 1 XREVRANGE (+ 1 XTRIM + 1 XRANGE when some
// expired, 1 HINCRBY per count that moved, and the byte bound's drop). A channel with one
// subscription and no dead letters: 10 (with the caller's HKEYS).
import { DEAD_LETTER_BOUNDS_LUA } from "./dead-letter-bounds.ts";
import { TRIM_LUA } from "./trim.ts";

export const SWEEP_LUA = `#!lua flags=allow-key-locking
local stream, subs, state, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member, now = ARGV[1], tonumber(ARGV[2])
local maxAge, maxMessages = tonumber(ARGV[3]), tonumber(ARGV[4])
local maxUndelivered, minInterval = tonumber(ARGV[5]), tonumber(ARGV[6])
local maxInterval, retentionField, trimField = tonumber(ARGV[7]), ARGV[8], ARGV[9]
local letterMaxAge, letterMaxCount = tonumber(ARGV[10]), ARGV[11]
local letterMaxBytes = tonumber(ARGV[12])
local FIRST, LETTERS = 13, 5
-- Nothing is protected but what the groups hold: no publish is under way here.
local NEWEST = '18446744073709551615-18446744073709551615'
${TRIM_LUA}
${DEAD_LETTER_BOUNDS_LUA}

if redis.call('EXISTS', stream) == 0 then
  redis.call('ZREM', due, member)
  return {-1}
end
local own = redis.call('HMGET', subs, retentionField, trimField)
if own[1] then
  local age, count = string.match(own[1], '^([^,]*),([^,]*)$')
  maxAge, maxMessages = tonumber(age), tonumber(count)
end
local o = {
  maxAge = maxAge, maxMessages = maxMessages, maxUndelivered = maxUndelivered,
  groups = true, newest = NEWEST, previous = own[2] or false,
  minInterval = minInterval, maxInterval = maxInterval, subs = subs, trimField = trimField,
}

local nextAt = nil
local function sooner(at)
  if not nextAt or at < nextAt then nextAt = at end
end

local trimmed = trim(stream, state, now, o)
if not trimmed or ((maxAge or maxMessages) and trimmed.after > 0) then
  sooner(now + sweepGap(o))
end

local letterMinMs = math.max(0, now - letterMaxAge)
local expiredAll, droppedAll = 0, 0
for i = LETTERS, #KEYS do
  local dlq = KEYS[i]
  local field = FIRST + 2 * (i - LETTERS)
  local oldest = redis.call('XRANGE', dlq, '-', '+', 'COUNT', 1)[1]
  if oldest then
    local expired = 0
    if idMs(oldest[1]) < letterMinMs then
      expired = redis.call('XTRIM', dlq, 'MINID', letterMinMs .. '-0')
    end
    local dropped = redis.call('XTRIM', dlq, 'MAXLEN', letterMaxCount)
    if expired + dropped > 0 then oldest = nil end
    local more
    more, oldest = dropBytes(dlq, lettersEnd(dlq), letterMaxBytes, oldest)
    dropped = dropped + more
    if expired > 0 then redis.call('HINCRBY', state, ARGV[field], expired) end
    if dropped > 0 then redis.call('HINCRBY', state, ARGV[field + 1], dropped) end
    if oldest then sooner(idMs(oldest[1]) + letterMaxAge) end
    expiredAll, droppedAll = expiredAll + expired, droppedAll + dropped
  end
end

if nextAt then
  redis.call('ZADD', due, nextAt, member)
else
  redis.call('ZREM', due, member)
end
if trimmed then clock(o, now, nextAt and trimmed.next or now, trimmed.after) end
return {trimmed and trimmed.removed or 0, expiredAll, droppedAll, nextAt or -1}
`;
