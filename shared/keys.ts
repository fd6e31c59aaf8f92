// The Redis key layout. This is the only module that spells a key; everything else (tests
// included) builds keys through `createKeys(prefix)`. The prefix is versioned (KEY_PREFIX, default
// "sh:v1") so a new layout can live beside an old one; renaming a key is a data migration, and
// test/shared/keys.test.ts pins the literal strings.
//
// {p}:channels            SET     channel names: the registry GET /v1/channels lists (no SCAN)
//                                 written by publish (when it creates the stream) and subscribe
// {p}:ch:<ch>             STREAM  the channel's messages, fields t (type, optional) and d (data
//                                 as JSON text), and n (the publish request's nonce) on the first
//                                 entry of each publish; id = publish time. Written by publish only.
//                                 Each subscription reads it with its own consumer group, named
//                                 <sub>~<id> (<sub> for subscriptions made before ids: see
//                                 subscription.ts). A push group's consumers are its deliverers'
//                                 readers (one per deliverer run, deleted when it ends) and the
//                                 waiting room "deliverer" (entries waiting for a retry), and an
//                                 ordered one's "parked" (entries behind their key's: lanes); a pull
//                                 subscription's are named by whoever pulls (shared/engine/)
// {p}:subs:<ch>           HASH    <sub> -> subscription JSON (url, secrets, batchSize, ...)
//                                 <sub>#paused -> "1" while paused (apart, so publish's script
//                                 can skip paused subscribers without decoding JSON)
//                                 <sub>#pull -> "1" for a pull subscription (written with it by
//                                 subscribe): publish never wakes it, the deliverer never visits
//                                 it (any <sub>#<marker> field keeps publish from waking <sub>)
//                                 <sub>#redrive -> "1" while a pull subscription's redrive stream
//                                 may hold messages, so pulls look there (redrive sets it, a pull
//                                 that finds that stream empty removes it: engine/dead-letters)
//                                 written by the API; the worker sets #paused on 410 Gone
//                                 ~retention -> the channel's retention JSON ({maxAgeMs,
//                                 maxMessages}, null = no limit), absent = the defaults; API
//                                 ~trim -> "<next trim ms>:<length after>:<trimmed at ms>",
//                                 written by the trim step (lua/trim.ts: publish's and the
//                                 sweep's) and first by publish or subscribe
//                                 (fields starting "~" are the channel's own: kept here so the
//                                 publish script's HGETALL reads them for free)
// {p}:state:<ch>          HASH    delivery state, one field per fact so the worker writes it
//                                 without reading it first: <sub>:failures (consecutive failed
//                                 requests; HINCRBY), <sub>:lastError, <sub>:lastErrorAt,
//                                 <sub>:lastSuccessAt, <sub>:lastAckedId, <sub>:concurrency (a
//                                 push subscription's window of requests in flight, adaptive:
//                                 read and moved by lua/take.ts) and <sub>:concurrencyCutAt (when
//                                 the window was last halved, ms),
//                                 <sub>:deadLettersExpired, <sub>:deadLettersDropped (dead letters
//                                 trimmed for age, for count or bytes; HINCRBY: by a park and by
//                                 the sweep), <sub>:failingSince (the
//                                 first failure after a success), <sub>:disabledAt. Worker only
//                                 (a deliverer's report, lua/report.ts; the window: its takes);
//                                 and <sub>:expired, <sub>:lastExpiredAt (messages trimmed before
//                                 it acknowledged them), written by the trim step (publish's, and
//                                 the sweep's)
// {p}:metrics:<ch>        HASH    delivery counters for GET /v1/metrics, one field per fact,
//                                 HINCRBY only: <sub>:attempts:<result> (webhook requests by
//                                 result), <sub>:latency:<le> (delivered messages by publish-to-2xx
//                                 latency bucket, not cumulative: shared/metrics.ts), <sub>:latencyMs
//                                 (their sum), <sub>:deadLettered. Worker only (a deliverer's
//                                 report, lua/report.ts; dead letters: lua/dead-letter.ts)
// {p}:due                 ZSET    member -> due time (ms). The whole delivery schedule, so an idle
//                                 pass is one ZRANGE whatever the number of subscriptions:
//                                   wake:<unit>   the unit may have unread messages (scored when
//                                                 it was woken; later than now: held back, by a
//                                                 backoff or a hand-over)
//                                   retry:<unit>  the unit's pending list holds entries: look at
//                                                 it then (at or before the first becomes visible)
//                                 written by publish (wake), the API (replay, redrive, resume) and
//                                 the worker (lua/take.ts keeps it with the group, backoff)
//                                 It also holds the timers: time-driven work other than delivery,
//                                 "<kind>:<name>" (TimerKind below; no "/" in a timer's member), so
//                                 that the cron's one ZRANGE finds everything that is due:
//                                   schedule:<name>  the schedule's next run (absent while it is
//                                                 paused); the API sets it, the run moves it on
//                                                 (lua/schedule-save.ts, lua/schedule-next.ts)
//                                   sweep:<ch>    the channel's retention and its subscriptions'
//                                                 dead-letter bounds want enforcing then, published
//                                                 to or not (worker/sweep.ts). Moved earlier only
//                                                 (ZADD LT) by publish's trim step, subscribe and
//                                                 PATCH retention, and a park (dead letters); set
//                                                 or removed by the sweep itself; deleted with the
//                                                 channel
//                                   delay:<ch>    the earliest due time of the channel's delayed
//                                                 messages (publish moves it earlier, ZADD LT;
//                                                 lua/enter.ts sets it to the next, or removes it)
//                                   roster:<ch>   a subscriber became active (made, resumed):
//                                                 the channel's subscribers with unread messages
//                                                 are woken then, once no isolate's roster copy
//                                                 predates it (shared/roster.ts; subscribe and
//                                                 resume set it, ZADD GT; lua/rewake.ts removes
//                                                 it; so does the channel's delete)
// {p}:delayed:<ch>        ZSET    delayed id -> due time (ms): the channel's delayed messages that
//                                 have not entered it yet. Publish adds (lua/publish.ts), the
//                                 timer delay:<ch> lets the due ones in (lua/enter.ts), cancel
//                                 removes (shared/delayed.ts); no TTL (each goes when it enters)
// {p}:delayed-messages:<ch> HASH  delayed id -> "<published ms>\n<type>\n<traceparent>\n
//                                 <tracestate>\n<data>" (empty parts: none), written and deleted
//                                 with its member of {p}:delayed:<ch>
// {p}:pace:<ch>:<sub>     STRING  the next free start slot (ms) of a subscription with
//                                 maxRequestsPerSecond, shared by all its deliverers; PX past it
//                                 (lua/take.ts reserves slots as it takes batches)
// {p}:lanes:<ch>:<sub>    HASH    an ordered subscription's lanes (lua/take.ts): <key> (the
//                                 ordering key; "" for messages without one) -> "<since ms> <head
//                                 id> <parked ids...>": the one entry of the key handed out or
//                                 waiting for its retry, since when it has failed (0: it has not),
//                                 and the key's later entries, parked in order with the group's
//                                 consumer "parked"; and #<head id> -> <key>, to find a head's lane
//                                 from its id. Only the take script writes it (a field goes when
//                                 its lane is empty); deleted with the subscription, its channel,
//                                 and when a PATCH turns `ordered` off or on. No TTL
// {p}:flow:<key>          STRING  a flow key's shared state, over every subscription naming it
//                                 on any channel: "<next start slot ms>" then, per deliverer run
//                                 holding requests, " <reader> <requests> <lease end ms>"
//                                 (a run waiting for a slot: " <reader> -<since ms> <now + 1 s>")
//                                 (lua/take.ts: flow, read and rewritten by a take, 1 GET + 1
//                                 SET); PX past its last lease and slot, so a killed run's
//                                 requests count only until their lease ends. Key: FLOW_KEY
//                                 (shared/subscription.ts), no space in it
// {p}:dlq:<ch>:<sub>      STREAM  dead letters: o (original id), t, d, a (attempts), e (last
//                                 error), c (the subscription's dead-letter bytes up to and
//                                 including this one: lua/dead-letter-bounds.ts); id = time of
//                                 death. Worker writes (a pull's park too), and trims to
//                                 DEAD_LETTER_MAX_AGE_MS, _MAX_MESSAGES and _MAX_BYTES when it
//                                 parks and when the channel is swept; API lists, purges
// {p}:attempts:<ch>:<sub> STREAM the last ~1,000 webhook requests of a push subscription, up to
//                                 ten records in one entry (XADD MAXLEN ~ 1000 / records, by the
//                                 isolate's ledger, lua/ledger.ts, or a run's report): a (start ms), n (attempt), m (messages), f and
//                                 l (first and last message id), s (HTTP status, or "timeout" /
//                                 "network"), d (duration ms), e (error; absent on 2xx), b (the
//                                 response body's first 1 KiB; absent when empty), t, h; the i-th
//                                 record of an entry (i >= 1) as a<i>, n<i>, ... Made empty by
//                                 subscribe; the worker appends with NOMKSTREAM, so a deleted
//                                 subscription's log is never made again; API lists it newest
//                                 first (shared/attempt-log.ts)
// {p}:redrive:<ch>:<sub>  STREAM  dead letters put back for delivery: o, t, d (p, s, m, k); read
//                                 with the subscription's group like the channel. API writes, worker reads
//                                 (a pull subscription's: pulls read it, and its ids are 0-<n>)
// {p}:idem:<ch>:<key>     STRING  the ids a publish with Idempotency-Key got, EX 24 h; publish
//                                 writes (a schedule's run publishes with the key
//                                 "schedule:<name>:<run ms>": `scheduleRunKey`). Not indexed per channel: deleting a channel finds them
//                                 with SCAN MATCH `idempotencyPattern` (names hold no glob characters)
// {p}:written:<id>        STRING  what the report of deliverer run <id> answered, or "1" for the
//                                 ledger's write ledger.<uuid>, EX 5 min: a repeat after a lost
//                                 reply finds it and writes nothing twice (lua/report.ts,
//                                 lua/ledger.ts)
// {p}:schedules           HASH    <name> -> schedule JSON (channel, cron, timezone, message,
//                                 paused, createdAt, updatedAt: shared/schedules.ts), written by
//                                 the API (POST, PATCH, DELETE /v1/schedules); <name>#lastRun ->
//                                 the time (ms) of the last run published, written by the run
//                                 (lua/schedule-next.ts) and deleted with the schedule. No TTL
// {p}:health              STRING  the time (ms) of the last GET /health, PX 60 s: its write probe,
//                                 whose refusal says the database is full (storage.ts)
// {p}:apikeys             HASH    <SHA-256 of a key's secret, hex> -> the key's JSON (id, name,
//                                 scopes, channels, rateLimit, createdAt; never the secret).
//                                 Keyed by the hash so that authenticating is one HGET; written
//                                 by POST and DELETE /v1/keys only (shared/api-keys.ts)
// {p}:ratelimit:<id>:<n>  STRING  requests key <id> made in fixed window n (now / windowMs),
//                                 PX windowMs. Spelled by @upstash/ratelimit under the prefix
//                                 `rateLimitPrefix` (shared/rate-limit.ts); expires by itself
//
// A unit is what one consumer group reads: "<ch>/<sub>" (the channel stream) or
// "<ch>/<sub>/redrive" (the subscription's redrive stream). Channel and subscription names are
// [A-Za-z0-9._-], so ":" and "/" never occur inside them.

export type UnitKind = "main" | "redrive";

export interface Unit {
  channel: string;
  subscription: string;
  kind: UnitKind;
}

export type Keys = ReturnType<typeof createKeys>;

export function createKeys(prefix: string) {
  return {
    channels: () => `${prefix}:channels`,
    channel: (channel: string) => `${prefix}:ch:${channel}`,
    subscriptions: (channel: string) => `${prefix}:subs:${channel}`,
    state: (channel: string) => `${prefix}:state:${channel}`,
    due: () => `${prefix}:due`,
    pace: (channel: string, sub: string) => `${prefix}:pace:${channel}:${sub}`,
    lanes: (channel: string, sub: string) => `${prefix}:lanes:${channel}:${sub}`,
    flow: (key: string) => `${prefix}:flow:${key}`,
    deadLetters: (channel: string, sub: string) => `${prefix}:dlq:${channel}:${sub}`,
    redrive: (channel: string, sub: string) => `${prefix}:redrive:${channel}:${sub}`,
    attempts: (channel: string, sub: string) => `${prefix}:attempts:${channel}:${sub}`,
    metrics: (channel: string) => `${prefix}:metrics:${channel}`,
    delayed: (channel: string) => `${prefix}:delayed:${channel}`,
    delayedMessages: (channel: string) => `${prefix}:delayed-messages:${channel}`,
    idempotency: (channel: string, key: string) => `${prefix}:idem:${channel}:${key}`,
    /** SCAN MATCH pattern of every idempotency key of a channel. */
    idempotencyPattern: (channel: string) => `${prefix}:idem:${channel}:*`,
    written: (id: string) => `${prefix}:written:${id}`,
    health: () => `${prefix}:health`,
    apiKeys: () => `${prefix}:apikeys`,
    schedules: () => `${prefix}:schedules`,
    /** The prefix @upstash/ratelimit puts before "<key id>:<window>" (see the header). */
    rateLimitPrefix: () => `${prefix}:ratelimit`,
    /** The stream a unit's consumer group reads. */
    unitStream: (unit: Unit) =>
      unit.kind === "main"
        ? `${prefix}:ch:${unit.channel}`
        : `${prefix}:redrive:${unit.channel}:${unit.subscription}`,
  };
}

export type StateFact =
  | "failures"
  | "lastError"
  | "lastErrorAt"
  | "lastSuccessAt"
  | "lastAckedId"
  | "expired"
  | "lastExpiredAt"
  | "failingSince"
  | "disabledAt"
  | "deadLettersExpired"
  | "deadLettersDropped"
  | "concurrency"
  | "concurrencyCutAt";

/** A field of {p}:state:<ch>. */
export const stateField = (sub: string, fact: StateFact) => `${sub}:${fact}`;

/** A field of {p}:metrics:<ch>: `attempts:<result>`, `latency:<le>`, `latencyMs`, `deadLettered`. */
export const metricsField = (sub: string, counter: string) => `${sub}:${counter}`;

/** Fields of {p}:subs:<ch> that belong to the channel, not to a subscription. */
export const CHANNEL_FIELD_PREFIX = "~";
export const retentionField = `${CHANNEL_FIELD_PREFIX}retention`;
export const trimField = `${CHANNEL_FIELD_PREFIX}trim`;

/**
 * The fields of {p}:subs:<ch> that are subscriptions: a name is [A-Za-z0-9._-], so markers
 * (`<sub>#paused`) and the channel's own fields (`~retention`, `~trim`) are not.
 */
export const isSubscriptionField = (field: string) => /^[A-Za-z0-9._-]+$/.test(field);

/** Suffix of the hash field marking a subscription paused in {p}:subs:<ch>. */
export const PAUSED_SUFFIX = "#paused";
export const pausedField = (sub: string) => `${sub}${PAUSED_SUFFIX}`;

/** Suffix of the hash field marking a pull subscription in {p}:subs:<ch>. */
export const PULL_SUFFIX = "#pull";
export const pullField = (sub: string) => `${sub}${PULL_SUFFIX}`;

/**
 * Suffix of the hash field marking a pull subscription whose redrive stream may hold messages
 * (set by lua/redrive.ts, removed by lua/redrive-end.ts when that stream is empty).
 */
export const REDRIVE_SUFFIX = "#redrive";
export const redriveField = (sub: string) => `${sub}${REDRIVE_SUFFIX}`;

/** The field of {p}:schedules holding when the schedule's last published run was (ms). */
export const lastRunField = (schedule: string) => `${schedule}#lastRun`;

/** The Idempotency-Key of a schedule's run: one publish per run, however often it is tried. */
export const scheduleRunKey = (schedule: string, runAt: number) => `schedule:${schedule}:${runAt}`;

/** Between a name and its marker (`#paused`, `#pull`): publish wakes no subscription that has one. */
export const MARKER_SEPARATOR = "#";

export const unitName = (unit: Unit) =>
  unit.kind === "main"
    ? `${unit.channel}/${unit.subscription}`
    : `${unit.channel}/${unit.subscription}/redrive`;

export const wakeMember = (unit: Unit) => `wake:${unitName(unit)}`;
export const retryMember = (unit: Unit) => `retry:${unitName(unit)}`;

/** The {p}:due member prefixes of a channel's main units, for scripts that append the name. */
export const duePrefixes = (channel: string) => ({
  wake: `wake:${channel}/`,
  retry: `retry:${channel}/`,
});

/** Parses a {p}:due member back into its kind and unit; null for anything else. */
export function parseDueMember(member: string): { kind: "wake" | "retry"; unit: Unit } | null {
  const match = /^(wake|retry):([^/:]+)\/([^/:]+)(\/redrive)?$/.exec(member);
  if (!match) return null;
  const [, kind, channel, subscription, redrive] = match;
  return {
    kind: kind as "wake" | "retry",
    unit: { channel: channel!, subscription: subscription!, kind: redrive ? "redrive" : "main" },
  };
}

/**
 * The kinds of timer kept in {p}:due beside the delivery schedule (see the header): each is
 * handled by the cron (worker/timers.ts) when its member comes due.
 */
export const TIMER_KINDS = ["delay", "schedule", "sweep", "roster"] as const;
export type TimerKind = (typeof TIMER_KINDS)[number];

/** The {p}:due member of a timer: "<kind>:<name>". */
export const timerMember = (kind: TimerKind, name: string) => `${kind}:${name}`;

/** The {p}:due member of a channel's roster timer (shared/roster.ts, worker/roster.ts). */
export const rosterMember = (channel: string) => timerMember("roster", channel);

/** The {p}:due member of a channel's sweep (worker/sweep.ts). */
export const sweepMember = (channel: string) => timerMember("sweep", channel);

/** Parses a {p}:due member as a timer; null for delivery members and anything else. */
export function parseTimerMember(member: string): { kind: TimerKind; name: string } | null {
  const colon = member.indexOf(":");
  if (colon < 0 || member.includes("/")) return null;
  const kind = member.slice(0, colon);
  const found = TIMER_KINDS.find((k) => k === kind);
  return found === undefined ? null : { kind: found, name: member.slice(colon + 1) };
}
