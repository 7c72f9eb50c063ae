'use strict';
/** Spec validation: hand-written checks that mirror jobSpecSchema (no zod in the image), plus what this trainer can do. */
const model = require('./model');
const { CONTRACT_VERSION, TrainerError } = require('./errors');
// The contract's JSON Schema, generated from the control plane's zod schema (whose limits come from the model
// catalog): the hyperparameter limits are read from it, not written here a second time. The image keeps it at the
// same place relative to this file (/schema beside /app).
const HP = require('../schema/job-spec.schema.json').properties.hyperparameters.properties;

/** A number's bounds as the schema gives them (minimum, maximum, exclusiveMinimum 0 meaning "> 0"). */
const bounds = (p) => ({ int: p.type === 'integer', min: p.minimum, max: p.maximum, positive: p.exclusiveMinimum === 0 });

/** The only linear module tiny-lora has; "all-linear" (PEFT's shorthand) therefore means the same thing here. */
const ACCEPTED_TARGETS = new Set([model.TARGET_MODULE, 'all-linear']);

function specChecker() {
  const problems = [];
  const at = (obj, key) => (obj !== null && typeof obj === 'object' ? obj[key] : undefined);
  const check = {
    problems,
    object(value, where) {
      const ok = value !== null && typeof value === 'object' && !Array.isArray(value);
      if (!ok) problems.push(`${where}: expected an object`);
      return ok;
    },
    string(value, where) {
      if (typeof value !== 'string') problems.push(`${where}: expected a string`);
    },
    number(value, where, { int = false, min, max, positive = false } = {}) {
      if (typeof value !== 'number' || !Number.isFinite(value)) return problems.push(`${where}: expected a number`);
      if (int && !Number.isInteger(value)) problems.push(`${where}: expected an integer`);
      if (positive && !(value > 0)) problems.push(`${where}: must be > 0`);
      if (min !== undefined && value < min) problems.push(`${where}: must be >= ${min}`);
      if (max !== undefined && value > max) problems.push(`${where}: must be <= ${max}`);
    },
    url(value, where) {
      let ok = false;
      try {
        ok = typeof value === 'string' && ['http:', 'https:'].includes(new URL(value).protocol);
      } catch {
        ok = false; // new URL throws on malformed input; that is exactly the "invalid" answer we report below
      }
      if (!ok) problems.push(`${where}: expected an http(s) URL`);
    },
    sha256(value, where) {
      if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) problems.push(`${where}: expected 64 lowercase hex digits`);
    },
    at,
  };
  return check;
}

function checkDataFile(c, file, where) {
  if (!c.object(file, where)) return;
  c.url(file.url, `${where}.url`);
  c.sha256(file.sha256, `${where}.sha256`);
  c.number(file.bytes, `${where}.bytes`, { int: true, min: 0 });
}

/**
 * Validate a parsed JobSpec. Throws TrainerError('invalid_spec') listing every problem found.
 * @returns the spec, unchanged
 */
function validateSpec(spec) {
  const c = specChecker();
  if (c.object(spec, 'spec')) {
    if (spec.contract_version !== CONTRACT_VERSION) {
      c.problems.push(`contract_version: this trainer speaks version ${CONTRACT_VERSION}, got ${JSON.stringify(spec.contract_version)}`);
    }
    c.string(spec.job_id, 'job_id');
    c.number(spec.attempt, 'attempt', { int: true, min: 1 });
    if (c.object(spec.model, 'model')) {
      c.string(spec.model.name, 'model.name');
      if (spec.model.weights !== undefined) c.string(spec.model.weights, 'model.weights');
      // The weights are built in (generated from BASE_SEED); a different ref means the control plane expects
      // another base model than this image holds, and an adapter trained here would not fit it.
      if (typeof spec.model.weights === 'string' && spec.model.weights !== model.BASE_SEED) {
        c.problems.push(`model.weights: this image holds ${model.BASE_SEED}, got ${spec.model.weights}`);
      }
      if (typeof spec.model.name === 'string' && spec.model.name !== model.MODEL_NAME) {
        c.problems.push(`model.name: this trainer only trains ${model.MODEL_NAME}, got ${spec.model.name}`);
      }
    }
    if (!['supervised', 'dpo'].includes(spec.method)) c.problems.push('method: expected supervised or dpo');
    c.number(spec.seed, 'seed', { int: true });
    checkHyperparameters(c, spec.hyperparameters);
    if (c.object(spec.data, 'data')) {
      checkDataFile(c, spec.data.training_file, 'data.training_file');
      if (spec.data.validation_file !== null) checkDataFile(c, spec.data.validation_file, 'data.validation_file');
    }
    checkOutput(c, spec.output);
    if (spec.checkpoint_every_steps !== undefined) c.number(spec.checkpoint_every_steps, 'checkpoint_every_steps', { int: true, min: 1 });
    if (spec.stop_grace_seconds !== undefined) c.number(spec.stop_grace_seconds, 'stop_grace_seconds', { int: true, min: 1 });
    if (spec.resume_from !== undefined && spec.resume_from !== null) checkResume(c, spec.resume_from);
  }
  if (c.problems.length > 0) throw new TrainerError('invalid_spec', `invalid job spec: ${c.problems.join('; ')}`);
  return spec;
}

function checkHyperparameters(c, hp) {
  if (!c.object(hp, 'hyperparameters')) return;
  c.number(hp.n_epochs, 'hyperparameters.n_epochs', bounds(HP.n_epochs));
  c.number(hp.batch_size, 'hyperparameters.batch_size', bounds(HP.batch_size));
  c.number(hp.learning_rate, 'hyperparameters.learning_rate', bounds(HP.learning_rate));
  // DPO's temperature; optional (absent: 0.1, OpenAI's default) and ignored by supervised jobs.
  if (hp.beta !== undefined) c.number(hp.beta, 'hyperparameters.beta', bounds(HP.beta));
  // DPO's anchor (the preferred output's NLL weight); optional (absent: 0, pure DPO).
  if (hp.rpo_alpha !== undefined) c.number(hp.rpo_alpha, 'hyperparameters.rpo_alpha', bounds(HP.rpo_alpha));
  const lora = hp.lora;
  if (!c.object(lora, 'hyperparameters.lora')) return;
  const LORA = HP.lora.properties;
  c.number(lora.r, 'hyperparameters.lora.r', bounds(LORA.r));
  c.number(lora.alpha, 'hyperparameters.lora.alpha', bounds(LORA.alpha));
  c.number(lora.dropout, 'hyperparameters.lora.dropout', bounds(LORA.dropout));
  const targets = lora.target_modules;
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || t.length === 0)) {
    c.problems.push('hyperparameters.lora.target_modules: expected a non-empty array of names');
  } else if (targets.some((t) => !ACCEPTED_TARGETS.has(t))) {
    c.problems.push(`hyperparameters.lora.target_modules: ${model.MODEL_NAME} has only ${model.TARGET_MODULE} (or all-linear)`);
  }
}

function checkResume(c, resume) {
  if (!c.object(resume, 'resume_from')) return;
  c.number(resume.step, 'resume_from.step', { int: true, min: 1 });
  if (!Array.isArray(resume.files) || resume.files.length === 0) return void c.problems.push('resume_from.files: expected a non-empty array');
  resume.files.forEach((f, i) => {
    checkDataFile(c, f, `resume_from.files[${i}]`);
    if (c.at(f, 'name') !== undefined || c.object(f, `resume_from.files[${i}]`)) {
      if (typeof f.name !== 'string' || f.name === '') c.problems.push(`resume_from.files[${i}].name: expected a non-empty string`);
    }
  });
}

function checkOutput(c, out) {
  if (!c.object(out, 'output')) return;
  c.url(out.url, 'output.url');
  if (c.object(out.fields, 'output.fields')) {
    for (const [k, v] of Object.entries(out.fields)) c.string(v, `output.fields.${k}`);
  }
  c.string(out.key_prefix, 'output.key_prefix');
  c.number(out.max_bytes, 'output.max_bytes', { int: true, positive: true });
  c.number(out.expires_at, 'output.expires_at', { int: true });
}

function parseSpecText(text) {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new TrainerError('invalid_spec', 'LORAPLANE_JOB_SPEC is not set');
  }
  let spec;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    throw new TrainerError('invalid_spec', `LORAPLANE_JOB_SPEC is not JSON: ${err.message}`, { cause: err });
  }
  return validateSpec(spec);
}

module.exports = { validateSpec, parseSpecText };
