'use strict';
/** The contract's failure codes and exit codes (jobs/CONTRACT.md), shared by every module of the trainer. */

const CONTRACT_VERSION = 1;
/** Mirrors TRAINER_EXIT in src/training/contract/job-contract.ts. */
const TRAINER_EXIT = {
  ok: 0,
  internal: 1,
  invalid_spec: 2,
  invalid_data: 3,
  data_unreachable: 4,
  upload_failed: 5,
  cancelled: 143,
};
/** The only linear module tiny-lora has; "all-linear" (PEFT's shorthand) therefore means the same thing here. */

/** A failure the contract has a code for; anything else thrown is reported as `internal`. */
class TrainerError extends Error {
  constructor(code, message, { line, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'TrainerError';
    this.code = code;
    this.line = line;
  }
}

function stdoutEmit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Diagnostics that are not events go to stderr, so stdout stays a clean event stream. */
function logDiag(message) {
  process.stderr.write(`[tiny-lora] ${message}\n`);
}

module.exports = { CONTRACT_VERSION, TRAINER_EXIT, TrainerError, stdoutEmit, logDiag };
