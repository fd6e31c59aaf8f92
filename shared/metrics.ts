// GET /v1/metrics: the delivery counters ({p}:metrics:<ch>, shared/counters.ts), and the gauges
// and the publish count read from the streams at scrape time (XINFO GROUPS and STREAM), so
// publishing costs no command for them and the worker keeps only what it alone can see.
//
// Cost of a scrape: 1 SMEMBERS (the registry, as GET /v1/channels), then per page of
// METRICS_PAGE channels one script call (lua/metrics.ts): 1 EVALSHA + 4 commands per channel.
// So 1 + ceil(N / 100) + 4N commands for N channels (a key limited to some channels pays for
// those only): about 400 per scrape with 100 channels, $0.0008 at Upstash's $0.20 per 100,000;
// pick the scrape interval with that in mind. Pages go one after the other, so one request to
// Redis carries at most 100 channels' figures, however many channels there are.

import { type ChannelFigures, exposition } from "./exposition.ts";
import { isSubscriptionField, pullField } from "./keys.ts";
import { METRICS_LUA } from "./lua/metrics.ts";
import { asArray, asFields, asNumber, asString, type Db, runScript } from "./redis.ts";
import { parseGroups } from "./status.ts";

/** Channels per script call. */
export const METRICS_PAGE = 100;

/** The exposition of every channel `visible` lets through, by name. */
export async function scrape(db: Db, visible: (channel: string) => boolean): Promise<string> {
  const names = asArray(await db.redis.smembers(db.keys.channels()))
    .map(asString)
    .filter(visible)
    .sort();
  const channels: ChannelFigures[] = [];
  for (let i = 0; i < names.length; i += METRICS_PAGE) {
    channels.push(...(await readPage(db, names.slice(i, i + METRICS_PAGE))));
  }
  return exposition(channels);
}

async function readPage(db: Db, names: string[]): Promise<ChannelFigures[]> {
  const { keys } = db;
  const pageKeys = names.flatMap((n) => [keys.channel(n), keys.subscriptions(n), keys.metrics(n)]);
  const reply = asArray(await runScript(db.redis, METRICS_LUA, pageKeys, []));
  return names.map((name, i) => {
    const [added, groups, fields, metrics] = asArray(reply[i]);
    const published = asNumber(added ?? -1);
    return {
      name,
      published: published < 0 ? null : published,
      subscriptions: figures(asArray(fields).map(asString), parseGroups(groups), asFields(metrics)),
    };
  });
}

// A subscription's group is named `<name>~<id>` (`<name>` before ids: shared/subscription.ts).
function figures(
  fields: string[],
  groups: ReturnType<typeof parseGroups>,
  metrics: Record<string, string>,
): ChannelFigures["subscriptions"] {
  const byName = new Map([...groups].map(([group, info]) => [group.split("~")[0]!, info]));
  const marked = new Set(fields);
  const counters = new Map<string, Record<string, number>>();
  for (const [field, value] of Object.entries(metrics)) {
    const at = field.indexOf(":");
    const sub = field.slice(0, at);
    const own = counters.get(sub) ?? {};
    own[field.slice(at + 1)] = Number(value);
    counters.set(sub, own);
  }
  return fields
    .filter(isSubscriptionField)
    .sort()
    .map((name) => {
      const group = byName.get(name);
      return {
        name,
        push: !marked.has(pullField(name)),
        lag: group === undefined ? undefined : group.lag,
        pending: group?.pending,
        counters: counters.get(name) ?? {},
      };
    });
}
