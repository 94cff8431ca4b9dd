import type { ErrorBody, ErrorCode } from "./schema";

/**
 * A non-2xx answer of the API: the contract's `{code, message, detail}`.
 * Switch on `code` (typed from the document's ErrorCode), never on `message`.
 */
export class ApiError extends Error {
  /** `(string & {})`: a code added after this client was generated still arrives, typed as a string. */
  readonly code: ErrorCode | (string & {});
  readonly detail: ErrorBody["detail"];
  /** Seconds from `Retry-After` (429, 503), when the answer had one. */
  readonly retryAfter: number | null;

  constructor(
    readonly status: number,
    body: ErrorBody,
    retryAfter: number | null = null,
    readonly method = "",
    readonly url = "",
  ) {
    super(body.message);
    this.name = "ApiError";
    this.code = body.code;
    this.detail = body.detail ?? {};
    this.retryAfter = retryAfter;
  }

  is<C extends ErrorCode>(code: C): this is ApiError & { code: C } {
    return this.code === code;
  }
}

/** No answer at all: offline, DNS, TLS, timeout. Safe to retry a read; a write may have happened. */
export class NetworkError extends Error {
  readonly code = "network_error";

  constructor(message: string, readonly method = "", readonly url = "") {
    super(message);
    this.name = "NetworkError";
  }
}

/** The user closed WeChat Pay's sheet, or it failed: nothing was paid through it. */
export class PaymentNotCompleted extends Error {
  constructor(message: string, readonly cancelled: boolean) {
    super(message);
    this.name = "PaymentNotCompleted";
  }
}

export function isErrorBody(value: unknown): value is ErrorBody {
  const body = value as ErrorBody | null;
  return typeof body === "object" && body !== null && typeof body.code === "string" && typeof body.message === "string";
}
