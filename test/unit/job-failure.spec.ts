import fs from 'node:fs';
import path from 'node:path';
import { trainerErrorCodes } from '../../src/training/contract/job-contract';
import { failureParam, jobFailureCodes, trainerFailureCode } from '../../src/training/job-failure';

describe('job failure codes', () => {
  it('documents every code in the README', () => {
    const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const missing = jobFailureCodes.filter((code) => !readme.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it('maps every trainer error code to a job failure code, and points file failures at their field', () => {
    for (const code of trainerErrorCodes) expect(jobFailureCodes).toContain(trainerFailureCode(code));
    expect(trainerFailureCode('invalid_data')).toBe('invalid_training_file');
    expect(failureParam('invalid_training_file')).toBe('training_file');
    expect(failureParam('invalid_validation_file')).toBe('validation_file');
    expect(failureParam('artifact_invalid')).toBeNull();
  });

  it('fails loudly on a code from outside the union (an old row, a bad cast)', () => {
    expect(() => failureParam('made_up' as never)).toThrow(/unhandled job failure code: "made_up"/);
  });
});
