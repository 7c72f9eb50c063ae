/**
 * The public benchmark files as they are published, each record turned into one question: MMLU (Hendrycks et al.:
 * the original CSVs, and the Hugging Face `cais/mmlu` export), GSM8K (`openai/grade-school-math` JSONL), ARC
 * (`allenai/ai2_arc`: the original JSONL and the Hugging Face export), HellaSwag (`rowanz/hellaswag` JSONL, label an
 * int; the Hugging Face export, label a string), and loraplane's own chat format (the last assistant turn is the
 * reference). A record that does not match its format is refused naming its line and field. Prompts are built from
 * questions in prompt-templates.ts.
 */
import { DomainError } from '../../common/domain-error';
import { ChatMessageLike } from '../../datasets/validation/harmony-tokenizer';
import { CsvRecord, JsonRecord } from './record-readers';

export const BENCHMARK_FORMATS = ['mmlu', 'gsm8k', 'arc', 'hellaswag', 'chat'] as const;
export type BenchmarkFormat = (typeof BENCHMARK_FORMATS)[number];

export type Question =
  /** Multiple choice: the answer is an index into `choices`. `subject`: MMLU's, for its header line. */
  | { kind: 'choice'; line: number; id?: string; stem: string; choices: string[]; answer: number; subject?: string }
  /** GSM8K: the worked solution (for k-shot examples) and its final number (commas dropped). */
  | { kind: 'numeric'; line: number; question: string; solution: string; final: string }
  /** Chat: the messages before the last assistant turn, and that turn. */
  | { kind: 'chat'; line: number; messages: ChatMessageLike[]; reference: string };

/** Where a refused record is: `line 12: 'answer': ...` with `param` = `file.line[12].answer`. */
export function recordError(line: number, field: string, message: string): DomainError {
  return new DomainError('invalid_request', `line ${line}: '${field}' ${message}`, `file.line[${line}].${field}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (line: number, field: string, v: unknown): string => {
  if (typeof v !== 'string' || v.trim() === '') throw recordError(line, field, 'must be a non-empty string');
  return v;
};
const object = (line: number, v: unknown): Record<string, unknown> => {
  if (!isObject(v)) throw recordError(line, '$', 'must be a JSON object');
  return v;
};
const LETTERS = ['A', 'B', 'C', 'D'];

/** MMLU's original CSV: question, A, B, C, D, answer letter; no header. The subject is in the file's name. */
export function mmluCsv(r: CsvRecord, subject: string | undefined): Question {
  if (r.fields.length !== 6) throw recordError(r.line, `column ${Math.min(r.fields.length, 6) + 1}`, `expected 6 columns (question, A, B, C, D, answer), found ${r.fields.length}`);
  const [q, ...rest] = r.fields;
  const choices = rest.slice(0, 4).map((c, i) => text(r.line, LETTERS[i], c));
  const answer = LETTERS.indexOf(rest[4].trim());
  if (answer < 0) throw recordError(r.line, 'answer', `must be one of A, B, C, D (found ${JSON.stringify(rest[4])})`);
  return { kind: 'choice', line: r.line, stem: text(r.line, 'question', q), choices, answer, subject };
}

/** MMLU's Hugging Face export: {question, subject, choices[4], answer: 0-3}. */
export function mmluHf(r: JsonRecord): Question {
  const v = object(r.line, r.value);
  const choices = v.choices;
  if (!Array.isArray(choices) || choices.length !== 4) throw recordError(r.line, 'choices', 'must be a list of 4 strings');
  choices.forEach((c, i) => text(r.line, `choices[${i}]`, c));
  if (typeof v.answer !== 'number' || !Number.isInteger(v.answer) || v.answer < 0 || v.answer > 3) throw recordError(r.line, 'answer', 'must be the index of the correct choice, 0-3');
  const subject = v.subject === undefined ? undefined : text(r.line, 'subject', v.subject);
  return { kind: 'choice', line: r.line, stem: text(r.line, 'question', v.question), choices: choices as string[], answer: v.answer, subject };
}

const FINAL = /####\s*(-?[\d,]*\.?\d+)\s*$/;

/** GSM8K: {question, answer} where the answer is the worked solution ending in `#### N` (N may carry commas). */
export function gsm8k(r: JsonRecord): Question {
  const v = object(r.line, r.value);
  const question = text(r.line, 'question', v.question);
  const solution = text(r.line, 'answer', v.answer);
  const m = FINAL.exec(solution.trim());
  if (!m) throw recordError(r.line, 'answer', "must end with '#### <number>'");
  return { kind: 'numeric', line: r.line, question, solution: solution.trim(), final: m[1].replace(/,/g, '') };
}

/**
 * ARC, either shape: the original ({id, question: {stem, choices: [{text, label}]}, answerKey}) or the Hugging Face
 * export ({id, question, choices: {text[], label[]}, answerKey}). Labels are A-E or 1-5 (a few questions have 3 or 5
 * choices); the answer key is one of them.
 */
export function arc(r: JsonRecord): Question {
  const v = object(r.line, r.value);
  let stem: string;
  let texts: unknown[];
  let labels: unknown[];
  let prefix: string;
  if (isObject(v.question)) {
    stem = text(r.line, 'question.stem', v.question.stem);
    const list = v.question.choices;
    if (!Array.isArray(list) || list.length < 2) throw recordError(r.line, 'question.choices', 'must be a list of at least 2 {text, label}');
    list.forEach((c, i) => {
      if (!isObject(c)) throw recordError(r.line, `question.choices[${i}]`, 'must be an object {text, label}');
    });
    texts = list.map((c: Record<string, unknown>) => c.text);
    labels = list.map((c: Record<string, unknown>) => c.label);
    prefix = 'question.choices';
  } else {
    stem = text(r.line, 'question', v.question);
    if (!isObject(v.choices) || !Array.isArray(v.choices.text) || !Array.isArray(v.choices.label)) {
      throw recordError(r.line, 'choices', 'must be {text: [...], label: [...]} (or give question as {stem, choices})');
    }
    if (v.choices.text.length !== v.choices.label.length || v.choices.text.length < 2) throw recordError(r.line, 'choices.label', 'must have one label per text, at least 2');
    texts = v.choices.text;
    labels = v.choices.label;
    prefix = 'choices';
  }
  const orig = prefix === 'question.choices';
  const choices = texts.map((t, i) => text(r.line, orig ? `${prefix}[${i}].text` : `${prefix}.text[${i}]`, t));
  labels.forEach((l, i) => {
    if (typeof l !== 'string' || !/^(?:[A-E]|[1-5])$/.test(l)) throw recordError(r.line, orig ? `${prefix}[${i}].label` : `${prefix}.label[${i}]`, 'must be a letter A-E or a digit 1-5');
  });
  const key = v.answerKey;
  const answer = typeof key === 'string' ? labels.indexOf(key) : -1;
  if (answer < 0) throw recordError(r.line, 'answerKey', `must be one of the labels (${labels.join(', ')})`);
  const id = typeof v.id === 'string' ? v.id : undefined;
  return { kind: 'choice', line: r.line, id, stem, choices, answer };
}

/** HellaSwag: {ctx, endings[4], label} with label an int (the original) or a string (Hugging Face). */
export function hellaswag(r: JsonRecord): Question {
  const v = object(r.line, r.value);
  const ctx = text(r.line, 'ctx', v.ctx);
  const endings = v.endings;
  if (!Array.isArray(endings) || endings.length !== 4) throw recordError(r.line, 'endings', 'must be a list of 4 strings');
  endings.forEach((e, i) => text(r.line, `endings[${i}]`, e));
  const label = typeof v.label === 'string' && /^[0-3]$/.test(v.label) ? Number(v.label) : v.label;
  if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label > 3) {
    throw recordError(r.line, 'label', `must be 0-3, as a number or a string${v.label === '' ? ' (the test split has no labels)' : ''}`);
  }
  const activity = typeof v.activity_label === 'string' && v.activity_label.trim() !== '' ? `${v.activity_label}: ` : '';
  const id = typeof v.ind === 'number' ? String(v.ind) : undefined;
  return { kind: 'choice', line: r.line, id, stem: `${activity}${ctx}`, choices: endings as string[], answer: label };
}

/** loraplane's chat format: {messages: [...]}; the last message is the assistant's reference answer. */
export function chat(r: JsonRecord): Question {
  const v = object(r.line, r.value);
  const messages = v.messages;
  if (!Array.isArray(messages) || messages.length < 2) throw recordError(r.line, 'messages', 'must be a list of at least 2 messages (a prompt and the reference answer)');
  messages.forEach((m, i) => {
    if (!isObject(m) || typeof m.role !== 'string') throw recordError(r.line, `messages[${i}].role`, 'must be a string');
    text(r.line, `messages[${i}].content`, m.content);
  });
  const last = messages[messages.length - 1] as { role: string; content: string };
  if (last.role !== 'assistant') throw recordError(r.line, `messages[${messages.length - 1}].role`, "must be 'assistant': the last turn is the reference answer");
  const prompt = (messages.slice(0, -1) as { role: string; content: string }[]).map((m) => ({ role: m.role, content: m.content }));
  return { kind: 'chat', line: r.line, messages: prompt as ChatMessageLike[], reference: last.content };
}

/** MMLU's subject from the release's file names: `abstract_algebra_test.csv` -> "abstract_algebra". */
export function subjectOf(filename: string): string | undefined {
  return /^([a-z_]+?)_(?:test|dev|val)\.csv$/i.exec(filename.split(/[\\/]/).pop() ?? '')?.[1];
}
