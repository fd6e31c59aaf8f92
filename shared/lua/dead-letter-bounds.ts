// dead-letter bounds: the byte bound of a subscription's dead letters, and what the park
// (dead-letter.ts) and the sweep (sweep.ts) share to keep all three bounds (age, count, bytes),
// so a dead letter leaves by the same rules whichever of them runs. Every bound drops the oldest
// first, and the callers count what went (XTRIM's replies) in the subscription's state.
//
// Why bytes. A subscription's dead letters are one stream, one Redis record, and Upstash refuses
// a write that would take a record past its max record size (100 MB on the Free and
// Pay-as-you-go plans): parking would then fail, and the letters stay pending, retried for ever.
// Ten thousand 256 KiB messages are 2.5 GB, so the count bound alone does not keep them under it.
//
// A dead letter's size is the bytes of its fields' values: the message's data and type, its
// trace context, its original id, the attempts and the last error (not Redis' own overhead, nor
// `c`). Each carries `c`: the bytes of the subscription's dead letters up to and including it
// (a running offset, continued from the newest letter's). So what the stream holds is the newest
// letter's `c` less where the oldest starts (its `c` less its size): two entries read, whatever
// the number of letters. The letters to drop for the bound are the oldest, up to the first that
// starts at or past (newest's `c` - maxBytes); they are found reading from the oldest, as many at
// a time as the average size says should go (at most READ_BYTES' worth), so a drop reads about
// what it drops.
//
// Dead letters parked before the byte bound have no `c`: they are older than any that has one,
// are not counted, and go first when the counted ones are over the bound. A redrive of chosen
// letters deletes them from the middle of the stream: their bytes stay counted until the letters
// before them leave, so until then the bound errs towards dropping, by at most what was redriven.
//
// It defines, for the scripts that include it:
//   lettersEnd(dlq)                           the newest letter's `c` (0: none)       1 XREVRANGE
//   letterBytes(fields)                       a letter's size (its flat field list)
//   dropBytes(dlq, ending, maxBytes, oldest)  drops the oldest until what is left, ending at
//       `ending`, holds at most maxBytes; answers how many went and the oldest left ({id, fields}
//       or nil). `oldest` is the oldest letter when the caller has it. Cost: 1 XRANGE (none with
//       `oldest`); dropping, + 1 XLEN + 1 XRANGE per READ_BYTES read + 1 XTRIM
//   idMs(id)                                  the milliseconds of a stream id
export const DEAD_LETTER_BOUNDS_LUA = `
local READ_BYTES = 4194304

local function letterBytes(fields)
  local n = 0
  for j = 1, #fields, 2 do
    if fields[j] ~= 'c' then n = n + #fields[j + 1] end
  end
  return n
end

-- Where a letter starts (its c less its size); nil for one parked before the byte bound.
local function letterStart(fields)
  for j = 1, #fields, 2 do
    if fields[j] == 'c' then return tonumber(fields[j + 1]) - letterBytes(fields) end
  end
  return nil
end

local function lettersEnd(dlq)
  local newest = redis.call('XREVRANGE', dlq, '+', '-', 'COUNT', 1)[1]
  if newest then
    local fields = newest[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'c' then return tonumber(fields[j + 1]) end
    end
  end
  return 0
end

local function idMs(id)
  return tonumber(string.match(id, '^(%d+)'))
end

local function dropBytes(dlq, ending, maxBytes, oldest)
  oldest = oldest or redis.call('XRANGE', dlq, '-', '+', 'COUNT', 1)[1]
  if not oldest then return 0, nil end
  local threshold = ending - maxBytes
  local start = letterStart(oldest[2])
  if threshold <= 0 or (start and start >= threshold) then return 0, oldest end
  -- Read as many as should go, by the average size, and one more: the first kept.
  local held = ending - (start or 0)
  local average = math.max(1, held / redis.call('XLEN', dlq))
  local count = math.ceil((held - maxBytes) / average) + 1
  count = math.max(2, math.min(count, math.floor(READ_BYTES / average)))
  local from, keep = '-', nil
  while not keep do
    local entries = redis.call('XRANGE', dlq, from, '+', 'COUNT', count)
    for _, entry in ipairs(entries) do
      local s = letterStart(entry[2])
      if s and s >= threshold then
        keep = entry
        break
      end
    end
    if #entries < count then break end
    from = '(' .. entries[#entries][1]
  end
  if keep then return redis.call('XTRIM', dlq, 'MINID', keep[1]), keep end
  return redis.call('XTRIM', dlq, 'MAXLEN', 0), nil
end
`;
