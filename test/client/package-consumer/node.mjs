// A Node user of the packed @streamhook/client, in plain JavaScript (no TypeScript, no bundler):
// it receives its own subscription's webhooks on 127.0.0.1, publishes, lists the channel's
// subscriptions, verifies the signed webhook it gets (and the same request with one byte of its
// body changed), and prints what happened as one JSON line. test/client/package.test.ts runs it
// with the machine's Node and with the project's.
//
//   STREAMHOOK_URL=... API_TOKEN=... WEBHOOK_SECRET=whsec_... node node.mjs <channel>

import { createServer } from "node:http";
import { createStreamhookClient, StreamhookError } from "@streamhook/client";
import { respond, verifyWebhook, WebhookVerificationError } from "@streamhook/client/webhooks";

const channel = process.argv[2];
const secret = process.env.WEBHOOK_SECRET;
const streamhook = createStreamhookClient({
  baseUrl: process.env.STREAMHOOK_URL,
  token: process.env.API_TOKEN,
});

/** The batch, or why verifyWebhook refused the request. */
const verdict = (headers, body) =>
  verifyWebhook(secret, headers, body).catch((error) => {
    if (error instanceof WebhookVerificationError) return `refused: ${error.message}`;
    throw error;
  });

let received;
const arrived = new Promise((resolve) => {
  received = resolve;
});
const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString("utf8");
  const batch = await verdict(req.headers, raw);
  const tampered = await verdict(req.headers, raw.replace('"orderId":42', '"orderId":43'));
  const answer = typeof batch === "string" ? new Response(null, { status: 401 }) : respond();
  res.writeHead(answer.status).end();
  received({ batch, tampered });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/hook`;

await streamhook.subscriptions.create(channel, { name: "node", url, secret });
const published = await streamhook.publish(channel, {
  type: "order.created",
  data: { orderId: 42 },
});
const listed = (await streamhook.subscriptions.list(channel)).map((s) => s.name);
const missing = await streamhook.channels.get(`${channel}-missing`).catch((error) => ({
  isStreamhookError: error instanceof StreamhookError,
  status: error.status,
  code: error.code,
}));
const { batch, tampered } = await arrived;
server.close();

console.log(JSON.stringify({ node: process.version, published, listed, missing, batch, tampered }));
