import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  expect((await stack.post("/v1/channels/c/messages", { data: 1 })).status).toBe(201);
});
afterAll(() => stack?.stop());

describe("when Redis is unreachable", () => {
  it("answers 503 redis_unavailable to /health, publishes and reads", async () => {
    await stack.redisServer.stop();

    const health = await fetch(`${stack.url}/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { error: { code: string } }).error.code).toBe(
      "redis_unavailable",
    );
    for (const res of [
      await stack.post("/v1/channels/c/messages", { data: 2 }),
      await stack.api("/v1/channels"),
      await stack.api("/v1/channels/c/messages"),
    ]) {
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "redis_unavailable",
      );
    }
  });

  it("answers 503 when the REST endpoint itself is down", async () => {
    await stack.bridge.close();
    const res = await stack.post("/v1/channels/c/messages", { data: 3 });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "redis_unavailable",
    );
  });
});
