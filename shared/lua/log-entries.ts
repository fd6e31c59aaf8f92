// log entries: the Lua function that appends attempt-log entries packed in ARGV, as
// shared/attempt-log.ts logEntryArgs packs them (e, then e entries: f, then f field/value
// pairs). Not a script of its own: lua/report.ts and lua/ledger.ts embed it after their first
// line, so that a run's report and the isolate's ledger append records the one same way.
//
// appendLog(log, logLength, at, write): the entries from ARGV[at] on, each one XADD NOMKSTREAM
// MAXLEN ~ logLength (a deleted subscription's log is never made again) when `write`, else only
// stepped over; returns the ARGV index after them. Cost: 1 XADD per entry written.
export const LOG_ENTRIES_LUA = `
local function appendLog(log, logLength, at, write)
  local entries = tonumber(ARGV[at])
  at = at + 1
  for _ = 1, entries do
    local f = tonumber(ARGV[at])
    if write then
      redis.call('XADD', log, 'NOMKSTREAM', 'MAXLEN', '~', logLength, '*', unpack(ARGV, at + 1, at + 2 * f))
    end
    at = at + 1 + 2 * f
  end
  return at
end
`;
