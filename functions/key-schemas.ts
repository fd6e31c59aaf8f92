// Request and response schemas of the API key routes (functions/routes/keys.ts).

import { z } from "@hono/zod-openapi";
import { SCOPES } from "../shared/api-keys.ts";

const ChannelPattern = z
  .string()
  .regex(/^[A-Za-z0-9._*-]{1,128}$/, "must be 1-128 of A-Za-z0-9._- with * as a wildcard")
  .openapi({ example: "orders.*" });

const Scopes = z
  .array(z.enum(SCOPES))
  .min(1)
  .refine((scopes) => new Set(scopes).size === scopes.length, "must not repeat a scope")
  .openapi({
    uniqueItems: true, // the refine's rule, in the document
    description:
      "publish: publish messages; read: channels, history, subscriptions (never secrets); " +
      "subscribe: create and change subscriptions, dead letters, redrive, purge, replay, " +
      "rotate-secret; admin: everything, key management included",
    example: ["publish", "read"],
  });

const RateLimitSchema = z
  .strictObject({
    requests: z.number().int().min(1).max(1_000_000),
    windowMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 3_600_000),
  })
  .openapi("RateLimit", {
    description:
      "At most `requests` per fixed window of `windowMs` (1 s to 24 h); over it, 429 rate_limited",
  });

// A union, not .nullable(): the generator drops the null of a named schema made nullable, and the
// document then refused the null the API takes (and answers).
const NoRateLimit = z.union([RateLimitSchema, z.null()]).openapi({
  description: "null: no rate limit",
});

export const CreateKeyBody = z
  .strictObject({
    name: z.string().min(1).max(128).openapi({ example: "billing-publisher" }),
    scopes: Scopes,
    channels: z.array(ChannelPattern).min(1).max(100).default(["*"]).openapi({
      description:
        'Channel patterns the key may use, `*` matching anything (default ["*"]: every channel)',
    }),
    rateLimit: NoRateLimit.default(null),
  })
  .openapi("NewApiKey");

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: "key_mfrggzdfmztwq2lk" }),
    name: z.string(),
    scopes: z.array(z.enum(SCOPES)),
    channels: z.array(z.string()),
    rateLimit: NoRateLimit,
    createdAt: z.iso.datetime(),
  })
  .openapi("ApiKey");

export const ApiKeyWithSecret = ApiKeySchema.extend({
  secret: z.string().openapi({
    description: "The bearer token: shown only in this answer, stored only as its SHA-256",
    example: "sk_3q2-7wEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  }),
}).openapi("ApiKeyWithSecret");

export const KeyParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" }, example: "key_mfrggzdfmztwq2lk" }),
});
