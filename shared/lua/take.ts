// take: one round trip of a reader with its consumer group: settle what it is done with, then take
// more, atomically. The whole group mechanism of shared/engine/ in one script, for push
// deliverers and pull consumers alike (see the engine's glossary: shared/engine/README.md).
//
// A taken entry is pending in the group, owned by the reader, and invisible until it is settled
// or its visibility timeout runs out. The timeout is kept in the pending entry itself, as its idle
// time, on Redis's own clock; a later claim can only take an entry whose time has come (XCLAIM
// min-idle): nobody can make a retry earlier. Two ways, by who holds a queue's nacked entries:
//   - a holder of their own (push: the waiting room): a reader holds only what it took, so its
//     entries are visible again once their idle time, counted from the read (XREADGROUP's own
//     delivery time), reaches `visibility` (XPENDING IDLE visibility per reader); the holder's are
//     set to base - visibleIn, visible again once the idle time reaches `base`
//   - the reader itself: taking sets the idle time (XCLAIM IDLE, the lease) to base -
//     visibility, so that every entry of the group is visible again once its idle time reaches
//     `base`: one question to the whole group (XPENDING IDLE base). Nobody takes this way now;
//     pull did, and what it leased so is still looked at that way (below)
// Pull uses the first with the same holder as push: its nacks and extends go there (engine/
// settle.ts), and a reader's entries are visible again at its own visibility: named
// <consumer>~<ms> when it is not the take's `visibility` (engine/queue.ts pullReader). The first
// costs no command per read (a lease was a third of Redis' time in a push drain, and more than
// half of a pull's at max 1,000).
//
// In order, each step only when asked for:
//   1. ack      XACK (+ XDEL on a redrive stream, which keeps nothing done)
//   2. nack     XCLAIM to the holder (the reader, or push's waiting room) with the idle time that
//               makes them visible again in `visibleIn` ms (JUSTID: no attempt counted), and
//               RETRYCOUNT when given (entries taken but never sent go back to what they were)
//   2b. flow    with a flow key (push: shared by subscriptions on any channel): its state read,
//               and `count` cut to what it allows: parallelism less the requests in flight under
//               the key (other readers' while their lease lasts, and this reader's own) and, in
//               turns, a slot for each reader waiting (one not waiting leaves them all; a waiting
//               one those waiting longer, and takes one while others wait behind it; a repeat
//               after a lost reply what its record holds); and the rate's start slots within
//               `flow horizon` ms. Blocked (nothing allowed when something was asked): flowWait
//               says when a slot frees by itself at the latest
//   3. recover  after a take whose reply was lost: the entries this reader holds after `cursor`
//               (the last it read before) can only be that take's (a reader is one deliverer's):
//               taken again as it left them, their attempts as they were
//   4. look     entries whose visibility ran out (XPENDING IDLE base, and XPENDING IDLE visibility
//               per reader holding entries, with a holder), oldest first: those with
//               maxAttempts deliveries are reported dead (the caller parks them), the rest claimed
//               (XCLAIM min-idle base: only if still visible; the attempt is counted), within the
//               byte budget (what does not fit goes back as it was, visible at once)
//   5. window   with a window field (push: adaptive concurrency), when the take carries signals
//               or asks for room: the subscription's window of requests in flight (a number in
//               its state hash, shared by every reader) sets the cap. It grows by the requests
//               that succeeded since the reader's last take: +1 each until its first cut (slow
//               start), then +1 per window's worth (additive); it is halved once when a request
//               sent after its last cut met congestion (429, 503, a timeout, a connection error:
//               one sent before it is part of what that cut answered); never below 1, never above
//               the cap. Read and written whole (HMGET, + HSET when it moved or was not there yet)
//               on a reader's first take and on a cut; grown in one HINCRBYFLOAT, which answers
//               its value with every other reader's steps in it; and not touched at all by a
//               reader that knows it at the cap with no congestion to tell: a window at the cap
//               costs nothing. The stored number may pass the cap by a step (two readers growing
//               it at once): it counts as the cap. Its whole part is the cap of the next step
//   6. room     with a cap or a group pending limit: XPENDING's summary; requests in flight are
//               counted per reader as ceil(pending / batch size), the reader's own given exactly.
//               A reader alone under a window (no other holds entries) may take ahead of it, up
//               to the cap it was given: it sends no more than the window at once (the caller's
//               part: worker/drive.ts), and a reader that comes counts all it holds as in flight
//   7. read     XREADGROUP > for what is left of `count`, in slices sized to the byte budget by
//               the largest entry seen (refused by Upstash's per-consumer limit before anything
//               was read: the error is answered); entries the types filter leaves out are acked,
//               those over the byte budget (beyond the first) given back visible at once, with no
//               attempt counted; the rest leased (XCLAIM IDLE, JUSTID) when the reader holds its
//               own nacks
//   8. schedule the caller's {p}:due: the retry member moved earlier (ZADD LT) to the first time
//               an entry nacked, given back or (with `cover`) taken here becomes visible; when the
//               read found nothing and the wake member is due or held (a backoff keeps it):
//               removed, or, with `busy wake` while a reader holds entries (requests in flight,
//               this one's or another's), held `busy wake` ms ahead (ZADD XX), so that a
//               publish meanwhile neither kicks a deliverer of its own (the one at work takes it
//               next) nor joins before then; not due, no pass visits it for nothing
//   9. pace     one start slot per batch taken, from the subscription's pace key
//   9b. flow    the key's state written when this take changed it: one start slot per batch
//               taken (rate), and this reader's requests (its own + the batches taken) with a
//               lease of `flow lease` ms from now (parallelism; none: its record dropped), or,
//               blocked with none in flight, that it waits (-since, for 1 s: it tries again
//               sooner); a repeat after a lost reply sets the same record, never adds to it
//  10. end      the reader is done, unless this take found more or the flow blocked it: the
//               retry member set to when the group's first pending entry becomes visible
//               (removed when none is pending), and the reader's consumer deleted if it holds
//               nothing
//
// Ordered (KEYS[6], a push subscription's lanes {p}:lanes:<ch>:<sub>, see keys.ts). One entry of
// each ordering key (field k; keyless entries are the key "") is out at a time, in flight or in
// the waiting room: its lane's head. Decided here, atomically, so it holds over every reader of
// the group, whichever invocation runs it, and across lost replies (a repeat finds the heads
// moved on already) and killed runs (a head comes back by the look, as any entry does).
//   - after 2: the acked heads' lanes move on (their keys found by the reverse fields #<id>), and
//     so do those of the dead letters the caller parked just before (once no longer pending: a
//     refused park keeps its key held); a failed nack (no retry count) marks its lane held since
//     now. Each lane's next entry is handed out in this take (counted, within the byte budget),
//     or, with no room, put in the waiting room visible now
//   - 4 and 7: a looked or read entry whose key has another head is parked: XCLAIM to the
//     consumer ARGV "parked" (JUSTID, attempts 0), its id queued in its lane in id order. The
//     parked are never looked at (the holder's XPENDING is asked for the holder only), nor
//     counted in flight (6, 8), nor scheduled (10)
//   - 4: a looked head that is gone (trimmed while pending: XCLAIM drops it) moves its lane on
//   - at the end, the lanes changed written back: one HSET, one HDEL
//
// KEYS[1] stream (the queue's: the channel or a redrive stream), KEYS[2] due {p}:due,
// KEYS[3] pace {p}:pace:<ch>:<sub>, KEYS[4] flow {p}:flow:<key> (untouched without a flow key),
// KEYS[5] state {p}:state:<ch> (the window's fields; untouched without a window), KEYS[6] lanes
// (ordered only: last, so that the keys every take names keep their places)
// ARGV[1] group, ARGV[2] reader, ARGV[3] holder of nacked entries ("" the reader), ARGV[4] "1"
// purge (XDEL acked), ARGV[5] now (ms), ARGV[6] base (LEASE_BASE_MS), ARGV[7] visibility (ms),
// ARGV[8] count (at most this many taken; 0 none), ARGV[9] byte budget, ARGV[10] "1" look,
// ARGV[11] maxAttempts (0: none dead), ARGV[12] cursor ("" unless recovering), ARGV[13] cap
// (requests in flight; 0 none), ARGV[14] batch size, ARGV[15] the reader's own requests in
// flight, ARGV[16] group pending limit (0 none), ARGV[17] retry member ("" none), ARGV[18] "1"
// cover, ARGV[19] wake member ("" none), ARGV[20] pace interval ms (0 none), ARGV[21] "1" end,
// ARGV[22] "1" own ids (pull: an entry's own id, and redrivenFrom; push: the original's),
// ARGV[23] size hint: bytes to assume an entry takes before any is read (0: read `count` at once),
// ARGV[24] busy wake ms (0: none; see 8), ARGV[25] the channel's trace seed (shared/trace.ts
// traceSeed: an entry stored without a trace gets one derived from its id), ARGV[26] flow lease
// ms (0: no flow key), ARGV[27] flow parallelism (0 none), ARGV[28] flow interval ms (0 no
// rate), ARGV[29] flow horizon ms, ARGV[30] window field ("" none: the cap is fixed), ARGV[31]
// the window's cut field, ARGV[32] the window's start, ARGV[33] requests that succeeded since
// the reader's last take, ARGV[34] when the latest request that met congestion since then was
// sent (ms; 0 none), ARGV[35] the window as the reader last knew it (0: unknown, read it),
// ARGV[36] when it was last cut as the reader knew (0: never), ARGV[37] "1" joined (pull: taken
// is one text, see below), ARGV[38] n, then n type patterns; then n, then n ids to ack; then n
// nack groups, each: visibleIn ms, retry count ("" keep), k, then k ids; then, ordered only: the parked consumer's
// name, n, then n ids of dead letters parked before this take.
//
// Returns {acked, nacked, taken, dead, filtered, largest, read, paceAt, room, nextAt, flowAt,
// flowWait, window, cutAt, alone}: taken a
// flat list of (entry id, message id, attempt, JSON text, bytes, traceparent, tracestate: '' when
// none, ordering key: '' when none), or, joined, {their JSON texts joined by ',', how many}; dead
// of (entry id, deliveries); read 0 not tried, 1 found nothing, 2 fewer than asked, 3 as many as asked, 4 no
// room, or Upstash's refusal text; paceAt the first slot's time (0 none); room the requests the
// cap leaves (-1 no cap; a reader alone under a window: the cap it was given); nextAt the retry
// member's time an end set (0: none pending); flowAt the first start slot reserved under the flow
// key's rate (0 none); flowWait 0, or when blocked
// by the flow, the time its own leases or rate free a slot at the latest (releases come sooner);
// window the window as this take left it, as text ("" when not used), cutAt its last cut's time;
// alone 1 when the room step found the reader alone under a window (see 6), else 0.
//
// Cost: 1 EVALSHA, + 1 XACK (+1 XDEL) with acks, + 1 XCLAIM per nack group, + 1 XPENDING
// (+1 XCLAIM) recovering, + 1 XPENDING (+1 XCLAIM) looking, with a window: 1 HMGET (+1 HSET) on
// a reader's first take or a cut, else 1 HINCRBYFLOAT growing it below the cap, else nothing
// (+1 XPENDING seeing the group before it writes, on a take that has not: one neither reading nor
// ending; the room's and the end's summary otherwise);
// + 1 XPENDING with a cap or limit,
// + 1 XREADGROUP per slice (+1 XCLAIM lease without a holder, +1 XACK types, +1 XCLAIM give-back) reading,
// + 1 XPENDING per other reader holding entries when looking with a holder, + 1 ZADD with
// something to schedule, + 1 ZSCORE (+1 ZREM) when the read found nothing, + 1 GET + 1 SET
// pacing, + 1 XPENDING (+1 XPENDING scan) + 1 ZADD or ZREM (+1 XGROUP DELCONSUMER) ending (the
// wake member's ZREM is the end's when both go: one ZREM for the two),
// + 1 GET (+1 SET or DEL when it reserves, its requests change or it waits) with a flow key: 2
// on a take that takes, lets go or waits; none without a key.
// A pull that returns new messages: 2; a push take of new messages: 4 (the cap's XPENDING, and
// the retry member's ZADD covering them: push covers on every take; no lease), and the window's
// command while it grows below the cap.
// Ordered adds: + 1 HMGET (#<id>) + 1 HMGET (their lanes) with acks or failed nacks, + 1 XCLAIM
// for the next heads handed out (+1 XCLAIM give-back over the byte budget, or to the waiting
// room without room), + 1 XPENDING per dead letter parked before; + 1 HMGET for the lanes of
// the keys looked or read and not loaded yet (+1 XCLAIM parking); + 1 HSET and/or + 1 HDEL for
// the lanes changed. An unordered take pays none of it (test/worker/cost.test.ts).
//
// Lost reply: a repeat settles the same (acks count 0, nacks set the same times a little later),
// and reads further; the window grows by the same successes again (never past the cap), and a
// cut is made once (the repeat's congestion was sent before the cut it made). What the lost run took is leased: it comes back when its visibility runs
// out, with its attempt counted, unless the repeat recovers it (push: `cursor`).
import { ENCODE_LUA } from "./encode.ts";

export const TAKE_LUA = `#!lua flags=allow-key-locking
${ENCODE_LUA}
local stream, due, pace, flowKey, stateKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, reader, holder, purge = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local now, base, visibility = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local count, budget, look, maxAttempts = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10] == '1', tonumber(ARGV[11])
local cursor, cap, batchSize, ownRequests = ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local pendingLimit, retry, cover, wake = tonumber(ARGV[16]), ARGV[17], ARGV[18] == '1', ARGV[19]
local paceInterval, ending, ownIds = tonumber(ARGV[20]), ARGV[21] == '1', ARGV[22] == '1'
local sizeHint, busyWake = tonumber(ARGV[23]), tonumber(ARGV[24])
setTraceSeed(ARGV[25])
local flowLease, flowParallelism = tonumber(ARGV[26]), tonumber(ARGV[27])
local flowInterval, flowHorizon = tonumber(ARGV[28]), tonumber(ARGV[29])
local windowField, cutField, start = ARGV[30], ARGV[31], tonumber(ARGV[32])
local succeeded, congestedAt = tonumber(ARGV[33]), tonumber(ARGV[34])
local known, knownCut = tonumber(ARGV[35]), tonumber(ARGV[36])
local joined = ARGV[37] == '1'
if holder == '' then holder = reader end
-- Readers' entries counted from the read: see the top.
local fromRead = holder ~= reader
local i = 38
local function list()
  local n = tonumber(ARGV[i])
  local from = i + 1
  i = from + n
  return from, i - 1, n
end
local typesFrom, typesTo, ntypes = list()
local ackFrom, ackTo, acks = list()
local leaseIdle = fromRead and 0 or base - visibility
local earliest = nil
local function visibleAt(at) if not earliest or at < earliest then earliest = at end end
local function claim(owner, ids, minIdle, idle, retryCount, justId)
  local c = {'XCLAIM', stream, group, owner, minIdle}
  for _, id in ipairs(ids) do c[#c + 1] = id end
  c[#c + 1] = 'IDLE'
  c[#c + 1] = idle
  if retryCount then
    c[#c + 1] = 'RETRYCOUNT'
    c[#c + 1] = retryCount
  end
  if justId then c[#c + 1] = 'JUSTID' end
  return redis.call(unpack(c))
end

-- 1. ack
local acked = 0
if acks > 0 then
  acked = redis.call('XACK', stream, group, unpack(ARGV, ackFrom, ackTo))
  if purge then redis.call('XDEL', stream, unpack(ARGV, ackFrom, ackTo)) end
end

-- 2. nack
local nacked, failedIds = 0, {}
local groups = tonumber(ARGV[i])
i = i + 1
for _ = 1, groups do
  local visibleIn, retryCount, k = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local c = {'XCLAIM', stream, group, holder, 0}
  for j = i + 3, i + 2 + k do c[#c + 1] = ARGV[j] end
  for _, word in ipairs({'IDLE', base - visibleIn}) do c[#c + 1] = word end
  if retryCount ~= '' then
    c[#c + 1] = 'RETRYCOUNT'
    c[#c + 1] = retryCount
  end
  c[#c + 1] = 'JUSTID'
  local moved = redis.call(unpack(c))
  nacked = nacked + #moved
  if #moved > 0 then visibleAt(now + visibleIn) end
  if retryCount == '' then
    for j = i + 3, i + 2 + k do failedIds[#failedIds + 1] = ARGV[j] end
  end
  i = i + 3 + k
end


-- Lanes (ordered: KEYS[6]). A lane is {since, head, queue}, false when empty; loaded once per key
-- (one HMGET for the keys not loaded yet), written back once at the end (one HSET, one HDEL).
local lanesKey = KEYS[6]
local parked, deadFrom, deadTo = nil, 1, 0
if lanesKey then
  parked = ARGV[i]
  i = i + 1
  deadFrom, deadTo = list()
end
local lanes, dirty, headed, unheaded, released = {}, {}, {}, {}, {}
local function loadLanes(ks)
  local fields, seen = {}, {}
  for _, k in ipairs(ks) do
    if lanes[k] == nil and not seen[k] then
      seen[k] = true
      fields[#fields + 1] = '=' .. k
    end
  end
  if #fields == 0 then return end
  local values = redis.call('HMGET', lanesKey, unpack(fields))
  for j, field in ipairs(fields) do
    local lane, n = false, 0
    if values[j] then
      lane = {queue = {}}
      for word in string.gmatch(values[j], '%S+') do
        n = n + 1
        if n == 1 then lane.since = tonumber(word) elseif n == 2 then lane.head = word
        else lane.queue[#lane.queue + 1] = word end
      end
    end
    lanes[string.sub(field, 2)] = lane
  end
end
local function setHead(k, id)
  local lane = lanes[k]
  if not lane then
    lane = {since = 0, queue = {}}
    lanes[k] = lane
  end
  if lane.head then unheaded[lane.head] = true end
  lane.head, headed[id], unheaded[id], dirty[k] = id, k, nil, true
end
-- The head of lane k is done (acked, dead): the next of its key becomes the head, to be handed out.
local function advance(k)
  local lane = lanes[k]
  unheaded[lane.head], headed[lane.head], lane.head, lane.since, dirty[k] = true, nil, nil, 0, true
  if #lane.queue == 0 then
    lanes[k] = false
  else
    local nextId = table.remove(lane.queue, 1)
    setHead(k, nextId)
    released[#released + 1] = nextId
  end
end
-- Acked heads move their lanes on; failed ones (nacked to a retry) hold them, since now.
local function settleLanes(done, failed)
  local ids = {}
  for _, id in ipairs(done) do ids[#ids + 1] = id end
  for _, id in ipairs(failed) do ids[#ids + 1] = id end
  if #ids == 0 then return end
  local fields = {}
  for j, id in ipairs(ids) do fields[j] = '#' .. id end
  local values = redis.call('HMGET', lanesKey, unpack(fields))
  local ks = {}
  for j = 1, #ids do if values[j] then ks[#ks + 1] = values[j] end end
  loadLanes(ks)
  for j, id in ipairs(ids) do
    local k = values[j]
    local lane = k and lanes[k]
    if lane and lane.head == id then
      if j <= #done then advance(k)
      elseif lane.since == 0 then lane.since, dirty[k] = now, true end
    end
  end
end
local function keyOf(entry) return select(8, fieldsOf(entry)) or '' end
-- Stream ids in order (ms of equal length compare as text).
local function before(a, b)
  local am, as = string.match(a, '^(%d+)%-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)%-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  return tonumber(as) < tonumber(bs)
end
-- Of entries (the reader's now), those whose key's lane they head or may head; the rest parked
-- in their lanes, in id order, with the group's consumer "parked" (never looked at, never counted
-- as in flight), their attempts set to 0.
local function heads(entries)
  local ks = {}
  for j, entry in ipairs(entries) do ks[j] = keyOf(entry) end
  loadLanes(ks)
  local out, held = {}, {}
  for j, entry in ipairs(entries) do
    local k, id = ks[j], entry[1]
    local lane = lanes[k]
    if not lane then
      setHead(k, id)
      out[#out + 1] = entry
    elseif lane.head == id then
      out[#out + 1] = entry
    else
      local q, at = lane.queue, #lane.queue + 1
      while at > 1 and before(id, q[at - 1]) do at = at - 1 end
      table.insert(q, at, id)
      dirty[k] = true
      held[#held + 1] = id
    end
  end
  if #held > 0 then claim(parked, held, 0, 0, 0, true) end
  return out
end

-- 2b. flow
-- flowOwn: this reader's record (nil none; below 0: waiting since -flowOwn); waits: blocked by the
-- parallelism with nothing in flight, so it is written down as waiting.
local flowAt, flowWait, flowNext, flowOthers, flowOwn, waits, since = 0, 0, 0, {}, nil, false, 0
if flowLease > 0 then
  local words = {}
  for w in string.gmatch(redis.call('GET', flowKey) or '', '%S+') do words[#words + 1] = w end
  flowNext = tonumber(words[1] or '0')
  for j = 2, #words - 2, 3 do
    if words[j] == reader then flowOwn = tonumber(words[j + 1]) end
  end
  since = (flowOwn and flowOwn < 0) and -flowOwn or now
  local busy, soonest, older, younger = 0, nil, 0, 0
  for j = 2, #words - 2, 3 do
    local who, n, til = words[j], tonumber(words[j + 1]), tonumber(words[j + 2])
    if who ~= reader and til > now then
      -- A dead run's requests count until their lease ends, and no longer.
      flowOthers[#flowOthers + 1] = who .. ' ' .. n .. ' ' .. words[j + 2]
      if n > 0 then
        busy = busy + n
        if not soonest or til < soonest then soonest = til end
      elseif -n < since or (-n == since and who < reader) then older = older + 1
      else younger = younger + 1 end
    end
  end
  local allowed = count
  if flowParallelism > 0 then
    local free = flowParallelism - busy - ownRequests
    -- Turns: a run that is not waiting leaves a slot free for each run that is, so that one with
    -- a backlog cannot keep every slot it frees; a waiting run takes what the runs waiting longer
    -- leave, one slot while others wait behind it.
    if flowOwn and flowOwn < 0 then
      free = free - older
      if younger > 0 then free = math.min(free, 1) end
    else free = free - older - younger end
    -- A repeat after a lost reply takes again what the lost take held slots for (its record).
    if cursor ~= '' and flowOwn and flowOwn > ownRequests then
      free = math.max(free, flowOwn - ownRequests)
    end
    if free <= 0 then
      allowed = 0
      flowWait = soonest or now
      waits = count > 0 and ownRequests == 0
    else allowed = math.min(allowed, free * batchSize) end
  end
  if flowInterval > 0 then
    -- Slots further out than the horizon could not start within the lease of what is taken now.
    local first = math.max(now, flowNext)
    local slots = math.floor((now + flowHorizon - first) / flowInterval) + 1
    if slots <= 0 then
      allowed = 0
      flowWait = math.max(flowWait, first - flowHorizon)
    else allowed = math.min(allowed, slots * batchSize) end
  end
  if count == 0 or allowed > 0 then flowWait = 0 end
  count = allowed
end

local taken, dead, filtered, largest, read, paceAt, room = {}, {}, 0, 0, 0, 0, -1
local got, bytes, overflow = 0, 0, false
-- Within the byte budget: the first entry whatever its size, then while they fit, in order.
local function fits(size)
  if got > 0 and (overflow or bytes + size > budget) then
    overflow = true
    return false
  end
  return true
end
local function add(entry, attempt)
  local text, id, size, p, s, k = encodeEntry(entry, attempt, ownIds)
  if size > largest then largest = size end
  got = got + 1
  if joined then
    taken[#taken + 1] = text
    return
  end
  taken[#taken + 1] = entry[1]
  taken[#taken + 1] = id
  taken[#taken + 1] = attempt
  taken[#taken + 1] = text
  taken[#taken + 1] = size
  taken[#taken + 1] = p
  taken[#taken + 1] = s
  taken[#taken + 1] = k or ''
end

-- 3. recover
if cursor ~= '' and count > 0 then
  -- In order, a run of equal delivery counts at a time: each kept as the lost take left it.
  local run, runCount = {}, nil
  local function recovered()
    if #run == 0 then return end
    for _, entry in ipairs(claim(reader, run, 0, leaseIdle, runCount, false)) do
      if entry and entry[2] then add(entry, runCount) end
    end
    run = {}
  end
  for _, row in ipairs(redis.call('XPENDING', stream, group, '(' .. cursor, '+', count, reader)) do
    if row[4] ~= runCount then recovered() end
    runCount = row[4]
    run[#run + 1] = row[1]
  end
  recovered()
end


-- New heads (their lane's head was acked or dead): handed out now while the take has room, else
-- visible at once in the holder's hands. A head that is gone (trimmed) moves its lane on again.
local function release()
  while #released > 0 do
    local ids, came = released, {}
    released = {}
    if count > got and not overflow then
      local back = {}
      for _, entry in ipairs(claim(reader, ids, 0, leaseIdle, 1, false)) do
        if entry and entry[2] then
          came[entry[1]] = true
          local _, _, _, size = fieldsOf(entry)
          if fits(size) then
            bytes = bytes + size
            add(entry, 1)
          else
            back[#back + 1] = entry[1]
          end
        end
      end
      if #back > 0 then
        claim(holder, back, 0, base, 0, true)
        visibleAt(now)
      end
    else
      for _, id in ipairs(claim(holder, ids, 0, base, 0, true)) do came[id] = true end
      visibleAt(now)
    end
    for _, id in ipairs(ids) do if not came[id] then advance(headed[id]) end end
  end
end
if lanesKey then
  local done = acks > 0 and {unpack(ARGV, ackFrom, ackTo)} or {}
  -- Dead letters the caller parked just before: done once no longer pending (a refused park
  -- leaves its entry pending, and its lane held).
  for j = deadFrom, deadTo do
    if #redis.call('XPENDING', stream, group, ARGV[j], ARGV[j], 1) == 0 then done[#done + 1] = ARGV[j] end
  end
  settleLanes(done, failedIds)
  release()
end

-- 4. look
local pendingSummary = nil
-- Entries whose visibility ran out at idle: those out of attempts reported dead, the rest
-- claimed (min-idle idle: only if still visible), within the byte budget.
local function expire(rows, idle)
  local live, deliveries = {}, {}
  for _, row in ipairs(rows) do
    if maxAttempts > 0 and row[4] >= maxAttempts then
      dead[#dead + 1] = row[1]
      dead[#dead + 1] = row[4]
    else
      live[#live + 1] = row[1]
      deliveries[row[1]] = row[4]
    end
  end
  if #live > 0 then
    local claimed, came = {}, {}
    for _, entry in ipairs(claim(reader, live, idle, leaseIdle)) do
      if entry and entry[2] then
        claimed[#claimed + 1] = entry
        came[entry[1]] = true
      end
    end
    if lanesKey then
      -- Ordered: a visible entry that is not its key's head waits behind it; a head that is gone
      -- (trimmed while pending: XCLAIM drops it, as it was just seen visible) moves its lane on.
      local gone = {}
      for _, id in ipairs(live) do if not came[id] then gone[#gone + 1] = id end end
      if #gone > 0 then settleLanes(gone, {}) end
      claimed = heads(claimed)
    end
    for _, entry in ipairs(claimed) do
      local _, _, _, size = fieldsOf(entry)
      if fits(size) then
        bytes = bytes + size
        add(entry, deliveries[entry[1]] + 1)
      else
        -- Back as it was: visible now, its attempts as before this claim.
        claim(holder, {entry[1]}, 0, base, deliveries[entry[1]], true)
        visibleAt(now)
      end
    end
  end
end
if look and count > got then
  if fromRead then
    -- Readers that died holding entries (a killed run): theirs count from the read.
    local summary = redis.call('XPENDING', stream, group)
    for _, c in ipairs(summary[4] or {}) do
      if c[1] ~= holder and c[1] ~= parked and count > got and not overflow then
        -- A reader named <name>~<ms> (pull: a visibilityTimeoutMs other than the default) has
        -- its own; the others, this take's.
        local seen = tonumber(string.match(c[1], '~(%d+)$')) or visibility
        local rows = {}
        for _, row in ipairs(redis.call('XPENDING', stream, group, 'IDLE', seen, '-', '+', count - got, c[1])) do
          -- Past half the base: a lease a reader took itself (before pull read this way), left
          -- to the base's look below.
          if row[3] < base / 2 then rows[#rows + 1] = row end
        end
        expire(rows, seen)
      end
    end
    -- Still true when nothing was claimed: the steps below may use it.
    if got == 0 then pendingSummary = summary end
  end
  if count > got and not overflow then
    local q = {'XPENDING', stream, group, 'IDLE', base, '-', '+', count - got}
    -- Ordered: the holder's only (the parked wait for their lanes, whatever their idle time).
    if lanesKey then q[#q + 1] = holder end
    expire(redis.call(unpack(q)), base)
  end
  if lanesKey then release() end
end

local want = count - got
if overflow then want = 0 end

-- 5. window
-- Written only once this script has seen the group (XPENDING answers NOGROUP for a deleted
-- channel or subscription, and the script stops there): a run still sending when its channel or
-- subscription goes, or repeating a take whose reply was lost, never recreates its state hash.
-- The summary is the room's (step 6) and the end's (step 10), so a take that reads or ends pays
-- nothing for it.
local window, cutAt, given, alone, roomSummary = '', 0, cap, 0, nil
local function seeGroup()
  if not pendingSummary then
    pendingSummary = redis.call('XPENDING', stream, group)
    roomSummary = pendingSummary
  end
end
if windowField ~= '' and (succeeded > 0 or congestedAt > 0 or (want > 0 and cap > 0)) then
  local w
  w, cutAt = known, knownCut
  if known == 0 or congestedAt > knownCut then
    local stored = redis.call('HMGET', stateKey, windowField, cutField)
    w, cutAt = math.min(cap, tonumber(stored[1]) or start), tonumber(stored[2]) or 0
    local was, wasCut = w, cutAt
    if congestedAt > cutAt then
      -- The successes it carries first: a run alone keeps its growth until it tells (worker/
      -- window.ts), so the stored window is behind the one its requests met; the cut halves that.
      if cutAt == 0 then w = w + succeeded else w = w + succeeded / w end
      w, cutAt = math.min(cap, w) / 2, now
    elseif cutAt == 0 then
      w = w + succeeded
    else
      w = w + succeeded / w
    end
    -- To a thousandth: its text stays short.
    w = math.floor(math.max(1, math.min(cap, w)) * 1000 + 0.5) / 1000
    if not stored[1] or w ~= was or cutAt ~= wasCut then
      seeGroup()
      redis.call('HSET', stateKey, windowField, tostring(w), cutField, tostring(cutAt))
    end
  elseif succeeded > 0 and known < cap then
    local step = succeeded
    if cutAt > 0 then step = succeeded / known end
    seeGroup()
    w = tonumber(redis.call('HINCRBYFLOAT', stateKey, windowField, step))
  end
  w = math.max(1, math.min(cap, w))
  window = tostring(w)
  cap = math.floor(w)
end

-- 6. room
if want > 0 and (cap > 0 or pendingLimit > 0) then
  local summary = roomSummary or redis.call('XPENDING', stream, group)
  pendingSummary = summary
  if pendingLimit > 0 then want = math.min(want, pendingLimit - summary[1]) end
  if cap > 0 then
    local others = 0
    for _, c in ipairs(summary[4] or {}) do
      if c[1] ~= reader and c[1] ~= holder and c[1] ~= parked then
        others = others + math.ceil(tonumber(c[2]) / batchSize)
      end
    end
    -- Alone under a window: the reader may take ahead of it, up to the cap it was given; it sends
    -- no more than the window at once (its caller's part), and every reader that comes counts
    -- what it holds as in flight.
    if window ~= '' and others == 0 then cap, alone = given, 1 end
    local busy = ownRequests + math.ceil(got / batchSize) + others
    room = math.max(0, cap - busy)
    want = math.min(want, room * batchSize)
  end
  if want <= 0 then read = 4 end
end

-- 7. read
if want > 0 and read == 0 then
  -- In slices sized by the largest entry seen so far (sizeHint before any), so that what is read
  -- stays near the byte budget however large the entries are; the next slice only when the last
  -- came back full.
  local entries, sizes, drained, estimate, inBytes = {}, {}, false, sizeHint, 0
  while #entries < want and not drained do
    local n = want - #entries
    if estimate > 0 then
      if #entries > 0 and inBytes >= budget then break end
      n = math.min(n, math.max(1, math.floor((budget - inBytes) / estimate)))
    end
    local reply = redis.pcall('XREADGROUP', 'GROUP', group, reader, 'COUNT', n, 'STREAMS', stream, '>')
    if type(reply) == 'table' and reply.err then
      if #entries == 0 then read = reply.err end
      break
    end
    local slice = reply and reply[1][2] or {}
    for _, entry in ipairs(slice) do
      local size = sizeOf(entry)
      inBytes = inBytes + size
      if size > largest then largest = size end
      entries[#entries + 1] = entry
      sizes[#entries] = size
    end
    estimate = math.max(1, largest)
    drained = #slice < n
  end
  if read == 0 then
    local patterns = {}
    for j = typesFrom, typesTo do
      -- A glob as an anchored Lua pattern: magic characters escaped, each * as .*
      local p = string.gsub(ARGV[j], '[%^%$%(%)%%%.%[%]%+%-%?]', '%%%0')
      patterns[#patterns + 1] = '^' .. string.gsub(p, '%*', '.*') .. '$'
    end
    local function wanted(entry)
      if ntypes == 0 then return true end
      local t = fieldsOf(entry)
      if not t then return false end
      for _, p in ipairs(patterns) do if string.find(t, p) then return true end end
      return false
    end
    local kept, skipped, over = {}, {}, {}
    for j, entry in ipairs(entries) do
      local size = sizes[j]
      if not wanted(entry) then
        skipped[#skipped + 1] = entry[1]
      elseif (#kept == 0 and got == 0) or (not overflow and bytes + size <= budget) then
        bytes = bytes + size
        kept[#kept + 1] = entry
      else
        overflow = true
        over[#over + 1] = entry[1]
      end
    end
    if lanesKey and #kept > 0 then kept = heads(kept) end
    if #kept > 0 then
      local ids = {}
      for _, entry in ipairs(kept) do
        ids[#ids + 1] = entry[1]
        add(entry, 1)
      end
      if not fromRead then claim(reader, ids, 0, leaseIdle, nil, true) end
    end
    if #skipped > 0 then
      redis.call('XACK', stream, group, unpack(skipped))
      filtered = #skipped
    end
    if #over > 0 then
      claim(holder, over, 0, base, 0, true)
      visibleAt(now)
    end
    if #entries == 0 then read = 1 elseif drained then read = 2 else read = 3 end
  end
end
if cover and got > 0 then visibleAt(now + visibility) end

-- An end takes effect only when nothing was taken, nor the flow blocked it: otherwise the reader
-- goes on.
local finishing = ending and got == 0 and flowWait == 0
-- 8. schedule
-- The wake member to remove: removed at the end, with the retry member when that goes too (one
-- ZREM for both).
local wakeGoes = false
if retry ~= '' and earliest and not finishing then redis.call('ZADD', due, 'LT', earliest, retry) end
if wake ~= '' and read == 1 then
  -- Due, or held for a reader at work (at most busyWake ahead); a backoff's is further out.
  local score = redis.call('ZSCORE', due, wake)
  if score and tonumber(score) <= now + busyWake then
    -- Busy while a reader holds entries: its requests in flight end in a take that reads. Not
    -- for a reader that holds none, this one included: its run may end without reading again.
    local busy = false
    if busyWake > 0 then
      pendingSummary = pendingSummary or redis.call('XPENDING', stream, group)
      for _, c in ipairs(pendingSummary[4] or {}) do
        if c[1] ~= holder and c[1] ~= parked and tonumber(c[2]) > 0 then busy = true end
      end
    end
    if busy then redis.call('ZADD', due, 'XX', now + busyWake, wake)
    else wakeGoes = true end
  end
end

-- 9. pace
if paceInterval > 0 and got > 0 then
  local batches = math.ceil(got / batchSize)
  paceAt = math.max(now, tonumber(redis.call('GET', pace) or '0'))
  local next = paceAt + batches * paceInterval
  redis.call('SET', pace, next, 'PX', math.ceil(next - now + 60000))
end

-- 9b. flow
if flowLease > 0 then
  local batches = math.ceil(got / batchSize)
  if flowInterval > 0 and batches > 0 then
    flowAt = math.ceil(math.max(now, flowNext))
    flowNext = flowAt + batches * flowInterval
  end
  local held = 0
  if flowParallelism > 0 then held = ownRequests + batches end
  waits = waits and flowWait > 0
  local was = math.max(0, flowOwn or 0)
  -- A waiting run's record (-since) lasts a second: it tries again within FLOW_POLL_MS.
  if waits or batches > 0 or held ~= was or (flowOwn and flowOwn < 0) then
    local leaseEnd = now + (waits and 1000 or flowLease)
    local n = waits and string.format('%d', -since) or held
    local last = flowNext
    if held > 0 or waits then
      flowOthers[#flowOthers + 1] = reader .. ' ' .. n .. ' ' .. string.format('%d', leaseEnd)
      last = math.max(last, leaseEnd)
    end
    for _, h in ipairs(flowOthers) do last = math.max(last, tonumber(string.match(h, '(%d+)$'))) end
    if #flowOthers == 0 and flowNext <= now then redis.call('DEL', flowKey)
    else
      -- Past the last lease and slot, with a second for the clocks of the Workers that wrote them.
      table.insert(flowOthers, 1, string.format('%d', math.ceil(flowNext)))
      local state = table.concat(flowOthers, ' ')
      redis.call('SET', flowKey, state, 'PX', math.ceil(last - now) + 1000)
    end
  end
end

-- 10. end
local nextAt = 0
if finishing then
  -- Nothing was taken since the room's summary (if any): it still holds.
  local summary = pendingSummary or redis.call('XPENDING', stream, group)
  if retry ~= '' then
    if summary[1] == 0 then
      if wakeGoes then redis.call('ZREM', due, retry, wake) else redis.call('ZREM', due, retry) end
      wakeGoes = false
    else
      local soonest = nil
      for _, row in ipairs(redis.call('XPENDING', stream, group, '-', '+', 1000)) do
        if row[2] ~= parked then
          local left = ((fromRead and row[2] ~= holder) and visibility or base) - row[3]
          if not soonest or left < soonest then soonest = left end
        end
      end
      if soonest then
        nextAt = now + math.max(0, soonest)
        redis.call('ZADD', due, nextAt, retry)
      else
        redis.call('ZREM', due, retry)
      end
    end
  end
  local holds = 0
  for _, c in ipairs(summary[4] or {}) do if c[1] == reader then holds = tonumber(c[2]) end end
  if holds == 0 then redis.call('XGROUP', 'DELCONSUMER', stream, group, reader) end
end
if wakeGoes then redis.call('ZREM', due, wake) end

-- Ordered: the lanes this take changed, written back.
if lanesKey then
  local sets, dels = {}, {}
  for k in pairs(dirty) do
    local lane = lanes[k]
    if lane then
      local value = string.format('%d', lane.since) .. ' ' .. lane.head
      if #lane.queue > 0 then value = value .. ' ' .. table.concat(lane.queue, ' ') end
      sets[#sets + 1] = '=' .. k
      sets[#sets + 1] = value
    else
      dels[#dels + 1] = '=' .. k
    end
  end
  for id, k in pairs(headed) do
    sets[#sets + 1] = '#' .. id
    sets[#sets + 1] = k
  end
  for id in pairs(unheaded) do dels[#dels + 1] = '#' .. id end
  if #sets > 0 then redis.call('HSET', lanesKey, unpack(sets)) end
  if #dels > 0 then redis.call('HDEL', lanesKey, unpack(dels)) end
end

-- Joined: one bulk string instead of 8 per entry, which the Worker answers a pull with as it is.
if joined then taken = {table.concat(taken, ','), got} end
return {acked, nacked, taken, dead, filtered, largest, read, paceAt, room, nextAt, flowAt, flowWait,
  window, cutAt, alone}
`;
