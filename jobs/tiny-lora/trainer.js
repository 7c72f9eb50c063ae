'use strict';
/**
 * The tiny-lora trainer: the container entry point of the DEVELOPMENT model (see model.js). It follows
 * jobs/CONTRACT.md exactly like the GPT-OSS trainer does: JobSpec in LORAPLANE_JOB_SPEC, data through presigned GET
 * URLs, the adapter out through a presigned POST, one JSON event per stdout line, TRAINER_EXIT codes.
 *
 * One concern per module: spec-checks.js (the spec), transfer.js (downloads and uploads), data.js (JSONL ->
 * examples), training-loop.js + train.js (the math and the run), checkpoints.js, adapter-files.js (the PEFT output).
 * Plain CommonJS with no npm dependencies: the image holds only the node binary and the files of this folder.
 */
const { Date } = globalThis;
const fsp = require('node:fs/promises');
const path = require('node:path');
const model = require('./model');
const { CONTRACT_VERSION, TRAINER_EXIT, TrainerError, stdoutEmit, logDiag } = require('./errors');
const { validateSpec, parseSpecText } = require('./spec-checks');
const { downloadVerified, uploadFile, sha256Hex } = require('./transfer');
const { parseExampleLine, examplesFromJsonl, readExamplesFile, countTokens } = require('./data');
const { initLora, evaluate } = require('./training-loop');
const { train } = require('./train');
const { fingerprint, checkpointFiles, loadCheckpoint, downloadCheckpoint, uploadCheckpoint } = require('./checkpoints');
const { adapterConfig, adapterFiles, writeFiles } = require('./adapter-files');

/**
 * Run a validated job end to end, printing contract events through `emit`. Throws TrainerError on a contract
 * failure (the caller turns it into an error event and exit code). `stop` is the SIGTERM state main() shares:
 * while `stop.training` is true a signal only sets `stop.requested`, and training ends after a checkpoint.
 */
async function runJob(spec, { scratchDir, emit, stop = { requested: false, training: false } }) {
  const hp = spec.hyperparameters;
  emit({ type: 'status', status: 'starting', message: `${model.MODEL_NAME} trainer (development model), job ${spec.job_id} attempt ${spec.attempt}` });

  emit({ type: 'status', status: 'loading_data', message: 'downloading and checking the dataset' });
  const dataDir = path.join(scratchDir, 'data');
  await fsp.mkdir(dataDir, { recursive: true });
  let resume;
  if (spec.resume_from) {
    const dir = path.join(scratchDir, 'resume');
    await downloadCheckpoint(spec.resume_from, dir);
    resume = loadCheckpoint(dir, spec, spec.resume_from.step);
  }
  await downloadVerified(spec.data.training_file, path.join(dataDir, 'train.jsonl'), 'training file');
  const examples = await readExamplesFile(path.join(dataDir, 'train.jsonl'), 'training file', spec.method);
  let validation = [];
  if (spec.data.validation_file) {
    await downloadVerified(spec.data.validation_file, path.join(dataDir, 'validation.jsonl'), 'validation file');
    validation = await readExamplesFile(path.join(dataDir, 'validation.jsonl'), 'validation file', spec.method);
  }

  const totalSteps = Math.ceil(examples.length / hp.batch_size) * hp.n_epochs;
  if (resume && resume.step >= totalSteps) {
    throw new TrainerError('invalid_spec', `resume_from: step ${resume.step} is not before the last step ${totalSteps}`);
  }
  const from = resume ? `, resuming after step ${resume.step}` : '';
  const what = spec.method === 'dpo' ? `DPO (beta ${hp.beta ?? 0.1}, rpo_alpha ${hp.rpo_alpha ?? 0}, reference: the base model) on ${examples.length} pairs` : `${examples.length} examples`;
  emit({ type: 'status', status: 'training', message: `${what}, ${hp.n_epochs} epoch(s), ${totalSteps} steps, r=${hp.lora.r}${from}` });
  const started = Date.now();
  let lastLoss;
  const onMetrics = (event) => {
    lastLoss = event.train_loss;
    emit(event);
  };
  stop.training = true;
  let trained;
  try {
    trained = await train(examples, { seed: spec.seed, ...hp, ...(spec.method === 'dpo' ? {} : { beta: undefined, rpo_alpha: undefined }) }, {
      validation,
      onMetrics,
      resume,
      checkpointEvery: spec.checkpoint_every_steps,
      shouldStop: () => stop.requested,
      onCheckpoint: (state) => uploadCheckpoint(spec, state, emit, lastLoss),
    });
  } finally {
    stop.training = false;
  }
  logDiag(`trained in ${Date.now() - started} ms`);
  if (trained.stopped) {
    throw new TrainerError('cancelled', `received ${stop.signal ?? 'a stop request'}; stopped after step ${trained.step} and uploaded its checkpoint`);
  }

  emit({ type: 'status', status: 'saving', message: 'writing the PEFT adapter' });
  const files = adapterFiles(trained, hp.lora);
  await writeFiles(path.join(scratchDir, 'adapter'), files);

  emit({ type: 'status', status: 'uploading', message: `uploading ${files.length} files to ${spec.output.key_prefix}` });
  for (const f of files) await uploadFile(spec.output, f);

  emit({
    type: 'artifact',
    kind: 'adapter',
    key_prefix: spec.output.key_prefix,
    files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: sha256Hex(f.data) })),
    trained_tokens: trained.trainedTokens,
  });
  emit({ type: 'status', status: 'completed', message: 'adapter uploaded' });
}

/** Error -> contract error event + exit code. Unknown errors are `internal`, with the stack on stderr. */
function failureOf(err) {
  if (err instanceof TrainerError) {
    const event = { type: 'error', code: err.code, message: err.message };
    if (err.line !== undefined) event.line = err.line;
    return { event, exitCode: TRAINER_EXIT[err.code] ?? TRAINER_EXIT.internal };
  }
  logDiag(`unexpected failure: ${err && err.stack ? err.stack : String(err)}`);
  const message = err && err.message ? err.message : String(err);
  return { event: { type: 'error', code: 'internal', message }, exitCode: TRAINER_EXIT.internal };
}

/**
 * The whole trainer as a function of its environment: returns the exit code. main() adds signals and process.exit.
 * @param {Record<string, string | undefined>} env
 */
async function run(env, emit = stdoutEmit, stop = { requested: false, training: false }) {
  try {
    const spec = parseSpecText(env.LORAPLANE_JOB_SPEC);
    stop.graceSeconds = spec.stop_grace_seconds ?? DEFAULT_GRACE_SECONDS;
    await runJob(spec, { scratchDir: env.LORAPLANE_SCRATCH_DIR || '/scratch', emit, stop });
    return TRAINER_EXIT.ok;
  } catch (err) {
    const { event, exitCode } = failureOf(err);
    emit(event);
    return exitCode;
  }
}

const DEFAULT_GRACE_SECONDS = 30;
/** Exit this long before the runtime's SIGKILL: exiting at the deadline itself is too late. */
const GRACE_MARGIN_MS = 3000;

function main() {
  const stop = { requested: false, training: false, graceSeconds: DEFAULT_GRACE_SECONDS };
  const onSignal = (signal) => {
    if (stop.requested) return;
    stop.requested = true;
    stop.signal = signal;
    if (!stop.training) {
      // Nothing trained yet (or the adapter is being saved): there is no progress a checkpoint would keep.
      stdoutEmit({ type: 'error', code: 'cancelled', message: `received ${signal} before training; stopped` });
      process.exit(TRAINER_EXIT.cancelled);
    }
    // Training: the loop checkpoints after the current step and run() ends with the cancelled event. If that does
    // not fit in the grace period (a slow object store), leave without the checkpoint rather than be killed.
    const budget = Math.max(stop.graceSeconds * 1000 - GRACE_MARGIN_MS, 500);
    setTimeout(() => {
      stdoutEmit({ type: 'error', code: 'cancelled', message: `received ${signal}; the checkpoint did not fit in the ${stop.graceSeconds} s grace period` });
      process.exit(TRAINER_EXIT.cancelled);
    }, budget).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  run(process.env, stdoutEmit, stop).then(
    (code) => process.exit(code),
    (err) => {
      logDiag(`trainer crashed: ${err && err.stack ? err.stack : String(err)}`);
      process.exit(TRAINER_EXIT.internal);
    },
  );
}

if (require.main === module) main();

module.exports = {
  CONTRACT_VERSION,
  TRAINER_EXIT,
  TrainerError,
  validateSpec,
  parseSpecText,
  parseExampleLine,
  examplesFromJsonl,
  countTokens,
  initLora,
  train,
  evaluate,
  adapterConfig,
  adapterFiles,
  writeFiles,
  sha256Hex,
  runJob,
  run,
  checkpointFiles,
  loadCheckpoint,
  fingerprint,
};
