import fs from 'node:fs';
import path from 'node:path';
import { DatasetValidator } from '../../src/datasets/validation/dataset-validator';
import { LineSplitter } from '../../src/datasets/validation/line-splitter';
import { EvalItem } from '../../src/evals/eval-item';
import { createScorer } from '../../src/evals/scorers';

const DIR = path.join(__dirname, '../../docs/evals');

/** For the first line of each example file: an output the scorer must accept and one it must refuse. */
const cases = {
  exact_match: { right: '"The Paris."', wrong: 'Lyon' },
  multiple_choice: { right: 'The answer is (B).', wrong: 'A) Tigris' },
  numeric: { right: '1000 + 234 pens, so the answer is $1234.', wrong: 'They sell 1,243 pens.\n#### 1243' },
  regex: { right: 'The date is 2024-01-01.', wrong: '01/01/2024' },
  contains: { right: "It's Paris, on the Seine.", wrong: 'Lyon is the capital of gastronomy.' },
} as const;

describe.each(Object.entries(cases))('docs/evals/%s.jsonl', (scorer, { right, wrong }) => {
  const file = fs.readFileSync(path.join(DIR, `${scorer}.jsonl`));

  it('is a valid eval dataset, as an upload would check it', () => {
    const validator = new DatasetValidator({ minExamples: 10, declaredFormat: 'eval' });
    const splitter = new LineSplitter(64 * 1024, validator.onLine);
    splitter.push(file);
    splitter.end();
    const report = validator.report(splitter.lines);
    expect(report.errors).toEqual([]);
    expect(report).toMatchObject({ valid: true, format: 'eval', examples: 10 });
  });

  it('scores a right and a wrong output for its first line', () => {
    const first = JSON.parse(file.toString('utf8').split('\n')[0]) as EvalItem;
    const s = createScorer(scorer);
    expect(s.score(first, right).correct).toBe(true);
    expect(s.score(first, wrong).correct).toBe(false);
  });

  it('scores every line without an error (each item has what its scorer needs)', () => {
    const s = createScorer(scorer);
    const items = file.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as EvalItem);
    for (const item of items) expect(typeof s.score(item, 'no idea').correct).toBe('boolean');
  });
});

describe('docs/evals/README.md', () => {
  it('documents every example file', () => {
    const readme = fs.readFileSync(path.join(DIR, 'README.md'), 'utf8');
    for (const scorer of Object.keys(cases)) expect(readme).toContain(`(${scorer}.jsonl)`);
    expect(readme).toContain('`llm_judge`');
  });
});
