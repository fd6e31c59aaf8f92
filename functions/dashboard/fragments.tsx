// Each dashboard page's content, as an HTML fragment for the signed-in key (routes.tsx mounts
// them under /dashboard/fragments/ behind authenticate, rateLimit and allow("read")). Each reads
// what the JSON API's GET routes read, with the same functions, so the page shows what the API
// would answer; buttons and forms appear only for scopes that may use them.

import type { Context } from "hono";
import { canSee, hasScope } from "../../shared/api-keys.ts";
import { listDeadLetters } from "../../shared/dead-letters.ts";
import { InvalidInput, NotFound } from "../../shared/errors.ts";
import { listSchedules } from "../../shared/schedules.ts";
import { totals } from "../../shared/storage.ts";
import { channelInfo, channelRetentions, idTime, listChannels } from "../../shared/streams.ts";
import { loadChannelSubscriptions, mustLoadSubscription } from "../../shared/subscriptions.ts";
import { CHANNEL_NAME } from "../schemas.ts";
import type { AppEnv } from "../types.ts";
import { describe, scheduleView } from "../views.ts";
import { lastHour, recentAttempts } from "./attempts.ts";
import { ChannelPage } from "./channel.tsx";
import { ChannelsPage } from "./channels.tsx";
import type { DeadLetterPanel } from "./dead-letters.tsx";
import { SchedulesPage } from "./schedules.tsx";
import { SubscriptionPage } from "./subscription.tsx";

// The newest records of the log the subscription page lists (the chart reads its hour: attempts.ts).
const ATTEMPTS_SHOWN = 100;
const DEAD_LETTERS_SHOWN = 100;
const SCHEDULES_SHOWN = 200;

/** 400 for a path segment the API would refuse (the API's own name rule). */
function mustBeName(value: string, what: string): string {
  if (!CHANNEL_NAME.test(value)) {
    throw new InvalidInput(`${what} must be 1-128 of A-Za-z0-9._- starting with a letter or digit`);
  }
  return value;
}

/** GET /v1/channels, with each channel's last publish and retention. */
export async function channelsFragment(c: Context<AppEnv>) {
  const { db, config, principal } = c.var;
  const summaries = await listChannels(db, (name) => canSee(principal, name));
  const names = summaries.map((s) => s.name);
  const retentions = await channelRetentions(db, names, config.retention);
  const channels = summaries.map((summary, i) => ({
    ...summary,
    ...retentions[i]!,
    lastPublishedAt: summary.lastId ? new Date(idTime(summary.lastId)).toISOString() : null,
  }));
  return c.html(<ChannelsPage channels={channels} totals={totals(summaries)} now={Date.now()} />);
}

/**
 * GET /v1/channels/{channel} and its subscriptions, the requests chart (each push subscription's
 * attempt log over the last hour), the publish form.
 */
export async function channelFragment(c: Context<AppEnv>) {
  const channel = mustBeName(c.req.param("channel") ?? "", "channel");
  const { db, config, principal } = c.var;
  const now = Date.now();
  const info = await channelInfo(db, channel, config.retention);
  if (!info) throw new NotFound(`no channel named "${channel}"`, "channel_not_found");
  const subscriptions = await describe(db, channel, await loadChannelSubscriptions(db, channel));
  const hours = await Promise.all(
    subscriptions
      .filter((sub) => sub.mode === "push")
      .map((sub) => lastHour(db, channel, sub.name, now)),
  );
  return c.html(
    <ChannelPage
      info={info}
      subscriptions={subscriptions}
      hours={hours}
      canPublish={hasScope(principal, "publish")}
      now={now}
    />,
  );
}

/** GET .../subscriptions/{name}, its attempt log, and (with subscribe) its dead letters. */
export async function subscriptionFragment(c: Context<AppEnv>) {
  const channel = mustBeName(c.req.param("channel") ?? "", "channel");
  const name = mustBeName(c.req.param("name") ?? "", "name");
  const { db, config, principal } = c.var;
  const stored = await mustLoadSubscription(db, channel, name);
  const canManage = hasScope(principal, "subscribe");
  const page = { limit: DEAD_LETTERS_SHOWN };
  const [[sub], deadLetters, attempts] = await Promise.all([
    describe(db, channel, [stored]),
    canManage ? listDeadLetters(db, channel, name, page, config.maxMessageBytes) : null,
    // A pull subscription makes no requests: no log.
    stored.mode === "push" ? recentAttempts(db, channel, name, ATTEMPTS_SHOWN) : null,
  ]);
  const panel: DeadLetterPanel = deadLetters
    ? { kind: "page", messages: deadLetters.messages, more: deadLetters.next !== null }
    : { kind: "hidden" };
  return c.html(
    <SubscriptionPage
      sub={sub!}
      attempts={attempts}
      deadLetters={panel}
      canManage={canManage}
      now={Date.now()}
    />,
  );
}

/** GET /v1/schedules (its first page of SCHEDULES_SHOWN), with pause, resume and delete. */
export async function schedulesFragment(c: Context<AppEnv>) {
  const { db, config, principal } = c.var;
  const visible = (channel: string) => canSee(principal, channel);
  const page = await listSchedules(db, { limit: SCHEDULES_SHOWN }, visible, config.maxMessageBytes);
  return c.html(
    <SchedulesPage
      schedules={page.schedules.map(scheduleView)}
      more={page.next !== null}
      canPublish={hasScope(principal, "publish")}
      now={Date.now()}
    />,
  );
}
