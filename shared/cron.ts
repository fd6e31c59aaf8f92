// Cron expressions and time zones, read by croner (npm `croner`), never by hand: it is
// maintained, small and has no dependencies, and it is timezone-aware through Intl alone, so it
// runs in workerd as it does in Node.
//
// A schedule's runs are the times croner gives for its expression in its time zone: a standard
// 5-field expression (minute hour day-of-month month day-of-week; day-of-month and day-of-week
// match either, as in Vixie cron), croner's nicknames (@hourly, @daily, ...) and its extensions
// (L, W, #). Daylight saving time, as croner documents it (Vixie cron's rules):
//
//   fixed-time   one value in both minute and hour (`30 2 * * *`): a time a spring-forward gap
//                skips runs at the first valid time after the gap, that day (03:00); a time a
//                fall-back repeats runs once, at its first occurrence
//   interval     a wildcard, step, range or list in minute or hour (`*/15 * * * *`): times in a
//                gap are skipped, and a repeated hour runs on both occurrences
//
// Every function is pure: the time comes in as an argument.

import { Cron } from "croner";

/** What a schedule's runs are made of. */
export interface CronSpec {
  cron: string;
  /** An IANA time zone name ("UTC", "America/New_York"). */
  timezone: string;
}

// Never given a function, so croner only computes times: it starts no timer.
const parse = (spec: CronSpec) => new Cron(spec.cron, { timezone: spec.timezone, mode: "5-part" });

/**
 * Why `cron` is not an expression a schedule takes (croner's reason), or null. `now` is where it
 * looks for a run: an expression that never runs (`0 0 30 2 *`) is refused too.
 */
export function cronProblem(cron: string, now: number): string | null {
  let next: Date | null;
  try {
    next = parse({ cron, timezone: "UTC" }).nextRun(new Date(now));
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^CronPattern: /, "") : "";
    return `must be a 5-field cron expression (minute hour day-of-month month day-of-week): ${reason}`;
  }
  return next === null ? "never matches a date (it would never run)" : null;
}

// Offsets ("+02:00") are not zone names; Intl takes some of them, croner none.
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+/-]{0,63}$/;

/** Why `timezone` is not an IANA time zone name, or null. */
export function timezoneProblem(timezone: string): string | null {
  const problem = 'must be an IANA time zone name such as "UTC" or "America/New_York"';
  if (!ZONE_NAME.test(timezone)) return problem;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return null;
  } catch {
    return problem;
  }
}

/** The first run strictly after `after` (ms); null when it never runs again. */
export function nextRun(spec: CronSpec, after: number): number | null {
  return parse(spec).nextRun(new Date(after))?.getTime() ?? null;
}

/**
 * The latest run at or before `at` (ms); null when there is none. croner walks back from `at`,
 * so this costs the same after a minute as after a year without runs.
 */
export function latestRun(spec: CronSpec, at: number): number | null {
  // previousRuns gives the runs strictly before its reference: one ms later takes `at` in.
  return (
    parse(spec)
      .previousRuns(1, new Date(at + 1))[0]
      ?.getTime() ?? null
  );
}
