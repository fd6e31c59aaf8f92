// Lua scripts under Upstash's limits, and Upstash's script flag that Redis 7 does not know.
//
// The bridge cannot see the commands a script runs, so it rewrites the source before Redis sees
// it: `redis.call` and `redis.pcall` become local functions, defined in a one-line prelude, that
// apply bridge-limits.ts' record-size and pending rules first (same probes, same texts). A refused
// write raises the error reply (redis.call) or returns it (redis.pcall); writes the script made
// before stay, as on Upstash: a script is not a transaction. The prelude shares the first line
// (after a `#!lua` shebang, the second), so error line numbers still match the source.
//
// Upstash takes a global lock for a script unless its shebang says `flags=allow-key-locking`;
// Redis 7 rejects that flag, so it is removed (other flags and the shebang stay).
//
// A rewritten script has another SHA1 than the one the client computed, so the bridge keeps a map
// from the original's SHA1 to the rewritten one:
//   EVAL, EVAL_RO       rewrite, remember, run
//   EVALSHA(_RO)        translate; an unknown SHA goes to Redis as sent: its own NOSCRIPT, and
//                       @upstash/redis' createScript falls back to EVAL (the same after a Redis
//                       restart: the translated SHA gets NOSCRIPT too)
//   SCRIPT LOAD         load the rewritten source, answer the original's SHA1
//   SCRIPT EXISTS       translate each SHA1
//   SCRIPT FLUSH        forget the map
//
// What the rewrite does not see: a command name built at run time reaches the checks all the same
// (they run on the arguments), but `redis.call` spelled inside a string literal is rewritten too,
// and errors from a Redis command inside a script name the prelude's line (1, or 2 after a
// shebang) instead of the caller's.

import { createHash } from "node:crypto";
import { CAPACITY_EXCEEDED, type Limits, RECORD_TOO_BIG, RECORD_WRITES } from "./bridge-limits.ts";
import type { Arg, Command } from "./bridge-request.ts";

/** A command as Redis should get it, and how its reply goes back to the client. */
export type Translated = { command: Command; reply?: (result: unknown) => unknown };

export interface Scripts {
  translate(command: Command): Translated;
}

/** A script translator for one bridge: its limits are written into every rewritten source. */
export function scripts(limits: Limits): Scripts {
  const prelude = luaPrelude(limits);
  const rewrittenSha = new Map<string, string>();
  const load = (source: Arg) => {
    const original = Buffer.from(source);
    const rewritten = rewriteScript(original, prelude);
    const sha = sha1(original);
    rewrittenSha.set(sha, sha1(rewritten));
    return { sha, rewritten };
  };
  const translateSha = (sha: Arg) => rewrittenSha.get(sha.toString().toLowerCase()) ?? sha;

  return {
    translate(command) {
      const { name, args } = command;
      const [first, ...rest] = args;
      if (first === undefined) return { command };
      switch (name.toLowerCase()) {
        case "eval":
        case "eval_ro":
          return { command: { name, args: [load(first).rewritten, ...rest] } };
        case "evalsha":
        case "evalsha_ro":
          return { command: { name, args: [translateSha(first), ...rest] } };
        case "script":
          return translateScriptCommand(command, first.toString().toLowerCase(), rest);
        default:
          return { command };
      }
    },
  };

  function translateScriptCommand(command: Command, sub: string, rest: Arg[]): Translated {
    if (sub === "load" && rest.length === 1) {
      const { sha, rewritten } = load(rest[0]!);
      const reply = (result: unknown) => (Buffer.isBuffer(result) ? Buffer.from(sha) : result);
      return { command: { name: command.name, args: [command.args[0]!, rewritten] }, reply };
    }
    if (sub === "exists") {
      return {
        command: { name: command.name, args: [command.args[0]!, ...rest.map(translateSha)] },
      };
    }
    if (sub === "flush") rewrittenSha.clear();
    return { command };
  }
}

/** The source Redis runs: shebang without allow-key-locking, prelude, calls through the checks. */
export function rewriteScript(source: Buffer, prelude: string): Buffer {
  // latin1 maps each byte to one char and back, so the rest of the source stays byte for byte.
  let text = source.toString("latin1");
  let shebang = "";
  if (text.startsWith("#!")) {
    const end = text.indexOf("\n");
    shebang = `${withoutKeyLocking(end === -1 ? text : text.slice(0, end))}\n`;
    text = end === -1 ? "" : text.slice(end + 1);
  }
  const checked = text.replace(/\bredis\s*\.\s*(p?call)\b/g, (_, fn: string) =>
    fn === "call" ? "__bridge_call" : "__bridge_pcall",
  );
  return Buffer.from(shebang + prelude + checked, "latin1");
}

/** `#!lua flags=no-writes,allow-key-locking` -> `#!lua flags=no-writes` (`flags=` alone is valid). */
function withoutKeyLocking(shebang: string): string {
  return shebang.replace(/(\sflags=)(\S*)/, (_, key: string, list: string) => {
    const kept = list.split(",").filter((flag) => flag !== "allow-key-locking");
    return key + kept.join(",");
  });
}

/**
 * One line of Lua defining __bridge_call and __bridge_pcall. A refusal is raised as a table with
 * `err` whose fields cannot be set: Redis 7.0's error handler would otherwise add `source` and
 * `line`, and the reply would end in " script: <sha>, on @user_script:1." instead of being
 * Upstash's exact text. MEMORY USAGE and XINFO CONSUMERS are read-only, so allowed in any script,
 * EVAL_RO and `flags=no-writes` included.
 */
export function luaPrelude(limits: Limits): string {
  const writes = Object.entries(RECORD_WRITES)
    .map(([name, layout]) => `${name}='${layout}'`)
    .join(",");
  const lua = `
    local __bridge = {call = redis.call, pcall = redis.pcall, writes = {${writes}}}
    function __bridge.grows(key, adds)
      local used = __bridge.pcall('MEMORY', 'USAGE', key)
      if type(used) ~= 'number' then used = 0 end
      return used + adds > ${limits.maxRecordBytes}
    end
    function __bridge.record(a, layout)
      if layout == 'pairs' then
        for i = 2, #a - 1, 2 do
          if __bridge.grows(a[i], #tostring(a[i + 1])) then return '${RECORD_TOO_BIG}' end
        end
        return nil
      end
      if a[2] == nil then return nil end
      local adds = 0
      for i = 3, #a do adds = adds + #tostring(a[i]) end
      if __bridge.grows(a[2], adds) then return '${RECORD_TOO_BIG}' end
    end
    function __bridge.pel(key, group, consumer)
      local consumers = __bridge.pcall('XINFO', 'CONSUMERS', key, group)
      if type(consumers) ~= 'table' or consumers.err then return nil end
      for _, fields in ipairs(consumers) do
        local info = {}
        for i = 1, #fields - 1, 2 do info[fields[i]] = fields[i + 1] end
        if info.name == tostring(consumer) then return info.pending end
      end
      return 0
    end
    function __bridge.pending(a)
      if a[2] == nil or string.lower(tostring(a[2])) ~= 'group' or a[4] == nil then return nil end
      local group, consumer, count, i = a[3], a[4], nil, 5
      while a[i] ~= nil and string.lower(tostring(a[i])) ~= 'streams' do
        local option = string.lower(tostring(a[i]))
        if option == 'count' then count = tonumber(a[i + 1]); i = i + 2
        elseif option == 'block' then i = i + 2
        elseif option == 'noack' then i = i + 1
        else return nil end
      end
      local n = (#a - i) / 2
      if a[i] == nil or n < 1 or n % 1 ~= 0 then return nil end
      local requested = 1
      if count and count >= 1 and count % 1 == 0 then requested = count end
      for s = i + 1, i + n do
        local pel = tostring(a[s + n]) == '>' and __bridge.pel(a[s], group, consumer)
        if pel and pel + requested > ${limits.maxPendingPerConsumer} then
          return string.format('ERR XReadGroup is cancelled. Pending Entries List limit per '
            .. 'consumer is about to be reached. Limit: %d, Current PEL size: %d, Requested Read: '
            .. '%d, Key: %s, Group: %s, Consumer: %s.', ${limits.maxPendingPerConsumer}, pel,
            requested, tostring(a[s]), tostring(group), tostring(consumer))
        end
      end
    end
    function __bridge.refusal(...)
      local a = {...}
      local name = string.lower(tostring(a[1]))
      local layout = __bridge.writes[name]
      if layout then return __bridge.record(a, layout) end
      if name == 'xreadgroup' then return __bridge.pending(a) end
    end
    local function __bridge_call(...)
      local refusal = __bridge.refusal(...)
      if refusal then error(setmetatable({err = refusal}, {__newindex = function() end})) end
      return __bridge.call(...)
    end
    local function __bridge_pcall(...)
      local refusal = __bridge.refusal(...)
      if refusal then return {err = refusal} end
      local reply = __bridge.pcall(...)
      if type(reply) == 'table' and type(reply.err) == 'string'
        and string.find(reply.err, 'OOM command not allowed', 1, true) then
        return {err = '${CAPACITY_EXCEEDED}'}
      end
      return reply
    end;
  `;
  // No comments above: joined into one line, a `--` would swallow the rest.
  return `${lua.trim().replace(/\s*\n\s*/g, " ")} `;
}

function sha1(source: Buffer): string {
  return createHash("sha1").update(source).digest("hex");
}
