// metrics: what GET /v1/metrics needs of a page of channels, in one round trip.
//
// Why a script: XINFO STREAM answers with the stream's first and last entries, data included (up
// to MAX_MESSAGE_BYTES each), when only its entries-added counter is wanted; here the counter
// alone leaves Redis. The rest rides along so a page of channels is one request. `no-writes`: it
// runs on a full database too (Redis refuses other flagged scripts then).
//
// KEYS: per channel, 3 keys: stream {p}:ch:<ch>, subs {p}:subs:<ch>, metrics {p}:metrics:<ch>.
// No ARGV.
//
// Returns per channel {entries-added (-1 when the stream has none: no stream, or a Redis before
// 7.0), XINFO GROUPS reply, HKEYS of subs, HGETALL of metrics}. Cost: 1 EVALSHA + per channel
// 1 XINFO STREAM + 1 XINFO GROUPS + 1 HKEYS + 1 HGETALL (3 without a stream).
export const METRICS_LUA = `#!lua flags=no-writes,allow-key-locking
local out = {}
for i = 1, #KEYS, 3 do
  local stream, subs, metrics = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local added, groups = -1, {}
  local info = redis.pcall('XINFO', 'STREAM', stream)
  if not info.err then
    for j = 1, #info, 2 do
      if info[j] == 'entries-added' then added = info[j + 1] end
    end
    groups = redis.call('XINFO', 'GROUPS', stream)
  end
  out[#out + 1] = {added, groups, redis.call('HKEYS', subs), redis.call('HGETALL', metrics)}
end
return out
`;
