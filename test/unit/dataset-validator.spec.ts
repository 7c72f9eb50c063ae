import { DatasetValidator, describeError, ValidationReport, ValidatorOptions } from '../../src/datasets/validation/dataset-validator';
import { LineSplitter } from '../../src/datasets/validation/line-splitter';

/** Runs a file through LineSplitter into DatasetValidator, the way an upload is validated. */
function validate(file: string | Buffer, options: Partial<ValidatorOptions> = {}, maxLineBytes = 64 * 1024): ValidationReport {
  const validator = new DatasetValidator({ minExamples: 1, ...options });
  const splitter = new LineSplitter(maxLineBytes, validator.onLine);
  splitter.push(typeof file === 'string' ? Buffer.from(file) : file);
  splitter.end();
  return validator.report(splitter.lines);
}

const jsonl = (...rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

const chat = (...messages: unknown[]) => ({ messages });
const sys = { role: 'system', content: 'You route support tickets.' };
const user = { role: 'user', content: 'My parcel never arrived.' };
const assistant = { role: 'assistant', content: 'shipping' };
const goodChat = chat(sys, user, assistant);

const dpo = (over: Record<string, unknown> = {}) => ({
  input: { messages: [{ role: 'user', content: 'Hello?' }] },
  preferred_output: [{ role: 'assistant', content: 'Hi! How can I help?' }],
  non_preferred_output: [{ role: 'assistant', content: 'What.' }],
  ...over,
});

/** The errors of a report without their prose, for exact comparison. */
const codes = (r: ValidationReport) => r.errors.map(({ line, path, code }) => ({ line, path, code }));

describe('DatasetValidator', () => {
  describe('a valid chat file', () => {
    it('is valid, counts examples, lines and roles', () => {
      const report = validate(jsonl(...Array.from({ length: 10 }, () => goodChat)), { minExamples: 10 });
      expect(report).toEqual({
        valid: true,
        format: 'chat',
        examples: 10,
        lines: 10,
        errorCount: 0,
        errors: [],
        roleCounts: { system: 10, user: 10, assistant: 10 },
        tokens: expect.objectContaining({ total: 250 }),
        tokensDeferred: false,
        longestAnswer: { bytes: 8, line: 1 },
      });
    });

    it('accepts every documented message field and role, GPT-OSS developer role and assistant thinking included', () => {
      const example = chat(
        { role: 'developer', content: 'Answer briefly.' },
        { role: 'user', content: 'Weather in Paris?', name: 'alice' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', content: '18°C, sunny', tool_call_id: 'call_1' },
        { role: 'assistant', content: 'It is 18°C and sunny.', thinking: 'The tool says 18°C.', weight: 1 },
        { role: 'user', content: 'And tomorrow?' },
        { role: 'assistant', function_call: { name: 'forecast', arguments: '{}' } },
        { role: 'function', name: 'forecast', content: 'rain' },
        { role: 'assistant', content: 'Rain.', weight: 0 },
      );
      const report = validate(jsonl(example));
      expect(report.errors).toEqual([]);
      expect(report.valid).toBe(true);
      expect(report.roleCounts).toEqual({ developer: 1, user: 2, assistant: 4, tool: 1, function: 1 });
    });

    it('lets an assistant with tool calls have empty or absent content, but not one without', () => {
      const call = { tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] };
      expect(validate(jsonl(chat(user, { role: 'assistant', content: '', ...call }))).valid).toBe(true);
      expect(validate(jsonl(chat(user, { role: 'assistant', ...call }))).valid).toBe(true);
      expect(codes(validate(jsonl(chat(user, { role: 'assistant', content: null }))))).toEqual([
        { line: 1, path: 'messages[1].content', code: 'empty_content' },
      ]);
      // tool_calls mean nothing on a user message: its content is still required.
      expect(codes(validate(jsonl(chat({ role: 'user', content: null, ...call }, assistant))))).toEqual([
        { line: 1, path: 'messages[0].content', code: 'empty_content' },
      ]);
    });

    it('skips blank and whitespace-only lines without counting them as examples or errors', () => {
      const report = validate(`\n${JSON.stringify(goodChat)}\n   \n\t\r\n${JSON.stringify(goodChat)}\n\n`, { minExamples: 2 });
      expect(report).toMatchObject({ valid: true, examples: 2, lines: 6, errorCount: 0 });
    });

    it('keeps true line numbers past blank lines', () => {
      const report = validate(`\n\n${JSON.stringify(goodChat)}\n\n{oops\n`);
      expect(codes(report)).toEqual([{ line: 5, path: null, code: 'invalid_json' }]);
    });
  });

  describe('each error code, with its line and field', () => {
    // Line 1 is always a valid example, so every error below is on line 2 (or has no line).
    it.each<[string, unknown, string | null, string]>([
      ['truncated JSON', '{"messages": [', null, 'invalid_json'],
      ['a trailing comma', '{"messages": [],}', null, 'invalid_json'],
      ['an array', '[1, 2]', null, 'not_an_object'],
      ['a string', '"hello"', null, 'not_an_object'],
      ['null', 'null', null, 'not_an_object'],
      ['the legacy prompt/completion format', { prompt: 'q', completion: 'a' }, null, 'unknown_format'],
      ['an empty messages list', { messages: [] }, 'messages', 'missing_messages'],
      ['messages that is not a list', { messages: 'hi' }, 'messages', 'missing_messages'],
      ['a message that is not an object', chat('hi', assistant), 'messages[0]', 'invalid_message'],
      ['an unknown role', chat(user, { role: 'bot', content: 'x' }, assistant), 'messages[1].role', 'unknown_role'],
      ['a missing role', chat(user, { content: 'x' }, assistant), 'messages[1].role', 'unknown_role'],
      ['a role of the wrong case', chat({ role: 'User', content: 'x' }, assistant), 'messages[0].role', 'unknown_role'],
      ['an unknown message field', chat({ ...user, foo: 1 }, assistant), 'messages[0].foo', 'unknown_field'],
      ['whitespace-only content', chat(user, { role: 'assistant', content: '  \n' }), 'messages[1].content', 'empty_content'],
      ['missing content', chat({ role: 'user' }, assistant), 'messages[0].content', 'empty_content'],
      ['content that is not a string', chat({ role: 'user', content: 42 }, assistant), 'messages[0].content', 'empty_content'],
      ['no assistant message', chat(sys, user), 'messages', 'no_assistant_turn'],
      ['a weight other than 0 or 1', chat(user, { ...assistant, weight: 0.5 }), 'messages[1].weight', 'bad_weight'],
      ['a weight on a user message', chat({ ...user, weight: 1 }, assistant), 'messages[0].weight', 'bad_weight'],
      ['thinking on a user message', chat({ ...user, thinking: 'hmm' }, assistant), 'messages[0].thinking', 'invalid_message'],
      ['thinking that is not a string', chat(user, { ...assistant, thinking: ['a'] }), 'messages[1].thinking', 'invalid_message'],
      ['a DPO example after chat examples', dpo(), null, 'mixed_formats'],
    ])('%s', (_name, row, path, code) => {
      const report = validate(jsonl(goodChat, row));
      expect(codes(report)).toEqual([{ line: 2, path, code }]);
      expect(report.valid).toBe(false);
      expect(report.errorCount).toBe(1);
      expect(report.examples).toBe(1); // the bad line is not an example
      expect(report.errors[0].message.length).toBeGreaterThan(0);
    });

    it('names the offending role and lists the allowed ones', () => {
      const [error] = validate(jsonl(chat(user, { role: 'bot', content: 'x' }))).errors;
      expect(error.message).toContain('"bot"');
      expect(error.message).toContain('assistant');
    });

    it('includes the JSON parser message for invalid_json', () => {
      const [error] = validate('{"messages": [\n').errors;
      expect(error.message).toMatch(/^invalid JSON: .+/);
    });

    it('reports every problem of one line, each with its own path', () => {
      const report = validate(jsonl(chat({ role: 'user', content: '', extra: 1 }, { role: 'assistant', content: 'x', weight: 2, colour: 'red' })));
      expect(codes(report)).toEqual([
        { line: 1, path: 'messages[0].extra', code: 'unknown_field' },
        { line: 1, path: 'messages[0].content', code: 'empty_content' },
        { line: 1, path: 'messages[1].colour', code: 'unknown_field' },
        { line: 1, path: 'messages[1].weight', code: 'bad_weight' },
      ]);
      expect(report.errorCount).toBe(4);
      expect(report.examples).toBe(0);
    });

    it('reports empty_file for a file with no lines, or only blank ones', () => {
      for (const file of ['', '\n\n  \n']) {
        const report = validate(file);
        expect(codes(report)).toEqual([{ line: null, path: null, code: 'empty_file' }]);
        expect(report).toMatchObject({ valid: false, format: null, examples: 0 });
      }
    });

    it('reports too_few_examples with the counts, only when nothing else is wrong', () => {
      const few = validate(jsonl(goodChat, goodChat), { minExamples: 3 });
      expect(codes(few)).toEqual([{ line: null, path: null, code: 'too_few_examples' }]);
      expect(few.errors[0].message).toBe('the file has 2 examples; at least 3 are required');
      expect(few.examples).toBe(2);

      // With a real error the user first fixes that; "too few" would only add noise.
      const broken = validate(jsonl(goodChat, '{'), { minExamples: 3 });
      expect(codes(broken).map((e) => e.code)).toEqual(['invalid_json']);
      // Likewise a file whose only lines are bad is not also "empty".
      expect(codes(validate(jsonl('[]'))).map((e) => e.code)).toEqual(['not_an_object']);
    });

    it('reports line_too_long with the line number and byte count from the splitter', () => {
      const long = JSON.stringify(chat(user, { role: 'assistant', content: 'x'.repeat(2000) }));
      const report = validate(jsonl(goodChat, long, goodChat), {}, 1024);
      expect(codes(report)).toEqual([{ line: 2, path: null, code: 'line_too_long' }]);
      expect(report.errors[0].message).toContain(String(Buffer.byteLength(long)));
      expect(report.examples).toBe(2); // the lines around it are still validated
    });

    it('reports invalid_utf8 with the line number', () => {
      const file = Buffer.concat([Buffer.from(jsonl(goodChat)), Buffer.from([0x7b, 0xc3, 0x28, 0x7d, 0x0a]), Buffer.from(jsonl(goodChat))]);
      const report = validate(file);
      expect(codes(report)).toEqual([{ line: 2, path: null, code: 'invalid_utf8' }]);
      expect(report.examples).toBe(2);
    });
  });

  describe('DPO', () => {
    it('accepts preference triples', () => {
      const report = validate(jsonl(dpo(), dpo({ input: { messages: [sys, { role: 'user', content: 'Hi' }] } })));
      expect(report).toMatchObject({ valid: true, format: 'dpo', examples: 2, errorCount: 0 });
      expect(report.roleCounts).toEqual({ user: 2, system: 1, assistant: 4 });
    });

    it.each<[string, Record<string, unknown>, { path: string; code: string }[]]>([
      ['no input', { input: undefined }, [{ path: 'input.messages', code: 'missing_messages' }]],
      ['input without messages', { input: { prompt: 'x' } }, [{ path: 'input.messages', code: 'missing_messages' }]],
      ['no non-preferred output', { non_preferred_output: undefined }, [{ path: 'non_preferred_output', code: 'missing_messages' }]],
      ['an empty preferred output', { preferred_output: [] }, [{ path: 'preferred_output', code: 'missing_messages' }]],
      ['a user turn in the preferred output', { preferred_output: [{ role: 'user', content: 'x' }] }, [
        { path: 'preferred_output[0].role', code: 'unknown_role' },
        { path: 'preferred_output', code: 'no_assistant_turn' },
      ]],
      ['an unknown role in the input', { input: { messages: [{ role: 'narrator', content: 'x' }] } }, [{ path: 'input.messages[0].role', code: 'unknown_role' }]],
      ['empty content in the non-preferred output', { non_preferred_output: [{ role: 'assistant', content: '' }] }, [
        { path: 'non_preferred_output[0].content', code: 'empty_content' },
      ]],
      ['two outputs that are the same answer', { non_preferred_output: [{ role: 'assistant', content: ' Hi! How can I help? ' }] }, [
        { path: 'non_preferred_output', code: 'identical_outputs' },
      ]],
    ])('rejects %s', (_name, over, expected) => {
      const report = validate(jsonl(dpo(), dpo(over)));
      expect(codes(report)).toEqual(expected.map((e) => ({ line: 2, ...e })));
      expect(report).toMatchObject({ valid: false, format: 'dpo', examples: 1 });
    });

    it('records the longest output in UTF-8 bytes and its line, for models with an answer limit', () => {
      const long = dpo({ non_preferred_output: [{ role: 'assistant', content: ' réclamation ' }] });
      expect(validate(jsonl(dpo(), long)).longestAnswer).toEqual({ bytes: 19, line: 1 });
      const accented = dpo({ preferred_output: [{ role: 'assistant', content: 'x' }], non_preferred_output: [{ role: 'assistant', content: ' réclamation ' }] });
      expect(validate(jsonl(dpo({ preferred_output: [{ role: 'assistant', content: 'x' }] }), accented)).longestAnswer).toEqual({ bytes: 12, line: 2 });
      expect(validate(jsonl(goodChat, chat(sys, user, { role: 'assistant', content: 'talk to a human' }))).longestAnswer).toEqual({ bytes: 15, line: 2 });
    });

    it('takes the format from the first example: chat after DPO is mixed_formats', () => {
      expect(codes(validate(jsonl(dpo(), goodChat)))).toEqual([{ line: 2, path: null, code: 'mixed_formats' }]);
    });
  });

  describe('error cap', () => {
    it('keeps the first maxErrors errors but counts them all', () => {
      const report = validate(jsonl(...Array.from({ length: 250 }, () => '{')), { maxErrors: 5 });
      expect(report.errorCount).toBe(250);
      expect(report.errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5]);
    });

    it('defaults to 100 kept errors', () => {
      const report = validate(jsonl(...Array.from({ length: 150 }, () => '[]')));
      expect(report.errorCount).toBe(150);
      expect(report.errors).toHaveLength(100);
      expect(report.errors.at(-1)!.line).toBe(100);
    });
  });

  describe('describeError', () => {
    it('puts line and path before the message', () => {
      expect(describeError({ line: 3, path: 'messages[1].role', code: 'unknown_role', message: 'unknown role "bot"' })).toBe(
        'line 3, messages[1].role: unknown role "bot"',
      );
    });

    it('leaves out what is not known', () => {
      expect(describeError({ line: 7, path: null, code: 'invalid_json', message: 'invalid JSON' })).toBe('line 7: invalid JSON');
      expect(describeError({ line: null, path: null, code: 'empty_file', message: 'the file has no examples' })).toBe('the file has no examples');
    });

    it('formats what the validator reports', () => {
      const [error] = validate(jsonl(goodChat, chat(user, { ...assistant, weight: 3 }))).errors;
      expect(describeError(error)).toBe("line 2, messages[1].weight: 'weight' must be 0 or 1");
    });
  });
});
