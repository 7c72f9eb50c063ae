import {
  ArgumentsHost,
  BadRequestException,
  HttpException,
  InternalServerErrorException,
  Logger,
  NotFoundException,
  PayloadTooLargeException,
} from '@nestjs/common';
import { DomainError, ErrorCode, errorCodes } from '../../src/common/domain-error';
import { ErrorFilter } from '../../src/common/http/error.filter';

/** The parts of an express Response the filter uses, recording what it was told. */
class FakeResponse {
  headersSent = false;
  ended = false;
  statusCode?: number;
  body?: unknown;
  readonly headers: Record<string, string> = {};
  setHeader(name: string, value: string) {
    this.headers[name.toLowerCase()] = value;
    return this;
  }
  status(code: number) {
    this.statusCode = code;
    return this;
  }
  json(body: unknown) {
    this.body = body;
    return this;
  }
  end() {
    this.ended = true;
    return this;
  }
}

function hostFor(res: FakeResponse): ArgumentsHost {
  return { switchToHttp: () => ({ getResponse: () => res, getRequest: () => ({}), getNext: () => () => undefined }) } as unknown as ArgumentsHost;
}

/** The documented mapping, written out so that a change to errorCodes has to be a deliberate one. */
const EXPECTED: Record<ErrorCode, [number, string]> = {
  invalid_request: [400, 'invalid_request_error'],
  invalid_file: [400, 'invalid_request_error'],
  invalid_adapter: [400, 'invalid_request_error'],
  unknown_model: [400, 'invalid_request_error'],
  dataset_in_use: [400, 'invalid_request_error'],
  invalid_state: [400, 'invalid_request_error'],
  version_in_use: [400, 'invalid_request_error'],
  incompatible_adapter: [400, 'invalid_request_error'],
  gate_not_met: [400, 'invalid_request_error'],
  payload_too_large: [413, 'invalid_request_error'],
  quota_gpu_jobs: [403, 'insufficient_quota'],
  quota_pools: [403, 'insufficient_quota'],
  quota_replicas: [403, 'insufficient_quota'],
  quota_eval_targets: [403, 'insufficient_quota'],
  quota_stored_bytes: [403, 'insufficient_quota'],
  unauthorized: [401, 'invalid_request_error'],
  forbidden: [403, 'permission_error'],
  not_found: [404, 'invalid_request_error'],
  model_not_found: [404, 'invalid_request_error'],
  upstream_error: [502, 'server_error'],
  rate_limit_exceeded: [429, 'requests'],
  service_unavailable: [503, 'server_error'],
  internal: [500, 'server_error'],
};

describe('ErrorFilter', () => {
  let filter: ErrorFilter;
  let logError: jest.SpyInstance;

  beforeEach(() => {
    filter = new ErrorFilter();
    logError = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  describe('domain errors', () => {
    it('knows every code (the table above covers errorCodes exactly)', () => {
      expect(Object.keys(errorCodes).sort()).toEqual(Object.keys(EXPECTED).sort());
    });

    it.each(Object.entries(EXPECTED))('%s -> %j in the OpenAI envelope', (code, [status, type]) => {
      const { status: got, body } = filter.toResponse(new DomainError(code as ErrorCode, `something about ${code}`, 'training_file'));
      expect(got).toBe(status);
      // A server-side error may also carry an error id (checked below); the envelope is the same.
      const { error_id: _id, ...error } = body.error;
      expect({ error }).toEqual({ error: { message: `something about ${code}`, type, param: 'training_file', code } });
      if (status < 500) expect(body.error).not.toHaveProperty('error_id');
    });

    it('sends param null when no field is at fault', () => {
      expect(filter.toResponse(new DomainError('not_found', 'No such file')).body.error.param).toBeNull();
    });

    it('merges details into the error object', () => {
      const err = new DomainError('dataset_in_use', 'file-1 is used by running jobs', 'file_id', { details: { job_ids: ['ftjob-a', 'ftjob-b'] } });
      expect(filter.toResponse(err).body).toEqual({
        error: { message: 'file-1 is used by running jobs', type: 'invalid_request_error', param: 'file_id', code: 'dataset_in_use', job_ids: ['ftjob-a', 'ftjob-b'] },
      });
    });

    it('never maps bad input to a status the openai SDK retries (408, 409, 429, 5xx)', () => {
      for (const [code, { status, type }] of Object.entries(errorCodes)) {
        if (type === 'server_error') continue; // the only codes that are not the caller's fault
        if (code === 'rate_limit_exceeded') continue; // not bad input: a limit the SDK should retry after Retry-After
        expect({ code, status, retried: [408, 409, 429].includes(status) || status >= 500 }).toEqual({ code, status, retried: false });
        expect(status).toBeGreaterThanOrEqual(400);
      }
      const serverSide = Object.entries(errorCodes).filter(([, v]) => v.status >= 500).map(([k]) => k).sort();
      expect(serverSide).toEqual(['internal', 'service_unavailable', 'upstream_error']);
    });

    it('logs server-side domain errors and stays quiet about the caller\'s mistakes', () => {
      filter.toResponse(new DomainError('invalid_request', 'bad'));
      filter.toResponse(new DomainError('not_found', 'gone'));
      expect(logError).not.toHaveBeenCalled();
      const down = new DomainError('service_unavailable', 'Docker engine: start failed');
      filter.toResponse(down);
      expect(logError).toHaveBeenCalledTimes(1);
      expect(logError.mock.calls[0][0]).toMatchObject({ err: down, code: 'service_unavailable' });
    });

    it('sends Retry-After for service_unavailable with a retry hint, and status and body', () => {
      const res = new FakeResponse();
      filter.catch(new DomainError('service_unavailable', 'S3 is down', null, { retryAfterSeconds: 5 }), hostFor(res));
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.headers).not.toHaveProperty('x-should-retry'); // a 503 is worth retrying
      expect(res.body).toMatchObject({ error: { message: 'S3 is down', type: 'server_error', param: null, code: 'service_unavailable' } });
    });

    it('sends retry-after-ms beside Retry-After where the wait is known finer than seconds (the openai SDKs read it first)', () => {
      const res = new FakeResponse();
      filter.catch(new DomainError('rate_limit_exceeded', 'slow down', null, { retryAfterSeconds: 1, retryAfterMs: 149.2 }), hostFor(res));
      expect(res.statusCode).toBe(429);
      expect(res.headers).toEqual({ 'retry-after': '1', 'retry-after-ms': '150' });
      // The gateway writes its own heads from the same answer.
      expect(filter.toResponse(new DomainError('rate_limit_exceeded', 'slow down', null, { retryAfterSeconds: 2, retryAfterMs: 1500 })).headers).toEqual({ 'retry-after': '2', 'retry-after-ms': '1500' });
      expect(filter.toResponse(new Error('boom')).headers).toEqual({ 'x-should-retry': 'false' });
    });

    it('sends no Retry-After without a hint', () => {
      const res = new FakeResponse();
      filter.catch(new DomainError('invalid_request', 'bad', 'model'), hostFor(res));
      expect(res.statusCode).toBe(400);
      expect(res.headers).toEqual({});
    });
  });

  describe("Nest's HTTP exceptions", () => {
    it.each<[string, HttpException, number, ErrorCode, string]>([
      ['an unknown route', new NotFoundException('Cannot GET /v1/nope'), 404, 'not_found', 'Cannot GET /v1/nope'],
      ['a body over the parser limit', new PayloadTooLargeException('request entity too large'), 413, 'payload_too_large', 'request entity too large'],
      ['a body that is not JSON', new BadRequestException('Unexpected token } in JSON'), 400, 'invalid_request', 'Unexpected token } in JSON'],
      ['a plain string response', new HttpException('I am a teapot', 418), 418, 'invalid_request', 'I am a teapot'],
    ])('maps %s, keeping its status', (_name, exception, status, code, message) => {
      const { status: got, body } = filter.toResponse(exception);
      expect(got).toBe(status);
      expect(body).toEqual({ error: { message, type: errorCodes[code].type, param: null, code } });
    });

    it('uses the default message of an exception created without one', () => {
      expect(filter.toResponse(new NotFoundException()).body.error.message).toBe('Not Found');
    });
  });

  describe('unknown errors', () => {
    it('answer 500 with an error id that is also the one logged, and do not leak the message', () => {
      const boom = new Error('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2');
      const { status, body } = filter.toResponse(boom);
      expect(status).toBe(500);
      const id = body.error.error_id as string;
      expect(id).toMatch(/^err_[0-9A-Za-z]{16}$/);
      expect(body).toEqual({
        error: { message: `Internal server error (error id ${id})`, type: 'server_error', param: null, code: 'internal', error_id: id },
      });
      expect(JSON.stringify(body)).not.toContain('hunter2');
      expect(logError).toHaveBeenCalledTimes(1);
      expect(logError.mock.calls[0][0]).toEqual({ err: boom, errorId: id });
    });

    it('give each error its own id', () => {
      const a = filter.toResponse(new Error('a')).body.error.error_id;
      const b = filter.toResponse(new Error('b')).body.error.error_id;
      expect(a).not.toBe(b);
    });

    it('handle a thrown non-Error value', () => {
      const { status, body } = filter.toResponse('a string was thrown');
      expect(status).toBe(500);
      expect(body.error.code).toBe('internal');
    });

    it('tell the openai SDK not to retry a 500', () => {
      const res = new FakeResponse();
      filter.catch(new TypeError('undefined is not a function'), hostFor(res));
      expect(res.statusCode).toBe(500);
      expect(res.headers['x-should-retry']).toBe('false');
      expect((res.body as { error: { error_id: string } }).error.error_id).toMatch(/^err_/);
    });
  });

  it('only ends a response whose headers were already sent (a failed stream)', () => {
    const res = new FakeResponse();
    res.headersSent = true;
    filter.catch(new DomainError('invalid_request', 'late'), hostFor(res));
    expect(res.ended).toBe(true);
    expect(res.statusCode).toBeUndefined();
    expect(res.body).toBeUndefined();
  });

  // BUG (see report): STYLE.md #8 says every 500 gets an error id that is also in the log. A DomainError('internal')
  // (datasets.service: content missing from S3; docker-runtime) and Nest's InternalServerErrorException answer 500
  // with no error_id, and the HttpException is not logged at all, so a user has nothing to quote to an operator.
  it.each<[string, unknown]>([
    ["DomainError('internal')", new DomainError('internal', 'The content of file-x is missing from object storage')],
    ['InternalServerErrorException', new InternalServerErrorException()],
  ])('gives %s, a 500 too, an error id that is also logged', (_name, exception) => {
    const { status, body } = filter.toResponse(exception);
    expect(status).toBe(500);
    expect(body.error.error_id).toMatch(/^err_[0-9A-Za-z]{16}$/);
    expect(logError).toHaveBeenCalledWith(expect.objectContaining({ errorId: body.error.error_id }), expect.anything());
  });
});
