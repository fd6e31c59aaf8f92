// Every route refuses a body over 1 MiB with a 413, whether it reads a body or not: one limit,
// applied app-wide in app.ts, so no route can forget it. And every error is answered after the
// body is read: a client still sending when the server answers and closes sees "connection
// reset" (workerd's proxy, a 500), not the error.

import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { PayloadTooLarge } from "../shared/errors.ts";

export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Hono's bodyLimit: a Content-Length over the limit is refused before anything is read; a
 * chunked body is counted as it is read, and buffered (at most the limit) for the route.
 */
export function limitBody(maxBytes = MAX_BODY_BYTES): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: async (c) => {
      await drain(c.req.raw, maxBytes);
      throw new PayloadTooLarge(`the request body is over ${maxBytes} bytes`);
    },
  });
}

/**
 * Reads (and drops) what is left of a request's body, up to 16 times the limit, so that the
 * answer that follows reaches the client. Nothing to do once a route has read it.
 */
export async function drain(request: Request, maxBytes = MAX_BODY_BYTES): Promise<void> {
  const body = request.body;
  if (!body || body.locked || request.bodyUsed) return;
  const reader = body.getReader();
  for (let read = 0; read < 16 * maxBytes; ) {
    const { done, value } = await reader.read();
    if (done) return;
    read += value.byteLength;
  }
  await reader.cancel();
}
