import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DomainError } from '../../src/common/domain-error';
import { BenchmarkFormat, Question } from '../../src/evals/benchmarks/benchmark-formats';
import { toEvalItem } from '../../src/evals/benchmarks/prompt-templates';
import { csvRecords } from '../../src/evals/benchmarks/record-readers';
import { questions } from '../../src/evals/benchmarks/suite-importer';
import { sampleOf } from '../../src/evals/benchmarks/suite-sample';
import { createScorer } from '../../src/evals/scorers';

const FIXTURES = path.join(__dirname, '../fixtures/benchmarks');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name));
/** Chunks of 7 bytes: records, quotes and multi-byte characters cut anywhere. */
const trickle = (buf: Buffer) => Readable.from(Array.from({ length: Math.ceil(buf.length / 7) }, (_, i) => buf.subarray(i * 7, i * 7 + 7)));
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
const read = (format: BenchmarkFormat, name: string, body: Buffer = fixture(name)) => all(questions(format, name, trickle(body), 1 << 20));
async function refused(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(() => null, (e: unknown) => e);
  if (!(err instanceof DomainError)) throw new Error(`expected a DomainError, got ${String(err)}`);
  return err;
}
const choice = (q: Question) => {
  if (q.kind !== 'choice') throw new Error(`not a choice question: ${q.kind}`);
  return q;
};

describe('benchmark files', () => {
  it('reads MMLU CSV: quoted commas, doubled quotes, a newline in a field, Unicode, CRLF; the subject from the name', async () => {
    const qs = (await read('mmlu', 'abstract_algebra_test.csv')).map(choice);
    expect(qs).toHaveLength(6);
    expect(qs[1]).toMatchObject({ line: 2, choices: ['True, True', 'False, False', 'True, False', 'False, True'], answer: 1, subject: 'abstract_algebra' });
    expect(qs[4].stem).toContain('The "order" of an element');
    expect(qs[4].stem).toContain('S₅');
    expect(qs[5]).toMatchObject({ line: 6, stem: 'Which statement is true?\n(Read both lines.)', answer: 0 });
    const dev = (await read('mmlu', 'abstract_algebra_dev.csv')).map(choice);
    expect(dev.map((q) => q.answer)).toEqual([0, 2, 0, 3, 1]);
    expect(dev[3].choices).toEqual(['0', '0,1', '0,4', '0,4,1']);
    expect(dev[0].stem).not.toContain('\r');
  });

  it('reads the MMLU Hugging Face export (blank lines skipped, escaped quotes, Unicode)', async () => {
    const qs = (await read('mmlu', 'mmlu-hf.jsonl')).map(choice);
    expect(qs.map((q) => [q.line, q.answer, q.subject])).toEqual([[1, 1, 'abstract_algebra'], [2, 3, 'high_school_government_and_politics'], [4, 0, 'miscellaneous']]);
    expect(qs[1].choices[0]).toContain('yelling "fire"');
  });

  it('reads GSM8K: the number after #### without its commas, the worked solution kept for shots', async () => {
    const qs = await read('gsm8k', 'gsm8k-test.jsonl');
    expect(qs.map((q) => (q.kind === 'numeric' ? q.final : null))).toEqual(['18', '3', '70000', '540', '250']);
    const item = toEvalItem('gsm8k', qs[2], await read('gsm8k', 'gsm8k-train.jsonl'));
    expect(item.reference).toBe('70000');
    expect(item.prompt).toContain('Question: Natalia sold clips');
    expect(item.prompt).toContain('#### 72\n\n');
    expect(String(item.prompt).endsWith('How much profit did he make?\nAnswer:')).toBe(true);
    expect(createScorer('numeric').score(item, 'He made $70,000 in profit.\n#### 70,000').correct).toBe(true);
  });

  it('reads ARC, original and Hugging Face: labels A-E or 1-5, 3 to 5 choices, shown as letters', async () => {
    const orig = (await read('arc', 'ARC-Challenge-Test.jsonl')).map(choice);
    expect(orig.map((q) => [q.choices.length, q.answer])).toEqual([[4, 2], [4, 1], [4, 3], [5, 2], [3, 0]]);
    const hf = (await read('arc', 'arc-hf.jsonl')).map(choice);
    expect(hf.map((q) => [q.id, q.answer])).toEqual([['Mercury_SC_415702', 0], ['MCAS_2009_5_6516', 1], ['NYSEDREGENTS_2006_8_10', 0]]);
    const item = toEvalItem('arc', orig[2], []);
    expect(item.prompt).toContain('Which object is the best conductor of electricity?\nA. a wax crayon\nB. a plastic spoon\nC. a rubber eraser\nD. an iron nail\nAnswer:');
    expect(item).toMatchObject({ answer: 3, id: 'NYSEDREGENTS_2015_4_8' });
    expect(createScorer('multiple_choice').score(item, 'D').correct).toBe(true);
  });

  it('reads HellaSwag with the label as an int (original) or a string (Hugging Face)', async () => {
    const orig = (await read('hellaswag', 'hellaswag_val.jsonl')).map(choice);
    const hf = (await read('hellaswag', 'hellaswag-hf.jsonl')).map(choice);
    expect(orig.map((q) => q.answer)).toEqual([3, 3, 2]);
    expect(hf.map((q) => q.answer)).toEqual([3, 3]);
    expect(orig[0].stem).toBe('Roof shingle removal: A man is sitting on a roof. he');
  });

  it('reads chat datasets: the last assistant turn is the reference', async () => {
    const qs = await read('chat', 'chat-eval.jsonl');
    expect(toEvalItem('chat', qs[0], [])).toEqual({
      prompt: [{ role: 'system', content: 'Classify the ticket: billing, shipping or other.' }, { role: 'user', content: 'I was charged twice for order #1,204.' }],
      reference: 'billing',
    });
  });

  it('builds the MMLU k-shot prompt of the release: header, solved dev questions, the question', async () => {
    const [q] = await read('mmlu', 'abstract_algebra_test.csv');
    const shots = (await read('mmlu', 'abstract_algebra_dev.csv')).slice(0, 2);
    const item = toEvalItem('mmlu', q, shots);
    expect(item.prompt).toBe(
      'The following are multiple choice questions (with answers) about abstract algebra.\n\n' +
        'Find the characteristic of the ring 2Z.\nA. 0\nB. 3\nC. 12\nD. 30\nAnswer: A\n\n' +
        'Statement 1 | Every element of a group generates a cyclic subgroup of the group. Statement 2 | The symmetric group S_10 has 10 elements.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: C\n\n' +
        'Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer:',
    );
    expect(item).toMatchObject({ choices: ['0', '1', '2', '3'], answer: 1, metadata: { subject: 'abstract_algebra' } });
  });

  it.each([
    ['mmlu', 'q,a,b,c,d,E\n', 'line 1', 'file.line[1].answer'],
    ['mmlu', 'ok,a,b,c,d,A\n"q,a,b,c,d,A\n', 'line 2', 'file'],
    ['mmlu', 'ok,a,b,c,d,A\nq,a,b,c,A\n', 'line 2', 'file.line[2].column 6'],
    ['mmlu', '{"question": "q", "choices": ["a", "b", "c"], "answer": 0}\n', 'line 1', 'file.line[1].choices'],
    ['gsm8k', '{"question": "q", "answer": "a\\n#### 4"}\n{"question": "q", "answer": "x\\n#### 1,0"}\n{"question": "q", "answer": "so 5"}\n', 'line 3', 'file.line[3].answer'],
    ['gsm8k', '{"question": "q", "answer": "#### 1"}\n{"question": "q", "answer": "#### 2"\n', 'line 2', 'file'],
    ['arc', '{"question": {"stem": "s", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "C"}\n', 'line 1', 'file.line[1].answerKey'],
    ['arc', '{"question": {"stem": "s", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "F"}]}, "answerKey": "A"}\n', 'line 1', 'file.line[1].question.choices[1].label'],
    ['arc', '{"question": "s", "choices": {"text": ["a", ""], "label": ["A", "B"]}, "answerKey": "A"}\n', 'line 1', 'file.line[1].choices.text[1]'],
    ['hellaswag', '{"ctx": "c", "endings": ["a", "b", "c", "d"], "label": ""}\n', 'line 1', 'file.line[1].label'],
    ['hellaswag', '{"ctx": "c", "endings": ["a", "b", "c"], "label": 0}\n', 'line 1', 'file.line[1].endings'],
    ['chat', '{"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "r"}]}\n', 'line 1', 'file.line[1].messages[1].role'],
  ] as const)('%s: refuses a malformed record naming its line and field (%#)', async (format, body, line, param) => {
    const err = await refused(read(format, 'x_test.csv', Buffer.from(body)));
    expect(err.message).toContain(line);
    expect(err.param).toBe(param);
  });

  it('reads a CSV record that spans chunks and lines without holding more than the record cap', async () => {
    const long = `"${'x,'.repeat(50)}",a,b,c,d,A\n`;
    expect(await all(csvRecords(trickle(Buffer.from(long)), 1000))).toHaveLength(1);
    const err = await refused(all(csvRecords(trickle(Buffer.from(long)), 40)));
    expect(err.message).toMatch(/^line 1: the record is longer than 40/);
  });

  it('samples uniformly with a seed: the same seed the same items, in file order', async () => {
    const src = async function* () {
      for (let i = 0; i < 1000; i++) yield i;
    };
    const a = await all(sampleOf(src(), 50, 7));
    expect(a).toHaveLength(50);
    expect(await all(sampleOf(src(), 50, 7))).toEqual(a);
    expect(await all(sampleOf(src(), 50, 8))).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    // Uniform enough: about half of the sample from each half of the file.
    expect(a.filter((x) => x < 500).length).toBeGreaterThan(15);
    expect(a.filter((x) => x < 500).length).toBeLessThan(35);
    expect(await all(sampleOf(src(), 2000, 1))).toHaveLength(1000);
  });
});
