// What the client throws when the API says no, and the one place an answer becomes data or that.

import type { components } from "./schema.d.ts";

/** The API's error body: always {"error": {"code", "message"}} (functions/app.ts). */
export type ApiErrorBody = components["schemas"]["Error"];

/**
 * A non-2xx answer, after any retries: the API's `code` (`rate_limited`, `subscription_exists`,
 * ...), its `message`, and the HTTP `status`. An answer that is not the API's JSON (a proxy's
 * error page) gets the code `http_<status>` and the start of its text as the message.
 */
export class StreamhookError extends Error {
  override name = "StreamhookError";
  readonly status: number;
  readonly code: string;
  /** The error body as the API sent it; null when it was not the API's JSON. */
  readonly body: ApiErrorBody | null;

  constructor(status: number, body: unknown) {
    const apiError = isApiError(body) ? body : null;
    super(apiError?.error.message ?? `HTTP ${status}: ${String(body ?? "").slice(0, 200)}`);
    this.status = status;
    this.code = apiError?.error.code ?? `http_${status}`;
    this.body = apiError;
  }
}

function isApiError(body: unknown): body is ApiErrorBody {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const { error } = body;
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof error.code === "string" &&
    "message" in error &&
    typeof error.message === "string"
  );
}

/** What openapi-fetch resolves to: data on a 2xx, the parsed error body otherwise. */
type Answer = { data?: unknown; error?: unknown; response: Response };

/** The data of a 2xx answer; any other answer as a StreamhookError. */
export function unwrap<A extends Answer>({
  data,
  error,
  response,
}: A): Exclude<A["data"], undefined> {
  if (!response.ok) throw new StreamhookError(response.status, error);
  return data as Exclude<A["data"], undefined>;
}

export const ok = async <A extends Answer>(pending: Promise<A>) => unwrap(await pending);
