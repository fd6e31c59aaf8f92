// Node: publish with the typed client, and receive webhooks with node:http.
//
//   const streamhook = createStreamhookClient({ baseUrl, token });
//   await orderCreated(streamhook, 42);
//   createServer(webhookListener([process.env.WEBHOOK_SECRET!], saveOrder)).listen(9000);

import type { IncomingMessage, ServerResponse } from "node:http";
import { text } from "node:stream/consumers";
import {
  respond,
  type StreamhookClient,
  verifyWebhook,
  type WebhookMessage,
  WebhookVerificationError,
} from "@streamhook/client";

/** Publishes an order's creation: once, however often this runs for the order within 24 h. */
export async function orderCreated(streamhook: StreamhookClient, orderId: number) {
  const { id } = await streamhook.publish(
    "orders",
    { type: "order.created", data: { orderId } },
    { idempotencyKey: `order-${orderId}-created` },
  );
  return id;
}

/**
 * A node:http listener for a subscription's webhooks. `handle` takes one message; when it throws,
 * that message is retried later and the rest of the batch is acknowledged. Pass both secrets
 * while one rotates.
 */
export function webhookListener(
  secrets: string[],
  handle: (message: WebhookMessage) => Promise<void>,
) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    let answer: Response;
    try {
      // The body exactly as it came: the signature is over these bytes.
      const batch = await verifyWebhook(secrets, req.headers, await text(req));
      const failed: string[] = [];
      for (const message of batch.messages) {
        await handle(message).catch(() => failed.push(message.id));
      }
      answer = respond({ failed });
    } catch (error) {
      answer = new Response(null, {
        status: error instanceof WebhookVerificationError ? 401 : 500,
      });
    }
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(Buffer.from(await answer.arrayBuffer()));
  };
}
