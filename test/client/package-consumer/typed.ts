// A TypeScript user of the packed @streamhook/client: test/client/package.test.ts typechecks this
// against the installed package's declarations (dist/*.d.ts) with the project's tsc. The two
// expected errors below must be errors, or tsc fails: the types are the API's, not `any`.

import { createStreamhookClient, type Subscription } from "@streamhook/client";
import { verifyWebhook, type WebhookBatch } from "@streamhook/client/webhooks";

const streamhook = createStreamhookClient({ baseUrl: "https://streamhook.example", token: "t" });
export const names = async (): Promise<string[]> =>
  (await streamhook.subscriptions.list("orders")).map((s: Subscription) => s.name);
export const ids = async (headers: Headers, raw: string): Promise<string[]> => {
  const batch: WebhookBatch = await verifyWebhook(
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    headers,
    raw,
  );
  return batch.messages.map((m) => m.id);
};
export async function replayedIsBoolean() {
  const { replayed } = await streamhook.publish("orders", { data: 1 });
  // @ts-expect-error a publish answers { id, replayed }: replayed is a boolean
  const text: string = replayed;
  return text;
}
// @ts-expect-error a subscription is created with a name
export const unnamed = () => streamhook.subscriptions.create("orders", { url: "https://x" });
