import { seededRandom } from '../../src/common/seeded-random';
import { DatasetValidator, ValidationReport, ValidatorOptions } from '../../src/datasets/validation/dataset-validator';
import { LineSplitter } from '../../src/datasets/validation/line-splitter';

/**
 * The ingest's fast path (PlainChatLine, through DatasetValidator.onBytes) must never change a verdict: every file here
 * is validated with it and without it, and the two reports must be equal. Tokens are deferred (a large file's
 * setting), which is when the fast path runs.
 */
function validate(file: Buffer, fast: boolean, options: Partial<ValidatorOptions> = {}, chunkSize = file.length) {
  const validator = new DatasetValidator({ minExamples: 1, tokenBudgetBytes: 0, maxExampleTokens: 131_072, ...options });
  let taken = 0;
  const onBytes = (n: number, buf: Buffer, start: number, end: number) => {
    const took = validator.onBytes(n, buf, start, end);
    if (took) taken++;
    return took;
  };
  const splitter = new LineSplitter(64 * 1024, validator.onLine, fast ? onBytes : undefined);
  for (let at = 0; at < file.length; at += chunkSize) splitter.push(file.subarray(at, at + chunkSize));
  splitter.end();
  return { report: validator.report(splitter.lines), taken };
}

/** Both ways; returns the fast report (equal to the other) and how many lines the fast path took. */
function both(file: Buffer, options: Partial<ValidatorOptions> = {}): { report: ValidationReport; taken: number } {
  const slow = validate(file, false, options);
  const fast = validate(file, true, options);
  expect(fast.report).toEqual(slow.report);
  return fast;
}

/** Bytes at a chosen misalignment, so the four-bytes-at-a-time scan starts at every offset of a word. */
function at(offset: number, text: string): Buffer {
  const bytes = Buffer.from(text);
  const out = Buffer.alloc(bytes.length + offset);
  bytes.copy(out, offset);
  return out.subarray(offset);
}

// Its answer is short, so the answer of the line under test is the file's longest (a wrong length shows).
const good = '{"messages":[{"role":"user","content":"Where is my parcel?"},{"role":"assistant","content":"ok"}]}';
/** A file around one line: the first line is judged the ordinary way (it sets the token budget), the last is plain. */
const around = (line: string) => [good, line, good].join('\n') + '\n';

describe('PlainChatLine (the ingest fast path) gives the same report as the ordinary path', () => {
  it('takes plain chat lines, at every alignment and in chunks of any size', () => {
    const lines = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ messages: [{ role: 'system', content: 'Route the ticket.' }, { role: 'user', content: `ticket ${'x'.repeat(i)} é 日本` }, { role: 'assistant', content: `team ${i}` }] }),
    );
    const text = lines.join('\n') + '\n';
    for (let offset = 0; offset < 4; offset++) {
      const { report, taken } = both(at(offset, text));
      expect(report).toMatchObject({ valid: true, examples: 50, roleCounts: { system: 50, user: 50, assistant: 50 }, longestAnswer: { bytes: 7, line: 11 } });
      expect(taken).toBe(49); // all but the first line
    }
    for (const chunkSize of [1, 7, 64, 1000]) {
      expect(validate(Buffer.from(text), true, {}, chunkSize).report).toEqual(validate(Buffer.from(text), false).report);
    }
  });

  // Each line sits between two good ones; `taken` says whether the fast path judged it (3 lines, the first never).
  const cases: [string, string, boolean][] = [
    ['whitespace between every token', '{ "messages" : [ { "role" : "user" , "content" : "hi" } ,\t{"role":"assistant","content":"ok"} ]\r}  ', true],
    ['keys in the other order', '{"messages":[{"content":"hi","role":"user"},{"content":"ok","role":"assistant"}]}', true],
    ['escapes inside the text', '{"messages":[{"role":"user","content":"a\\nb \\"q\\" c\\\\d \\/ \\t"},{"role":"assistant","content":"line one\\nline two"}]}', true],
    ['answer ending in an escaped quote', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"say \\"no\\""}]}', true],
    ['answer ending in an escaped backslash', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"dir\\\\"}]}', true],
    ['answer ending in an escaped newline', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"done\\n"}]}', true],
    ['answer starting with an escaped tab', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"\\tdone"}]}', true],
    ['non-breaking spaces at the ends (trim removes them)', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"\u00a0ok\u3000"}]}', true],
    ['\\u escapes, a surrogate pair and a lone surrogate', '{"messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00"},{"role":"assistant","content":"\\ud800 x"}]}', true],
    ['a < that starts no special token', '{"messages":[{"role":"user","content":"a < b <| c"},{"role":"assistant","content":"<b>ok</b>"}]}', true],
    ['a harmony special token', '{"messages":[{"role":"user","content":"<|start|>hi"},{"role":"assistant","content":"ok"}]}', false],
    ['a special token spelled with escapes', '{"messages":[{"role":"user","content":"\\u003c|channel|>x"},{"role":"assistant","content":"<\\u007cend|>"}]}', false],
    ['empty content', '{"messages":[{"role":"user","content":""},{"role":"assistant","content":"ok"}]}', false],
    ['content of spaces and escaped whitespace', '{"messages":[{"role":"user","content":" \\n\\t \\u2028 "},{"role":"assistant","content":"ok"}]}', false],
    ['no assistant turn', '{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}', false],
    ['an unknown role', '{"messages":[{"role":"bot","content":"hi"},{"role":"assistant","content":"ok"}]}', false],
    ['a role spelled with an escape', '{"messages":[{"role":"us\\u0065r","content":"hi"},{"role":"assistant","content":"ok"}]}', false],
    ['a key spelled with an escape', '{"messages":[{"rol\\u0065":"user","content":"hi"},{"role":"assistant","content":"ok"}]}', false],
    ['a repeated role (JSON.parse keeps the last)', '{"messages":[{"role":"user","role":"assistant","content":"hi"}]}', false],
    ['a repeated messages key', `{"messages":[{"role":"user","content":"hi"}],"messages":[{"role":"assistant","content":"ok"}]}`, false],
    ['another field on a message', '{"messages":[{"role":"user","content":"hi","name":"al"},{"role":"assistant","content":"ok","weight":0}]}', false],
    ['an unknown field on a message', '{"messages":[{"role":"user","content":"hi","mood":"ok"},{"role":"assistant","content":"ok"}]}', false],
    ['another top-level field', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}],"id":7}', false],
    ['content that is not a string', '{"messages":[{"role":"user","content":null},{"role":"assistant","content":["ok"]}]}', false],
    ['an empty message list', '{"messages":[]}', false],
    ['a raw tab inside a string (not JSON)', '{"messages":[{"role":"user","content":"a\tb"},{"role":"assistant","content":"ok"}]}', false],
    ['a raw control byte', '{"messages":[{"role":"user","content":"a\u0001b"},{"role":"assistant","content":"ok"}]}', false],
    ['a bad escape', '{"messages":[{"role":"user","content":"a\\xb"},{"role":"assistant","content":"ok"}]}', false],
    ['a short \\u escape', '{"messages":[{"role":"user","content":"a\\u12"},{"role":"assistant","content":"ok"}]}', false],
    ['a trailing comma', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"},]}', false],
    ['a missing comma', '{"messages":[{"role":"user","content":"hi"}{"role":"assistant","content":"ok"}]}', false],
    ['text after the object', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}x', false],
    ['an unterminated string', '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok}]}', false],
    ['a DPO example in a chat file', JSON.stringify({ input: { messages: [{ role: 'user', content: 'q' }] }, preferred_output: [{ role: 'assistant', content: 'a' }], non_preferred_output: [{ role: 'assistant', content: 'b' }] }), false],
  ];
  it.each(cases)('%s', (_name, line, taken) => {
    const result = both(Buffer.from(around(line)));
    expect(result.taken).toBe(taken ? 2 : 1);
  });

  it('leaves a line that might be over the token limit to the ordinary path, which counts it', () => {
    const long = JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(500) }, { role: 'assistant', content: 'ok' }] });
    const { report, taken } = both(Buffer.from(around(long)), { maxExampleTokens: 400 });
    expect(report.errors.map((e) => e.code)).toEqual(['example_too_long']);
    expect(taken).toBe(1);
  });

  it('keeps the ordinary verdicts for a declared format, a BOM and CRLF line ends', () => {
    const text = '\ufeff' + [good, good, good].join('\r\n') + '\r\n';
    expect(both(Buffer.from(text)).taken).toBe(2);
    expect(both(Buffer.from(text), { declaredFormat: 'chat' }).taken).toBe(2);
    const wrong = both(Buffer.from(text), { declaredFormat: 'dpo' });
    expect(wrong.taken).toBe(0);
    expect(wrong.report.errors.map((e) => e.code)).toEqual(['wrong_format', 'wrong_format', 'wrong_format']);
  });

  it('agrees on 3,000 randomly built and mutated lines', () => {
    const random = seededRandom(20261204);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
    // Valid JSON string pieces; the mutations below make the invalid lines.
    const pieces = ['a', 'Z', 'word', ' ', '  ', 'é', '日', '😀', '\u00a0', '\u2028', '<', '<|start|>', '|', '\\n', '\\"', '\\\\', '\\/', '\\u00e9', '\\ud83d', '\\u003c', '{', '}', ',', ':'];
    const text = () => Array.from({ length: Math.floor(random() * 8) }, () => pick(pieces)).join('');
    const space = () => pick(['', '', '', ' ', '\t', ' \r ']);
    const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function', 'assistant', 'assistant', 'user', 'bot'];
    const structural = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', 'x', '0'];
    let taken = 0;
    for (let n = 0; n < 3000; n++) {
      const messages = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
        const pairs = [`${space()}"role"${space()}:${space()}"${pick(roles)}"`, `${space()}"content"${space()}:${space()}"${text()}"`];
        if (random() < 0.5) pairs.reverse();
        return `${space()}{${pairs.join(',')}${space()}}`;
      });
      let line = `${space()}{${space()}"messages"${space()}:${space()}[${messages.join(',')}${space()}]${space()}}${space()}`;
      if (random() < 0.3) {
        const i = Math.floor(random() * line.length);
        const r = random();
        line = r < 0.33 ? line.slice(0, i) + line.slice(i + 1) : r < 0.66 ? line.slice(0, i) + pick(structural) + line.slice(i) : line.slice(0, i) + pick(structural) + line.slice(i + 1);
      }
      taken += both(Buffer.from(around(line.replace(/\n/g, ' ')))).taken - 1;
    }
    // Most built lines are plain and valid; the check is worth something only if the fast path ran on many of them.
    expect(taken).toBeGreaterThan(300);
  });
});
