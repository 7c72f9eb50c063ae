import { Config } from '../../src/config/config';
import { ConfigError, parseEnv } from '../../src/config/config.schema';

/** The variables without a default (SECRETS_KEY: in production); everything else comes from the schema's defaults. */
const REQUIRED = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/loraplane',
  REDIS_URL: 'redis://127.0.0.1:6379/0',
  S3_BUCKET: 'loraplane',
  SECRETS_KEY: 'ab'.repeat(32),
};

/** The ConfigError parseEnv throws for `env`; fails the test when it does not throw one. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    parseEnv(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`parseEnv accepted ${JSON.stringify(env)}`);
}

/** The variable names a ConfigError blames, in order. */
const blamed = (err: ConfigError) => err.issues.map((i) => i.split(':')[0]);

describe('parseEnv: defaults', () => {
  it('fills every optional variable with its documented default', () => {
    const env = parseEnv(REQUIRED);
    expect(env).toEqual({
      ...REQUIRED,
      LORAPLANE_MODE: 'production',
      LORAPLANE_ROLE: 'all',
      HOST: '0.0.0.0',
      PORT: 8080,
      LOG_LEVEL: 'info',
      QUEUE_PREFIX: 'loraplane',
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: true,
      S3_CREATE_BUCKET: false,
      S3_CONNECT_TIMEOUT_MS: 5000,
      S3_TIMEOUT_MS: 60_000,
      PRESIGN_TTL_SECONDS: 6 * 3600,
      ADAPTER_IMPORT_PREFIXES: ['imports/'],
      DOCKER_SOCKET: '/var/run/docker.sock',
      DOCKER_CALL_TIMEOUT_MS: 30_000,
      LOCAL_DOCKER_ENGINE: true,
      KUBERNETES_POLL_MS: 2000,
      TRAINING_NETWORK: 'bridge',
      TINY_LORA_IMAGE: 'loraplane/tiny-lora:dev',
      GPT_OSS_IMAGE: 'loraplane/gpt-oss-lora:latest',
      TRAINING_TIMEOUT_SECONDS: 24 * 3600,
      TRAINING_STOP_GRACE_SECONDS: 30,
      WORKER_LOCK_MS: 30_000,
      WORKER_STALLED_INTERVAL_MS: 30_000,
      PLACEMENT_RETRY_MS: 15_000,
      RECONCILE_INTERVAL_MS: 5000,
      AGENT_TIMEOUT_MS: 10_000,
      TASK_RETRY_DELAY_MS: 2000,
      TASK_ATTEMPTS: 5,
      QUEUE_SWEEP_INTERVAL_MS: 60000,
      WEBHOOK_RETRY_BASE_MS: 5000,
      WEBHOOK_MAX_ATTEMPTS: 8,
      WEBHOOK_TIMEOUT_MS: 10_000,
      USAGE_FLUSH_INTERVAL_MS: 5000,
      WEBHOOK_SWEEP_INTERVAL_MS: 30_000,
      OPENAI_BASE_URL: 'https://api.openai.com/v1',
      EVAL_MAX_ATTEMPTS: 6,
      EVAL_RETRY_BASE_MS: 500,
      EVAL_SCORE_MAX_CHARS: 100_000,
      EVAL_SUITE_MAX_ITEMS: 50_000,
      EVAL_REQUEST_TIMEOUT_MS: 300_000,
      LOG_FORMAT: 'auto',
      UPSTREAM_MAX_RESPONSE_BYTES: 16 * 1024 * 1024,
      UPSTREAM_MAX_STREAM_BYTES: 64 * 1024 * 1024,
      GATEWAY_MAX_BODY_BYTES: 4 * 1024 * 1024,
      GATEWAY_RECORD_USAGE: true,
      GATEWAY_UPSTREAM_TIMEOUT_MS: 600_000,
      GATEWAY_REFRESH_MS: 30_000,
      GATEWAY_REPLICA_BACKOFF_MS: 2000,
      MAX_UPLOAD_BYTES: 512 * 1024 * 1024,
      MAX_LINE_BYTES: 4 * 1024 * 1024,
      MIN_TRAINING_EXAMPLES: 10,
      TOKENIZE_INLINE_BYTES: 8 * 1024 * 1024,
      UPLOAD_TTL_SECONDS: 3600,
      UPLOAD_SWEEP_INTERVAL_SECONDS: 60,
      UPLOAD_MAX_PART_BYTES: 64 * 1024 * 1024,
      UPLOAD_COMPLETE_LEASE_SECONDS: 120,
      PROJECT_PRIORITY_MAX: 10,
      QUOTA_GPU_JOBS: 4,
      QUOTA_POOLS: 10,
      QUOTA_REPLICAS: 32,
      QUOTA_EVAL_TARGETS: 50,
      QUOTA_STORED_BYTES: 100 * 1024 * 1024 * 1024,
      UPLOAD_MAX_BYTES: 8 * 1024 * 1024 * 1024,
    });
    // Optional variables without a default stay absent rather than becoming '' or null.
    for (const name of ['LORAPLANE_API_KEY', 'PUBLIC_URL', 'S3_ENDPOINT', 'S3_PUBLIC_ENDPOINT', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'EVAL_PRICES']) {
      expect(env).not.toHaveProperty(name);
    }
  });

  it('coerces numbers and the four spellings of a boolean', () => {
    const env = parseEnv({ ...REQUIRED, PORT: '9000', MAX_LINE_BYTES: '1024', S3_FORCE_PATH_STYLE: '0', S3_CREATE_BUCKET: '1' });
    expect(env.PORT).toBe(9000);
    expect(env.MAX_LINE_BYTES).toBe(1024);
    expect(env.S3_FORCE_PATH_STYLE).toBe(false);
    expect(env.S3_CREATE_BUCKET).toBe(true);
    expect(parseEnv({ ...REQUIRED, S3_FORCE_PATH_STYLE: 'false', S3_CREATE_BUCKET: 'true' })).toMatchObject({ S3_FORCE_PATH_STYLE: false, S3_CREATE_BUCKET: true });
  });

  it('ignores variables it does not know (the real process.env is full of them)', () => {
    const env = parseEnv({ ...REQUIRED, PATH: '/usr/bin', HOME: '/root' });
    expect(env).not.toHaveProperty('PATH');
  });
});

describe('parseEnv: errors name every offending variable at once', () => {
  it('requires SECRETS_KEY in production only, as 64 hex characters', () => {
    const { SECRETS_KEY: _unused, ...withoutKey } = REQUIRED;
    expect(blamed(configError(withoutKey))).toEqual(['SECRETS_KEY']);
    expect(blamed(configError({ ...REQUIRED, SECRETS_KEY: 'short' }))).toEqual(['SECRETS_KEY']);
    expect(parseEnv({ ...withoutKey, LORAPLANE_MODE: 'dev' })).not.toHaveProperty('SECRETS_KEY');
  });

  it('lists all three missing required variables in one ConfigError', () => {
    const err = configError({});
    expect(err.name).toBe('ConfigError');
    expect(err).toBeInstanceOf(Error);
    expect(err.issues).toEqual([
      'DATABASE_URL: required but not set',
      'REDIS_URL: required but not set',
      'S3_BUCKET: required but not set',
    ]);
    // The message is what main() prints: one bullet per variable.
    expect(err.message).toBe(
      'Invalid configuration:\n  - DATABASE_URL: required but not set\n  - REDIS_URL: required but not set\n  - S3_BUCKET: required but not set',
    );
  });

  it('names each bad value with the reason, not as "not set"', () => {
    const err = configError({ ...REQUIRED, PORT: 'abc', LORAPLANE_ROLE: 'bogus', S3_BUCKET: 'Bad_Name', REDIS_URL: 'http://x' });
    expect(blamed(err).sort()).toEqual(['LORAPLANE_ROLE', 'PORT', 'REDIS_URL', 'S3_BUCKET']);
    const byName = Object.fromEntries(err.issues.map((i) => [i.split(':')[0], i]));
    expect(byName.REDIS_URL).toBe('REDIS_URL: must be a redis:// URL');
    expect(byName.S3_BUCKET).toBe('S3_BUCKET: must be a valid S3 bucket name');
    expect(byName.LORAPLANE_ROLE).toMatch(/all.*api.*worker/);
    expect(byName.PORT).toMatch(/number/i);
    expect(err.issues.join('\n')).not.toMatch(/not set/);
  });

  it('reports missing and malformed variables together', () => {
    const err = configError({ REDIS_URL: 'redis://x', S3_BUCKET: 'ok-bucket', LOG_LEVEL: 'loud' });
    expect(err.issues).toContain('DATABASE_URL: required but not set');
    expect(blamed(err).sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL']);
  });

  it.each([
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['DATABASE_URL', 'mysql://db/x'],
    ['DATABASE_URL', 'db.example.com:5432'],
    ['REDIS_URL', 'localhost:6379'],
    ['S3_BUCKET', 'ab'], // under 3 characters
    ['S3_BUCKET', '-bucket'],
    ['S3_BUCKET', 'bucket-'],
    ['S3_BUCKET', 'b'.repeat(64)],
    ['S3_ENDPOINT', 'not a url'],
    ['PUBLIC_URL', 'localhost'],
    ['LORAPLANE_MODE', 'staging'],
    ['LORAPLANE_API_KEY', 'too-short'], // a bootstrap key must be at least 20 characters
    ['QUEUE_PREFIX', 'lora:plane'], // ':' is BullMQ's separator
    ['S3_FORCE_PATH_STYLE', 'yes'],
    ['PRESIGN_TTL_SECONDS', '59'],
    ['PRESIGN_TTL_SECONDS', String(7 * 24 * 3600 + 1)],
    ['TRAINING_TIMEOUT_SECONDS', '0'],
    ['WORKER_LOCK_MS', '999'],
    ['MAX_UPLOAD_BYTES', '0'],
    ['MAX_LINE_BYTES', '1023'],
    ['MIN_TRAINING_EXAMPLES', '0'],
    ['ALLOWED_PRIVATE_NETWORKS', '10.0.0.0/33'],
    ['ALLOWED_PRIVATE_NETWORKS', 'intranet'],
    ['WEBHOOK_MAX_ATTEMPTS', '0'],
    ['WEBHOOK_MAX_ATTEMPTS', '51'],
    ['WEBHOOK_TIMEOUT_MS', '99'],
    ['WEBHOOK_RETRY_BASE_MS', '9'],
  ])('rejects %s=%s and names it', (name, value) => {
    const err = configError({ ...REQUIRED, [name]: value });
    expect(blamed(err)).toEqual([name]);
    expect(err.issues[0]).not.toMatch(/not set/);
  });

  it.each([
    ['DATABASE_URL', 'postgres://u:p@db:5432/x'],
    ['REDIS_URL', 'rediss://cache:6380/2'],
    ['S3_BUCKET', 'my.bucket-01'],
    ['S3_BUCKET', 'abc'],
    ['S3_BUCKET', 'b'.repeat(63)],
    ['PORT', '0'],
    ['PORT', '65535'],
    ['PRESIGN_TTL_SECONDS', String(7 * 24 * 3600)],
  ])('accepts the boundary value %s=%s', (name, value) => {
    expect(parseEnv({ ...REQUIRED, [name]: value })).toHaveProperty(name);
  });
});

describe('parseEnv: empty means unset', () => {
  it('reports an empty required variable as not set, not as a bad value', () => {
    const err = configError({ ...REQUIRED, DATABASE_URL: '' });
    expect(err.issues).toEqual(['DATABASE_URL: required but not set']);
  });

  it('applies the default for an empty optional variable and leaves empty optional strings absent', () => {
    const env = parseEnv({ ...REQUIRED, PORT: '', LORAPLANE_API_KEY: '', PUBLIC_URL: '', S3_ACCESS_KEY_ID: '', S3_SECRET_ACCESS_KEY: '', LORAPLANE_ROLE: undefined });
    expect(env.PORT).toBe(8080);
    expect(env.LORAPLANE_ROLE).toBe('all');
    expect(env).not.toHaveProperty('LORAPLANE_API_KEY');
    expect(env).not.toHaveProperty('PUBLIC_URL');
    expect(env).not.toHaveProperty('S3_ACCESS_KEY_ID');
  });

  // BUG (see report): z.coerce.number() turns a blank string into 0, so PORT=" " silently means "any free port"
  // and MAX_UPLOAD_BYTES=" " fails with a confusing "too small". A whitespace-only value is as unset as ''.
  it('treats a whitespace-only value as unset too (PORT=" " is not port 0)', () => {
    expect(parseEnv({ ...REQUIRED, PORT: '  ' }).PORT).toBe(8080);
  });
});

describe('parseEnv: S3 credentials come in pairs', () => {
  it('rejects an access key id without a secret, and a secret without an id', () => {
    for (const half of [{ S3_ACCESS_KEY_ID: 'AKIAEXAMPLE' }, { S3_SECRET_ACCESS_KEY: 'secret' }]) {
      const err = configError({ ...REQUIRED, ...half });
      expect(err.issues).toEqual(['S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY: set both or neither']);
    }
  });

  it('accepts both, or neither (the AWS SDK default chain)', () => {
    expect(parseEnv({ ...REQUIRED, S3_ACCESS_KEY_ID: 'AKIAEXAMPLE', S3_SECRET_ACCESS_KEY: 'secret' })).toMatchObject({
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: 'secret',
    });
    expect(parseEnv(REQUIRED).S3_ACCESS_KEY_ID).toBeUndefined();
  });

  it('does not echo the secret value into the error', () => {
    const err = configError({ ...REQUIRED, S3_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI-very-secret' });
    expect(err.message).not.toContain('wJalrXUtnFEMI');
  });

  // BUG (see report): the pair check runs only after the schema passed, so an operator who forgot DATABASE_URL and
  // half of the S3 pair learns about the second mistake only on the next start. parseEnv promises every variable at once.
  it('reports a half S3 pair together with the schema errors', () => {
    const err = configError({ REDIS_URL: 'redis://x', S3_BUCKET: 'ok-bucket', S3_ACCESS_KEY_ID: 'AKIAEXAMPLE' });
    expect(err.issues).toContain('DATABASE_URL: required but not set');
    expect(err.issues).toContain('S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY: set both or neither');
  });
});

describe('Config', () => {
  it.each([
    ['all', true, true, true],
    ['api', true, false, false],
    ['worker', false, true, false],
    ['gateway', false, false, true],
  ])('role %s runs api=%s worker=%s gateway=%s', (role, api, worker, gateway) => {
    const config = Config.fromEnv({ ...REQUIRED, LORAPLANE_ROLE: role });
    expect([config.runsApi, config.runsWorker, config.runsGateway]).toEqual([api, worker, gateway]);
  });

  it('derives the public URL from PORT unless PUBLIC_URL is set', () => {
    expect(Config.fromEnv({ ...REQUIRED, PORT: '9123' }).publicUrl).toBe('http://localhost:9123');
    expect(Config.fromEnv({ ...REQUIRED, PUBLIC_URL: 'https://lp.example.com' }).publicUrl).toBe('https://lp.example.com');
  });

  it('throws the same ConfigError as parseEnv', () => {
    expect(() => Config.fromEnv({})).toThrow(ConfigError);
  });
});

describe('parseEnv: EVAL_PRICES', () => {
  it('takes a JSON object of price overrides and names the variable and the field when one is wrong', () => {
    expect(parseEnv({ ...REQUIRED, EVAL_PRICES: '{"o3-mini":{"input":1}}' }).EVAL_PRICES).toEqual({ 'o3-mini': { input: 1 } });
    expect(configError({ ...REQUIRED, EVAL_PRICES: '{"o3-mini":{"input":-1}}' }).issues[0]).toMatch(/^EVAL_PRICES: prices\.o3-mini\.input/);
    expect(configError({ ...REQUIRED, EVAL_PRICES: 'nope' }).issues[0]).toMatch(/^EVAL_PRICES: not JSON/);
  });
});
