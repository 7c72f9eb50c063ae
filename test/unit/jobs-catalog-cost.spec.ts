import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Config } from '../../src/config/config';
import { actualCost, estimateCost } from '../../src/training/job-cost';
import { ModelCatalog } from '../../src/training/model-catalog';

const REQUIRED = { DATABASE_URL: 'postgresql://x@h/db', REDIS_URL: 'redis://h', S3_BUCKET: 'bucket', SECRETS_KEY: '0'.repeat(64) };
const catalogWith = (entries: unknown) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lp-cat-')), 'm.json');
  fs.writeFileSync(file, typeof entries === 'string' ? entries : JSON.stringify(entries));
  return new ModelCatalog(Config.fromEnv({ ...REQUIRED, MODEL_CATALOG_FILE: file }));
};

describe('models catalog file', () => {
  it('overrides a built-in model field by field and adds a model that extends another', () => {
    const catalog = catalogWith([
      { id: 'gpt-oss-20b', extends: 'gpt-oss-20b', weights: { source: 'host-cache', ref: '/models/gpt-oss-20b' }, gpus: { minMemoryGb: 94 } },
      { id: 'gpt-oss-20b-h200', extends: 'gpt-oss-20b', description: 'on H200s', tokensPerSecondPerGpu: 5000 },
    ]);
    const m = catalog.get('gpt-oss-20b');
    expect(m.weights).toEqual({ source: 'host-cache', ref: '/models/gpt-oss-20b' });
    expect(m.gpus).toEqual({ count: 1, minMemoryGb: 94 }); // count kept from the built-in entry
    expect(m.lora.maxRank).toBe(64);
    const h200 = catalog.get('gpt-oss-20b-h200');
    expect(h200).toMatchObject({ description: 'on H200s', tokensPerSecondPerGpu: 5000, trainerImage: m.trainerImage, gpus: { count: 1, minMemoryGb: 94 } });
    expect(catalog.all().map((x) => x.id)).toEqual(['tiny-lora', 'gpt-oss-20b', 'gpt-oss-120b', 'gpt-oss-20b-h200']);
  });

  it.each([
    ['[{"id": "Bad Id"}]', /\[0\.id\]/],
    ['[{"id": "x", "extends": "nope"}]', /x extends unknown model 'nope'/],
    ['[{"id": "x"}]', /x lacks description, trainerImage/],
    ['[{"id": "x", "extends": "tiny-lora", "gpus": {"count": -1}}]', /\[0\.gpus\.count\]/],
    ['[{"id": "x", "extends": "tiny-lora", "typo": 1}]', /typo/],
    ['not json', /MODEL_CATALOG_FILE .*JSON/],
  ])('refuses %s naming the entry and field', (text, message) => {
    expect(() => catalogWith(text)).toThrow(message);
  });
});

describe('cost', () => {
  const catalog = new ModelCatalog(Config.fromEnv(REQUIRED));

  it('estimates from the dataset token count when there is one, else from bytes / 4', () => {
    const m = catalog.get('gpt-oss-120b'); // 4 GPUs, 800 tokens/s per GPU
    const counted = estimateCost(m, { bytes: 999, stats: { examples: 10, tokens: { total: 1_152_000 } } }, 2, 3);
    expect(counted).toMatchObject({ dataset_tokens: 1_152_000, tokens_source: 'dataset_stats', trained_tokens: 2_304_000, gpus: 4 });
    // 2,304,000 tokens / (800 x 4) tokens/s = 720 s = 0.2 h; x 4 GPUs = 0.8 GPU hours; x $3 = $2.40
    expect(counted).toMatchObject({ hours: 0.2, gpu_hours: 0.8, usd_per_gpu_hour: 3, usd: 2.4 });
    const guessed = estimateCost(m, { bytes: 4001n, stats: { examples: 10 } }, 1, null);
    expect(guessed).toMatchObject({ dataset_tokens: 1001, tokens_source: 'bytes_estimate', trained_tokens: 1001, usd: null });
  });

  it('prices a CPU model by its CPUs and the catalog price', () => {
    const tiny = catalog.get('tiny-lora');
    expect(estimateCost(tiny, { bytes: 400, stats: null }, 3, null)).toMatchObject({ gpus: 0, gpu_hours: 0, usd: 0, trained_tokens: 300 });
  });

  it('charges wall time x GPUs x the host price', () => {
    const startedAt = new Date('2026-01-01T00:00:00Z');
    const placement = { host_id: 'h', host_name: 'n', gpu_indices: [0, 1], usd_per_gpu_hour: 2.5 };
    expect(actualCost({ startedAt, placement }, catalog.get('gpt-oss-20b'), new Date('2026-01-01T01:30:00Z'))).toEqual({
      seconds: 5400, gpus: 2, gpu_hours: 3, usd_per_gpu_hour: 2.5, usd: 7.5,
    });
    expect(actualCost({ startedAt, placement: null }, catalog.get('tiny-lora'), new Date('2026-01-01T00:00:10Z'))).toMatchObject({ seconds: 10, gpus: 0, usd: 0 });
  });
});
