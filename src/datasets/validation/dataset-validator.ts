import { ChatMessageLike, findSpecialToken, messageTokens } from './harmony-tokenizer';
import { LineEvent } from './line-splitter';
import { PlainChatLine } from './plain-chat-line';
import { TokenStats, TokenStatsJson } from './token-stats';

/** Stable codes users and tools can match on; each error is tied to a line and, where it applies, a field. */
export const VALIDATION_CODES = [
  'invalid_json',
  'invalid_utf8',
  'not_an_object',
  'line_too_long',
  'unknown_format',
  'missing_messages',
  'invalid_message',
  'unknown_role',
  'unknown_field',
  'empty_content',
  'no_assistant_turn',
  'bad_weight',
  'mixed_formats',
  'wrong_format',
  'harmony_special_token',
  'example_too_long',
  'missing_prompt',
  'missing_reference',
  'bad_answer',
  'identical_outputs',
  'empty_file',
  'too_few_examples',
] as const;
export type ValidationCode = (typeof VALIDATION_CODES)[number];

export interface ValidationError {
  line: number | null;
  path: string | null;
  code: ValidationCode;
  message: string;
}

export const DATASET_FORMATS = ['chat', 'dpo', 'eval'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

export interface ValidationReport {
  valid: boolean;
  format: DatasetFormat | null;
  examples: number;
  /** Blank lines are allowed and skipped. */
  lines: number;
  errorCount: number;
  /** The first `maxErrors` errors; all are counted in errorCount. */
  errors: ValidationError[];
  roleCounts: Record<string, number>;
  /** Token statistics, or null when counting was deferred (a file beyond the inline budget; see tokensDeferred). */
  tokens: TokenStatsJson | null;
  tokensDeferred: boolean;
  /**
   * The longest assistant answer (chat) or DPO output, in UTF-8 bytes after trimming, and its line: a job for a
   * model that generates only short answers (tiny-lora: 64 byte tokens) refuses the file by it before it runs.
   */
  longestAnswer: { bytes: number; line: number } | null;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const MESSAGE_KEYS = new Set(['role', 'content', 'name', 'function_call', 'tool_calls', 'tool_call_id', 'weight', 'thinking']);
/** The fields of a message whose text may not carry harmony special tokens. */
const TEXT_FIELDS = ['content', 'thinking', 'name'] as const;

export interface ValidatorOptions {
  minExamples: number;
  maxErrors?: number;
  /** The format the uploader declared; unset = detected from the first example. */
  declaredFormat?: DatasetFormat;
  /** An example longer than this (o200k_harmony tokens) is an error: no model of the catalog could train on it. */
  maxExampleTokens?: number;
  /**
   * Tokens are counted inline for examples up to this many bytes of the file; past it counting stops and the report
   * says it was deferred (tokenizing runs at a fraction of the ingest speed). Infinity: always count.
   */
  tokenBudgetBytes?: number;
}

/** Per message, the harmony header and end tokens never exceed this; used to skip tokenizing short lines. */
const MAX_MESSAGE_OVERHEAD = 24;

/**
 * Validates a JSONL fine-tuning file line by line (OpenAI's chat SFT rules, DPO triples, GPT-OSS's developer role
 * and assistant `thinking`). Fed by LineSplitter, so it sees one line at a time and keeps only counters.
 */
export class DatasetValidator {
  private format: DatasetFormat | null = null;
  private examples = 0;
  private errorCount = 0;
  private readonly errors: ValidationError[] = [];
  private readonly roleCounts: Record<string, number> = {};
  private readonly maxErrors: number;
  private readonly stats = new TokenStats();
  private countedBytes = 0;
  private tokensDeferred = false;
  private longestAnswer: { bytes: number; line: number } | null = null;
  private readonly plain = new PlainChatLine();

  constructor(private readonly options: ValidatorOptions) {
    this.maxErrors = options.maxErrors ?? 100;
    this.format = options.declaredFormat ?? null;
  }

  readonly onLine = (event: LineEvent): void => {
    switch (event.kind) {
      case 'too_long':
        return this.fail(event.number, null, 'line_too_long', `line is ${event.bytes} bytes, over the limit`);
      case 'bad_utf8':
        return this.fail(event.number, null, 'invalid_utf8', 'line is not valid UTF-8');
      case 'line':
        return this.checkLine(event.number, event.text);
    }
  };

  /**
   * LineSplitter's fast path (see PlainChatLine): takes a line straight from its bytes when it is a plain chat example
   * that is valid, and once tokens are no longer counted inline (a large file; counting needs the strings). Returns
   * false, having changed nothing, for every other line: onLine then judges it the ordinary way, errors included.
   */
  readonly onBytes = (line: number, buf: Buffer, start: number, end: number): boolean => {
    if (!this.tokensDeferred || (this.format ?? this.options.declaredFormat ?? 'chat') !== 'chat') return false;
    const plain = this.plain;
    if (!plain.read(buf, start, end)) return false;
    // checkLength's bound, with bytes for UTF-16 units (never fewer): a line that could be too long goes the long way.
    if (this.mightBeTooLong(end - start, plain.count)) return false;
    let assistants = 0;
    let longest = -1;
    for (let i = 0; i < plain.count; i++) {
      const bytes = plain.textBytes(i);
      if (bytes < 0) return false;
      if (plain.role(i) === 'assistant') {
        assistants++;
        longest = Math.max(longest, bytes);
      }
    }
    if (assistants === 0) return false;
    this.format = 'chat';
    for (let i = 0; i < plain.count; i++) this.countRole(plain.role(i));
    this.noteAnswer(line, longest);
    this.examples++;
    return true;
  };

  report(lines: number): ValidationReport {
    if (this.examples === 0 && this.errorCount === 0) this.fail(null, null, 'empty_file', 'the file has no examples');
    else if (this.examples < this.options.minExamples && this.errorCount === 0) {
      this.fail(null, null, 'too_few_examples', `the file has ${this.examples} examples; at least ${this.options.minExamples} are required`);
    }
    return {
      valid: this.errorCount === 0,
      format: this.format,
      examples: this.examples,
      lines,
      errorCount: this.errorCount,
      errors: this.errors,
      roleCounts: this.roleCounts,
      tokens: this.tokensDeferred ? null : this.stats.toJSON(),
      tokensDeferred: this.tokensDeferred,
      longestAnswer: this.longestAnswer,
    };
  }

  private fail(line: number | null, path: string | null, code: ValidationCode, message: string) {
    this.errorCount++;
    if (this.errors.length < this.maxErrors) this.errors.push({ line, path, code, message });
  }

  private checkLine(line: number, text: string) {
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.fail(line, null, 'invalid_json', `invalid JSON: ${(err as Error).message}`);
    }
    if (!isObject(value)) return this.fail(line, null, 'not_an_object', 'each line must be a JSON object');
    const format = detectFormat(value);
    if (!format) {
      return this.fail(line, null, 'unknown_format', "expected a chat example ('messages'), a DPO example ('input', 'preferred_output', 'non_preferred_output') or an eval item ('prompt' with 'reference' or 'choices')");
    }
    if (this.options.declaredFormat && format !== this.options.declaredFormat) {
      return this.fail(line, null, 'wrong_format', `this line is a ${format} example but the file was declared ${this.options.declaredFormat}`);
    }
    if (this.format && this.format !== format) {
      return this.fail(line, null, 'mixed_formats', `this line is a ${format} example but earlier lines are ${this.format} examples`);
    }
    this.format ??= format;
    const before = this.errorCount;
    const messages: ChatMessageLike[] = [];
    if (format === 'chat') this.checkChat(line, value, messages);
    else if (format === 'dpo') this.checkDpo(line, value, messages);
    else this.checkEval(line, value, messages);
    if (this.errorCount !== before) return;
    this.checkLength(line, text, messages);
    if (this.errorCount === before) this.examples++;
  }

  /** Counts the example's tokens (within the inline budget) and refuses one longer than any model's context. */
  private checkLength(line: number, text: string, messages: ChatMessageLike[]) {
    const limit = this.options.maxExampleTokens ?? Number.POSITIVE_INFINITY;
    const budget = this.options.tokenBudgetBytes ?? Number.POSITIVE_INFINITY;
    let tokens: { role: string; tokens: number }[] | null = null;
    const count = () => (tokens ??= messages.map((m) => ({ role: m.role, tokens: messageTokens(m) })));
    if (!this.tokensDeferred) {
      this.countedBytes += text.length;
      if (this.countedBytes > budget) this.tokensDeferred = true;
      else this.stats.add(line, count());
    }
    if (!this.mightBeTooLong(text.length, messages.length)) return;
    const n = count().reduce((a, t) => a + t.tokens, 0);
    if (n > limit) this.fail(line, null, 'example_too_long', `the example is ${n} tokens, over the ${limit}-token context of the largest base model`);
  }

  private checkChat(line: number, value: Record<string, unknown>, out: ChatMessageLike[]) {
    const messages = value.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return this.fail(line, 'messages', 'missing_messages', "'messages' must be a non-empty list");
    }
    this.checkMessages(line, 'messages', messages, { needAssistant: true }, out);
  }

  private checkDpo(line: number, value: Record<string, unknown>, out: ChatMessageLike[]) {
    const input = value.input;
    if (!isObject(input) || !Array.isArray(input.messages) || input.messages.length === 0) {
      return this.fail(line, 'input.messages', 'missing_messages', "'input.messages' must be a non-empty list");
    }
    this.checkMessages(line, 'input.messages', input.messages, { needAssistant: false }, out);
    const answers: string[] = [];
    for (const key of ['preferred_output', 'non_preferred_output'] as const) {
      const list = value[key];
      if (!Array.isArray(list) || list.length === 0) {
        this.fail(line, key, 'missing_messages', `'${key}' must be a non-empty list of assistant messages`);
        continue;
      }
      this.checkMessages(line, key, list, { needAssistant: true, onlyAssistant: true }, out);
      answers.push(JSON.stringify(list.map((m) => (isObject(m) && typeof m.content === 'string' ? m.content.trim() : m))));
    }
    if (answers.length === 2 && answers[0] === answers[1]) {
      this.fail(line, 'non_preferred_output', 'identical_outputs', 'preferred_output and non_preferred_output are the same answer: there is nothing to prefer');
    }
  }

  /**
   * Eval items: `prompt` (a string or a list of chat messages) with a `reference` answer, or with `choices` and the
   * correct one as `answer` (its index or its text). Optional `id` and `metadata` ride along.
   */
  private checkEval(line: number, value: Record<string, unknown>, out: ChatMessageLike[]) {
    const prompt = value.prompt;
    if (typeof prompt === 'string') {
      if (prompt.trim() === '') this.fail(line, 'prompt', 'missing_prompt', "'prompt' is empty");
      else if (this.checkText(line, 'prompt', prompt)) out.push({ role: 'user', content: prompt });
    } else if (Array.isArray(prompt) && prompt.length > 0) {
      this.checkMessages(line, 'prompt', prompt, { needAssistant: false }, out);
    } else {
      return this.fail(line, 'prompt', 'missing_prompt', "'prompt' must be a non-empty string or a non-empty list of messages");
    }
    const hasReference = value.reference !== undefined;
    const hasChoices = value.choices !== undefined;
    if (hasReference === hasChoices) {
      return this.fail(line, hasReference ? 'choices' : 'reference', 'missing_reference', "give either 'reference' (the expected answer) or 'choices' with 'answer'");
    }
    if (hasReference) {
      if (typeof value.reference !== 'string' || value.reference.trim() === '') {
        return this.fail(line, 'reference', 'missing_reference', "'reference' must be a non-empty string");
      }
      if (this.checkText(line, 'reference', value.reference)) out.push({ role: 'assistant', content: value.reference });
      return;
    }
    const choices = value.choices;
    if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string' && c.trim() !== '')) {
      return this.fail(line, 'choices', 'missing_reference', "'choices' must be a list of at least 2 non-empty strings");
    }
    choices.forEach((c, i) => {
      if (this.checkText(line, `choices[${i}]`, c as string)) out.push({ role: 'assistant', content: c as string });
    });
    const answer = value.answer;
    const ok = (Number.isInteger(answer) && (answer as number) >= 0 && (answer as number) < choices.length) || (typeof answer === 'string' && choices.includes(answer));
    if (!ok) this.fail(line, 'answer', 'bad_answer', `'answer' must be the index (0..${choices.length - 1}) or the text of one of the choices`);
  }

  /**
   * o200k is byte-level BPE: a text has no more tokens than UTF-8 bytes (<= 3 per UTF-16 unit) and JSON escaping only
   * adds bytes, so a short line cannot be too long. `units`: the line's UTF-16 length or more (its byte length).
   */
  private mightBeTooLong(units: number, messages: number): boolean {
    return units * 3 + MAX_MESSAGE_OVERHEAD * messages > (this.options.maxExampleTokens ?? Number.POSITIVE_INFINITY);
  }

  private countRole(role: string) {
    this.roleCounts[role] = (this.roleCounts[role] ?? 0) + 1;
  }

  /** `bytes`: the UTF-8 length of a trimmed answer. */
  private noteAnswer(line: number, bytes: number) {
    if (this.longestAnswer === null || bytes > this.longestAnswer.bytes) this.longestAnswer = { bytes, line };
  }

  /** Harmony's special tokens inside text would let data forge message boundaries: refused. False if found. */
  private checkText(line: number, path: string, text: string): boolean {
    const special = findSpecialToken(text);
    if (special !== null) this.failSpecialToken(line, path, special);
    return special === null;
  }

  private failSpecialToken(line: number, path: string, special: string) {
    this.fail(line, path, 'harmony_special_token', `contains the harmony special token ${special}, which is not allowed inside text`);
  }

  /**
   * This runs for every message of every line, so it allocates nothing for a good message: paths are built only
   * for an error, keys are walked with for-in instead of an Object.keys array.
   */
  private checkMessages(
    line: number,
    base: string,
    messages: unknown[],
    opts: { needAssistant: boolean; onlyAssistant?: boolean },
    out: ChatMessageLike[],
  ) {
    let assistants = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (!isObject(m)) {
        this.fail(line, `${base}[${i}]`, 'invalid_message', 'each message must be an object');
        continue;
      }
      const role = m.role;
      if (typeof role !== 'string' || !ROLES.has(role)) {
        this.fail(line, fieldPath(base, i, 'role'), 'unknown_role', `unknown role ${JSON.stringify(role)}; expected one of ${[...ROLES].join(', ')}`);
        continue;
      }
      if (opts.onlyAssistant && role !== 'assistant') {
        this.fail(line, fieldPath(base, i, 'role'), 'unknown_role', `only assistant messages are allowed here, got '${role}'`);
        continue;
      }
      this.countRole(role);
      for (const key in m) {
        if (!MESSAGE_KEYS.has(key)) this.fail(line, fieldPath(base, i, key), 'unknown_field', `unknown field '${key}'`);
      }
      const hasToolCalls = role === 'assistant' && (Array.isArray(m.tool_calls) || isObject(m.function_call));
      if (typeof m.content === 'string') {
        if (m.content.trim() === '' && !hasToolCalls) this.fail(line, fieldPath(base, i, 'content'), 'empty_content', 'content is empty');
      } else if (!(hasToolCalls && (m.content === undefined || m.content === null))) {
        this.fail(line, fieldPath(base, i, 'content'), 'empty_content', 'content must be a non-empty string');
      }
      if (m.thinking !== undefined && (role !== 'assistant' || typeof m.thinking !== 'string')) {
        this.fail(line, fieldPath(base, i, 'thinking'), 'invalid_message', "'thinking' is a string on assistant messages only");
      }
      if (m.weight !== undefined) {
        if (role !== 'assistant') this.fail(line, fieldPath(base, i, 'weight'), 'bad_weight', "'weight' is allowed on assistant messages only");
        else if (m.weight !== 0 && m.weight !== 1) this.fail(line, fieldPath(base, i, 'weight'), 'bad_weight', "'weight' must be 0 or 1");
      }
      for (const key of TEXT_FIELDS) {
        const text = m[key];
        const special = typeof text === 'string' ? findSpecialToken(text) : null;
        if (special !== null) this.failSpecialToken(line, fieldPath(base, i, key), special);
      }
      if (Array.isArray(m.tool_calls)) {
        m.tool_calls.forEach((c, j) => {
          const fn = isObject(c) && isObject(c.function) ? c.function : null;
          if (fn && typeof fn.arguments === 'string') this.checkText(line, fieldPath(base, i, `tool_calls[${j}].function.arguments`), fn.arguments);
        });
      }
      out.push(m as unknown as ChatMessageLike);
      if (role === 'assistant') {
        assistants++;
        if (typeof m.content === 'string') this.noteAnswer(line, Buffer.byteLength(m.content.trim(), 'utf8'));
      }
    }
    if (opts.needAssistant && assistants === 0) {
      this.fail(line, base, 'no_assistant_turn', 'the example has no assistant message to learn from');
    }
  }
}

/** `messages[2].content`: built only for an error, since the happy path checks millions of messages. */
function fieldPath(base: string, index: number, field: string): string {
  return `${base}[${index}].${field}`;
}

function detectFormat(value: Record<string, unknown>): DatasetFormat | null {
  if ('messages' in value) return 'chat';
  if ('input' in value || 'preferred_output' in value || 'non_preferred_output' in value) return 'dpo';
  // `prompt` alone is the legacy prompt/completion format, which is not accepted.
  if ('prompt' in value && ('reference' in value || 'choices' in value)) return 'eval';
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "line 3, messages[1].role: unknown role ..." */
export function describeError(e: ValidationError): string {
  const where = [e.line !== null ? `line ${e.line}` : null, e.path].filter(Boolean).join(', ');
  return where ? `${where}: ${e.message}` : e.message;
}
