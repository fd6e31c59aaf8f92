// API keys: make one (its secret shown once), list them, delete one. Admin only, with a key
// whose channels are ["*"] (or API_TOKEN): a key limited to some channels could otherwise make
// itself one that is not.

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { createApiKey, deleteApiKey, listApiKeys } from "../../shared/api-keys.ts";
import { NotFound } from "../../shared/errors.ts";
import { needs } from "../auth.ts";
import { ApiKeySchema, ApiKeyWithSecret, CreateKeyBody, KeyParams } from "../key-schemas.ts";
import { bodyErrors, commonErrors, errorResponse, json, storageError } from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/keys",
    operationId: "keys.create",
    summary: "Make an API key; its secret is shown only in this answer",
    ...needs("admin", { everyChannel: true }),
    request: {
      body: { content: { "application/json": { schema: CreateKeyBody } }, required: true },
    },
    responses: {
      201: json(ApiKeyWithSecret, "Made; the secret is shown only now"),
      ...commonErrors,
      415: bodyErrors[415],
      ...storageError,
    },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/keys",
    operationId: "keys.list",
    summary: "Every API key, oldest first, without secrets",
    ...needs("admin", { everyChannel: true }),
    responses: {
      200: json(z.object({ keys: z.array(ApiKeySchema) }), "The keys"),
      ...commonErrors,
    },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/keys/{id}",
    operationId: "keys.delete",
    summary: "Delete an API key: its next request is refused (401)",
    ...needs("admin", { everyChannel: true }),
    request: { params: KeyParams },
    responses: {
      204: { description: "Deleted" },
      ...commonErrors,
      404: errorResponse("key_not_found: no key with this id"),
    },
  }),
};

export function keyRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.create, async (c) => {
      const body = c.req.valid("json");
      const { key, secret } = await createApiKey(c.var.db, body, Date.now());
      return c.json({ ...key, secret }, 201);
    })
    .openapi(routes.list, async (c) => c.json({ keys: await listApiKeys(c.var.db) }, 200))
    .openapi(routes.remove, async (c) => {
      const { id } = c.req.valid("param");
      if (!(await deleteApiKey(c.var.db, id))) {
        throw new NotFound(`no API key with id "${id}"`, "key_not_found");
      }
      return c.body(null, 204);
    });
}
