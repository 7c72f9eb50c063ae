import { DomainError } from '../../src/common/domain-error';
import { Config } from '../../src/config/config';
import { fineTunedModelName } from '../../src/training/fine-tuned-model-name';
import { jobSpecSchema, loraSettingsSchema } from '../../src/training/contract/job-contract';
import { hyperparametersInput, loraInput, readHyperparameters, resolveHyperparameters } from '../../src/training/hyperparameters';
import { HYPERPARAMETER_LIMITS } from '../../src/training/model-catalog';
import { ModelCatalog } from '../../src/training/model-catalog';

const catalog = new ModelCatalog(
  Config.fromEnv({ DATABASE_URL: 'postgresql://localhost/x', REDIS_URL: 'redis://localhost', S3_BUCKET: 'loraplane', SECRETS_KEY: '0'.repeat(64), TINY_LORA_IMAGE: 'example/tiny:test' }),
);
const tiny = catalog.get('tiny-lora'); // batch 8, lr 0.05, epochs clamp(ceil(2000 / n), 3, 50), rank <= 64, lm_head only
const oss20b = catalog.get('gpt-oss-20b'); // batch 4, lr 2e-4, epochs clamp(ceil(1000 / n), 1, 3)

/** The DomainError `fn` throws; fails the test when it throws nothing or something else. */
function domainError(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error('expected a DomainError');
}

describe('resolveHyperparameters', () => {
  describe('"auto"', () => {
    it('resolves everything for tiny-lora from the model and the example count', () => {
      expect(resolveHyperparameters(tiny, 100, {}, {}, 'supervised')).toEqual({
        method: 'supervised',
        batch_size: 8,
        learning_rate_multiplier: 1,
        n_epochs: 20, // ceil(2000 / 100)
        learning_rate: 0.05,
        lora: { r: 8, alpha: 16, dropout: 0, target_modules: ['lm_head'] },
      });
    });

    it('treats the literal "auto" exactly like an omitted value', () => {
      const auto = { batch_size: 'auto', n_epochs: 'auto', learning_rate_multiplier: 'auto', beta: 'auto' } as const;
      for (const model of [tiny, oss20b]) {
        for (const method of ['supervised', 'dpo'] as const) {
          expect(resolveHyperparameters(model, 37, auto, {}, method)).toEqual(resolveHyperparameters(model, 37, {}, {}, method));
        }
      }
    });

    it.each([
      [100, 8],
      [8, 8],
      [5, 5], // never a batch bigger than the data
      [1, 1],
      [0, 1], // and never 0
    ])('tiny-lora with %i examples: batch_size %i', (examples, batch) => {
      expect(resolveHyperparameters(tiny, examples, {}, {}, 'supervised').batch_size).toBe(batch);
    });

    it.each([
      ['tiny-lora', 10, 50], // 200 passes, clamped to the max
      ['tiny-lora', 400, 5],
      ['tiny-lora', 401, 5], // rounds up
      ['tiny-lora', 2000, 3], // 1 pass, clamped to the min
      ['tiny-lora', 0, 50],
      ['gpt-oss-20b', 100, 3],
      ['gpt-oss-20b', 500, 2],
      ['gpt-oss-20b', 1000, 1],
      ['gpt-oss-20b', 50_000, 1],
    ])('%s with %i examples: n_epochs %i', (model, examples, epochs) => {
      expect(resolveHyperparameters(catalog.get(model), examples, {}, {}, 'supervised').n_epochs).toBe(epochs);
    });

    it("uses the GPT-OSS model's attention targets and base learning rate", () => {
      const hp = resolveHyperparameters(oss20b, 1000, {}, {}, 'supervised');
      expect(hp.lora.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
      expect(hp.learning_rate).toBe(2e-4);
      expect(hp.batch_size).toBe(4);
    });
  });

  describe('explicit values', () => {
    it('keeps explicit numbers, even a batch larger than the data', () => {
      const hp = resolveHyperparameters(tiny, 10, { batch_size: 32, n_epochs: 7, learning_rate_multiplier: 2 }, {}, 'supervised');
      expect(hp).toMatchObject({ batch_size: 32, n_epochs: 7, learning_rate_multiplier: 2, learning_rate: 0.1 });
    });

    it('scales the base learning rate by the multiplier', () => {
      expect(resolveHyperparameters(oss20b, 10, { learning_rate_multiplier: 0.5 }, {}, 'supervised').learning_rate).toBeCloseTo(1e-4, 12);
    });

    it('derives alpha from an explicit rank, and keeps an explicit alpha and dropout', () => {
      expect(resolveHyperparameters(tiny, 10, {}, { r: 16 }, 'supervised').lora).toEqual({ r: 16, alpha: 32, dropout: 0, target_modules: ['lm_head'] });
      expect(resolveHyperparameters(tiny, 10, {}, { r: 4, alpha: 8, dropout: 0.1 }, 'supervised').lora).toEqual({
        r: 4,
        alpha: 8,
        dropout: 0.1,
        target_modules: ['lm_head'],
      });
    });

    it('accepts a rank at the limit and a subset of the supported targets', () => {
      const hp = resolveHyperparameters(oss20b, 10, {}, { r: 64, target_modules: ['q_proj', 'mlp.experts.down_proj'] }, 'supervised');
      expect(hp.lora).toMatchObject({ r: 64, alpha: 128, target_modules: ['q_proj', 'mlp.experts.down_proj'] });
    });
  });

  describe('LoRA limits per model', () => {
    it("rejects a rank over the model's limit on param lora.r", () => {
      const err = domainError(() => resolveHyperparameters(tiny, 10, {}, { r: 65 }, 'supervised'));
      expect(err.code).toBe('invalid_request');
      expect(err.param).toBe('lora.r');
      expect(err.message).toBe("LoRA rank 65 is over tiny-lora's limit of 64");
    });

    it('rejects unknown target modules on param lora.target_modules, naming them and the supported ones', () => {
      const err = domainError(() => resolveHyperparameters(tiny, 10, {}, { target_modules: ['lm_head', 'q_proj', 'up_proj'] }, 'supervised'));
      expect(err.code).toBe('invalid_request');
      expect(err.param).toBe('lora.target_modules');
      expect(err.message).toBe('LoRA target modules not supported on tiny-lora: q_proj, up_proj; supported: lm_head');
    });

    it('rejects dropout when expert weights are targeted (PEFT target_parameters have none)', () => {
      const err = domainError(() => resolveHyperparameters(oss20b, 10, {}, { dropout: 0.05, target_modules: ['q_proj', 'mlp.experts.gate_up_proj'] }, 'supervised'));
      expect(err.code).toBe('invalid_request');
      expect(err.param).toBe('lora.dropout');
    });

    it('allows dropout on attention-only targets, and expert targets with dropout 0', () => {
      expect(resolveHyperparameters(oss20b, 10, {}, { dropout: 0.05 }, 'supervised').lora.dropout).toBe(0.05);
      expect(resolveHyperparameters(oss20b, 10, {}, { dropout: 0, target_modules: ['mlp.experts.gate_up_proj'] }, 'supervised').lora.dropout).toBe(0);
    });

    it('checks the rank before the targets, so the first problem reported is the first field', () => {
      expect(domainError(() => resolveHyperparameters(tiny, 10, {}, { r: 128, target_modules: ['nope'] }, 'supervised')).param).toBe('lora.r');
    });
  });

  describe('DPO', () => {
    it('defaults beta to 0.1 and keeps an explicit one', () => {
      expect(resolveHyperparameters(tiny, 10, {}, {}, 'dpo').beta).toBe(0.1);
      expect(resolveHyperparameters(tiny, 10, { beta: 'auto' }, {}, 'dpo').beta).toBe(0.1);
      expect(resolveHyperparameters(tiny, 10, { beta: 0.5 }, {}, 'dpo').beta).toBe(0.5);
    });

    it('has no beta at all for supervised jobs (it is not shown on the job)', () => {
      expect(resolveHyperparameters(tiny, 10, { beta: 0.5 }, {}, 'supervised')).not.toHaveProperty('beta');
    });
  });

  describe('input schemas', () => {
    it.each([
      { batch_size: 0 },
      { batch_size: 257 },
      { batch_size: 2.5 },
      { n_epochs: 51 },
      { learning_rate_multiplier: 0 },
      { beta: -1 },
      { batch_size: 'AUTO' },
    ])('rejects hyperparameters %j', (input) => {
      expect(hyperparametersInput.safeParse(input).success).toBe(false);
    });

    it.each([{ r: 0 }, { r: 513 }, { dropout: 1 }, { target_modules: [] }, { target_modules: [''] }, { alpha: 0 }])('rejects lora %j', (input) => {
      expect(loraInput.safeParse(input).success).toBe(false);
    });
  });
});

describe('ModelCatalog', () => {
  it('lists the development model and the two GPT-OSS sizes, with the trainer image from config', () => {
    expect(catalog.all().map((m) => m.id)).toEqual(['tiny-lora', 'gpt-oss-20b', 'gpt-oss-120b']);
    expect(tiny.trainerImage).toBe('example/tiny:test');
    expect(catalog.all().filter((m) => m.development).map((m) => m.id)).toEqual(['tiny-lora']);
    // Every default target must be a supported one, or "auto" would reject itself.
    for (const m of catalog.all()) expect(m.lora.targetModules).toEqual(expect.arrayContaining(m.lora.defaultTargets));
  });

  it('answers an unknown model with unknown_model on the given param, listing what exists', () => {
    const err = domainError(() => catalog.get('gpt-5', 'base_model'));
    expect(err.code).toBe('unknown_model');
    expect(err.param).toBe('base_model');
    expect(err.message).toContain('tiny-lora, gpt-oss-20b, gpt-oss-120b');
    expect(domainError(() => catalog.get('nope')).param).toBe('model');
    expect(catalog.find('nope')).toBeUndefined();
  });
});

describe('fineTunedModelName', () => {
  it("follows OpenAI's ft:{base}:{org}:{suffix}:{id}", () => {
    expect(fineTunedModelName('tiny-lora', 'acme', 'support-v2', 'ftjob-AbC123')).toBe('ft:tiny-lora:acme:support-v2:AbC123');
  });

  it('leaves the suffix segment empty when there is none', () => {
    expect(fineTunedModelName('gpt-oss-20b', 'acme', null, 'ftjob-XyZ')).toBe('ft:gpt-oss-20b:acme::XyZ');
  });

  it("strips only a leading 'ftjob-' from the job id", () => {
    expect(fineTunedModelName('tiny-lora', 'acme', null, 'ftjob-ftjob-x')).toBe('ft:tiny-lora:acme::ftjob-x');
    expect(fineTunedModelName('tiny-lora', 'acme', null, 'legacy-ftjob-1')).toBe('ft:tiny-lora:acme::legacy-ftjob-1');
  });
});

describe('the stored hyperparameter record', () => {
  it('is parsed on every read: a record of the wrong shape is refused, not cast', () => {
    const hp = resolveHyperparameters(tiny, 10, { beta: 0.3 }, {}, 'dpo');
    expect(readHyperparameters({ hyperparameters: JSON.parse(JSON.stringify(hp)), method: { type: 'dpo' } })).toEqual(hp);
    expect(() => readHyperparameters({ hyperparameters: { ...hp, batch_size: '8' }, method: { type: 'dpo' } })).toThrow(/batch_size/);
    expect(() => readHyperparameters({ hyperparameters: { ...hp, lora: { ...hp.lora, dropout: 2 } }, method: null })).toThrow(/dropout/);
  });

  it('reads a record stored before it carried its method from the job\'s method column', () => {
    const { method: _m, ...old } = resolveHyperparameters(tiny, 10, {}, {}, 'dpo');
    expect(readHyperparameters({ hyperparameters: old, method: { type: 'dpo', dpo: { hyperparameters: {} } } }).method).toBe('dpo');
  });

  it('keeps beta for DPO (it reaches the trainer spec) and the API, record and contract share one set of limits', () => {
    expect(resolveHyperparameters(tiny, 10, { beta: 0.5 }, {}, 'dpo').beta).toBe(0.5);
    expect(resolveHyperparameters(tiny, 10, { beta: 0.5 }, {}, 'supervised').beta).toBeUndefined();
    const specHp = jobSpecSchema.shape.hyperparameters;
    expect(specHp.safeParse({ n_epochs: 1, batch_size: 1, learning_rate: 0.1, lora: { r: 8, alpha: 16, dropout: 0, target_modules: ['x'] }, beta: 0.5 }).success).toBe(true);
    const max = HYPERPARAMETER_LIMITS.lora.dropoutMax;
    for (const dropout of [max, max + 0.01]) {
      const api = loraInput.safeParse({ dropout }).success;
      const contract = loraSettingsSchema.safeParse({ r: 8, alpha: 16, dropout, target_modules: ['x'] }).success;
      expect({ dropout, api, contract }).toEqual({ dropout, api: dropout <= max, contract: dropout <= max });
    }
    for (const batch_size of [HYPERPARAMETER_LIMITS.batchSize.max, HYPERPARAMETER_LIMITS.batchSize.max + 1]) {
      const api = hyperparametersInput.safeParse({ batch_size }).success;
      const contract = specHp.safeParse({ n_epochs: 1, batch_size, learning_rate: 0.1, lora: { r: 8, alpha: 16, dropout: 0, target_modules: ['x'] } }).success;
      expect(api).toBe(contract);
    }
  });
});
