// The baseline delivery: the minimal pass a team would write by hand, run here in the same
// process as the receivers, over the same bridge, to the same kind of endpoint. Per subscription:
// XREADGROUP -> one signed POST -> XACK, until the group has read everything; `concurrency`
// subscriptions at a time (the Worker's PASS_CONCURRENCY, for a like-for-like comparison).

import type { Redis as UpstashRedis } from "@upstash/redis";
import { Webhook } from "standardwebhooks";

export interface ReferenceGroup {
  group: string;
  url: string;
  secret: string;
}

type Entries = [string, [string, string[]][]][] | null;

export async function referencePass(
  rest: UpstashRedis,
  stream: string,
  channel: string,
  groups: ReferenceGroup[],
  batchSize: number,
  concurrency: number,
): Promise<void> {
  const queue = [...groups];
  const worker = async () => {
    for (let g = queue.shift(); g; g = queue.shift()) {
      const webhook = new Webhook(g.secret);
      for (;;) {
        const reply = (await rest.xreadgroup(g.group, "c", stream, ">", {
          count: batchSize,
        })) as unknown as Entries;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) break;
        const messages = entries.map(([id, fields]) => {
          const data = fields[fields.indexOf("d") + 1] ?? "null";
          return `{"id":"${id}","data":${data},"attempt":1}`;
        });
        const body = `{"channel":"${channel}","subscription":"${g.group}","messages":[${messages.join(",")}]}`;
        const id = `msg_${entries[0]![0]}`;
        const now = new Date();
        const res = await fetch(g.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "webhook-id": id,
            "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
            "webhook-signature": webhook.sign(id, now, body),
          },
          body,
        });
        await res.arrayBuffer();
        if (res.ok)
          await rest.xack(
            stream,
            g.group,
            entries.map(([entryId]) => entryId),
          );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
