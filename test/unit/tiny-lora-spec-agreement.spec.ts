import * as trainer from '../../jobs/tiny-lora/trainer';
import { HYPERPARAMETER_LIMITS as L } from '../../src/training/contract/hyperparameter-limits';
import { jobSpecSchema } from '../../src/training/contract/job-contract';

/**
 * The tiny trainer has no zod in its image, so it checks the spec by hand. Here its verdict is held against the
 * contract's zod schema on valid specs and on one mutation per field: the two must agree, or the image and the
 * control plane disagree about what a valid spec is.
 */
const VALID = {
  contract_version: 1,
  job_id: 'ftjob-x',
  attempt: 1,
  model: { name: 'tiny-lora', weights: 'tiny-lora-base-v2' },
  method: 'supervised',
  seed: 3,
  hyperparameters: { n_epochs: 2, batch_size: 8, learning_rate: 0.05, lora: { r: 8, alpha: 16, dropout: 0, target_modules: ['lm_head'] } },
  data: { training_file: { url: 'http://s3/b/t?sig=1', sha256: 'a'.repeat(64), bytes: 5 }, validation_file: null },
  output: { url: 'http://s3/b', fields: { Policy: 'p' }, key_prefix: 'p/', max_bytes: 10, expires_at: 1_900_000_000 },
};
const FILE = { name: 'trainer_state.json', url: 'http://s3/b/c?sig=1', sha256: 'b'.repeat(64), bytes: 7 };

type Spec = Record<string, any>;
const cases: [string, (s: Spec) => void][] = [
  ['as is', () => undefined],
  ['with the optional v1 fields', (s) => Object.assign(s, { checkpoint_every_steps: 5, stop_grace_seconds: 30, resume_from: { step: 5, files: [FILE] } })],
  ['with resume_from null', (s) => (s.resume_from = null)],
  ['with an unknown field', (s) => (s.gpu_hint = 'h100')],
  ['with a validation file', (s) => (s.data.validation_file = { ...s.data.training_file })],
  ['a DPO job with beta', (s) => Object.assign(s, { method: 'dpo', hyperparameters: { ...s.hyperparameters, beta: 0.1 } })],
  ['beta 0', (s) => (s.hyperparameters.beta = 0)],
  ['beta as a string', (s) => (s.hyperparameters.beta = '0.1')],
  ['contract_version 2', (s) => (s.contract_version = 2)],
  ['no job_id', (s) => delete s.job_id],
  ['attempt 0', (s) => (s.attempt = 0)],
  ['attempt 1.5', (s) => (s.attempt = 1.5)],
  ['model not an object', (s) => (s.model = 'tiny-lora')],
  ['method sft', (s) => (s.method = 'sft')],
  ['seed as a string', (s) => (s.seed = '3')],
  ['no hyperparameters', (s) => delete s.hyperparameters],
  ['n_epochs 0', (s) => (s.hyperparameters.n_epochs = 0)],
  ['batch_size 2.5', (s) => (s.hyperparameters.batch_size = 2.5)],
  ['learning_rate 0', (s) => (s.hyperparameters.learning_rate = 0)],
  ['r 0', (s) => (s.hyperparameters.lora.r = 0)],
  ['r 513', (s) => (s.hyperparameters.lora.r = 513)],
  ['alpha 0', (s) => (s.hyperparameters.lora.alpha = 0)],
  ['dropout 1.5', (s) => (s.hyperparameters.lora.dropout = 1.5)],
  ['no target modules', (s) => (s.hyperparameters.lora.target_modules = [])],
  ['an empty target module', (s) => (s.hyperparameters.lora.target_modules = [''])],
  ['a training file without url', (s) => delete s.data.training_file.url],
  ['an upper-case sha256', (s) => (s.data.training_file.sha256 = 'A'.repeat(64))],
  ['negative bytes', (s) => (s.data.training_file.bytes = -1)],
  ['validation_file missing', (s) => delete s.data.validation_file],
  ['output.url not a URL', (s) => (s.output.url = 'nope')],
  ['a non-string policy field', (s) => (s.output.fields.Policy = 1)],
  ['max_bytes 0', (s) => (s.output.max_bytes = 0)],
  ['expires_at 1.5', (s) => (s.output.expires_at = 1.5)],
  ['checkpoint_every_steps 0', (s) => (s.checkpoint_every_steps = 0)],
  ['stop_grace_seconds 0', (s) => (s.stop_grace_seconds = 0)],
  ['resume_from step 0', (s) => (s.resume_from = { step: 0, files: [FILE] })],
  ['resume_from without files', (s) => (s.resume_from = { step: 1, files: [] })],
  ['resume_from file without sha256', (s) => (s.resume_from = { step: 1, files: [{ ...FILE, sha256: undefined }] })],
  ['resume_from file with an empty name', (s) => (s.resume_from = { step: 1, files: [{ ...FILE, name: '' }] })],
];

/**
 * Every hyperparameter limit at its edge and just past it, taken from the one place the limits live: a trainer (or a
 * schema) with limits of its own fails here.
 */
const hp = (s: Spec) => s.hyperparameters;
const edges: [string, (s: Spec) => void, boolean][] = [
  ['n_epochs at its maximum', (s) => (hp(s).n_epochs = L.nEpochs.max), true],
  ['n_epochs past it', (s) => (hp(s).n_epochs = L.nEpochs.max + 1), false],
  ['batch_size at its maximum', (s) => (hp(s).batch_size = L.batchSize.max), true],
  ['batch_size past it', (s) => (hp(s).batch_size = L.batchSize.max + 1), false],
  ['beta at its maximum', (s) => (hp(s).beta = L.beta.max), true],
  ['beta past it', (s) => (hp(s).beta = L.beta.max + 0.5), false],
  ['rpo_alpha at its maximum', (s) => (hp(s).rpo_alpha = L.rpoAlpha.max), true],
  ['rpo_alpha past it', (s) => (hp(s).rpo_alpha = L.rpoAlpha.max + 0.5), false],
  ['rpo_alpha below 0', (s) => (hp(s).rpo_alpha = -0.1), false],
  ['lora alpha at its maximum', (s) => (hp(s).lora.alpha = L.lora.alphaMax), true],
  ['lora alpha past it', (s) => (hp(s).lora.alpha = L.lora.alphaMax + 1), false],
  ['dropout at its maximum', (s) => (hp(s).lora.dropout = L.lora.dropoutMax), true],
  ['dropout past it', (s) => (hp(s).lora.dropout = (L.lora.dropoutMax + 1) / 2), false],
  ['rank at its maximum', (s) => (hp(s).lora.r = L.lora.rank.max), true],
];

/** The trainer's verdict on a spec: true when it accepts it (a refusal must be invalid_spec). */
function trainerAccepts(spec: Spec): boolean {
  try {
    trainer.validateSpec(JSON.parse(JSON.stringify(spec)));
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'invalid_spec' });
    return false;
  }
}

describe('tiny-lora spec checks agree with the contract schema', () => {
  it.each(cases)('%s', (_name, mutate) => {
    const spec: Spec = structuredClone(VALID);
    mutate(spec);
    const zodSays = jobSpecSchema.safeParse(JSON.parse(JSON.stringify(spec))).success;
    expect({ trainer: trainerAccepts(spec) }).toEqual({ trainer: zodSays });
  });

  it.each(edges)('%s', (_name, mutate, valid) => {
    const spec: Spec = structuredClone(VALID);
    mutate(spec);
    expect({ zod: jobSpecSchema.safeParse(spec).success, trainer: trainerAccepts(spec) }).toEqual({ zod: valid, trainer: valid });
  });

  it('covers both verdicts', () => {
    const verdicts = cases.map(([, mutate]) => {
      const spec: Spec = structuredClone(VALID);
      mutate(spec);
      return jobSpecSchema.safeParse(spec).success;
    });
    expect(verdicts.filter(Boolean).length).toBe(6);
    expect(verdicts.filter((v) => !v).length).toBe(cases.length - 6);
  });
});
