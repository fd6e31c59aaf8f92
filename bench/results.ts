// What a benchmark run measured, scenario by scenario (absent: not run), and the shape of a
// target judged against it. Its own file, so that the report, its cost part and the chart all
// read it without importing each other.

import type { BacklogResult } from "./scenarios/backlog.ts";
import type { ConcurrentResult } from "./scenarios/concurrent.ts";
import type { CostResult } from "./scenarios/cost.ts";
import type { CpuResult } from "./scenarios/cpu.ts";
import type { DelayedResult } from "./scenarios/delayed.ts";
import type { DeliveryRow } from "./scenarios/delivery.ts";
import type { FanoutResult, LoadedFanoutResult } from "./scenarios/fanout.ts";
import type { LatencyResult } from "./scenarios/latency.ts";
import type { LoneMessageResult } from "./scenarios/lone-message.ts";
import type { OrderedResult } from "./scenarios/ordered.ts";
import type { PublishRow } from "./scenarios/publish.ts";
import type { PullResult } from "./scenarios/pull.ts";
import type { RetentionResult } from "./scenarios/retention.ts";
import type { RetriesResult } from "./scenarios/retries.ts";
import type { RetryLatenessResult } from "./scenarios/retry-lateness.ts";
import type { SteadyStreamResult } from "./scenarios/steady-stream.ts";
import type { SustainedResult } from "./scenarios/sustained.ts";

/** A target of the report (report.ts), judged against a run's figures. */
export interface Target {
  target: string;
  measured: string;
  met: boolean;
}

export interface Results {
  startedAt: string;
  cost?: CostResult;
  publish?: PublishRow[];
  latency?: LatencyResult;
  loneMessage?: LoneMessageResult;
  steadyStream?: SteadyStreamResult;
  delivery?: DeliveryRow[];
  retries?: RetriesResult;
  slow?: SustainedResult;
  fast?: SustainedResult;
  lateness?: RetryLatenessResult;
  delayed?: DelayedResult;
  fanout?: FanoutResult;
  fanoutLoaded?: LoadedFanoutResult;
  drain?: BacklogResult;
  retention?: RetentionResult;
  pull?: PullResult;
  concurrent?: ConcurrentResult;
  ordered?: OrderedResult;
  cpu?: CpuResult;
}
