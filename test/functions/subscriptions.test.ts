import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { stateField, trimField } from "../../shared/keys.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, noDeliverer, settled, timedPass, until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  getSubscription,
  groupOf,
  pendingCount,
  publish,
  runPass,
  subscribe,
} from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "subs",
  {
    vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "100", RETRY_MAX_MS: "500" },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const path = (name = "sub", rest = "") => `/v1/channels/${channel}/subscriptions/${name}${rest}`;
const patch = (body: unknown, name = "sub") =>
  stack.api(path(name), {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const view = (name = "sub") => getSubscription(stack, channel, name);
/** The millisecond a stream id was published in. */
const msOf = (id: string) => Number(id.split("-")[0]);

/** A start time after now: nothing can have been published there yet. */
const IN_AN_HOUR = new Date(Date.now() + 3_600_000).toISOString();

/** A stream id Redis cannot hold: its ms part is 2^64, one past the largest. */
const ID_PAST_64_BITS = "18446744073709551616-0";

/** Expects the API's 400 for a field that fails validation, naming `field`. */
async function expectInvalid(res: Response, field: string) {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("invalid_request");
  expect(error.message).toContain(field);
}

describe("creating a subscription", () => {
  it("answers 201 with its settings, defaults and a whsec_ signing secret", async () => {
    const sub = await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect(sub).toMatchObject({
      name: "sub",
      channel,
      url: receiver.url,
      batchSize: 10,
      maxAttempts: 15,
      types: null,
      timeoutMs: 10_000,
      maxRequestsPerSecond: null,
      maxConcurrency: 25,
      ordered: false,
      heldKeys: [],
      flowKey: null,
      flowRate: null,
      flowParallelism: null,
      paused: false,
      lag: 0,
      pending: 0,
      deadLetters: 0,
      deadLettersExpired: 0,
      deadLettersDropped: 0,
      consecutiveFailures: 0,
      lastError: null,
      lastSuccessAt: null,
    });
    expect(sub.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
  });

  it("signs with a secret of the caller's own when given one", async () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const sub = await subscribe(stack, channel, { name: "sub", url: receiver.url, secret });
    expect(sub.secret).toBe(secret);
    receiver.setSecret(secret);
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    expect(receiver.requests[0]!.verified).toBe(true);
  });

  it("creates the channel's consumer group, named after its id, and registers the channel", async () => {
    const sub = await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect(sub.id).toMatch(/^[a-z2-7]{16}$/);
    const groups = (await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([`sub~${sub.id}`]);
    const listed = (await (await stack.api("/v1/channels")).json()) as {
      channels: { name: string; subscriptions: number }[];
    };
    expect(listed.channels.find((c) => c.name === channel)?.subscriptions).toBe(1);
  });

  it("409s when the name is taken on that channel, and changes nothing", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const before = await stack.redis.hgetall(stack.keys.subscriptions(channel));
    const res = await stack.post(`/v1/channels/${channel}/subscriptions`, {
      name: "sub",
      url: "https://other.example/hook",
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "subscription_exists",
    );
    expect(await stack.redis.hgetall(stack.keys.subscriptions(channel))).toEqual(before);
  });

  it.each([
    [{ url: "ftp://example.com" }, "body.url"],
    [{ url: "not a url" }, "body.url"],
    [{ batchSize: 0 }, "body.batchSize"],
    [{ batchSize: 1001 }, "body.batchSize"],
    [{ maxAttempts: 101 }, "body.maxAttempts"],
    [{ timeoutMs: 60_000 }, "body.timeoutMs"],
    [{ types: ["has space"] }, "body.types[0]"],
    [{ types: [] }, "body.types"],
    [{ from: "yesterday" }, "body.from"],
    [{ from: ID_PAST_64_BITS }, "body.from"],
    [{ from: "0-18446744073709551616" }, "body.from"],
    [{ from: "not a date" }, "body.from"],
    [{ from: "2026-02-30T00:00:00Z" }, "body.from"],
    [{ from: "2025-02-29T12:00:00Z" }, "body.from"],
    [{ from: "2026-01-01T24:00:00Z" }, "body.from"],
    [{ from: IN_AN_HOUR }, "body.from"],
    [{ name: "-bad" }, "body.name"],
    [{ secret: "whsec_tooshort" }, "body.secret"],
    [{ secret: "not-a-whsec" }, "body.secret"],
    [{ colour: "blue" }, "body"],
  ])("400s on %o naming the field, and writes nothing", async (override, field) => {
    const res = await stack.post(`/v1/channels/${channel}/subscriptions`, {
      name: "sub",
      url: receiver.url,
      ...override,
    });
    await expectInvalid(res, field);
    expect(await stack.redis.exists(stack.keys.subscriptions(channel))).toBe(0);
    expect(await stack.redis.exists(stack.keys.channel(channel))).toBe(0);
  });
});

describe("listing and reading subscriptions", () => {
  it("lists the channel's subscribers with lag and pending, never their secrets", async () => {
    await subscribe(stack, channel, { name: "b", url: receiver.url });
    await subscribe(stack, channel, { name: "a", url: receiver.url, types: ["x.*"] });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }]);
    const res = await stack.api(`/v1/channels/${channel}/subscriptions`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("whsec_");
    const { subscriptions } = JSON.parse(text) as { subscriptions: Record<string, unknown>[] };
    expect(subscriptions.map((s) => [s.name, s.lag, s.pending])).toEqual([
      ["a", 3, 0],
      ["b", 3, 0],
    ]);
    expect(Object.keys(subscriptions[0]!).sort()).toEqual(
      [
        "id",
        "name",
        "channel",
        "url",
        "batchSize",
        "maxAttempts",
        "mode",
        "types",
        "timeoutMs",
        "maxRequestsPerSecond",
        "maxConcurrency",
        "currentConcurrency",
        "ordered",
        "heldKeys",
        "flowKey",
        "flowRate",
        "flowParallelism",
        "paused",
        "status",
        "nextAttemptAt",
        "failingSince",
        "disabledAt",
        "disabledReason",
        "createdAt",
        "lag",
        "pending",
        "lastDeliveredId",
        "deadLetters",
        "deadLettersExpired",
        "deadLettersDropped",
        "consecutiveFailures",
        "lastError",
        "lastErrorAt",
        "lastSuccessAt",
        "expired",
        "lastExpiredAt",
      ].sort(),
    );
  });

  it("shows delivery progress: lag 0, lastDeliveredId and lastSuccessAt after a pass", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    const pass = await timedPass(stack);
    const v = await view();
    expect(v).toMatchObject({ lag: 0, pending: 0, lastDeliveredId: ids[1] });
    // The time of the delivery, made during that pass.
    expect(Date.parse(v.lastSuccessAt as string)).toBeGreaterThanOrEqual(pass.startedAt);
    expect(Date.parse(v.lastSuccessAt as string)).toBeLessThanOrEqual(pass.endedAt);
  });

  it("404s for an unknown subscription or channel", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const res = await stack.api(path("nobody"));
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "subscription_not_found",
    );
    expect((await stack.api("/v1/channels/no-such-channel/subscriptions")).status).toBe(404);
  });
});

describe("changing a subscription", () => {
  it("changes only the given fields", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const res = await patch({ batchSize: 50, types: ["a.*"] });
    expect(res.status).toBe(200);
    expect(await view()).toMatchObject({ batchSize: 50, types: ["a.*"], url: receiver.url });
    await patch({ types: null });
    expect((await view()).types).toBeNull();
  });

  it("400s on an empty change and 404s on an unknown subscription", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect((await patch({})).status).toBe(400);
    expect((await patch({ batchSize: 5 }, "nobody")).status).toBe(404);
  });

  it("delivers to the new URL after a URL change", async () => {
    const other = await startReceiver();
    try {
      await subscribe(stack, channel, { name: "sub", url: receiver.url });
      await patch({ url: other.url });
      await publish(stack, channel, [{ data: 1 }]);
      await runPass(stack);
      await other.waitFor((r) => r.messages().length === 1);
      expect(receiver.requests).toHaveLength(0);
    } finally {
      await other.close();
    }
  });
});

describe("deleting a subscription", () => {
  it("removes its group, settings, state, schedule and dead letters (204), then 404s", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    expect(await stack.redis.xlen(stack.keys.deadLetters(channel, "sub"))).toBe(1);

    const res = await stack.api(path(), { method: "DELETE" });
    expect(res.status).toBe(204);
    expect(await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))).toEqual([]);
    expect(await stack.redis.exists(stack.keys.deadLetters(channel, "sub"))).toBe(0);
    // Only the channel's own trim clock is left (lua/trim.ts).
    expect(await stack.redis.hkeys(stack.keys.subscriptions(channel))).toEqual([trimField]);
    expect(await stack.redis.hlen(stack.keys.state(channel))).toBe(0);
    expect(await stack.redis.zrange(stack.keys.due(), "0", "-1")).not.toContainEqual(
      expect.stringContaining(`${channel}/sub`),
    );
    expect((await stack.api(path(), { method: "DELETE" })).status).toBe(404);
  });

  it("keeps the channel's messages", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: 1 }]);
    await stack.api(path(), { method: "DELETE" });
    expect(await stack.redis.xlen(stack.keys.channel(channel))).toBe(1);
  });
});

describe("rotating the secret", () => {
  it("returns a new secret and signs with both while the old one is in its grace period", async () => {
    const { secret: old } = await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const res = await stack.post(path("sub", "/rotate-secret"), undefined);
    expect(res.status).toBe(200);
    const { secret: fresh } = (await res.json()) as { secret: string };
    expect(fresh).not.toBe(old);
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const request = receiver.requests[0]!;
    expect(request.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    for (const secret of [old, fresh]) {
      expect(() => new Webhook(secret).verify(request.raw, request.headers)).not.toThrow();
    }
    const stored = JSON.parse(
      (await stack.redis.hget(stack.keys.subscriptions(channel), "sub"))!,
    ) as { secrets: { secret: string; expiresAt: number | null }[] };
    const grace = stored.secrets.find((s) => s.secret === old)!.expiresAt!;
    expect(grace - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    expect(grace - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
  });
});

describe("replay", () => {
  it("delivers history again from a stream id (inclusive)", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const ids = await publish(
      stack,
      channel,
      [1, 2, 3, 4].map((data) => ({ data })),
    );
    await runPass(stack);
    const res = await stack.post(path("sub", "/replay"), { from: ids[2] });
    expect(res.status).toBe(200);
    await runPass(stack); // replay also starts a delivery: either gets there, once
    await receiver.waitFor((r) => r.messages().length >= 6);
    await until("the replay is delivered", () => settled(stack, channel, "sub"));
    expect(receiver.messages().map((m) => m.data)).toEqual([1, 2, 3, 4, 3, 4]);
  });

  it("replays from a time starting with that millisecond's first message, and none before it", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const [old] = await publish(stack, channel, [{ data: "old" }]);
    await until("the clock has left the old message's millisecond", async () => {
      return Date.now() > msOf(old!);
    });
    const [next] = await publish(stack, channel, [{ data: "new" }]);
    expect(msOf(next!)).toBeGreaterThan(msOf(old!));
    await runPass(stack);
    const replayFrom = async (ms: number, total: number) => {
      const res = await stack.post(path("sub", "/replay"), { from: new Date(ms).toISOString() });
      expect(res.status).toBe(200);
      await runPass(stack); // replay also starts a delivery: either gets there, once
      await receiver.waitFor((r) => r.messages().length >= total);
      await until("the replay is delivered", () => settled(stack, channel, "sub"));
    };
    // One millisecond after the old message: it is not replayed.
    await replayFrom(msOf(old!) + 1, 3);
    // The new message's own millisecond: it is.
    await replayFrom(msOf(next!), 4);
    expect(receiver.messages().map((m) => m.data)).toEqual(["old", "new", "new", "new"]);
  });

  it("400s on a start point it cannot read, 404s on an unknown subscription", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect((await stack.post(path("sub", "/replay"), { from: "latest" })).status).toBe(400);
    expect((await stack.post(path("nobody", "/replay"), { from: "earliest" })).status).toBe(404);
  });

  it("400s naming body.from on a stream id past Redis' 64 bits, and leaves the cursor where it was", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await runPass(stack);
    const groups = () => stack.redis.xinfo("GROUPS", stack.keys.channel(channel));
    const before = await groups();
    await expectInvalid(
      await stack.post(path("sub", "/replay"), { from: ID_PAST_64_BITS }),
      "body.from",
    );
    expect(await groups()).toEqual(before);
  });

  it.each([
    ["not a date", "must be"],
    ["2026-02-30T00:00:00Z", "must be"],
    ["2026-04-31T08:00:00+02:00", "must be"],
    [IN_AN_HOUR, "is in the future"],
  ])("400s naming body.from on %s, and leaves the cursor where it was", async (from, why) => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const groups = () => stack.redis.xinfo("GROUPS", stack.keys.channel(channel));
    const before = await groups();
    const res = await stack.post(path("sub", "/replay"), { from });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.message).toContain(`body.from: ${why}`);
    expect(await groups()).toEqual(before);
  });

  it("replays from a time given with an offset or without one", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    for (const from of [
      "2026-01-01T00:00:00.5+02:00",
      "2026-01-01T00:00",
      "2024-02-29T00:00:00Z",
    ]) {
      expect((await stack.post(path("sub", "/replay"), { from })).status, from).toBe(200);
    }
  });
});

describe("dead letters", () => {
  async function deadLetter(count: number) {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: count }, (_, i) => ({ data: { i } })),
    );
    await runPass(stack);
    receiver.respond({ status: 204 });
    return ids;
  }
  const list = async () =>
    (
      (await (await stack.api(path("sub", "/dead-letters"))).json()) as {
        messages: { id: string }[];
      }
    ).messages.map((m) => m.id);

  it("lists them oldest first, paged with limit and after", async () => {
    const ids = await deadLetter(3);
    const res = await stack.api(path("sub", "/dead-letters?limit=2"));
    const page = (await res.json()) as { messages: { id: string }[]; next: string };
    expect(page.messages.map((m) => m.id)).toEqual(ids.slice(0, 2));
    const rest = (await (
      await stack.api(path("sub", `/dead-letters?after=${page.next}`))
    ).json()) as { messages: { id: string }[]; next: null };
    expect(rest.messages.map((m) => m.id)).toEqual(ids.slice(2));
    expect(rest.next).toBeNull();
  });

  it("redrives to this subscriber only, with their original ids: another one, due for a new message, gets just that", async () => {
    const ids = await deadLetter(3);
    const other = await startReceiver();
    try {
      await subscribe(stack, channel, { name: "other", url: other.url, from: "earliest" });
      await other.waitFor((r) => r.messages().length === 3);
      await until("the other subscriber has caught up", () => settled(stack, channel, "other"));
      const res = await stack.post(path("sub", "/dead-letters/redrive"), undefined);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ redriven: 3, missing: [] });
      // Both subscribers are due now: the other reads whatever is on the channel after its 3.
      const [fresh] = await publish(stack, channel, [{ data: "fresh" }]);
      await deliverUntil(
        stack,
        channel,
        async () =>
          receiver.acceptedIds().length >= 4 &&
          other.messages().length >= 4 &&
          (await settled(stack, channel, "sub")) &&
          (await settled(stack, channel, "other")),
        "both subscribers delivered, nobody delivering",
      );
      expect(receiver.acceptedIds()).toEqual([...ids, fresh]);
      expect(other.messages().map((m) => m.id)).toEqual([...ids, fresh]);
      expect(await list()).toEqual([]);
      // Delivered redriven messages leave the redrive stream.
      expect(await stack.redis.xlen(stack.keys.redrive(channel, "sub"))).toBe(0);
    } finally {
      await other.close();
    }
  });

  it("redrives only the given ids and reports the ones it did not find", async () => {
    const ids = await deadLetter(3);
    const res = await stack.post(path("sub", "/dead-letters/redrive"), {
      ids: [ids[1], "1-1"],
    });
    expect(await res.json()).toEqual({ redriven: 1, missing: ["1-1"] });
    await deliverUntil(
      stack,
      channel,
      async () =>
        receiver.acceptedIds().length >= 1 &&
        (await stack.redis.xlen(stack.keys.redrive(channel, "sub"))) === 0 &&
        (await noDeliverer(stack, channel, "sub")),
      "the redriven message delivered, nobody delivering",
    );
    expect(receiver.acceptedIds()).toEqual([ids[1]]);
    expect(await list()).toEqual([ids[0], ids[2]]);
  });

  it("redrives nothing when none of the given ids is a dead letter (one redriven already, say)", async () => {
    const ids = await deadLetter(2);
    const res = await stack.post(path("sub", "/dead-letters/redrive"), { ids: ["1-1"] });
    expect(await res.json()).toEqual({ redriven: 0, missing: ["1-1"] });
    expect(await list()).toEqual(ids);
    expect(await stack.redis.xlen(stack.keys.redrive(channel, "sub"))).toBe(0);
  });

  it("dead-letters a redriven message again when it keeps failing", async () => {
    const [id] = await deadLetter(1);
    receiver.respond({ status: 500 });
    await stack.post(path("sub", "/dead-letters/redrive"), undefined);
    await deliverUntil(
      stack,
      channel,
      async () => JSON.stringify(await list()) === JSON.stringify([id]),
      "dead-lettered again",
    );
    expect(receiver.requests).toHaveLength(2);
    expect(await stack.redis.xlen(stack.keys.redrive(channel, "sub"))).toBe(0);
  });

  it("leaves the channel's lastAckedId alone when it delivers redriven messages, so a lost group comes back where the channel was acked", async () => {
    const [dead] = await deadLetter(1);
    expect((await patch({ maxAttempts: 5 })).status).toBe(200); // what fails now stays pending
    const [acked] = await publish(stack, channel, [{ data: "acked" }]);
    await runPass(stack);
    const lastAcked = () =>
      stack.redis.hget(stack.keys.state(channel), stateField("sub", "lastAckedId"));
    expect(await lastAcked()).toBe(acked);
    // A message the endpoint fails for now: the channel unit keeps it pending, unacked.
    const [waiting] = await publish(stack, channel, [{ data: "waiting" }]);
    let failing = true;
    receiver.respond((req) =>
      failing && req.body?.messages.some((m) => m.id === waiting)
        ? { status: 500 }
        : { status: 204 },
    );
    // The redriven copy gets an id on the redrive stream newer than `waiting`.
    const res = await stack.post(path("sub", "/dead-letters/redrive"), undefined);
    expect(await res.json()).toEqual({ redriven: 1, missing: [] });
    await deliverUntil(
      stack,
      channel,
      async () =>
        receiver.answeredIds().includes(dead!) &&
        receiver.requests.some((r) => r.status === 500) &&
        (await noDeliverer(stack, channel, "sub")),
      "the redriven message delivered, `waiting` failed, the visit over",
    );
    expect(await lastAcked()).toBe(acked);

    // Redis loses the group: it is recreated after `acked`, so `waiting` is read again.
    const group = await groupOf(stack, channel, "sub");
    await stack.redis.xgroup("DESTROY", stack.keys.channel(channel), group);
    failing = false;
    await deliverUntil(
      stack,
      channel,
      async () =>
        receiver.answeredIds().includes(waiting!) &&
        (await pendingCount(stack, channel, "sub")) === 0,
      "`waiting` delivered after the group came back",
    );
  });

  it("400s naming query.after on a cursor past Redis' 64 bits", async () => {
    await deadLetter(1);
    await expectInvalid(
      await stack.api(path("sub", `/dead-letters?after=${ID_PAST_64_BITS}`)),
      "query.after",
    );
  });

  it("400s naming the id past Redis' 64 bits in a redrive, and redrives none of the others", async () => {
    const ids = await deadLetter(2);
    const res = await stack.post(path("sub", "/dead-letters/redrive"), {
      ids: [ids[0], ID_PAST_64_BITS],
    });
    await expectInvalid(res, "body.ids[1]");
    expect(await list()).toEqual(ids);
  });

  it.each([
    ["an empty body with content-type application/json", ""],
    ["an empty object", "{}"],
  ])("redrives all of them on %s", async (_what, body) => {
    await deadLetter(2);
    const res = await stack.api(path("sub", "/dead-letters/redrive"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ redriven: 2, missing: [] });
  });

  it("purges them", async () => {
    await deadLetter(2);
    const res = await stack.api(path("sub", "/dead-letters"), { method: "DELETE" });
    expect(await res.json()).toEqual({ purged: 2 });
    expect(await list()).toEqual([]);
  });

  it("404s for an unknown subscription", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect((await stack.api(path("nobody", "/dead-letters"))).status).toBe(404);
    expect((await stack.post(path("nobody", "/dead-letters/redrive"), undefined)).status).toBe(404);
  });
});
