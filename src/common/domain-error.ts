/**
 * Every error a user can cause or see has a code. One global filter maps the code to an HTTP status and OpenAI's
 * error envelope; business code never throws HTTP exceptions.
 *
 * Never map bad input to 409 or 5xx: the openai SDK retries 408/409/429/5xx, and retrying bad input cannot help.
 */
export const errorCodes = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_file: { status: 400, type: 'invalid_request_error' },
  invalid_adapter: { status: 400, type: 'invalid_request_error' },
  unknown_model: { status: 400, type: 'invalid_request_error' },
  dataset_in_use: { status: 400, type: 'invalid_request_error' },
  invalid_state: { status: 400, type: 'invalid_request_error' },
  /** An adapter version that a serving pool still deploys (or an alias names) cannot be deleted or undeployed. */
  version_in_use: { status: 400, type: 'invalid_request_error' },
  /** The serving preflight refused a version for a pool (rank, base model, targets). Nothing reached a replica. */
  incompatible_adapter: { status: 400, type: 'invalid_request_error' },
  /** A promotion gate (e.g. a required eval) was not met; the alias did not move. */
  gate_not_met: { status: 400, type: 'invalid_request_error' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  /**
   * Per-project quotas (README "Fair use"): 403, not 429, since waiting does not help by itself (the SDK retries
   * 429). One code per limit, so a client knows which one it met.
   */
  quota_gpu_jobs: { status: 403, type: 'insufficient_quota' },
  quota_pools: { status: 403, type: 'insufficient_quota' },
  quota_replicas: { status: 403, type: 'insufficient_quota' },
  quota_eval_targets: { status: 403, type: 'insufficient_quota' },
  quota_stored_bytes: { status: 403, type: 'insufficient_quota' },
  unauthorized: { status: 401, type: 'invalid_request_error' },
  forbidden: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  /** Inference: the model name is unknown in the caller's project (other projects' names are unknown too). */
  model_not_found: { status: 404, type: 'invalid_request_error' },
  /** Inference: the model server or provider failed (no answer, a 5xx, a broken or over-size answer). */
  upstream_error: { status: 502, type: 'server_error' },
  /** A per-key or per-project limit of the gateway (OpenAI's code and 429; the SDK retries after Retry-After). */
  rate_limit_exceeded: { status: 429, type: 'requests' },
  service_unavailable: { status: 503, type: 'server_error' },
  internal: { status: 500, type: 'server_error' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field at fault, in OpenAI's `param` (e.g. "training_file", "messages[0].role"). */
    readonly param: string | null = null,
    options?: { cause?: unknown; retryAfterSeconds?: number; retryAfterMs?: number; details?: Record<string, unknown>; type?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.retryAfterMs = options?.retryAfterMs;
    this.details = options?.details;
    this.type = options?.type;
  }
  /** Retry-After: whole seconds (RFC 9110 has no fractions). */
  readonly retryAfterSeconds?: number;
  /** The same wait in milliseconds where it is known that finely (a rate limit): sent as `retry-after-ms`, which the openai SDKs read before Retry-After. */
  readonly retryAfterMs?: number;
  /** OpenAI's error `type` where one code has several (a rate limit: requests or tokens); else the code's own. */
  readonly type?: string;
  /** Extra machine-readable fields added to the error object (e.g. job_ids for dataset_in_use). */
  readonly details?: Record<string, unknown>;
}

export const notFound = (what: string, id: string, param: string | null = null) =>
  new DomainError('not_found', `No such ${what}: '${id}'`, param);

export const invalid = (message: string, param: string | null = null) =>
  new DomainError('invalid_request', message, param);
