import { parseTrainerLine, TrainerEvent } from '../../src/training/contract/job-contract';
import { explainFailure } from '../../src/training/trainer-output';

type Outcome = Parameters<typeof explainFailure>[1];

const SHA = '2545a19d2937f7859fa1b339b8825ccd506970a2e7d7720fe90e8631f1b65944';
const FILE = { name: 'adapter_model.safetensors', bytes: 140024, sha256: SHA };

/** One valid example of each event type, as jobs/CONTRACT.md shows them. */
const VALID: Record<TrainerEvent['type'], TrainerEvent[]> = {
  status: [{ type: 'status', status: 'starting', message: 'tiny-lora trainer, job ftjob-abc123 attempt 1' }],
  metrics: [
    { type: 'metrics', step: 0, total_steps: 1, epoch: 0, train_loss: 2.3, learning_rate: 0 },
    {
      type: 'metrics', step: 250, total_steps: 250, epoch: 2, train_loss: 0.055618, learning_rate: 0.0002, train_mean_token_accuracy: 0.9875,
      valid_loss: 0.21, valid_mean_token_accuracy: 0.94, tokens_per_second: 80175,
    },
  ],
  checkpoint: [
    { type: 'checkpoint', step: 100, key_prefix: 'projects/p1/jobs/ftjob-abc123/attempt-1/checkpoint-100/', files: [FILE], metrics: { train_loss: 0.21 } },
  ],
  artifact: [
    { type: 'artifact', kind: 'adapter', key_prefix: 'projects/p1/jobs/ftjob-abc123/attempt-1/', files: [{ name: 'adapter_config.json', bytes: 330, sha256: SHA }, FILE], trained_tokens: 81216 },
    { type: 'artifact', kind: 'adapter', key_prefix: 'p/', files: [FILE] },
  ],
  error: [
    { type: 'error', code: 'invalid_data', message: 'training file line 3: not a word of the vocabulary', line: 3 },
    { type: 'error', code: 'cancelled', message: 'SIGTERM' },
  ],
};

describe('parseTrainerLine', () => {
  describe('contract events', () => {
    it.each(Object.entries(VALID).flatMap(([type, events]) => events.map((e, i) => [`${type} #${i + 1}`, e] as const)))('%s is an event', (_name, event) => {
      expect(parseTrainerLine(JSON.stringify(event))).toEqual({ kind: 'event', event });
    });

    it('covers every event type of the schema', () => {
      expect(Object.keys(VALID).sort()).toEqual(['artifact', 'checkpoint', 'error', 'metrics', 'status']);
    });

    it('ignores a trailing CR or spaces (a trainer on Windows line endings)', () => {
      const event = VALID.status[0];
      expect(parseTrainerLine(`${JSON.stringify(event)}\r`)).toEqual({ kind: 'event', event });
      expect(parseTrainerLine(`${JSON.stringify(event)}   `)).toEqual({ kind: 'event', event });
    });

    it('drops fields it does not know, so a newer trainer still talks to this control plane', () => {
      const parsed = parseTrainerLine(JSON.stringify({ ...VALID.status[0], gpu_temp: 71 }));
      expect(parsed).toEqual({ kind: 'event', event: VALID.status[0] });
    });
  });

  describe('log lines', () => {
    it.each([
      ['plain text', 'Loading checkpoint shards: 100%|██████████| 3/3'],
      ['an empty line', ''],
      ['text that starts like JSON', '{not json at all'],
      ['JSON without a type', '{"loss": 0.5, "step": 3}'],
      ['a JSON array', '[{"type":"status"}]'],
      ['a JSON string', '"type"'],
      ['null', 'null'],
    ])('%s is a log line, kept verbatim', (_name, line) => {
      expect(parseTrainerLine(line)).toEqual({ kind: 'log', text: line });
    });

    it('trims only the end of a log line', () => {
      expect(parseTrainerLine('  step 3 done \r')).toEqual({ kind: 'log', text: '  step 3 done' });
    });
  });

  describe('contract violations', () => {
    it.each<[string, Record<string, unknown>, string]>([
      ['a status that is not in the list', { type: 'status', status: 'thinking', message: 'x' }, 'status'],
      ['a status without message', { type: 'status', status: 'training' }, 'message'],
      ['metrics without a step', { type: 'metrics', total_steps: 10, epoch: 0, train_loss: 1, learning_rate: 0.1 }, 'step'],
      ['a fractional step', { type: 'metrics', step: 1.5, total_steps: 10, epoch: 0, train_loss: 1, learning_rate: 0.1 }, 'step'],
      ['a loss as a string', { type: 'metrics', step: 1, total_steps: 10, epoch: 0, train_loss: '1.0', learning_rate: 0.1 }, 'train_loss'],
      ['an accuracy over 1', { type: 'metrics', step: 1, total_steps: 10, epoch: 0, train_loss: 1, learning_rate: 0.1, train_mean_token_accuracy: 1.5 }, 'train_mean_token_accuracy'],
      ['a checkpoint without files', { type: 'checkpoint', step: 1, key_prefix: 'p/', files: [] }, 'files'],
      ['an artifact of another kind', { type: 'artifact', kind: 'merged', key_prefix: 'p/', files: [FILE] }, 'kind'],
      ['an artifact file with an upper-case hash', { type: 'artifact', kind: 'adapter', key_prefix: 'p/', files: [{ ...FILE, sha256: SHA.toUpperCase() }] }, 'files.0.sha256'],
      ['an artifact file with negative bytes', { type: 'artifact', kind: 'adapter', key_prefix: 'p/', files: [FILE, { ...FILE, bytes: -1 }] }, 'files.1.bytes'],
      ['an error code not in the contract', { type: 'error', code: 'gpu_on_fire', message: 'x' }, 'code'],
      ['an error line 0 (lines count from 1)', { type: 'error', code: 'invalid_data', message: 'x', line: 0 }, 'line'],
    ])('%s is invalid and the problem names the field', (_name, value, field) => {
      const line = JSON.stringify(value);
      const parsed = parseTrainerLine(line);
      expect(parsed).toMatchObject({ kind: 'invalid', text: line });
      const { problem } = parsed as { problem: string };
      expect(problem.startsWith(`${field}: `)).toBe(true);
      expect(problem.length).toBeGreaterThan(field.length + 2);
    });

    // jobs/CONTRACT.md: "A JSON object with a `type` that does not satisfy the schema is a contract violation".
    it.each([
      ['an unknown type', { type: 'progress', pct: 50 }],
      ['a type that is not a string', { type: 5 }],
    ])('%s is a violation about `type`', (_name, value) => {
      const parsed = parseTrainerLine(JSON.stringify(value));
      expect(parsed.kind).toBe('invalid');
      expect((parsed as { problem: string }).problem).toMatch(/^type: /);
    });
  });
});

describe('explainFailure', () => {
  const outcome = (over: Partial<Outcome> = {}): Outcome => ({ stderrTail: [], contractViolations: [], ...over });
  const trainerError = (code: Extract<TrainerEvent, { type: 'error' }>['code'], message: string, line?: number) =>
    ({ type: 'error', code, message, ...(line ? { line } : {}) }) as Extract<TrainerEvent, { type: 'error' }>;

  it('blames memory when the engine OOM-killed the container, whatever the trainer said', () => {
    const [code, message] = explainFailure({ exitCode: 137, oomKilled: true }, outcome({ error: trainerError('internal', 'killed'), stderrTail: ['x'] }));
    expect(code).toBe('out_of_memory');
    expect(message).toBe('the trainer ran out of memory (exit code 137, OOMKilled): use a smaller batch_size or a model with more memory');
  });

  it("reports the trainer's invalid_data error as invalid_training_file with its line", () => {
    expect(explainFailure({ exitCode: 3, oomKilled: false }, outcome({ error: trainerError('invalid_data', 'unknown word "parcel"', 3), stderrTail: ['noise'] }))).toEqual([
      'invalid_training_file',
      'unknown word "parcel" (line 3); exit code 3',
    ]);
  });

  it('does not repeat a line number the trainer message already names, but does add a different one', () => {
    const exit = { exitCode: 3, oomKilled: false };
    expect(explainFailure(exit, outcome({ error: trainerError('invalid_data', 'training file line 3: bad word', 3) }))[1]).toBe(
      'training file line 3: bad word; exit code 3',
    );
    // "line 30" is not "line 3".
    expect(explainFailure(exit, outcome({ error: trainerError('invalid_data', 'see line 30', 3) }))[1]).toBe('see line 30 (line 3); exit code 3');
  });

  it.each([
    ['data_unreachable', 4, 'trainer_data_unreachable'],
    ['upload_failed', 5, 'trainer_upload_failed'],
    ['invalid_spec', 2, 'trainer_invalid_spec'],
    ['cancelled', 143, 'trainer_cancelled'],
  ] as const)('prefixes the trainer error %s (exit %i) as %s, with no line when none was given', (trainerCode, exitCode, code) => {
    expect(explainFailure({ exitCode, oomKilled: false }, outcome({ error: trainerError(trainerCode, 'it broke') }))).toEqual([code, `it broke; exit code ${exitCode}`]);
  });

  it('calls exit 0 without an artifact a contract error, quoting the first three violations', () => {
    expect(explainFailure({ exitCode: 0, oomKilled: false }, outcome())).toEqual(['contract_error', 'the trainer exited 0 without announcing an adapter artifact']);
    const violations = ['line 4: files: too small', 'line 9: kind: bad', 'line 12: step: bad', 'line 20: code: bad'];
    const [code, message] = explainFailure({ exitCode: 0, oomKilled: false }, outcome({ contractViolations: violations }));
    expect(code).toBe('contract_error');
    expect(message).toBe(
      'the trainer exited 0 without announcing an adapter artifact; contract violations: line 4: files: too small; line 9: kind: bad; line 12: step: bad',
    );
  });

  it('names a non-zero exit and quotes the last five log lines', () => {
    const tail = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'Traceback: CUDA error'];
    expect(explainFailure({ exitCode: 1, oomKilled: false }, outcome({ stderrTail: tail }))).toEqual([
      'trainer_exit',
      'the trainer exited with code 1: l3 | l4 | l5 | l6 | Traceback: CUDA error',
    ]);
    expect(explainFailure({ exitCode: 139, oomKilled: false }, outcome())).toEqual(['trainer_exit', 'the trainer exited with code 139']);
  });
});
