// memory-usage: what Redis says each key holds, in bytes, in one round trip.
//
// Why a script: @upstash/redis has no MEMORY command, so a pipeline cannot carry it, and one
// request per channel would make GET /v1/channels O(channels) round trips. `no-writes` lets it run
// on a database that is full (Redis refuses other flagged scripts then).
//
// What a figure is: Redis' estimate for the key (MEMORY USAGE with its default SAMPLES 5: a
// stream's size is extrapolated from 5 of its nodes, consumer groups included), so it costs the
// same whatever the stream's length. Upstash answers with its own estimate the same way.
//
// KEYS: the keys to size. No ARGV.
// Returns the sizes in KEYS' order, 0 for a key that does not exist.
// Cost: 1 EVALSHA + 1 MEMORY USAGE per key.
export const MEMORY_USAGE_LUA = `#!lua flags=no-writes,allow-key-locking
local sizes = {}
for i, key in ipairs(KEYS) do
  sizes[i] = redis.call('MEMORY', 'USAGE', key) or 0
end
return sizes
`;
