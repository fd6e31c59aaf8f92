import { describe, expect, it } from "vitest";
import { type Env, loadConfig } from "../../shared/config.ts";

const valid: Env = {
  UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "token",
  API_TOKEN: "api-token",
};

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    expect(loadConfig({ ...valid })).toEqual({
      redisUrl: "https://example.upstash.io",
      redisToken: "token",
      apiToken: "api-token",
      keyPrefix: "sh:v1",
      maxMessageBytes: 262_144,
      maxBatchBytes: 1_048_576,
      retryBaseMs: 30_000,
      retryMaxMs: 21_600_000,
      passBudgetMs: 20_000,
      passMaxSubrequests: 5_000,
      passConcurrency: 6,
      passMaxSubscriptions: 200,
      kickOnPublish: true,
      retention: {
        maxAgeMs: 7 * 24 * 3_600_000,
        maxMessages: null,
        maxUndeliveredAgeMs: 14 * 24 * 3_600_000,
        trimMinIntervalMs: 1000,
      },
      deadLetterMaxAgeMs: 14 * 86_400_000,
      deadLetterMaxMessages: 10_000,
      deadLetterMaxBytes: 64 * 1024 * 1024,
      disableAfterMs: 5 * 86_400_000,
      pullLookEveryMs: 1000,
      eventsChannel: "streamhook.events",
      webhookTargets: { allowHttp: false, allowPrivate: false },
    });
  });

  it.each([
    ["1", true],
    ["true", true],
    ["TRUE", true],
    ["0", false],
    ["false", false],
    ["", false],
  ])("reads the webhook target switches: %j is %s", (value, on) => {
    const config = loadConfig({
      ...valid,
      ALLOW_HTTP_WEBHOOKS: value,
      ALLOW_PRIVATE_WEBHOOKS: value,
    });
    expect(config.webhookTargets).toEqual({ allowHttp: on, allowPrivate: on });
  });

  it("reads retention limits as whole numbers, or none", () => {
    const config = loadConfig({
      ...valid,
      RETENTION_MAX_AGE_MS: "none",
      RETENTION_MAX_MESSAGES: "5000",
    });
    expect(config.retention.maxAgeMs).toBeNull();
    expect(config.retention.maxMessages).toBe(5000);
    expect(() => loadConfig({ ...valid, RETENTION_MAX_MESSAGES: "0" })).toThrow(
      /RETENTION_MAX_MESSAGES/,
    );
    expect(() => loadConfig({ ...valid, RETENTION_MAX_AGE_MS: "a week" })).toThrow(
      /RETENTION_MAX_AGE_MS must be a whole number or "none"/,
    );
  });

  it("reads numbers and booleans from their string bindings", () => {
    const config = loadConfig({ ...valid, MAX_MESSAGE_BYTES: "1000", KICK_ON_PUBLISH: "false" });
    expect(config.maxMessageBytes).toBe(1000);
    expect(config.kickOnPublish).toBe(false);
  });

  it("treats an empty value as unset", () => {
    expect(loadConfig({ ...valid, RETRY_BASE_MS: "" }).retryBaseMs).toBe(30_000);
  });

  it.each([
    [{ API_TOKEN: "" }, "API_TOKEN is required"],
    [{ UPSTASH_REDIS_REST_URL: "not a url" }, "UPSTASH_REDIS_REST_URL"],
    [{ UPSTASH_REDIS_REST_TOKEN: undefined }, "UPSTASH_REDIS_REST_TOKEN is required"],
    [{ MAX_MESSAGE_BYTES: "lots" }, "MAX_MESSAGE_BYTES must be a whole number"],
    [{ PASS_CONCURRENCY: "0" }, "PASS_CONCURRENCY"],
    [{ KICK_ON_PUBLISH: "yes" }, "KICK_ON_PUBLISH"],
    [{ RETRY_BASE_MS: "60000", RETRY_MAX_MS: "1000" }, "RETRY_MAX_MS must be >= RETRY_BASE_MS"],
    [{ RETRY_MAX_MS: String(12 * 3_600_000 + 1) }, "RETRY_MAX_MS"],
    [{ API_TOKEN: "has spaces" }, "API_TOKEN"],
    [{ DEAD_LETTER_MAX_AGE_MS: "59999" }, "DEAD_LETTER_MAX_AGE_MS"],
    [{ DEAD_LETTER_MAX_MESSAGES: "0" }, "DEAD_LETTER_MAX_MESSAGES"],
    [{ DEAD_LETTER_MAX_BYTES: "1023" }, "DEAD_LETTER_MAX_BYTES"],
    [{ ALLOW_HTTP_WEBHOOKS: "yes" }, "ALLOW_HTTP_WEBHOOKS must be 1, true, 0 or false"],
    [{ ALLOW_PRIVATE_WEBHOOKS: "on" }, "ALLOW_PRIVATE_WEBHOOKS must be 1, true, 0 or false"],
  ])("rejects %o naming the variable", (override, expected) => {
    expect(() => loadConfig({ ...valid, ...override } as Env)).toThrow(expected);
  });
});
