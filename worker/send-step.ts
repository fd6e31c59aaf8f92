// A deliverer's send (drive.ts starts one per free request slot): a batch POSTed once its pace
// slot comes and one of the invocation's POST slots is free (shared/meter.ts), never once the run
// stopped, past the deadline, or when its lease might not outlive the request. What happened is
// posted to the run's mailbox.

import { requestTrace } from "../shared/trace.ts";
import { deliver } from "./deliver.ts";
import { type Batch, type Deliverer, VISIBILITY_MARGIN_MS } from "./deliverer.ts";

export async function sendStep(d: Deliverer, batch: Batch): Promise<void> {
  const { meter } = d;
  const { clock } = d.ctx;
  // A pace slot past the deadline is not waited for.
  if (batch.startAt >= meter.deadline) {
    meter.unhold(1);
    d.mail.post({ kind: "unsent", batch });
    return;
  }
  const wait = batch.startAt - clock();
  if (wait > 0) await d.ctx.sleep(wait);
  await meter.posts.take();
  try {
    const now = clock();
    meter.unhold(1);
    const late = now + d.job.sub.timeoutMs + VISIBILITY_MARGIN_MS > batch.takenAt + d.visibilityMs;
    if (d.run.progress.stop || late || !meter.allows(now, 1)) {
      d.mail.post({ kind: "unsent", batch });
      return;
    }
    // A span per attempt: a retry of the batch is a new request, with a new span id.
    const trace = requestTrace(batch.entries.map((e) => e.trace));
    const answer = await deliver(meter, d.endpoint, batch.entries, now, trace);
    const durationMs = Math.max(0, clock() - now);
    d.mail.post({ kind: "sent", batch, answer, at: now, durationMs, trace });
  } catch (e) {
    d.mail.post({ kind: "failed", error: e, during: "send" });
  } finally {
    meter.posts.give();
  }
}
