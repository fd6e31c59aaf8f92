// Test shorthands for API keys, over real HTTP to the Worker.

import { expect } from "vitest";
import type { Stack } from "./stack.ts";

export interface CreatedKey {
  id: string;
  secret: string;
  [field: string]: unknown;
}

/** Makes a key with API_TOKEN (201 expected) and returns it with its secret. */
export async function createKey(stack: Stack, body: Record<string, unknown>): Promise<CreatedKey> {
  const res = await stack.post("/v1/keys", body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as CreatedKey;
}

/** stack.api and stack.post, bearing `secret` instead of API_TOKEN. */
export function as(stack: Stack, secret: string) {
  const authorization = `Bearer ${secret}`;
  return {
    api: (path: string, init: RequestInit = {}) =>
      stack.api(path, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization },
      }),
    post: (path: string, body: unknown, headers: Record<string, string> = {}) =>
      stack.post(path, body, { ...headers, authorization }),
    send: (method: string, path: string, body?: unknown) =>
      stack.api(path, {
        method,
        headers: {
          authorization,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
  };
}

/** The error of a JSON error answer, after checking its status. */
export async function errorOf(res: Response, status: number) {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return (JSON.parse(text) as { error: { code: string; message: string } }).error;
}
