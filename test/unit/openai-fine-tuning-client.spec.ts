import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DomainError } from '../../src/common/domain-error';
import { TargetGuard } from '../../src/common/net/target-guard';
import { Config } from '../../src/config/config';
import { OpenAIHttp } from '../../src/serving/openai-http';
import { OpenAIHttpClient } from '../../src/serving/openai-http.client';
import { OpenAIFineTuningClient } from '../../src/training/migrate/openai-fine-tuning-client';

const KEY = 'sk-unit-0123456789abcdef';
const MAX_RESPONSE = 64 * 1024;

const configWith = (allowed: string) =>
  Config.fromEnv({
    DATABASE_URL: 'postgresql://x@127.0.0.1/x',
    REDIS_URL: 'redis://127.0.0.1',
    S3_BUCKET: 'bucket',
    LORAPLANE_MODE: 'dev',
    ALLOWED_PRIVATE_NETWORKS: allowed,
    UPSTREAM_MAX_RESPONSE_BYTES: String(MAX_RESPONSE),
  });

const job = (i: number) => ({ id: `ftjob-${i}`, model: 'gpt-4o-mini', status: 'succeeded', fine_tuned_model: null, training_file: 'file-a', validation_file: null, created_at: i });

/**
 * OpenAIFineTuningClient through the shared transport (OpenAIHttpClient: guarded, capped) against a server that
 * answers the way OpenAI does and the ways it can fail: each failure becomes the DomainError the migration promises
 * (a refused key names api_key, a missing object is a 404, the rest a 503), and the key is in none of them.
 */
describe('OpenAIFineTuningClient', () => {
  let server: http.Server;
  let base: string;
  let transport: OpenAIHttp;
  const guards: TargetGuard[] = [];
  const guarded = (allowed: string) => {
    const config = configWith(allowed);
    const guard = new TargetGuard(config);
    guards.push(guard);
    return new OpenAIHttpClient(config, guard);
  };
  const seen: { url: string; authorization?: string }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push({ url: req.url!, authorization: req.headers.authorization });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${KEY}`) {
        return json(401, { error: { message: `Incorrect API key provided: ${req.headers.authorization?.slice(7, 14)}***`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
      }
      if (url.pathname === '/v1/fine_tuning/jobs') {
        // 45 jobs, pages of `limit` after `after`.
        const all = Array.from({ length: 45 }, (_, i) => job(i));
        const after = url.searchParams.get('after');
        const start = after ? all.findIndex((j) => j.id === after) + 1 : 0;
        const limit = Number(url.searchParams.get('limit'));
        return json(200, { object: 'list', data: all.slice(start, start + limit), has_more: start + limit < all.length });
      }
      if (url.pathname === '/v1/fine_tuning/jobs/ftjob-1') return json(200, job(1));
      if (url.pathname === '/v1/fine_tuning/jobs/ftjob-busy') return json(500, { error: { message: 'The server had an error', type: 'server_error', param: null, code: 'server_error' } });
      if (url.pathname === '/v1/fine_tuning/jobs/ftjob-slow') return void setTimeout(() => json(200, job(2)), 2_000).unref();
      if (url.pathname === '/v1/fine_tuning/jobs/ftjob-huge') return json(200, { ...job(3), metadata: { pad: 'x'.repeat(2 * MAX_RESPONSE) } });
      if (url.pathname === '/v1/fine_tuning/jobs/ftjob-html') {
        res.writeHead(200, { 'content-type': 'text/html' });
        return void res.end('<html>proxy</html>');
      }
      if (url.pathname === '/v1/files/file-a') return json(200, { id: 'file-a', filename: 'train.jsonl', bytes: 3 * MAX_RESPONSE, purpose: 'fine-tune' });
      if (url.pathname === '/v1/files/file-a/content') {
        // Larger than the JSON cap: a file's content is a stream, not a capped read.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return void res.end(Buffer.alloc(3 * MAX_RESPONSE, 'a'));
      }
      if (url.pathname === '/v1/files/file-stall/content') {
        // Half the file, then nothing more (the connection stays open).
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(2 * MAX_RESPONSE) });
        return void res.write(Buffer.alloc(MAX_RESPONSE, 'a'));
      }
      if (url.pathname === '/v1/files/file-gone/content') return json(503, { error: { message: 'overloaded', type: 'server_error', param: null, code: null } });
      return json(404, { error: { message: `No such File object: ${url.pathname}`, type: 'invalid_request_error', param: 'id', code: null } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    transport = guarded('127.0.0.0/8');
  });
  afterAll(async () => {
    transport.close();
    await Promise.all(guards.map((g) => g.onModuleDestroy()));
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  /** Reads a file's content to the end: its size. */
  const byteCount = async (content: NodeJS.ReadableStream) => {
    let n = 0;
    for await (const chunk of content) n += (chunk as Buffer).length;
    return n;
  };
  const client = (key = KEY, timeoutMs = 5_000) => new OpenAIFineTuningClient(transport, `${base}/`, key, timeoutMs);

  /** The DomainError a call failed with; the key appears nowhere in it. */
  const failure = async (call: Promise<unknown>, key = KEY): Promise<DomainError> => {
    const err = await call.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DomainError);
    expect(JSON.stringify({ message: (err as Error).message, cause: String((err as Error).cause ?? '') })).not.toContain(key.slice(3, 14));
    return err as DomainError;
  };

  it('lists every job across pages of 20, with the key as a bearer token', async () => {
    seen.length = 0;
    const jobs = await client().listJobs();
    expect(jobs.map((j) => j.id)).toEqual(Array.from({ length: 45 }, (_, i) => `ftjob-${i}`));
    expect(seen.map((s) => s.url)).toEqual(['/v1/fine_tuning/jobs?limit=20', '/v1/fine_tuning/jobs?limit=20&after=ftjob-19', '/v1/fine_tuning/jobs?limit=20&after=ftjob-39']);
    expect(seen.every((s) => s.authorization === `Bearer ${KEY}`)).toBe(true);
  });

  it('retrieves a job and a file, and streams content larger than the JSON cap', async () => {
    expect(await client().retrieveJob('ftjob-1')).toMatchObject({ id: 'ftjob-1', training_file: 'file-a' });
    expect(await client().retrieveFile('file-a')).toMatchObject({ filename: 'train.jsonl' });
    expect(await client().readFileContent('file-a', byteCount)).toBe(3 * MAX_RESPONSE);
  });

  it('a refused key names api_key with OpenAI code, and never echoes the key', async () => {
    const wrong = 'sk-wrong-key-0000000000';
    for (const call of [client(wrong).listJobs(), client(wrong).readFileContent('file-a', byteCount)]) {
      const err = await failure(call, wrong);
      expect(err).toMatchObject({ code: 'invalid_request', param: 'api_key', message: 'OpenAI refused the key (invalid_api_key)' });
    }
  });

  it('a missing job or file is a 404', async () => {
    expect(await failure(client().retrieveJob('ftjob-nope'))).toMatchObject({ code: 'not_found', message: "No such OpenAI fine-tuning job: 'ftjob-nope'" });
    expect(await failure(client().retrieveFile('file-nope'))).toMatchObject({ code: 'not_found', message: "No such OpenAI file: 'file-nope'" });
    expect(await failure(client().readFileContent('file-nope', byteCount))).toMatchObject({ code: 'not_found', message: "No such OpenAI file: 'file-nope'" });
  });

  it("OpenAI's 5xx, a timeout, an over-size or unreadable answer and an unreachable server are 503s", async () => {
    expect(await failure(client().retrieveJob('ftjob-busy'))).toMatchObject({ code: 'service_unavailable', message: 'OpenAI answered 500 for fine-tuning job ftjob-busy (server_error)' });
    expect(await failure(client().readFileContent('file-gone', byteCount))).toMatchObject({ code: 'service_unavailable', message: 'OpenAI answered 503 for file file-gone' });
    expect(await failure(client(KEY, 200).retrieveJob('ftjob-slow'))).toMatchObject({ code: 'service_unavailable', message: 'Could not reach OpenAI for fine-tuning job ftjob-slow: timed out' });
    expect(await failure(client().retrieveJob('ftjob-huge'))).toMatchObject({ code: 'service_unavailable', message: 'Could not reach OpenAI for fine-tuning job ftjob-huge: the answer was too large' });
    expect(await failure(client().retrieveJob('ftjob-html'))).toMatchObject({ code: 'service_unavailable', message: 'Could not reach OpenAI for fine-tuning job ftjob-html: the answer could not be read' });
    const closed = await new Promise<number>((r) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => r(port));
      });
    });
    const gone = new OpenAIFineTuningClient(transport, `http://127.0.0.1:${closed}/v1`, KEY, 5_000);
    expect(await failure(gone.listJobs())).toMatchObject({ code: 'service_unavailable', message: 'Could not reach OpenAI for fine-tuning jobs: connection failed' });
  });

  it('a download that goes quiet half-way fails as a 503 naming the file; a slow reader is not a quiet download', async () => {
    let got = 0;
    const read = client(KEY, 300).readFileContent('file-stall', async (stalled) => {
      for await (const chunk of stalled) got += (chunk as Buffer).length;
    });
    const err = await failure(read);
    expect(err).toMatchObject({ code: 'service_unavailable', message: 'OpenAI stopped sending file file-stall: nothing for 300 ms' });
    expect(got).toBe(MAX_RESPONSE);

    // The whole file arrives at once and then waits unread for three times the limit: no failure.
    const size = await client(KEY, 300).readFileContent('file-a', async (slow) => {
      await new Promise((r) => setTimeout(r, 900));
      let n = 0;
      for await (const chunk of slow) {
        n += (chunk as Buffer).length;
        await new Promise((r) => setTimeout(r, 100));
      }
      return n;
    });
    expect(size).toBe(3 * MAX_RESPONSE);
  });

  it("keeps the transport's address guard: a base URL in a refused network is a 503 before anything is sent", async () => {
    const strict = guarded('none');
    try {
      seen.length = 0;
      const err = await failure(new OpenAIFineTuningClient(strict, base, KEY, 5_000).retrieveJob('ftjob-1'));
      expect(err.code).toBe('service_unavailable');
      expect(err.message).toMatch(/^Could not reach OpenAI for fine-tuning job ftjob-1: OPENAI_BASE_URL is refused \(.*loopback address/);
      expect(seen).toEqual([]);
    } finally {
      strict.close();
    }
  });
});
