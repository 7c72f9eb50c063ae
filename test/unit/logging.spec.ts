import { Logger } from '@nestjs/common';
import type { Logger as PinoLogger } from 'pino';
import { createRootLogger, JsonLogger, prettyLine, scrubSecrets } from '../../src/common/logger';
import { requestContext } from '../../src/common/request-context';

/**
 * createRootLogger always writes to stdout. To read its lines, pino itself is swapped for the real pino given an
 * in-memory destination: every option createRootLogger passes (redact, hooks, mixin, formatters) still applies.
 * (Proposed instead: an optional `destination` parameter on createRootLogger; see the report.)
 */
const mockWritten: string[] = [];
jest.mock('pino', () => {
  const actual = jest.requireActual('pino');
  const withCapture = (options: object) => actual(options, { write: (line: string) => mockWritten.push(line) });
  return Object.assign(withCapture, actual, { default: withCapture, pino: withCapture });
});

/** The JSON lines written since the last call. */
function lines(): Record<string, unknown>[] {
  return mockWritten.splice(0).map((l) => JSON.parse(l));
}

const KEY = `lp_${'A1b2C3d4E5'.repeat(3)}zz`; // the shape of a real key: lp_ + 32 base62
const SIGNED =
  'https://s3.example.com/b/projects/p1/train.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=21600&X-Amz-Signature=0f1e2d3c4b5a69788796a5b4c3d2e1f0&X-Amz-SignedHeaders=host';

describe('scrubSecrets', () => {
  it('replaces API keys wherever they appear in free text', () => {
    expect(scrubSecrets(`Authorization: Bearer ${KEY}`)).toBe('Authorization: Bearer lp_[redacted]');
    expect(scrubSecrets(`{"api_key":"${KEY}","other":"${KEY}"}`)).toBe('{"api_key":"lp_[redacted]","other":"lp_[redacted]"}');
    expect(scrubSecrets(`key=${KEY}.`)).toBe('key=lp_[redacted].');
  });

  it('leaves things that only look a bit like keys', () => {
    for (const text of ['lp_short', 'help_AAAAAAAAAAAAAAAAAAAAAAAAA', 'the lp_ prefix']) expect(scrubSecrets(text)).toBe(text);
  });

  it('removes the signature and credential of a presigned URL but keeps the rest readable', () => {
    const scrubbed = scrubSecrets(`GET ${SIGNED} failed`);
    expect(scrubbed).not.toContain('0f1e2d3c4b5a');
    expect(scrubbed).not.toContain('AKIAEXAMPLE');
    expect(scrubbed).toContain('X-Amz-Signature=[redacted]');
    expect(scrubbed).toContain('X-Amz-Credential=[redacted]');
    expect(scrubbed).toContain('X-Amz-Date=20260101T000000Z&X-Amz-Expires=21600');
    expect(scrubbed).toContain('https://s3.example.com/b/projects/p1/train.jsonl?');
    expect(scrubbed.endsWith('&X-Amz-SignedHeaders=host failed')).toBe(true);
  });

  it('stops a signature at a quote, so JSON around the URL survives', () => {
    expect(scrubSecrets('{"url":"https://x/y?Signature=abc123"}')).toBe('{"url":"https://x/y?Signature=[redacted]"}');
  });

  it('is idempotent', () => {
    const once = scrubSecrets(`${KEY} ${SIGNED}`);
    expect(scrubSecrets(once)).toBe(once);
  });
});

describe('createRootLogger', () => {
  beforeEach(() => mockWritten.splice(0));

  it('writes one JSON object per line with level label, service and ISO time', () => {
    const logger = createRootLogger('info');
    logger.info({ jobId: 'ftjob-1' }, 'job started');
    expect(mockWritten).toHaveLength(1);
    expect(mockWritten[0].endsWith('\n')).toBe(true);
    const [line] = lines();
    expect(line).toMatchObject({ level: 'info', service: 'loraplane', jobId: 'ftjob-1', msg: 'job started' });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
  });

  it('honours the level', () => {
    const logger = createRootLogger('warn');
    logger.info('hidden');
    logger.warn('shown');
    expect(lines().map((l) => l.msg)).toEqual(['shown']);
  });

  it('scrubs keys and signed URLs from messages and their format arguments', () => {
    const logger = createRootLogger('info');
    logger.info(`bootstrap key ${KEY}`);
    logger.warn({ attempt: 2 }, 'download of %s failed', SIGNED);
    const [first, second] = lines();
    expect(first.msg).toBe('bootstrap key lp_[redacted]');
    expect(second.msg).toContain('X-Amz-Signature=[redacted]');
    expect(JSON.stringify(second)).not.toContain('0f1e2d3c4b5a');
  });

  it('redacts authorization headers and secret-bearing fields by path', () => {
    const logger = createRootLogger('info');
    logger.info({ req: { method: 'GET', headers: { authorization: `Bearer ${KEY}`, 'user-agent': 'openai/7' } } }, 'request');
    logger.info({ headers: { authorization: `Bearer ${KEY}` } }, 'outgoing');
    logger.info({ call: { Authorization: 'Basic Zm9vOmJhcg==' } }, 'proxy');
    logger.info({ spec: { LORAPLANE_JOB_SPEC: '{"output":{}}' }, s3: { secretAccessKey: 'wJalr', S3_SECRET_ACCESS_KEY: 'wJalr' } }, 'env');
    logger.info({ file: { url: SIGNED }, output: { fields: { Policy: 'eyJ', 'X-Amz-Signature': 'abc' } }, key: { apiKey: KEY, password: 'pw', secret: 's' } }, 'spec');
    const [req, out, proxy, env, spec] = lines();
    expect(req.req).toEqual({ method: 'GET', headers: { authorization: '[redacted]', 'user-agent': 'openai/7' } });
    expect(out.headers).toEqual({ authorization: '[redacted]' });
    expect(proxy.call).toEqual({ Authorization: '[redacted]' });
    expect(env).toMatchObject({ spec: { LORAPLANE_JOB_SPEC: '[redacted]' }, s3: { secretAccessKey: '[redacted]', S3_SECRET_ACCESS_KEY: '[redacted]' } });
    expect(spec).toMatchObject({ file: { url: '[redacted]' }, output: { fields: '[redacted]' }, key: { apiKey: '[redacted]', password: '[redacted]', secret: '[redacted]' } });
  });

  it('adds the request id and project of the current request, and nothing outside one', () => {
    const logger = createRootLogger('info');
    requestContext.run({ requestId: 'req_abc', projectId: 'proj_1' }, () => logger.info('inside'));
    logger.info('outside');
    const [inside, outside] = lines();
    expect(inside).toMatchObject({ requestId: 'req_abc', projectId: 'proj_1', msg: 'inside' });
    expect(outside).not.toHaveProperty('requestId');
    expect(outside).not.toHaveProperty('projectId');
  });

  // BUG (see report): the redact paths are `*.authorization`, `*.url`, ... which pino matches one level down only.
  // A secret at the top level of the logged object is written as is, and JsonLogger puts the fields of every Nest
  // `logger.warn({ url }, '...')` call at the top level. The hook scrubs string arguments, not object fields.
  it('redacts top-level secret fields too', () => {
    const logger = createRootLogger('info');
    const secrets: Record<string, string> = {
      authorization: `Bearer ${KEY}`,
      apiKey: KEY,
      url: SIGNED,
      LORAPLANE_JOB_SPEC: '{"output":{"fields":{"X-Amz-Signature":"abc"}}}',
    };
    for (const [field, value] of Object.entries(secrets)) logger.info({ [field]: value }, 'top level');
    const leaked = lines().flatMap((line) => Object.keys(secrets).filter((f) => f in line && line[f] !== '[redacted]'));
    expect(leaked).toEqual([]);
  });
});

/** A pino stand-in that records what JsonLogger hands it. */
function recordingPino() {
  const calls: { level: string; fields: Record<string, unknown>; msg: unknown }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg?: unknown) => calls.push({ level, fields, msg });
  const fake = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal') };
  return { calls, logger: fake as unknown as PinoLogger };
}

const STACK = 'Error: boom\n    at JobRunner.run (/app/dist/training/job-runner.js:88:13)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)';

describe('JsonLogger', () => {
  it('maps each Nest level to a pino level', () => {
    const { calls, logger } = recordingPino();
    const json = new JsonLogger(logger);
    json.log('l');
    json.error('e');
    json.warn('w');
    json.debug('d');
    json.verbose('v');
    json.fatal('f');
    expect(calls.map((c) => [c.level, c.msg])).toEqual([
      ['info', 'l'],
      ['error', 'e'],
      ['warn', 'w'],
      ['debug', 'd'],
      ['trace', 'v'],
      ['fatal', 'f'],
    ]);
  });

  describe('called the way Nest calls it', () => {
    // Nest's Logger appends the instance context as the last argument; these go through the real Nest Logger.
    let calls: ReturnType<typeof recordingPino>['calls'];
    beforeEach(() => {
      const recording = recordingPino();
      calls = recording.calls;
      Logger.overrideLogger(new JsonLogger(recording.logger));
    });

    it('a plain message carries its context', () => {
      new Logger('DatasetsService').log('created bucket loraplane');
      expect(calls).toEqual([{ level: 'info', fields: { context: 'DatasetsService' }, msg: 'created bucket loraplane' }]);
    });

    it('a structured message keeps its fields and its text', () => {
      const err = new Error('socket hang up');
      new Logger('JobRunner').warn({ err, containerId: 'c1' }, 'could not remove container');
      expect(calls).toEqual([{ level: 'warn', fields: { context: 'JobRunner', err, containerId: 'c1' }, msg: 'could not remove container' }]);
    });

    it('a structured message without text', () => {
      new Logger('JobRunner').log({ jobId: 'ftjob-1' });
      expect(calls).toEqual([{ level: 'info', fields: { context: 'JobRunner', jobId: 'ftjob-1' }, msg: undefined }]);
    });

    it('an Error becomes err with its message as the text', () => {
      const err = new Error('boom');
      new Logger('ErrorFilter').error(err);
      expect(calls).toEqual([{ level: 'error', fields: { context: 'ErrorFilter', err }, msg: 'boom' }]);
    });

    it('a message and a stack: the stack is a field, not the text', () => {
      new Logger('ExceptionsHandler').error('Cannot read properties of undefined', STACK);
      expect(calls).toEqual([{ level: 'error', fields: { context: 'ExceptionsHandler', stack: STACK }, msg: 'Cannot read properties of undefined' }]);
    });

    it("demotes Nest's route listing to debug (not printed at every start)", () => {
      Logger.log('Mapped {/v1/models, GET} route', 'RouterExplorer');
      expect(calls).toEqual([{ level: 'debug', fields: { context: 'RouterExplorer' }, msg: 'Mapped {/v1/models, GET} route' }]);
    });

    it('a static call with an explicit context', () => {
      Logger.log('Nest application successfully started', 'NestApplication');
      expect(calls).toEqual([{ level: 'info', fields: { context: 'NestApplication' }, msg: 'Nest application successfully started' }]);
    });

    it('extra strings after a plain message are appended to it', () => {
      new Logger('X').log('a', 'b');
      expect(calls).toEqual([{ level: 'info', fields: { context: 'X' }, msg: 'a b' }]);
    });

    // BUG (see report): without a context, Nest's own ConsoleLogger reads `error(message, stack)` as message and
    // stack. JsonLogger takes the last string as the context first, so the stack lands in `context` and `stack` is
    // missing. Fix: pop the last string as context only when it is not stack-shaped.
    it('a message and a stack without context keep the stack as the stack', () => {
      new Logger().error('boom', STACK);
      expect(calls).toEqual([{ level: 'error', fields: { context: undefined, stack: STACK }, msg: 'boom' }]);
    });
  });

  it('writes real JSON lines through createRootLogger, scrubbed', () => {
    mockWritten.splice(0);
    const json = new JsonLogger(createRootLogger('info'));
    json.warn({ attempt: 1 }, `retrying with ${KEY}`, 'TrainingProcessor');
    const [line] = lines();
    expect(line).toMatchObject({ level: 'warn', context: 'TrainingProcessor', attempt: 1, msg: 'retrying with lp_[redacted]' });
  });
});

describe('prettyLine', () => {
  it('renders a JSON record as one readable line: time, level, context, message, fields', () => {
    const line = prettyLine(JSON.stringify({ level: 'warn', time: '2026-12-02T19:58:01.123Z', service: 'loraplane', context: 'Reconciler', msg: 'agent unreachable', replica: 'local-0', failures: 2 }));
    expect(line).toBe('19:58:01.123 WARN  [Reconciler] agent unreachable  replica=local-0 failures=2\n');
  });
});
