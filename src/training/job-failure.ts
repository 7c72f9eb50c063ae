import { assertExhaustive } from '../common/assert-exhaustive';
import { TrainerErrorCode } from './contract/job-contract';

/** Every `error.code` a failed job can carry; README ("Failures") documents each (a unit test checks). */
export const jobFailureCodes = [
  'invalid_training_file',
  'invalid_validation_file',
  'out_of_memory',
  'timeout',
  'trainer_exit',
  'contract_error',
  'artifact_invalid',
  'trainer_invalid_spec',
  'trainer_data_unreachable',
  'trainer_upload_failed',
  'trainer_out_of_memory',
  'trainer_cancelled',
  'trainer_internal',
  'internal_error',
] as const;
export type JobFailureCode = (typeof jobFailureCodes)[number];

/** The failure code of a trainer's own error event (jobs/CONTRACT.md). */
export function trainerFailureCode(code: TrainerErrorCode): JobFailureCode {
  switch (code) {
    case 'invalid_data':
      return 'invalid_training_file'; // the user's data, whichever trainer found it
    case 'invalid_spec':
      return 'trainer_invalid_spec';
    case 'data_unreachable':
      return 'trainer_data_unreachable';
    case 'upload_failed':
      return 'trainer_upload_failed';
    case 'out_of_memory':
      return 'trainer_out_of_memory';
    case 'cancelled':
      return 'trainer_cancelled';
    case 'internal':
      return 'trainer_internal';
    default:
      return assertExhaustive(code, 'trainer error code');
  }
}

/** The request field a failure points at (OpenAI's `error.param`), null when it is not the user's input. */
export function failureParam(code: JobFailureCode): string | null {
  switch (code) {
    case 'invalid_training_file':
      return 'training_file';
    case 'invalid_validation_file':
      return 'validation_file';
    case 'out_of_memory':
    case 'trainer_out_of_memory':
    case 'timeout':
    case 'trainer_exit':
    case 'contract_error':
    case 'artifact_invalid':
    case 'trainer_invalid_spec':
    case 'trainer_data_unreachable':
    case 'trainer_upload_failed':
    case 'trainer_cancelled':
    case 'trainer_internal':
    case 'internal_error':
      return null;
    default:
      return assertExhaustive(code, 'job failure code');
  }
}
