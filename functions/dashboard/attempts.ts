// How the dashboard reads a subscription's attempt log: with the attempt log's own reader
// (shared/attempt-log.ts) and the request's Db, once the fragment has authorized the key for the
// channel (allow("read"), as the API's GET .../attempts does). Going through the route instead
// would look the key up again and count against its rate limit once more per subscription.

import {
  ATTEMPT_LOG_LENGTH,
  type AttemptView,
  RECORDS_PER_ENTRY,
  readAttempts,
} from "../../shared/attempt-log.ts";
import type { Db } from "../../shared/redis.ts";

export type { AttemptView };

/** The requests chart's span: the last hour. */
export const CHART_WINDOW_MS = 3_600_000;

/** The newest `limit` records, newest first; `more` when older ones exist. 1 XREVRANGE. */
export async function recentAttempts(
  db: Db,
  channel: string,
  name: string,
  limit: number,
): Promise<{ attempts: AttemptView[]; more: boolean }> {
  const page = await readAttempts(db, channel, name, { limit });
  return { attempts: page.attempts, more: page.next !== null };
}

/** A subscription's requests of the chart's hour, and how far back its log reached. */
export interface HourOfAttempts {
  name: string;
  /** The records that started within [now - CHART_WINDOW_MS, now], newest first. */
  attempts: AttemptView[];
  /**
   * When the log holds the whole hour, null. Otherwise the start (ms) of the oldest record it
   * still holds: a busy subscription's last ~1,000 requests span less than an hour.
   */
  since: number | null;
}

// Records per page, each page at most about 400 KB (records hold up to ~1.6 KB). A log of
// single-record entries takes 5 pages (XADD MAXLEN ~ keeps whole stream nodes of 100: up to
// 1,100); one of a busy subscription's, up to RECORDS_PER_ENTRY records an entry, up to ten times
// as many, but its hour is read long before (its last ~1,000 requests span less than an hour).
const PAGE = 250;
// The bound on pages: the whole log and no more, whatever happens to it while it is read.
const MAX_PAGES = Math.ceil(((ATTEMPT_LOG_LENGTH + 100) * RECORDS_PER_ENTRY) / PAGE);

/**
 * The subscription's records of the last hour: pages of the log, newest first, until one reaches
 * back past the hour's start, the log ends, or MAX_PAGES were read. 1 XREVRANGE per page: one for
 * a quiet subscription, 5 for one busy enough to have filled its log within the hour.
 */
export async function lastHour(
  db: Db,
  channel: string,
  name: string,
  now: number,
): Promise<HourOfAttempts> {
  const from = now - CHART_WINDOW_MS;
  const attempts: AttemptView[] = [];
  let after: string | undefined;
  let read = 0;
  let oldest = now;
  for (let page = 0; page < MAX_PAGES; page++) {
    const { attempts: records, next } = await readAttempts(db, channel, name, {
      after,
      limit: PAGE,
    });
    read += records.length;
    for (const record of records) {
      const at = Date.parse(record.at);
      oldest = Math.min(oldest, at);
      if (at >= from && at <= now) attempts.push(record);
    }
    // The log runs in write order and `at` is when a request started, so a record just before
    // the hour can come after one inside it: the page that reaches past `from` is read whole.
    if (oldest < from) return { name, attempts, since: null };
    if (next === null) {
      // The whole log was read. Under its cap nothing was ever trimmed from it: it holds every
      // request the subscription made, so the hour is whole.
      return { name, attempts, since: read < ATTEMPT_LOG_LENGTH ? null : oldest };
    }
    after = next;
  }
  return { name, attempts, since: oldest };
}
