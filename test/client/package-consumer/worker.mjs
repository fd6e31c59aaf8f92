// A Cloudflare Worker using the packed @streamhook/client, in plain JavaScript, bundled by
// `wrangler deploy --dry-run` from the consumer project's node_modules and run in workerd by
// test/client/package.test.ts.
//
//   POST /publish?channel=c    {"orderId": n} -> publishes it: {"id", "replayed"}
//   GET  /subscriptions?channel=c             -> the channel's subscription names
//   POST /webhooks                            -> verifies a webhook with WEBHOOK_SECRET and posts
//                                                its batch to VERIFIED_URL; 401 {"refused"} if not

import { createStreamhookClient } from "@streamhook/client";
import { respond, verifyWebhook, WebhookVerificationError } from "@streamhook/client/webhooks";

export default {
  async fetch(request, env) {
    const { pathname, searchParams } = new URL(request.url);
    const channel = searchParams.get("channel");
    const streamhook = createStreamhookClient({
      baseUrl: env.STREAMHOOK_URL,
      token: env.API_TOKEN,
    });
    if (request.method === "POST" && pathname === "/publish") {
      const data = await request.json();
      return Response.json(await streamhook.publish(channel, { type: "order.created", data }));
    }
    if (request.method === "GET" && pathname === "/subscriptions") {
      const subscriptions = await streamhook.subscriptions.list(channel);
      return Response.json(subscriptions.map((s) => s.name));
    }
    if (request.method === "POST" && pathname === "/webhooks") {
      let batch;
      try {
        batch = await verifyWebhook(env.WEBHOOK_SECRET, request.headers, await request.text());
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) throw error;
        return Response.json({ refused: error.message }, { status: 401 });
      }
      await fetch(env.VERIFIED_URL, { method: "POST", body: JSON.stringify(batch) });
      return respond();
    }
    return new Response(null, { status: 404 });
  },
};
