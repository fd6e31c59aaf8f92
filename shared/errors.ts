// Typed errors, thrown at the source and mapped to HTTP once (functions/app.ts `onError`).
// Each carries the snake_case `code` and the HTTP `status` the API answers with; the body is
// always {"error":{"code","message"}}.

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503 | 507;

export class AppError extends Error {
  override name = "AppError";
  readonly code: string;
  readonly status: ErrorStatus;
  /** Headers the error response carries (Retry-After on a 429). */
  readonly headers: Record<string, string>;
  constructor(
    code: string,
    status: ErrorStatus,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.code = code;
    this.status = status;
    this.headers = headers;
  }
}

export class InvalidInput extends AppError {
  constructor(message: string, code = "invalid_request") {
    super(code, 400, message);
  }
}

export class Unauthorized extends AppError {
  constructor(message = "missing or invalid bearer token") {
    super("unauthorized", 401, message);
  }
}

/** A valid key asking for a route outside its scopes or channels; the message names which. */
export class Forbidden extends AppError {
  constructor(message: string) {
    super("forbidden", 403, message);
  }
}

/** A key over its rate limit; the headers say when to come back (functions/auth.ts). */
export class RateLimited extends AppError {
  constructor(message: string, headers: Record<string, string>) {
    super("rate_limited", 429, message, headers);
  }
}

export class NotFound extends AppError {
  constructor(message: string, code = "not_found") {
    super(code, 404, message);
  }
}

/** The 404 of every route under a subscription. */
export const subscriptionNotFound = (channel: string, name: string) =>
  new NotFound(`no subscription "${name}" on channel "${channel}"`, "subscription_not_found");

export class Conflict extends AppError {
  constructor(message: string, code = "conflict") {
    super(code, 409, message);
  }
}

export class PayloadTooLarge extends AppError {
  constructor(message: string) {
    super("payload_too_large", 413, message);
  }
}

/** Redis (Upstash or the local bridge) could not be reached or did not answer sensibly. */
export class RedisUnavailable extends AppError {
  constructor(cause: unknown) {
    super("redis_unavailable", 503, "Redis is unreachable; nothing was written, retry later");
    this.cause = cause;
  }
}

/**
 * Redis (Upstash) refused a write for size: the channel's stream is at the per-key record limit,
 * or the database at its capacity. Nothing of the request was written.
 */
export class StorageFull extends AppError {
  constructor(message: string) {
    super("storage_full", 507, message);
  }
}
