import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as features from '../../jobs/tiny-lora/features';
import * as model from '../../jobs/tiny-lora/model';
import * as safetensors from '../../jobs/tiny-lora/safetensors';
import * as trainer from '../../jobs/tiny-lora/trainer';
import { trainerEventSchema, TRAINER_EXIT as CONTRACT_EXIT } from '../../src/training/contract/job-contract';
import { makeTicketDataset, makeTicketSplit } from '../fixtures/tiny-task';

const LORA = { r: 8, alpha: 16, dropout: 0.05, target_modules: ['lm_head'] };
const TRAIN = { seed: 42, n_epochs: 2, batch_size: 8, learning_rate: 0.05, lora: LORA };

function validSpec(): Record<string, any> {
  return {
    contract_version: 1,
    job_id: 'ftjob-test',
    attempt: 1,
    model: { name: 'tiny-lora', weights: 'tiny-lora-base-v2' },
    method: 'supervised',
    seed: 42,
    hyperparameters: { n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora: { ...LORA } },
    data: {
      training_file: { url: 'http://127.0.0.1:9/train.jsonl', sha256: 'a'.repeat(64), bytes: 10 },
      validation_file: null,
    },
    output: { url: 'http://127.0.0.1:9/bucket', fields: { Policy: 'x' }, key_prefix: 'p/', max_bytes: 1 << 20, expires_at: 1_900_000_000 },
  };
}

function heldOutAccuracy(heldOut: ReturnType<typeof makeTicketSplit>['heldOut'], adapter?: model.LoraFactors) {
  const hits = heldOut.filter((e) => model.predict(e.messages.slice(0, 2), adapter).answer === e.label).length;
  return hits / heldOut.length;
}

describe('safetensors', () => {
  const a = { shape: [2, 3], data: [1, -2.5, 3, 0.125, 1e-8, -0] };
  const b = { shape: [1], data: [7] };

  it('writes the layout a standard reader expects, byte by byte', () => {
    const buf = safetensors.serialize({ 'z.weight': a, 'a.weight': b }, { format: 'pt' });
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0); // data starts 8-byte aligned
    const headerBytes = buf.subarray(8, 8 + n);
    expect(headerBytes[0]).toBe('{'.charCodeAt(0));
    const text = headerBytes.toString('utf8');
    const trimmed = text.trimEnd();
    expect(text.slice(trimmed.length)).toMatch(/^ *$/); // padding is spaces only, at the end
    const header = JSON.parse(text);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    // Tensors are laid out in name order, contiguous from offset 0, and cover the rest of the file exactly.
    expect(header['a.weight']).toEqual({ dtype: 'F32', shape: [1], data_offsets: [0, 4] });
    expect(header['z.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [4, 28] });
    expect(buf.length).toBe(8 + n + 28);
    const data = buf.subarray(8 + n);
    expect(data.readFloatLE(0)).toBe(7);
    expect(Array.from({ length: 6 }, (_, i) => data.readFloatLE(4 + i * 4))).toEqual(Array.from(Float32Array.from(a.data)));
    // Little-endian IEEE-754: 1.0f is 00 00 80 3f.
    expect([...data.subarray(4, 8)]).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });

  it('round-trips tensors and metadata', () => {
    const { tensors, metadata } = safetensors.deserialize(safetensors.serialize({ 'z.weight': a, 'a.weight': b }, { format: 'pt' }));
    expect(metadata).toEqual({ format: 'pt' });
    expect(tensors['z.weight'].shape).toEqual([2, 3]);
    expect(Array.from(tensors['z.weight'].data)).toEqual(Array.from(Float32Array.from(a.data)));
    expect(Array.from(tensors['a.weight'].data)).toEqual([7]);
  });

  it('rejects files a standard reader rejects', () => {
    const good = safetensors.serialize({ t: b });
    expect(() => safetensors.deserialize(Buffer.concat([good, Buffer.alloc(4)]))).toThrow(/trailing bytes/);
    expect(() => safetensors.deserialize(good.subarray(0, good.length - 1))).toThrow(/past the end/);
    const gap = Buffer.from(JSON.stringify({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }).padEnd(48, ' '));
    const gapped = Buffer.concat([Buffer.alloc(8), gap, Buffer.alloc(8)]);
    gapped.writeBigUInt64LE(BigInt(gap.length), 0);
    expect(() => safetensors.deserialize(gapped)).toThrow(/starts at 4, expected 0/);
    expect(() => safetensors.serialize({ t: { shape: [2], data: [1] } })).toThrow(/needs 2 values/);
  });
});

describe('tiny-lora model', () => {
  const msgs = [{ role: 'system', content: 'Route it.' }, { role: 'user', content: 'My card was charged twice for order 4821' }];

  it('featurizes input and answer-so-far deterministically, from the input roles only', () => {
    const ctx = features.inputContext(msgs);
    const first = features.stepFeatures(ctx, features.startState(ctx));
    expect(features.stepFeatures(ctx, features.startState(features.inputContext(msgs)))).toEqual(first);
    expect([...first.idx].every((i) => i >= 0 && i < model.D)).toBe(true);
    // Assistant text is never an input.
    expect(features.inputContext([...msgs, { role: 'assistant', content: 'billing' }])).toEqual(ctx);
    // The features change with the answer so far, and copying follows the input word the answer is a prefix of.
    const after4 = features.advance(ctx, features.startState(ctx), '4'.charCodeAt(0));
    expect(features.stepFeatures(ctx, after4)).not.toEqual(first);
    expect(ctx.words.filter((_, i) => after4.matching[i]).map((w) => Buffer.from(w.bytes).toString())).toEqual(['4821']);
    expect(features.shapeOf('Ord-4821é')).toBe('Aa-9a');
  });

  it('generates bytes until its end token, within max tokens, greedy and reproducible', () => {
    const base = model.generate(msgs, null, { maxTokens: 8 });
    expect(base.tokens.length).toBeLessThanOrEqual(8);
    expect(model.generate(msgs, null, { maxTokens: 8 })).toEqual(base);
    const sampled = (seed: number) => model.generate(msgs, null, { maxTokens: 16, temperature: 1, seed }).tokens.map((t) => t.id);
    expect(sampled(3)).toEqual(sampled(3));
    expect([1, 2, 4, 5, 6].some((s) => JSON.stringify(sampled(s)) !== JSON.stringify(sampled(3)))).toBe(true);
    // Log-probabilities are a distribution over the 257 tokens.
    const top = model.generate(msgs, null, { maxTokens: 1, topK: model.V }).eos ?? model.generate(msgs, null, { maxTokens: 1, topK: model.V }).tokens[0];
    expect(top.top.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeCloseTo(1, 9);
  });

  it('refuses adapters of another base: the v1 classifier or another revision', () => {
    const trained = { ...trainer.initLora(2, 1), r: 2, alpha: 4, scale: 2, trainedTokens: 0, step: 0, stopped: false };
    const [config, weights] = trainer.adapterFiles(trained, { r: 2, alpha: 4, dropout: 0 });
    const json = JSON.parse(config.data.toString());
    expect(model.parseAdapter(json, weights.data).r).toBe(2);
    const { revision: _dropped, ...v1 } = json;
    expect(() => model.parseAdapter(v1, weights.data)).toThrow(/trained on an older tiny-lora base \(no revision recorded\), but this server holds tiny-lora-base-v2: retrain it/);
    expect(() => model.parseAdapter({ ...json, revision: 'tiny-lora-base-v1' }, weights.data)).toThrow(/base weights tiny-lora-base-v1/);
  });
});

describe('tiny-lora trainer: spec and data checks', () => {
  it('accepts a valid spec and mirrors the contract exit codes', () => {
    expect(() => trainer.validateSpec(validSpec())).not.toThrow();
    expect(trainer.TRAINER_EXIT).toEqual(CONTRACT_EXIT);
  });

  it.each([
    ['contract_version', (s: any) => (s.contract_version = 2), /contract_version/],
    ['zero epochs', (s: any) => (s.hyperparameters.n_epochs = 0), /n_epochs: must be >= 1/],
    ['a rank over 512', (s: any) => (s.hyperparameters.lora.r = 1024), /lora\.r: must be <= 512/],
    ['a bad sha256', (s: any) => (s.data.training_file.sha256 = 'ABC'), /training_file\.sha256/],
    ['a non-URL', (s: any) => (s.output.url = 'not a url'), /output\.url/],
    ['another base model', (s: any) => (s.model.name = 'gpt-oss-20b'), /only trains tiny-lora/],
    ['other base weights', (s: any) => (s.model.weights = 'tiny-lora-base-v1'), /this image holds tiny-lora-base-v2/],
    ['a bad method', (s: any) => (s.method = 'ppo'), /method: expected supervised or dpo/],
    ['a non-positive beta', (s: any) => (s.hyperparameters.beta = 0), /hyperparameters\.beta: must be > 0/],
    ['an unknown module', (s: any) => (s.hyperparameters.lora.target_modules = ['q_proj']), /only lm_head/],
  ])('rejects %s with invalid_spec', (_name, mutate, message) => {
    const spec = validSpec();
    mutate(spec);
    expect(() => trainer.validateSpec(spec)).toThrow(expect.objectContaining({ code: 'invalid_spec', message: expect.stringMatching(message) }));
  });

  it('reports a bad row as invalid_data naming the line', () => {
    const lines = makeTicketDataset({ n: 3, seed: 1 }).trim().split('\n');
    const row = (answer: string) => JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: answer }] });
    const withLine2 = (text: string) => [lines[0], text, ...lines.slice(1)].join('\n');
    expect(() => trainer.examplesFromJsonl(withLine2(row('x'.repeat(65))))).toThrow(
      expect.objectContaining({ code: 'invalid_data', line: 2, message: 'training file line 2: messages[1] (the assistant answer) is 65 tokens (UTF-8 bytes), over this model\'s limit of 64' }),
    );
    expect(() => trainer.examplesFromJsonl(withLine2(row('  ')))).toThrow(expect.objectContaining({ line: 2, message: expect.stringMatching(/assistant answer\) is empty/) }));
    expect(() => trainer.examplesFromJsonl('{"messages": [}')).toThrow(expect.objectContaining({ code: 'invalid_data', line: 1, message: expect.stringMatching(/not valid JSON/) }));
    expect(() => trainer.examplesFromJsonl('{"messages":[{"role":"user","content":"x"}]}')).toThrow(/no assistant message/);
    // Any short answer is learnable: multiword, hyphenated, accented, numbers.
    for (const answer of ['talk to a human', 'order-status-2', 'réclamation', '1000000', 'Certainly, here you go']) {
      expect(trainer.examplesFromJsonl(row(answer))[0]).toMatchObject({ kind: 'sft', seq: { text: answer } });
    }
  });

  it('reads DPO lines and refuses one whose two outputs are equal, naming the line', () => {
    const pair = (a: string, b: string) =>
      JSON.stringify({ input: { messages: [{ role: 'user', content: 'hi' }] }, preferred_output: [{ role: 'assistant', content: a }], non_preferred_output: [{ role: 'assistant', content: b }] });
    const [ex] = trainer.examplesFromJsonl(pair('hello', 'go away'), 'training file', 'dpo');
    expect(ex).toMatchObject({ kind: 'dpo', chosen: { text: 'hello' }, rejected: { text: 'go away' } });
    expect(() => trainer.examplesFromJsonl(`${pair('a', 'b')}\n${pair('same', 'same')}`, 'training file', 'dpo')).toThrow(
      expect.objectContaining({ code: 'invalid_data', line: 2, message: 'training file line 2: preferred_output and non_preferred_output are the same answer: nothing to prefer' }),
    );
    // A chat line in a DPO job (and the other way round) is named too.
    expect(() => trainer.examplesFromJsonl(makeTicketDataset({ n: 1, seed: 1 }), 'training file', 'dpo')).toThrow(/line 1: expected "input"/);
    expect(() => trainer.examplesFromJsonl(pair('a', 'b'))).toThrow(/line 1: expected an object with a "messages" array/);
  });

  it('turns a missing spec into an invalid_spec event and exit 2', async () => {
    const events: unknown[] = [];
    const code = await trainer.run({}, (e) => events.push(e));
    expect(code).toBe(2);
    expect(events).toEqual([{ type: 'error', code: 'invalid_spec', message: 'LORAPLANE_JOB_SPEC is not set' }]);
    expect(trainerEventSchema.safeParse(events[0]).success).toBe(true);
  });
});

describe('tiny-lora trainer: learning', () => {
  const split = makeTicketSplit({ nTrain: 1000, nHeldOut: 400, seed: 7 });
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'tiny-lora-unit-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('learns the ticket task: the adapter beats the base model on held-out tickets', async () => {
    const examples = trainer.examplesFromJsonl(split.trainJsonl);
    const validation = trainer.examplesFromJsonl(split.heldOutJsonl, 'validation file');
    const metrics: any[] = [];
    const started = Date.now();
    const trained = await trainer.train(examples, TRAIN, { validation, onMetrics: (m) => metrics.push(m) });
    const trainMs = Date.now() - started;

    // Through the files, as a server would load it.
    await trainer.writeFiles(dir, trainer.adapterFiles(trained, LORA));
    const adapter = model.loadAdapter(dir);
    const base = heldOutAccuracy(split.heldOut);
    const tuned = heldOutAccuracy(split.heldOut, adapter);
    console.info(`tiny-lora ticket task (train n=1000, held-out n=${split.heldOut.length}, seed 7): base ${base}, adapter ${tuned}, training ${trainMs} ms`);
    expect(base).toBeLessThanOrEqual(0.05);
    expect(tuned).toBeGreaterThanOrEqual(0.85);

    // The metrics stream is contract-valid, ends at the last step, and reports validation at epoch ends.
    for (const m of metrics) expect(trainerEventSchema.safeParse(m).success).toBe(true);
    const last = metrics[metrics.length - 1];
    expect(last).toMatchObject({ step: 250, total_steps: 250, epoch: 2 });
    expect(last.valid_mean_token_accuracy).toBeGreaterThanOrEqual(0.85);
    expect(last.train_loss).toBeLessThan(metrics[0].train_loss);
    expect(trained.trainedTokens).toBe(2 * examples.reduce((s, e) => s + e.tokens, 0));
  });

  it('writes a PEFT adapter_config.json and tensors with PEFT names and shapes', async () => {
    const trained = await trainer.train(trainer.examplesFromJsonl(makeTicketDataset({ n: 64, seed: 3 })), { ...TRAIN, n_epochs: 1 });
    const [config, weights] = trainer.adapterFiles(trained, LORA);
    expect(config.name).toBe('adapter_config.json');
    expect(JSON.parse(config.data.toString())).toEqual({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'tiny-lora',
      revision: 'tiny-lora-base-v2',
      r: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['lm_head'],
      bias: 'none',
      modules_to_save: null,
      use_dora: false,
      use_rslora: false,
      fan_in_fan_out: false,
      inference_mode: true,
    });
    expect(weights.name).toBe('adapter_model.safetensors');
    const { tensors, metadata } = safetensors.deserialize(weights.data);
    expect(metadata).toEqual({ format: 'pt' });
    expect(Object.keys(tensors).sort()).toEqual(['base_model.model.lm_head.lora_A.weight', 'base_model.model.lm_head.lora_B.weight']);
    expect(tensors['base_model.model.lm_head.lora_A.weight'].shape).toEqual([8, model.D]);
    expect(tensors['base_model.model.lm_head.lora_B.weight'].shape).toEqual([model.V, 8]);
  });

  it('is deterministic: same seed gives identical adapter bytes, another seed different bytes', async () => {
    const examples = () => trainer.examplesFromJsonl(makeTicketDataset({ n: 200, seed: 5 }));
    const bytes = async (seed: number) => {
      const files = trainer.adapterFiles(await trainer.train(examples(), { ...TRAIN, n_epochs: 1, seed }), LORA);
      return Buffer.concat(files.map((f) => f.data));
    };
    const first = await bytes(11);
    expect((await bytes(11)).equals(first)).toBe(true);
    expect((await bytes(12)).equals(first)).toBe(false);
  });
});

describe('tiny-lora trainer: checkpoints and resume', () => {
  const OPTIONS = { ...TRAIN, n_epochs: 3 }; // 200 examples / 8 = 25 steps per epoch, 75 in all
  const jsonl = makeTicketDataset({ n: 200, seed: 9 });
  const specFor = () => {
    const spec = validSpec();
    spec.seed = OPTIONS.seed;
    spec.hyperparameters = { ...OPTIONS, lora: { ...LORA } };
    spec.data.training_file.sha256 = 'b'.repeat(64);
    return spec;
  };
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'tiny-lora-ckpt-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Train with checkpoints every `every` steps, keep each checkpoint's files, stop when `stopAfter` says so. */
  async function trainWithCheckpoints(every: number, stopAfter = () => false) {
    const spec = specFor();
    const checkpoints = new Map<number, trainer.AdapterFile[]>();
    const result = await trainer.train(trainer.examplesFromJsonl(jsonl), OPTIONS, {
      checkpointEvery: every,
      onCheckpoint: async (state: any) => void checkpoints.set(state.step, trainer.checkpointFiles(state, spec)),
      shouldStop: stopAfter,
    });
    return { spec, result, checkpoints };
  }

  async function resumeFrom(files: trainer.AdapterFile[], step: number, spec = specFor()) {
    const ckDir = mkdtempSync(join(dir, `step-${step}-`));
    await trainer.writeFiles(ckDir, files);
    const resume = trainer.loadCheckpoint(ckDir, spec, step);
    return trainer.train(trainer.examplesFromJsonl(jsonl), OPTIONS, { resume });
  }

  it('checkpoints at every N-th step but the last, each a loadable PEFT adapter plus F64 state', async () => {
    const { result, checkpoints } = await trainWithCheckpoints(25);
    expect(result).toMatchObject({ step: 75, stopped: false });
    expect([...checkpoints.keys()]).toEqual([25, 50]); // 75 is the last step: that is the artifact
    const files = checkpoints.get(25)!;
    expect(files.map((f) => f.name)).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'trainer_state.json', 'trainer_state.safetensors']);
    const adapter = model.parseAdapter(JSON.parse(files[0].data.toString()), files[1].data);
    expect(adapter.r).toBe(8);
    const { tensors } = safetensors.deserialize(files[3].data);
    expect(Object.values(tensors).every((t) => t.dtype === 'F64' && t.data instanceof Float64Array)).toBe(true);
    // The F32 adapter is the F64 state rounded.
    expect(Array.from(adapter.A.slice(0, 50))).toEqual(Array.from(Float32Array.from(tensors.lora_A.data.slice(0, 50))));
  });

  it.each([
    ['mid-epoch', 30],
    ['at an epoch boundary', 50],
  ])('a run resumed %s ends with the same adapter bytes as an uninterrupted one', async (_name, step) => {
    const full = await trainer.train(trainer.examplesFromJsonl(jsonl), OPTIONS);
    const fullBytes = Buffer.concat(trainer.adapterFiles(full, LORA).map((f) => f.data));
    const { checkpoints } = await trainWithCheckpoints(step === 30 ? 10 : 25);
    const resumed = await resumeFrom(checkpoints.get(step)!, step);
    expect(resumed.step).toBe(75);
    expect(resumed.trainedTokens).toBe(full.trainedTokens);
    expect(Buffer.concat(trainer.adapterFiles(resumed, LORA).map((f) => f.data)).equals(fullBytes)).toBe(true);
  });

  it('stops after the current step with a checkpoint of it when asked to stop', async () => {
    let steps = 0;
    const { result, checkpoints } = await trainWithCheckpoints(1000, () => ++steps >= 7);
    expect(result).toMatchObject({ step: 7, stopped: true });
    expect([...checkpoints.keys()]).toEqual([7]);
  });

  it('refuses a checkpoint made with other settings or data, or of another step', async () => {
    const { checkpoints } = await trainWithCheckpoints(25);
    const files = checkpoints.get(25)!;
    const other = specFor();
    other.hyperparameters.learning_rate = 0.01;
    other.data.training_file.sha256 = 'c'.repeat(64);
    await expect(resumeFrom(files, 25, other)).rejects.toMatchObject({
      code: 'invalid_spec',
      message: 'resume_from: the checkpoint was made with another training_file_sha256, learning_rate than this spec',
    });
    await expect(resumeFrom(files, 24)).rejects.toMatchObject({ code: 'invalid_spec', message: expect.stringContaining('checkpoint is of step 25') });
    const broken = files.map((f) => (f.name === 'trainer_state.safetensors' ? { ...f, data: f.data.subarray(0, 100) } : f));
    await expect(resumeFrom(broken, 25)).rejects.toMatchObject({ code: 'invalid_spec', message: expect.stringContaining('not a tiny-lora checkpoint') });
  });

  it.each([
    ['checkpoint_every_steps 0', (s: any) => (s.checkpoint_every_steps = 0), /checkpoint_every_steps: must be >= 1/],
    ['stop_grace_seconds 1.5', (s: any) => (s.stop_grace_seconds = 1.5), /stop_grace_seconds: expected an integer/],
    ['resume_from without files', (s: any) => (s.resume_from = { step: 3, files: [] }), /resume_from\.files: expected a non-empty array/],
    ['resume_from with a bad file', (s: any) => (s.resume_from = { step: 3, files: [{ name: '', url: 'x', sha256: 'a'.repeat(64), bytes: 1 }] }), /resume_from\.files\[0\]\.url.*resume_from\.files\[0\]\.name/],
  ])('validates the optional spec fields: %s', (_name, mutate, message) => {
    const spec = validSpec();
    mutate(spec);
    expect(() => trainer.validateSpec(spec)).toThrow(expect.objectContaining({ code: 'invalid_spec', message: expect.stringMatching(message) }));
    expect(() => trainer.validateSpec({ ...validSpec(), checkpoint_every_steps: 5, stop_grace_seconds: 30, resume_from: null })).not.toThrow();
  });
});

describe('safetensors F64', () => {
  it('round-trips float64 exactly and says F64 in the header', () => {
    const data = [Math.PI, 1e-300, -0.1];
    const buf = safetensors.serialize({ s: { dtype: 'F64', shape: [3], data } });
    const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
    expect(header.s).toEqual({ dtype: 'F64', shape: [3], data_offsets: [0, 24] });
    expect(Array.from(safetensors.deserialize(buf).tensors.s.data)).toEqual(data);
  });
});
