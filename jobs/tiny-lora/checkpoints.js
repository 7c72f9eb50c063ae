'use strict';
/** Checkpoints (jobs/CONTRACT.md sections 7-8): the adapter so far, plus the exact state to resume from. */
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const model = require('./model');
const safetensors = require('./safetensors');
const { TrainerError } = require('./errors');
const { downloadVerified, uploadFile, sha256Hex } = require('./transfer');
const { adapterFiles } = require('./adapter-files');

const STATE_FORMAT = 'tiny-lora-trainer-state';
const STATE_JSON = 'trainer_state.json';
const STATE_TENSORS = 'trainer_state.safetensors';

/** What a checkpoint must agree with to be resumed: the same data and the same training settings. */
function fingerprint(spec) {
  const hp = spec.hyperparameters;
  return {
    model: `${model.MODEL_NAME}/${model.BASE_SEED}`,
    training_file_sha256: spec.data.training_file.sha256,
    seed: spec.seed,
    n_epochs: hp.n_epochs,
    batch_size: hp.batch_size,
    learning_rate: hp.learning_rate,
    lora: { r: hp.lora.r, alpha: hp.lora.alpha, dropout: hp.lora.dropout },
    method: spec.method,
    beta: spec.method === 'dpo' ? (hp.beta ?? null) : null,
    // Only when set, so checkpoints of jobs from before rpo_alpha existed keep their identity.
    ...(spec.method === 'dpo' && hp.rpo_alpha ? { rpo_alpha: hp.rpo_alpha } : {}),
  };
}

/**
 * A training state -> the checkpoint's files: the PEFT adapter as of this step (F32, registrable as an adapter
 * version), trainer_state.json (step, data order, PRNG states, the open metrics window) and
 * trainer_state.safetensors (the LoRA factors and Adam moments in F64, so nothing is rounded away).
 */
function checkpointFiles(state, spec) {
  const lora = spec.hyperparameters.lora;
  const json = {
    format: STATE_FORMAT,
    version: 1,
    fingerprint: fingerprint(spec),
    step: state.step,
    total_steps: state.total_steps,
    epoch: state.epoch,
    next_batch: state.next_batch,
    order: state.order,
    rng: state.rng,
    trained_tokens: state.trained_tokens,
    window: state.window,
  };
  const f64 = (data, shape) => ({ dtype: 'F64', shape, data });
  const tensors = safetensors.serialize({
    lora_A: f64(state.A, [state.r, model.D]),
    lora_B: f64(state.B, [model.V, state.r]),
    'adam.lora_A.m': f64(state.adam.A.m, [state.r, model.D]),
    'adam.lora_A.v': f64(state.adam.A.v, [state.r, model.D]),
    'adam.lora_B.m': f64(state.adam.B.m, [model.V, state.r]),
    'adam.lora_B.v': f64(state.adam.B.v, [model.V, state.r]),
  });
  return [
    ...adapterFiles(state, lora),
    { name: STATE_JSON, data: Buffer.from(`${JSON.stringify(json)}\n`) },
    { name: STATE_TENSORS, data: tensors },
  ];
}

/** Read a downloaded checkpoint back into a training state; TrainerError('invalid_spec') when it does not fit. */
function loadCheckpoint(dir, spec, resumeStep) {
  const bad = (problem) => new TrainerError('invalid_spec', `resume_from: ${problem}`);
  let json;
  let tensors;
  try {
    json = JSON.parse(fs.readFileSync(path.join(dir, STATE_JSON), 'utf8'));
    ({ tensors } = safetensors.deserialize(fs.readFileSync(path.join(dir, STATE_TENSORS))));
  } catch (err) {
    throw bad(`not a ${model.MODEL_NAME} checkpoint (${err.message})`);
  }
  if (json.format !== STATE_FORMAT || json.version !== 1) throw bad(`${STATE_JSON} is not a ${STATE_FORMAT} v1 file`);
  const want = fingerprint(spec);
  const differs = Object.keys(want).filter((k) => JSON.stringify(want[k]) !== JSON.stringify(json.fingerprint?.[k]));
  if (differs.length > 0) throw bad(`the checkpoint was made with another ${differs.join(', ')} than this spec`);
  if (json.step !== resumeStep) throw bad(`resume_from.step is ${resumeStep} but the checkpoint is of step ${json.step}`);
  const r = spec.hyperparameters.lora.r;
  const get = (name, shape) => {
    const t = tensors[name];
    if (!t || t.dtype !== 'F64' || t.shape.join() !== shape.join()) throw bad(`${STATE_TENSORS} has no F64 ${name} [${shape}]`);
    return t.data;
  };
  return {
    ...json,
    A: get('lora_A', [r, model.D]),
    B: get('lora_B', [model.V, r]),
    adam: {
      A: { m: get('adam.lora_A.m', [r, model.D]), v: get('adam.lora_A.v', [r, model.D]) },
      B: { m: get('adam.lora_B.m', [model.V, r]), v: get('adam.lora_B.v', [model.V, r]) },
    },
  };
}

/** Download resume_from's files (each sha256-checked) into dir. */
async function downloadCheckpoint(resume, dir) {
  await fsp.mkdir(dir, { recursive: true });
  const names = resume.files.map((f) => f.name);
  for (const needed of [STATE_JSON, STATE_TENSORS]) {
    if (!names.includes(needed)) throw new TrainerError('invalid_spec', `resume_from.files: a ${model.MODEL_NAME} checkpoint needs ${needed}`);
  }
  for (const f of resume.files) {
    // Names are flat in a tiny-lora checkpoint; anything with a path separator is not one of ours.
    if (f.name.includes('/') || f.name.includes('\\') || f.name.startsWith('.')) {
      throw new TrainerError('invalid_spec', `resume_from.files: unexpected file name ${JSON.stringify(f.name)}`);
    }
    await downloadVerified(f, path.join(dir, f.name), `checkpoint file ${f.name}`);
  }
}

/** Upload a checkpoint's files under output.key_prefix + checkpoint-<step>/ and announce them. */
async function uploadCheckpoint(spec, state, emit, lastLoss) {
  const prefix = `${spec.output.key_prefix}checkpoint-${state.step}/`;
  const files = checkpointFiles(state, spec);
  for (const f of files) await uploadFile({ ...spec.output, key_prefix: prefix }, f);
  const event = {
    type: 'checkpoint',
    step: state.step,
    key_prefix: prefix,
    files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: sha256Hex(f.data) })),
  };
  if (lastLoss !== undefined) event.metrics = { train_loss: lastLoss };
  emit(event);
}

module.exports = { fingerprint, checkpointFiles, loadCheckpoint, downloadCheckpoint, uploadCheckpoint };
