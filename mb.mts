import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { TAKE_LUA } from "./shared/lua/take.ts";

const variant = process.argv[2] ?? "as-is";
let lua = TAKE_LUA.replace(/^#!.*\n/, "");
if (variant === "no-lease") lua = lua.replace("claim(reader, ids, 0, leaseIdle, nil, true)", "");
if (variant === "no-encode")
  lua = lua.replace(
    "local text, id, size = encodeEntry(entry, attempt, ownIds)",
    "local text, id, size = '', entry[1], 1",
  );
const port = 7300 + Math.floor(Math.random() * 500);
const server = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no"], {
  stdio: "ignore",
});
await new Promise((r) => setTimeout(r, 300));
const r = new Redis({ port });
const sha = (await r.script("LOAD", lua)) as string;
const N = 20000;
for (let i = 0; i < N; i += 500) {
  const p = r.pipeline();
  for (let j = 0; j < 500; j++)
    p.xadd("s", "*", "d", JSON.stringify({ n: i + j, pad: "x".repeat(40) }));
  await p.exec();
}
await r.xgroup("CREATE", "s", "g", "0");
await r.config("RESETSTAT");
const t = process.hrtime.bigint();
let total = 0;
for (;;) {
  const now = Date.now();
  const args = [
    "g",
    "r1",
    "",
    "0",
    String(now),
    "86400000",
    "61000",
    "500",
    "5000000",
    "0",
    "0",
    "",
    "25",
    "100",
    "0",
    "0",
    "retry:x",
    "1",
    "wake:x",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
  ];
  const reply = (await r.evalsha(sha, 3, "s", "due", "pace", ...args)) as unknown[];
  const taken = reply[2] as unknown[];
  total += taken.length / 5;
  const ids = taken.filter((_, i) => i % 5 === 0) as string[];
  if (ids.length === 0) break;
  await r.xack("s", "g", ...ids);
}
const ms = Number(process.hrtime.bigint() - t) / 1e6;
const info = await r.info("commandstats");
console.log(
  variant,
  total,
  ms.toFixed(0),
  "ms",
  [...info.matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)]
    .map((m) => `${m[1]}:${m[2]}:${m[3]}`)
    .join(" "),
);
r.disconnect();
server.kill();
