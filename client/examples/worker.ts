// Cloudflare Workers: publish from one route, receive a subscription's webhooks on another and
// pass each order on to ORDERS_URL; an order it refuses is retried later by streamhook.

import {
  createStreamhookClient,
  respond,
  verifyWebhook,
  type WebhookBatch,
  WebhookVerificationError,
} from "@streamhook/client";

interface Env {
  STREAMHOOK_URL: string;
  API_TOKEN: string;
  /** The subscription's secret; while one rotates, both, space-separated. */
  WEBHOOK_SECRETS: string;
  ORDERS_URL: string;
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method === "POST" && pathname === "/orders") {
      const streamhook = createStreamhookClient({
        baseUrl: env.STREAMHOOK_URL,
        token: env.API_TOKEN,
      });
      const order = await request.json<{ orderId: number }>();
      const published = await streamhook.publish(
        "orders",
        { type: "order.created", data: order },
        { idempotencyKey: `order-${order.orderId}-created` },
      );
      return Response.json(published, { status: 201 });
    }
    if (request.method === "POST" && pathname === "/webhooks/streamhook") {
      let batch: WebhookBatch;
      try {
        batch = await verifyWebhook(
          env.WEBHOOK_SECRETS.split(" "),
          request.headers,
          await request.text(),
        );
      } catch (error) {
        if (error instanceof WebhookVerificationError) return new Response(null, { status: 401 });
        throw error;
      }
      const failed: string[] = [];
      for (const message of batch.messages) {
        const passed = await fetch(env.ORDERS_URL, {
          method: "POST",
          body: JSON.stringify(message),
        });
        if (!passed.ok) failed.push(message.id);
      }
      return respond({ failed });
    }
    return new Response(null, { status: 404 });
  },
} satisfies ExportedHandler<Env>;
