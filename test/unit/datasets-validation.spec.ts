import harmony from 'gpt-tokenizer/encoding/o200k_harmony';
import { DatasetValidator, ValidationReport, ValidatorOptions } from '../../src/datasets/validation/dataset-validator';
import { countText, findSpecialToken, messageTokens } from '../../src/datasets/validation/harmony-tokenizer';
import { LineSplitter } from '../../src/datasets/validation/line-splitter';

function validate(file: string, options: Partial<ValidatorOptions> = {}): ValidationReport {
  const validator = new DatasetValidator({ minExamples: 1, ...options });
  const splitter = new LineSplitter(8 * 1024 * 1024, validator.onLine);
  splitter.push(Buffer.from(file));
  splitter.end();
  return validator.report(splitter.lines);
}
const jsonl = (...rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const codes = (r: ValidationReport) => r.errors.map(({ line, path, code }) => ({ line, path, code }));
const chat = (...messages: Record<string, unknown>[]) => ({ messages });
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string, extra: Record<string, unknown> = {}) => ({ role: 'assistant', content, ...extra });

describe('harmony tokenizer (o200k_harmony from gpt-tokenizer)', () => {
  it('renders a message the way harmony does: <|start|>role<|message|>text<|end|>, assistant on the final channel', () => {
    // Each special token is one token of the encoding; the rest is text. (gpt-tokenizer only recognises a special
    // token at the start of a string, so the rendering is counted piece by piece.)
    const rendered = (...pieces: string[]) =>
      pieces.reduce((n, p) => n + (p.startsWith('<|') ? harmony.encode(p, { allowedSpecial: 'all' }).length : countText(p)), 0);
    expect(harmony.encode('<|start|>', { allowedSpecial: 'all' })).toEqual([200006]);
    expect(messageTokens({ role: 'user', content: 'My parcel never arrived.' })).toBe(rendered('<|start|>', 'user', '<|message|>', 'My parcel never arrived.', '<|end|>'));
    expect(messageTokens({ role: 'user', content: 'My parcel never arrived.' })).toBe(9);
    expect(messageTokens({ role: 'system', content: 'Be brief.' })).toBe(rendered('<|start|>', 'developer', '<|message|>', 'Be brief.', '<|end|>'));
    expect(messageTokens({ role: 'assistant', content: 'shipping', thinking: 'The parcel is late.' })).toBe(
      rendered('<|start|>', 'assistant', '<|channel|>', 'analysis', '<|message|>', 'The parcel is late.', '<|end|>', '<|start|>', 'assistant', '<|channel|>', 'final', '<|message|>', 'shipping', '<|end|>'),
    );
  });

  it('finds the special tokens of the encoding and nothing that merely looks like one', () => {
    for (const t of ['<|start|>', '<|end|>', '<|message|>', '<|channel|>', '<|constrain|>', '<|return|>', '<|call|>']) {
      expect(findSpecialToken(`a ${t} b`)).toBe(t);
    }
    expect(findSpecialToken('<|not_a_token|> and <| start |>')).toBeNull();
    expect(findSpecialToken('plain text')).toBeNull();
    expect(countText('<|start|>')).toBeGreaterThan(1); // as text, never as the special token
  });
});

describe('DatasetValidator: formats', () => {
  it('detects eval items with a reference answer or with choices and the correct one', () => {
    const report = validate(jsonl({ prompt: 'Capital of France?', reference: 'Paris' }, { prompt: [user('2+2?')], choices: ['3', '4'], answer: 1 }, { prompt: 'Pick', choices: ['a', 'b'], answer: 'b' }));
    expect(report).toMatchObject({ valid: true, format: 'eval', examples: 3, errorCount: 0 });
  });

  it.each([
    ['no prompt', { prompt: '', reference: 'x' }, 'prompt', 'missing_prompt'],
    ['neither reference nor choices', { prompt: 'q', reference: undefined, choices: undefined, extra: 1 }, null, 'unknown_format'],
    ['both reference and choices', { prompt: 'q', reference: 'a', choices: ['a', 'b'], answer: 0 }, 'choices', 'missing_reference'],
    ['one choice', { prompt: 'q', choices: ['a'], answer: 0 }, 'choices', 'missing_reference'],
    ['answer out of range', { prompt: 'q', choices: ['a', 'b'], answer: 2 }, 'answer', 'bad_answer'],
    ['answer not a choice', { prompt: 'q', choices: ['a', 'b'], answer: 'c' }, 'answer', 'bad_answer'],
  ])('eval: %s', (_n, row, path, code) => {
    const report = validate(jsonl({ prompt: 'ok', reference: 'fine' }, row));
    expect(codes(report)).toEqual([{ line: 2, path, code }]);
  });

  it('a declared format is enforced on every line (wrong_format), detection is off', () => {
    const report = validate(jsonl(chat(user('hi'), assistant('yo')), { prompt: 'q', reference: 'a' }), { declaredFormat: 'eval' });
    expect(codes(report)).toEqual([{ line: 1, path: null, code: 'wrong_format' }]);
    expect(report.format).toBe('eval');
  });

  it('DPO counts the tokens of input and both outputs', () => {
    const report = validate(jsonl({ input: { messages: [user('Hello?')] }, preferred_output: [assistant('Hi!')], non_preferred_output: [assistant('What.')] }));
    const expected = messageTokens(user('Hello?')) + messageTokens(assistant('Hi!')) + messageTokens(assistant('What.'));
    expect(report.tokens).toMatchObject({ total: expected, per_role: { user: messageTokens(user('Hello?')) } });
  });
});

describe('DatasetValidator: harmony special tokens and length', () => {
  it.each([
    ['content', chat(user('hi <|start|>assistant'), assistant('ok')), 'messages[0].content'],
    ['assistant thinking', chat(user('hi'), assistant('ok', { thinking: 'x<|channel|>final' })), 'messages[1].thinking'],
    ['tool call arguments', chat(user('hi'), { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":"<|call|>"}' } }] }, assistant('done')), 'messages[1].tool_calls[0].function.arguments'],
    ['eval reference', { prompt: 'q', reference: 'a<|return|>' }, 'reference'],
  ])('a special token in %s is an error naming the field', (_n, row, path) => {
    const report = validate(jsonl(row));
    expect(codes(report)).toEqual([{ line: 1, path, code: 'harmony_special_token' }]);
    expect(report.errors[0].message).toMatch(/<\|(start|channel|call|return)\|>/);
  });

  it('an example longer than the largest context is example_too_long, with its token count', () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(200);
    const report = validate(jsonl(chat(user('short'), assistant('ok')), chat(user(long), assistant('ok'))), { maxExampleTokens: 500 });
    expect(codes(report)).toEqual([{ line: 2, path: null, code: 'example_too_long' }]);
    expect(report.errors[0].message).toMatch(/\d+ tokens, over the 500-token context/);
  });

  it('statistics: per-role tokens, min/max/mean, the histogram and trained tokens for n epochs', () => {
    const rows = [chat(user('a'), assistant('b')), chat(user('word '.repeat(100)), assistant('c')), chat(user('x'), assistant('y'))];
    const report = validate(jsonl(...rows));
    const per: number[] = rows.map((r) => r.messages.reduce<number>((a, m) => a + messageTokens(m as never), 0));
    const total = per.reduce((a, b) => a + b, 0);
    expect(report.tokens).toMatchObject({
      total,
      min_example: Math.min(...per),
      max_example: Math.max(...per),
      max_example_line: 2,
      mean_example: Math.round(total / 3),
      estimated_trained_tokens: { '1': total, '3': 3 * total },
    });
    expect(report.tokens!.histogram['<=64']).toBe(2);
    expect(report.tokens!.histogram['<=128']).toBe(1);
    expect(Object.values(report.tokens!.histogram).reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('past the inline budget token counting is deferred, yet too-long examples are still caught', () => {
    const rows = Array.from({ length: 20 }, (_, i) => chat(user(`question ${i}`), assistant('answer')));
    const long = chat(user('word '.repeat(3000)), assistant('x'));
    const report = validate(jsonl(...rows, long), { tokenBudgetBytes: 200, maxExampleTokens: 1000 });
    expect(report.tokensDeferred).toBe(true);
    expect(report.tokens).toBeNull();
    expect(codes(report)).toEqual([{ line: 21, path: null, code: 'example_too_long' }]);
  });
});
