// The one place the dashboard reads a subscription's attempt log: through its JSON route,
// GET /v1/channels/{channel}/subscriptions/{name}/attempts?limit= (newest first:
// {"attempts": [{"at", "attempt", "messages", "firstId", "lastId", "status", "durationMs",
// "error", "body"}], "next"}), called in-process with the signed-in key, so the key's scopes and
// channels decide as they do for any client.
//
// TODO(attempts): written against that contract before the attempt log existed on this branch,
// and untested: the route lands with the attempts branch. Once merged, read it here through its
// module (shared/attempt-log.ts) instead of the route, and test the chart and the log panel.

/** One webhook request, as the attempt log's route shows it. */
export interface Attempt {
  at: string;
  attempt: number;
  messages: number;
  firstId: string;
  lastId: string;
  /** The HTTP status, or why no whole answer came ("timeout", "network"). */
  status: number | string;
  durationMs: number;
  /** Null when the endpoint accepted the request (2xx). */
  error: string | null;
  body: string;
}

export type AttemptLog =
  | { kind: "log"; attempts: Attempt[]; more: boolean }
  | { kind: "unavailable"; reason: string };

/** Makes a request to this Worker's own API (app.fetch), with the signed-in key. */
export type InternalApi = (path: string) => Promise<Response>;

/** The newest `limit` attempts of a subscription, or why they cannot be shown. */
export async function readAttempts(
  api: InternalApi,
  channel: string,
  name: string,
  limit: number,
): Promise<AttemptLog> {
  const path = `/v1/channels/${encodeURIComponent(channel)}/subscriptions/${encodeURIComponent(name)}/attempts?limit=${limit}`;
  const res = await api(path);
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
    return { kind: "unavailable", reason: body?.error?.message ?? `HTTP ${res.status}` };
  }
  const page = (await res.json()) as { attempts: Attempt[]; next: string | null };
  return { kind: "log", attempts: page.attempts, more: page.next !== null };
}
