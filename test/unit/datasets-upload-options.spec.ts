import { Config } from '../../src/config/config';
import { DatasetsService } from '../../src/datasets/datasets.service';
import { ModelCatalog } from '../../src/training/model-catalog';

/**
 * A multipart upload whose request length alone shows its file is past TOKENIZE_INLINE_BYTES skips the inline token
 * count (the worker counts it after registration, and the inline count would be dropped); any other request keeps it.
 */
describe('DatasetsService.uploadOptions', () => {
  const config = Config.fromEnv({ DATABASE_URL: 'postgresql://unit/none', REDIS_URL: 'redis://unit', S3_BUCKET: 'unit-only', LORAPLANE_MODE: 'dev', TOKENIZE_INLINE_BYTES: String(1024 * 1024) });
  const datasets = new DatasetsService(null as never, null as never, config, new ModelCatalog(config), null as never, null as never);
  const budget = 1024 * 1024;

  it('keeps the inline budget for a request that could hold a file within it, or whose length is not known', () => {
    for (const length of [undefined, '', 'abc', '-5', '1.5', String(budget), String(budget + 64 * 1024), '1e400']) {
      expect(datasets.uploadOptions('chat', length).tokenBudgetBytes).toBe(budget);
    }
  });

  it('counts nothing inline when the request is past the budget by more than a multipart envelope', () => {
    const options = datasets.uploadOptions('chat', String(budget + 64 * 1024 + 1));
    expect(options).toMatchObject({ tokenBudgetBytes: 0, declaredFormat: 'chat' });
    expect(datasets.uploadOptions(undefined, String(10 * 1024 ** 3), { maxBytes: 7 })).toMatchObject({ tokenBudgetBytes: 0, maxBytes: 7 });
  });

  it('is otherwise the same as ingestOptions', () => {
    expect(datasets.uploadOptions('dpo', '100')).toEqual(datasets.ingestOptions('dpo'));
    expect({ ...datasets.uploadOptions('dpo', String(50 * 1024 ** 2)), tokenBudgetBytes: budget }).toEqual(datasets.ingestOptions('dpo'));
  });
});
