// The Worker: its fetch is the HTTP API, its scheduled handler the cron's delivery pass, its
// queue handler the delivery queue's consumer.
import { createApp } from "./functions/app.ts";
import type { Env } from "./shared/config.ts";
import { createDelivery, queue, scheduled } from "./worker/entry.ts";

const app = createApp(createDelivery);

export default { fetch: app.fetch, scheduled, queue } satisfies ExportedHandler<Env>;
