import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { AppModule } from '../../src/app.module';
import { Config } from '../../src/config/config';
import { buildOpenApiDocument, controllersOf } from '../../src/openapi/openapi.builder';

/**
 * The build writes the OpenAPI document (and the dashboard's and CLI's types) from the module tree's metadata
 * without starting the app: that walk must find every controller the running app serves.
 */
describe('OpenAPI document at build time', () => {
  const config = Config.fromEnv({ DATABASE_URL: 'postgresql://build/none', REDIS_URL: 'redis://build', S3_BUCKET: 'build-only', LORAPLANE_MODE: 'dev' });
  const found = controllersOf(AppModule.register(config));

  it('finds every controller class in src through the module imports', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(dir, e.name));
        else if (e.name.endsWith('.controller.ts')) files.push(path.join(dir, e.name));
      }
    };
    walk(path.resolve(__dirname, '../../src'));
    const declared = files.flatMap((f) => Object.values(require(f) as Record<string, unknown>).filter((v) => typeof v === 'function' && Reflect.hasMetadata('path', v)));
    expect(declared.length).toBeGreaterThan(10);
    expect(declared.filter((c) => !found.includes(c as never)).map((c) => (c as { name: string }).name)).toEqual([]);
  });

  it('describes the routes the dashboard calls, with path parameters and request bodies', () => {
    const doc = buildOpenApiDocument(found) as { paths: Record<string, Record<string, { parameters?: { name: string }[]; requestBody?: unknown }>> };
    for (const p of ['/v1/fine_tuning/jobs', '/v1/fine_tuning/jobs/{fine_tuning_job_id}/events/stream', '/v1/datasets/{dataset_id}', '/v1/serving/pools/{pool}/aliases/{adapter_name}/rollback', '/v1/evals/runs/{run_id}/report', '/v1/project']) {
      expect(doc.paths[p]).toBeDefined();
    }
    expect(doc.paths['/v1/datasets/{dataset_id}'].get.parameters?.map((x) => x.name)).toEqual(['dataset_id']);
    expect(doc.paths['/v1/fine_tuning/jobs'].post.requestBody).toBeDefined();
  });
});
