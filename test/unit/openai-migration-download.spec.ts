import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { DomainError } from '../../src/common/domain-error';
import { TargetGuard } from '../../src/common/net/target-guard';
import { Config } from '../../src/config/config';
import type { DatasetsService } from '../../src/datasets/datasets.service';
import { OpenAIHttpClient } from '../../src/serving/openai-http.client';
import type { JobsService } from '../../src/training/jobs.service';
import { OpenAIMigration } from '../../src/training/migrate/openai-migration.service';

const KEY = 'sk-unit-0123456789abcdef';
/** Far more than the socket buffers hold: the server's answer can only finish if the client reads it. */
const FILE_BYTES = 32 * 1024 * 1024;

/**
 * A migration whose staging of a downloaded file fails (here before reading a byte, as a refused name or a full
 * quota would) closes the download: the OpenAI side sees its answer aborted, not a connection left paused for ever.
 */
describe('OpenAIMigration: the file download when staging fails', () => {
  let server: http.Server;
  let transport: OpenAIHttpClient;
  let guard: TargetGuard;
  let config: Config;
  let contentAnswer: Promise<'aborted' | 'finished'>;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/v1/fine_tuning/jobs/ftjob-1') return json({ id: 'ftjob-1', model: 'gpt-4o-mini', status: 'succeeded', fine_tuned_model: null, training_file: 'file-a', validation_file: null, created_at: 1 });
      if (req.url === '/v1/files/file-a') return json({ id: 'file-a', filename: 'train.jsonl', bytes: FILE_BYTES, purpose: 'fine-tune' });
      if (req.url === '/v1/files/file-a/content') {
        contentAnswer = new Promise((resolve) => {
          res.once('finish', () => resolve('finished'));
          res.once('close', () => resolve(res.writableFinished ? 'finished' : 'aborted'));
        });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(FILE_BYTES) });
        const chunk = Buffer.alloc(1024 * 1024, '{');
        let sent = 0;
        const more = () => {
          while (sent < FILE_BYTES && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          if (!res.destroyed) res.end();
        };
        return more();
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    config = Config.fromEnv({
      DATABASE_URL: 'postgresql://x@127.0.0.1/x',
      REDIS_URL: 'redis://127.0.0.1',
      S3_BUCKET: 'bucket',
      LORAPLANE_MODE: 'dev',
      ALLOWED_PRIVATE_NETWORKS: '127.0.0.0/8',
      OPENAI_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    });
    guard = new TargetGuard(config);
    transport = new OpenAIHttpClient(config, guard);
  });
  afterAll(async () => {
    transport.close();
    await guard.onModuleDestroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('aborts the download when the ingest refuses the file before reading it', async () => {
    let handed: Readable | null = null;
    const datasets = {
      stage: async (_project: string, _name: string, body: Readable) => {
        handed = body;
        throw new DomainError('quota_stored_bytes', 'the project has no room for this file', 'file');
      },
    } as unknown as DatasetsService;
    const migration = new OpenAIMigration(datasets, {} as JobsService, config, transport);

    await expect(migration.plan('proj_1', { apiKey: KEY, baseModel: 'gpt-oss-20b', jobs: ['ftjob-1'] })).rejects.toMatchObject({ code: 'quota_stored_bytes' });
    expect(handed).not.toBeNull();
    expect(handed!.destroyed).toBe(true);
    const outcome = await Promise.race([contentAnswer, new Promise((r) => setTimeout(() => r('still open after 5 s'), 5_000).unref())]);
    expect(outcome).toBe('aborted');
  });
});
