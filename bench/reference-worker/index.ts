// The pull scenario's reference Worker: the least a Worker can do to serve a pull and an ack,
// run by the same `wrangler dev` (workerd) as streamhook's Worker, on the same bridge, with
// @upstash/redis configured like streamhook's own client (shared/redis.ts). One request is one
// Redis call, so a read and an ack make the same hops as a pull and an ack through streamhook:
// client -> workerd -> bridge -> Redis and back.
//
//   POST /read {stream, group, consumer, count}  XREADGROUP ... COUNT count STREAMS stream >
//                                                (never blocks) -> {"entries": [[id, [field, value, ...]], ...]}
//   POST /ack  {stream, group, ids}              XACK stream group ...ids -> {"acked": n}
//   GET  /health                                 200, for the bench's start-up wait
//
// No validation and no auth: it runs only on 127.0.0.1 for the benchmark, and a request it does
// not expect is a bug in the benchmark, which a 500 shows.

import { Redis } from "@upstash/redis/cloudflare";

interface Env {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

type Entries = [string, [string, string[]][]][] | null;

const client = (env: Env) =>
  new Redis({
    url: env.UPSTASH_REDIS_REST_URL,
    token: env.UPSTASH_REDIS_REST_TOKEN,
    automaticDeserialization: false,
    responseEncoding: false,
    enableTelemetry: false,
  });

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/health") return Response.json({ ok: true });
    if (request.method === "POST" && path === "/read") {
      const { stream, group, consumer, count } = (await request.json()) as {
        stream: string;
        group: string;
        consumer: string;
        count: number;
      };
      const reply = (await client(env).xreadgroup(group, consumer, stream, ">", {
        count,
      })) as unknown as Entries;
      return Response.json({ entries: reply?.[0]?.[1] ?? [] });
    }
    if (request.method === "POST" && path === "/ack") {
      const { stream, group, ids } = (await request.json()) as {
        stream: string;
        group: string;
        ids: string[];
      };
      return Response.json({ acked: await client(env).xack(stream, group, ids) });
    }
    return Response.json({ error: { code: "not_found", message: path } }, { status: 404 });
  },
};
