import { LineEvent } from './line-splitter';

/** Stable codes users and tools can match on; each error is tied to a line and, where it applies, a field. */
export type ValidationCode =
  | 'invalid_json'
  | 'invalid_utf8'
  | 'not_an_object'
  | 'line_too_long'
  | 'unknown_format'
  | 'missing_messages'
  | 'invalid_message'
  | 'unknown_role'
  | 'unknown_field'
  | 'empty_content'
  | 'no_assistant_turn'
  | 'bad_weight'
  | 'mixed_formats'
  | 'empty_file'
  | 'too_few_examples';

export interface ValidationError {
  line: number | null;
  path: string | null;
  code: ValidationCode;
  message: string;
}

export type DatasetFormat = 'chat' | 'dpo';

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
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const MESSAGE_KEYS = new Set(['role', 'content', 'name', 'function_call', 'tool_calls', 'tool_call_id', 'weight', 'thinking']);

export interface ValidatorOptions {
  minExamples: number;
  maxErrors?: number;
}

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

  constructor(private readonly options: ValidatorOptions) {
    this.maxErrors = options.maxErrors ?? 100;
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
    const format: DatasetFormat | null = 'messages' in value ? 'chat' : 'input' in value || 'preferred_output' in value ? 'dpo' : null;
    if (!format) {
      return this.fail(line, null, 'unknown_format', "expected a chat example ('messages') or a DPO example ('input', 'preferred_output', 'non_preferred_output')");
    }
    if (this.format && this.format !== format) {
      return this.fail(line, null, 'mixed_formats', `this line is a ${format} example but earlier lines are ${this.format} examples`);
    }
    this.format ??= format;
    const before = this.errorCount;
    if (format === 'chat') this.checkChat(line, value);
    else this.checkDpo(line, value);
    if (this.errorCount === before) this.examples++;
  }

  private checkChat(line: number, value: Record<string, unknown>) {
    const messages = value.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return this.fail(line, 'messages', 'missing_messages', "'messages' must be a non-empty list");
    }
    this.checkMessages(line, 'messages', messages, { needAssistant: true });
  }

  private checkDpo(line: number, value: Record<string, unknown>) {
    const input = value.input;
    if (!isObject(input) || !Array.isArray(input.messages) || input.messages.length === 0) {
      return this.fail(line, 'input.messages', 'missing_messages', "'input.messages' must be a non-empty list");
    }
    this.checkMessages(line, 'input.messages', input.messages, { needAssistant: false });
    for (const key of ['preferred_output', 'non_preferred_output'] as const) {
      const out = value[key];
      if (!Array.isArray(out) || out.length === 0) {
        this.fail(line, key, 'missing_messages', `'${key}' must be a non-empty list of assistant messages`);
        continue;
      }
      this.checkMessages(line, key, out, { needAssistant: true, onlyAssistant: true });
    }
  }

  private checkMessages(line: number, base: string, messages: unknown[], opts: { needAssistant: boolean; onlyAssistant?: boolean }) {
    let assistants = 0;
    messages.forEach((m, i) => {
      const path = `${base}[${i}]`;
      if (!isObject(m)) return this.fail(line, path, 'invalid_message', 'each message must be an object');
      const role = m.role;
      if (typeof role !== 'string' || !ROLES.has(role)) {
        return this.fail(line, `${path}.role`, 'unknown_role', `unknown role ${JSON.stringify(role)}; expected one of ${[...ROLES].join(', ')}`);
      }
      if (opts.onlyAssistant && role !== 'assistant') {
        return this.fail(line, `${path}.role`, 'unknown_role', `only assistant messages are allowed here, got '${role}'`);
      }
      this.roleCounts[role] = (this.roleCounts[role] ?? 0) + 1;
      for (const key of Object.keys(m)) {
        if (!MESSAGE_KEYS.has(key)) this.fail(line, `${path}.${key}`, 'unknown_field', `unknown field '${key}'`);
      }
      const hasToolCalls = role === 'assistant' && (Array.isArray(m.tool_calls) || isObject(m.function_call));
      if (typeof m.content === 'string') {
        if (m.content.trim() === '' && !hasToolCalls) this.fail(line, `${path}.content`, 'empty_content', 'content is empty');
      } else if (!(hasToolCalls && (m.content === undefined || m.content === null))) {
        this.fail(line, `${path}.content`, 'empty_content', 'content must be a non-empty string');
      }
      if (m.thinking !== undefined && (role !== 'assistant' || typeof m.thinking !== 'string')) {
        this.fail(line, `${path}.thinking`, 'invalid_message', "'thinking' is a string on assistant messages only");
      }
      if (m.weight !== undefined) {
        if (role !== 'assistant') this.fail(line, `${path}.weight`, 'bad_weight', "'weight' is allowed on assistant messages only");
        else if (m.weight !== 0 && m.weight !== 1) this.fail(line, `${path}.weight`, 'bad_weight', "'weight' must be 0 or 1");
      }
      if (role === 'assistant') assistants++;
    });
    if (opts.needAssistant && assistants === 0) {
      this.fail(line, base, 'no_assistant_turn', 'the example has no assistant message to learn from');
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "line 3, messages[1].role: unknown role ..." */
export function describeError(e: ValidationError): string {
  const where = [e.line !== null ? `line ${e.line}` : null, e.path].filter(Boolean).join(', ');
  return where ? `${where}: ${e.message}` : e.message;
}
