import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseCidr } from '../common/net/address-ranges';
import { priceTable } from '../evals/prices';

/**
 * The whole environment loraplane reads, validated once at start (shared/STYLE.md #4).
 * Nothing else in the code touches process.env: inject `Config` instead.
 * Every variable is documented in .env.example; keep the two in step.
 */
const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const url = z.string().url();

export const envSchema = z.object({
  LORAPLANE_MODE: z.enum(['dev', 'production']).default('production'),
  LORAPLANE_ROLE: z.enum(['all', 'api', 'worker', 'gateway']).default('all'),
  /** Bootstrap key of the default project. In dev mode a key is created and printed when this is unset. */
  LORAPLANE_API_KEY: z.string().min(20).optional(),
  HOST: z.string().default('0.0.0.0'),
  PORT: int(0, 65535).default(8080),
  /** Base URL printed in examples and used in links; defaults to http://localhost:PORT. */
  PUBLIC_URL: url.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto`: one readable line per record at a terminal, JSON lines otherwise (a file, a pipe, a log collector). */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),

  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  /** BullMQ key prefix; lets several deployments (or test runs) share one Redis. */
  QUEUE_PREFIX: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('loraplane'),

  /** Unset: AWS S3. Set: any S3-protocol server (MinIO, Ceph RGW, R2, s3rver in dev). */
  S3_ENDPOINT: url.optional(),
  /** Endpoint that training containers use for presigned URLs, when it differs from S3_ENDPOINT. */
  S3_PUBLIC_ENDPOINT: url.optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool.default(true),
  /** Create the bucket at start when it is missing (dev and tests; production buckets are provisioned). */
  S3_CREATE_BUCKET: bool.default(false),
  /** Time to open a connection to S3, and the longest an S3 call may sit idle (no byte either way, body included). */
  S3_CONNECT_TIMEOUT_MS: int(100).default(5000),
  S3_TIMEOUT_MS: int(100).default(60_000),
  PRESIGN_TTL_SECONDS: int(60, 7 * 24 * 3600).default(6 * 3600),
  /**
   * Key prefixes in S3_BUCKET that any project may import adapters from (besides its own projects/{id}/): where
   * operators drop adapters trained elsewhere. Never under projects/, which would hand out other tenants' bytes.
   */
  ADAPTER_IMPORT_PREFIXES: z
    .string()
    .default('imports/')
    .transform((v) => v.split(',').map((p) => p.trim()).filter((p) => p !== ''))
    .pipe(
      z.array(
        z
          .string()
          .regex(/^[^/].*\/$/, 'each prefix is relative and ends with / (e.g. imports/)')
          .refine((p) => !p.split('/').includes('..'), "a prefix may not contain '..'")
          .refine((p) => !p.startsWith('projects/'), 'a prefix may not lie under projects/ (tenant data)'),
      ),
    ),

  /** The local Docker engine that runs training containers (GPU hosts come with the jobs issue). */
  DOCKER_SOCKET: z.string().default('/var/run/docker.sock'),
  /**
   * Whether this process has a local Docker engine at DOCKER_SOCKET (CPU models train there). False for pods in
   * Kubernetes: /readyz then does not check it.
   */
  LOCAL_DOCKER_ENGINE: bool.default(true),
  /** Port of the /healthz and /readyz probe server of roles that serve no API (worker); unset: none. */
  PROBE_PORT: int(1, 65535).optional(),
  /** How often the Kubernetes runtime looks at a pod while it waits for it to start or to stop. */
  KUBERNETES_POLL_MS: int(50).default(2000),
  /** Docker network mode for training containers; `host` lets them reach an S3 server on loopback. */
  TRAINING_NETWORK: z.string().default('bridge'),
  /** Longest a single Docker API call may take (a stop adds its grace period); a hung engine is then retried. */
  DOCKER_CALL_TIMEOUT_MS: int(100).default(30_000),
  TINY_LORA_IMAGE: z.string().default('loraplane/tiny-lora:dev'),
  GPT_OSS_IMAGE: z.string().default('loraplane/gpt-oss-lora:latest'),
  TRAINING_TIMEOUT_SECONDS: int(1).default(24 * 3600),
  /** Seconds between SIGTERM and SIGKILL when a job is cancelled or times out (trainers checkpoint meanwhile). */
  TRAINING_STOP_GRACE_SECONDS: int(0, 3600).default(30),
  /** JSON file that adds models to the catalog or overrides built-in ones by id (see README, "Models catalog"). */
  MODEL_CATALOG_FILE: z.string().optional(),
  /** BullMQ lock of a running task; a worker killed with -9 hands its runs over once the lock lapses. */
  WORKER_LOCK_MS: int(1000).default(30_000),
  /** How often workers look for tasks whose lock lapsed (a dead worker's runs). */
  WORKER_STALLED_INTERVAL_MS: int(1000).default(30_000),
  /** First retry delay of a queue task after an infrastructure failure (doubles each time, 5 attempts in all). */
  TASK_RETRY_DELAY_MS: int(10).default(2000),
  /** Attempts of a queue task that hits an infrastructure failure (training, datasets, evals), the first included. */
  TASK_ATTEMPTS: int(1, 100).default(5),
  /**
   * How often each worker queue re-enqueues from Postgres what needs a queue entry that is missing (a crash between
   * a write and its enqueue, Redis losing data, a stop whose retries ran out).
   */
  QUEUE_SWEEP_INTERVAL_MS: int(100).default(60_000),
  /** How often a job that waits for GPUs looks again for free ones (also woken when a job frees GPUs). */
  PLACEMENT_RETRY_MS: int(100).default(15_000),

  /**
   * 32 bytes as 64 hex characters: seals secrets stored in Postgres (agent tokens, provider keys) with AES-256-GCM.
   * Required in production; dev mode falls back to a fixed, publicly known key (and says so at start).
   */
  SECRETS_KEY: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes)').optional(),
  /** How often the worker reconciles every serving pool's replicas with their desired adapters. */
  RECONCILE_INTERVAL_MS: int(100).default(5000),
  /** Time limit of one call to an adapter agent or a vLLM replica (status, desired state, probe). */
  AGENT_TIMEOUT_MS: int(100).default(10_000),

  /**
   * Largest answer body read from any upstream (vLLM, a provider API, an eval target, an agent): a bigger one fails
   * that call ("exceeded the limit"), so a tenant-controlled server cannot grow this process's memory.
   */
  UPSTREAM_MAX_RESPONSE_BYTES: int(1024).default(16 * 1024 * 1024),
  /** Largest streamed answer (all its events) passed through or read; an endless stream is cut off here. */
  UPSTREAM_MAX_STREAM_BYTES: int(1024).default(64 * 1024 * 1024),
  /** Gateway: largest request body of /v1/chat/completions and /v1/completions (413 above). */
  GATEWAY_MAX_BODY_BYTES: int(1024).default(4 * 1024 * 1024),
  /** Gateway: time limit for an upstream's first byte (a long non-streamed generation counts from the start). */
  GATEWAY_UPSTREAM_TIMEOUT_MS: int(100).default(600_000),
  /** Gateway: full reload of keys and routes this often, besides the change notifications (which come in ms). */
  GATEWAY_REFRESH_MS: int(100).default(30_000),
  /** Gateway: a replica whose connection was refused is skipped this long (the reconciler then marks it). */
  GATEWAY_REPLICA_BACKOFF_MS: int(0).default(2000),

  /**
   * Loopback and private networks (comma-separated CIDRs or addresses) that tenants' URLs may reach: eval and judge
   * targets, serving replicas, webhooks. Link-local and cloud metadata addresses are refused whatever this says.
   * `none`: no private network at all. Unset: loopback in dev mode (local replicas, the tests), none in production.
   */
  ALLOWED_PRIVATE_NETWORKS: z
    .string()
    .transform((v, ctx) => {
      if (v.trim() === 'none') return [];
      try {
        return v.split(',').filter((p) => p.trim() !== '').map(parseCidr);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /** First retry delay of a webhook delivery; doubles after each failed attempt. */
  WEBHOOK_RETRY_BASE_MS: int(10).default(5000),
  /** Attempts per delivery (the first included) before it is marked failed. */
  WEBHOOK_MAX_ATTEMPTS: int(1, 50).default(8),
  /** Time limit of one delivery attempt (connect, send, response). */
  WEBHOOK_TIMEOUT_MS: int(100, 300_000).default(10_000),
  /** How often the worker looks in Postgres for due deliveries (the queue may have lost them). */
  WEBHOOK_SWEEP_INTERVAL_MS: int(100).default(30_000),

  /**
   * Evals: price overrides/additions for API models as a JSON object, e.g. {"o3-mini": {"input": 1.0, "as_of":
   * "2025-09-01"}} (src/evals/prices.ts; a new model needs every field). Unset: the built-in dated list prices.
   */
  EVAL_PRICES: z
    .string()
    .transform((v, ctx) => {
      try {
        const parsed: unknown = JSON.parse(v);
        priceTable(parsed);
        return parsed as Record<string, unknown>;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof SyntaxError ? `not JSON: ${err.message}` : (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /**
   * Evals: a JSON file of prices in EVAL_PRICES' shape (e.g. docs/evals/prices.example.json: current models, each with
   * the day its price was read); read and checked at start. EVAL_PRICES, when both are set, wins per model.
   */
  EVAL_PRICES_FILE: z
    .string()
    .min(1)
    .transform((file, ctx) => {
      try {
        const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
        priceTable(parsed);
        return parsed as Record<string, unknown>;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `${file}: ${err instanceof SyntaxError ? `not JSON: ${err.message}` : (err as Error).message}` });
        return z.NEVER;
      }
    })
    .optional(),
  /**
   * Migration from OpenAI fine-tuning: OpenAI's API (the operator's setting, never a tenant's: no URL from a request).
   * Called through the shared transport and its address guard: a private address needs ALLOWED_PRIVATE_NETWORKS.
   */
  OPENAI_BASE_URL: z.string().url().default('https://api.openai.com/v1'),
  /** Evals: calls per item before it is recorded as failed (429 and 5xx are retried; other errors are not). */
  EVAL_MAX_ATTEMPTS: int(1, 20).default(6),
  /** Evals: first backoff after a 429/5xx without Retry-After (doubles each time, with jitter; capped at 60 s). */
  EVAL_RETRY_BASE_MS: int(1).default(500),
  /** Evals: an output is scored on its last this-many characters (targets choose their output's length). */
  EVAL_SCORE_MAX_CHARS: int(100, 10_000_000).default(100_000),
  /** Evals: items a suite may hold (an import, or a dataset made a suite); the worker holds a run's items in memory. */
  EVAL_SUITE_MAX_ITEMS: int(1, 10_000_000).default(50_000),
  /** Evals: time limit of one call to a target (a reasoning model can think for minutes). */
  EVAL_REQUEST_TIMEOUT_MS: int(100).default(300_000),

  /**
   * Gateway usage is counted in memory and added to Postgres this often (and at a graceful stop): a process killed
   * with -9 loses at most this window of usage. At most 5 s.
   */
  USAGE_FLUSH_INTERVAL_MS: int(100, 5000).default(5000),
  /**
   * Gateway: `false` records no usage, Prometheus request series or per-adapter figures for inference requests in
   * this process (limits still apply). For a gateway whose traffic nobody bills, and for measuring what the
   * recording costs (`npm run bench:gateway` runs a gateway each way).
   */
  GATEWAY_RECORD_USAGE: bool.default(true),
  /**
   * Prometheus metrics at GET /metrics. METRICS_PORT: served on that port alone, without a token (keep the port
   * off the public network). METRICS_TOKEN: served on PORT (every role; the worker then listens on PORT for it) to
   * `Authorization: Bearer <token>`. Neither: no /metrics.
   */
  METRICS_PORT: int(0, 65535).optional(),
  METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  /** Fair use: the job priority a project key may set is -N..N; admin keys set -100..100. */
  PROJECT_PRIORITY_MAX: int(0, 100).default(10),
  /** Per-project quotas (README "Fair use"): GPU jobs validating/queued/running at once. */
  QUOTA_GPU_JOBS: int(0).default(4),
  QUOTA_POOLS: int(0).default(10),
  /** Replicas of all the project's pools together. */
  QUOTA_REPLICAS: int(0).default(32),
  QUOTA_EVAL_TARGETS: int(0).default(50),
  /** Bytes of files kept (datasets not deleted) plus what pending uploads declared. */
  QUOTA_STORED_BYTES: int(0).default(100 * 1024 * 1024 * 1024),

  MAX_UPLOAD_BYTES: int(1).default(512 * 1024 * 1024),
  MAX_LINE_BYTES: int(1024).default(4 * 1024 * 1024),
  MIN_TRAINING_EXAMPLES: int(1).default(10),
  /**
   * Tokens are counted during an upload for the first this-many bytes; a larger file is registered at full ingest
   * speed and its token statistics are counted afterwards by the worker (stats.tokens_pending until then).
   */
  TOKENIZE_INLINE_BYTES: int(0).default(8 * 1024 * 1024),
  /** Uploads API: an upload not completed within this many seconds expires and its S3 parts are aborted. */
  UPLOAD_TTL_SECONDS: int(1).default(3600),
  /** How often the worker looks for expired uploads. */
  UPLOAD_SWEEP_INTERVAL_SECONDS: int(1).default(60),
  UPLOAD_MAX_PART_BYTES: int(1).default(64 * 1024 * 1024),
  /**
   * Uploads API: the lease of a complete, renewed every third of it while the file is assembled. A complete whose
   * process died holds the upload at most this long; then a retried complete, or the sweep once expired, takes over.
   */
  UPLOAD_COMPLETE_LEASE_SECONDS: int(5, 3600).default(120),
  /** The largest file the Uploads API assembles (OpenAI's limit is 8 GB). */
  UPLOAD_MAX_BYTES: int(1).default(8 * 1024 * 1024 * 1024),
});

export type Env = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Validate the environment; the error names every offending variable at once. */
export function parseEnv(env: Record<string, string | undefined>): Env {
  // Empty or blank strings mean "unset" (a blank line in .env must not become a value, nor PORT=" " port 0).
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const result = envSchema.safeParse(cleaned);
  const issues = result.success
    ? []
    : result.error.issues.map((issue) => {
        const name = issue.path.join('.') || '(root)';
        return issue.code === 'invalid_type' && cleaned[name] === undefined ? `${name}: required but not set` : `${name}: ${issue.message}`;
      });
  if (Boolean(cleaned.S3_ACCESS_KEY_ID) !== Boolean(cleaned.S3_SECRET_ACCESS_KEY)) {
    issues.push('S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY: set both or neither');
  }
  if (result.success && result.data.LORAPLANE_MODE === 'production' && !result.data.SECRETS_KEY) {
    issues.push('SECRETS_KEY: required in production (64 hex characters; e.g. `openssl rand -hex 32`)');
  }
  if (result.success) {
    // A trainer's presigned URLs must last to its wall-clock limit (plus the stop grace and an hour to upload), and
    // S3 refuses SigV4 presigned URLs valid for more than 7 days.
    const { TRAINING_TIMEOUT_SECONDS: limit, TRAINING_STOP_GRACE_SECONDS: grace } = result.data;
    if (limit + grace + 3600 > 7 * 24 * 3600) {
      issues.push(`TRAINING_TIMEOUT_SECONDS: at most ${7 * 24 * 3600 - 3600 - grace} (with TRAINING_STOP_GRACE_SECONDS=${grace}): a trainer's presigned URLs must outlive it, and S3 caps them at 7 days`);
    }
  }
  if (!result.success || issues.length > 0) throw new ConfigError(issues);
  const data = result.data;
  return data;
}
