/**
 * Scorers decide whether one target's output for one eval item is right. They are pure and synchronous so the same
 * item scores the same way for every target (stock OpenAI models, a pool's base model, an adapter); the runner that
 * calls the targets lives elsewhere. `llm_judge` needs a model call, so only its prompt and reply parsing are here
 * (llm-judge.ts). Errors: a bad scorer config or an item that lacks what its scorer needs is a DomainError whose
 * `param` names the field (`scorer.flags`, `reference`, `answer`).
 */
import vm from 'node:vm';
import { z } from 'zod';
import { DomainError } from '../common/domain-error';
import { fieldPath } from '../common/http/zod-validation';
import { choiceLetter, EvalItem } from './eval-item';
import { normalizeAnswer, normalizeWords } from './normalize';

export { buildJudgePrompt, parseJudgeReply, JudgeReplyError } from './llm-judge';

export interface ScoreResult {
  correct: boolean;
  /** Why, for a human reading a per-item diff: what was extracted and what was expected. */
  detail?: string;
}

export interface Scorer {
  readonly name: LocalScorerName;
  score(item: EvalItem, output: string): ScoreResult;
}

export const SCORER_NAMES = ['exact_match', 'multiple_choice', 'numeric', 'regex', 'contains', 'llm_judge'] as const;
export type ScorerName = (typeof SCORER_NAMES)[number];
export type LocalScorerName = Exclude<ScorerName, 'llm_judge'>;

export const scorerConfig = z.discriminatedUnion('type', [
  z.object({ type: z.literal('exact_match') }).strict(),
  z.object({ type: z.literal('contains') }).strict(),
  z.object({ type: z.literal('multiple_choice') }).strict(),
  z
    .object({
      type: z.literal('numeric'),
      /** |a - b| <= tolerance x max(|a|, |b|). */
      relative_tolerance: z.number().min(0).max(0.5).default(1e-6),
    })
    .strict(),
  z
    .object({
      type: z.literal('regex'),
      flags: z
        .string()
        .regex(/^[imsu]*$/, 'only the flags i, m, s and u are allowed')
        .refine((f) => new Set(f).size === f.length, 'a flag is repeated')
        .default(''),
      /** The whole output must match (anchored), not just a part of it. */
      full_match: z.boolean().default(false),
      max_pattern_length: z.number().int().min(1).max(2000).default(500),
      /** A match that runs longer is stopped: the pattern backtracks catastrophically on this output. */
      timeout_ms: z.number().int().min(1).max(1000).default(50),
    })
    .strict(),
  z.object({ type: z.literal('llm_judge'), model: z.string().min(1) }).strict(),
]);
export type ScorerConfig = z.output<typeof scorerConfig>;
export type LocalScorerConfig = Exclude<ScorerConfig, { type: 'llm_judge' }>;

/** A scorer name alone (`"numeric"`) or a config object; the error names the field under `scorer.`. */
export function parseScorerConfig(raw: unknown): ScorerConfig {
  const parsed = scorerConfig.safeParse(typeof raw === 'string' ? { type: raw } : raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  const param = ['scorer', fieldPath(path)].filter(Boolean).join('.');
  const message = issue.path[0] === 'type' ? `unknown scorer; expected one of ${SCORER_NAMES.join(', ')}` : issue.message;
  throw new DomainError('invalid_request', `'${param}': ${message}`, param);
}

/** EVAL_SCORE_MAX_CHARS' default: far above any benchmark answer, small enough to score in milliseconds. */
export const DEFAULT_SCORE_MAX_CHARS = 100_000;

/**
 * The scorer for a config (or a bare name). llm_judge is refused: it needs a judge call, see llm-judge.ts. An output
 * longer than `maxOutputChars` is scored on its last `maxOutputChars` characters: a target controls its output's
 * length, and a model states its final answer ("#### 42", "Answer: B") last.
 */
export function createScorer(raw: unknown, opts: { maxOutputChars?: number } = {}): Scorer {
  const inner = localScorer(parseScorerConfig(raw));
  const max = opts.maxOutputChars ?? DEFAULT_SCORE_MAX_CHARS;
  return { name: inner.name, score: (item, output) => inner.score(item, output.length > max ? output.slice(-max) : output) };
}

function localScorer(config: ScorerConfig): Scorer {
  switch (config.type) {
    case 'exact_match':
      return { name: 'exact_match', score: exactMatch };
    case 'contains':
      return { name: 'contains', score: contains };
    case 'multiple_choice':
      return { name: 'multiple_choice', score: multipleChoice };
    case 'numeric':
      return { name: 'numeric', score: (item, output) => numeric(item, output, config.relative_tolerance) };
    case 'regex':
      return regexScorer(config);
    case 'llm_judge':
      throw new DomainError('invalid_request', "'scorer.type': llm_judge calls a judge model; build its prompt with buildJudgePrompt and read the reply with parseJudgeReply", 'scorer.type');
  }
}

function exactMatch(item: EvalItem, output: string): ScoreResult {
  const expected = normalizeAnswer(reference(item, 'exact_match'));
  const got = normalizeAnswer(output);
  return got === expected ? { correct: true } : { correct: false, detail: `expected ${quote(expected)}, got ${quote(got)}` };
}

/** The reference's words appear in the output at word boundaries: "Paris" is in "It's Paris, of course." */
function contains(item: EvalItem, output: string): ScoreResult {
  const ref = reference(item, 'contains');
  // A reference made only of punctuation has no words; then plain normalized containment.
  const [needle, hay] = normalizeWords(ref) === '' ? [normalizeAnswer(ref), normalizeAnswer(output)] : [` ${normalizeWords(ref)} `, ` ${normalizeWords(output)} `];
  return hay.includes(needle) ? { correct: true } : { correct: false, detail: `${quote(needle.trim())} not found in the output` };
}

function multipleChoice(item: EvalItem, output: string): ScoreResult {
  const choices = item.choices;
  if (!Array.isArray(choices) || choices.length < 2) {
    throw new DomainError('invalid_request', "the multiple_choice scorer needs 'choices' (at least 2) on every item", 'choices');
  }
  const expected = answerIndex(item, choices);
  const chosen = extractChoice(output, choices);
  const want = `${choiceLetter(expected)} (${quote(truncate(choices[expected], 40))})`;
  if (chosen === null) return { correct: false, detail: `no choice found in the output; expected ${want}` };
  if (chosen.index >= choices.length) {
    return { correct: false, detail: `chose ${chosen.letter}, which is not one of A-${choiceLetter(choices.length - 1)}; expected ${want}` };
  }
  return chosen.index === expected ? { correct: true, detail: `chose ${chosen.letter} by ${chosen.how}` } : { correct: false, detail: `chose ${chosen.letter} by ${chosen.how}; expected ${want}` };
}

/** The validator's rule: the index of the correct choice, or its exact text. */
function answerIndex(item: EvalItem, choices: string[]): number {
  const a = item.answer;
  if (typeof a === 'number' && Number.isInteger(a) && a >= 0 && a < choices.length) return a;
  if (typeof a === 'string' && choices.includes(a)) return choices.indexOf(a);
  throw new DomainError('invalid_request', `'answer' must be the index (0..${choices.length - 1}) or the text of one of the choices`, 'answer');
}

export interface ExtractedChoice {
  letter: string;
  index: number;
  how: 'answer phrase' | 'letter' | 'leading letter' | 'choice text';
}

/**
 * Linear time: after the letter, group 3 is set only when it is a label ("a)") or ends its line with nothing but
 * punctuation; that run of punctuation holds no letter, so no two matches rescan it. (The earlier `(?=(.*)$)` read to
 * the end of the line for every match: quadratic on one long line.) `\s*(?:[:\-=]\s*)?` rather than
 * `\s*[:\-=]?\s*`, whose two runs of spaces split a long blank stretch n ways before failing.
 */
const ANSWER_PHRASE = /\b(answer|option|choice)\b(?:\s+(?:is|would be|should be))?\s*(?:[:\-=]\s*)?[*_(\[]*([A-Za-z])(?![\p{L}\p{N}])(?:(?=(\)|(?:[^\S\n]|[*_)\].,;:!])*$))|)/gimu;
const BARE_LETTER = /^[\s*_(\[{"'`]*([A-Za-z])[\s*_)\]}"'`.:!]*$/u;
const LEADING_LETTER = /^[\s*_(\[]*([A-Za-z])\s*[).:\]]\s*\S/u;

/**
 * The choice an output names, MMLU/ARC/HellaSwag style, trying in order: an answer phrase ("Answer: B", "The answer
 * is b.", "the correct option is (C)"; the last one wins, as a model states its final answer last, and
 * "answer" outranks "option"), the output being
 * one letter ("B", "(B)", "**B**"), a leading letter with a delimiter ("B) Paris", "(B) Paris", "B. Paris"), and the
 * text of a choice ("Paris", "Answer: Paris"). A lowercase "a" is taken only where it cannot be the article: "the
 * answer is a." names A, "the answer is a city" names nothing.
 */
export function extractChoice(output: string, choices: string[]): ExtractedChoice | null {
  const text = output.normalize('NFKC').trim();
  const pick = (letter: string, how: ExtractedChoice['how']): ExtractedChoice => {
    const upper = letter.toUpperCase();
    return { letter: upper, index: upper.charCodeAt(0) - 65, how };
  };
  // "answer" outranks "option"/"choice": "Answer: C. Option A is wrong because..." chose C.
  let answer: ExtractedChoice | null = null;
  let option: ExtractedChoice | null = null;
  for (const m of text.matchAll(ANSWER_PHRASE)) {
    const [, keyword, letter, labelOrEnd] = m;
    // Lowercase: only as a label ("(a)", "a)") or with nothing but punctuation after it, else it reads as a word.
    if (letter !== letter.toUpperCase() && labelOrEnd === undefined) continue;
    if (keyword.toLowerCase() === 'answer') answer = pick(letter, 'answer phrase');
    else option = pick(letter, 'answer phrase');
  }
  if (answer ?? option) return answer ?? option;
  const bare = BARE_LETTER.exec(text);
  if (bare) return pick(bare[1], 'letter');
  const leading = LEADING_LETTER.exec(text);
  if (leading) return pick(leading[1], 'leading letter');
  const said = normalizeAnswer(text.replace(/^(?:the\s+)?(?:final\s+|correct\s+)?answer(?:\s+is)?\s*[:\-]?\s*/iu, ''));
  const byText = choices.findIndex((c) => normalizeAnswer(c) === said);
  return byText >= 0 ? { letter: choiceLetter(byText), index: byText, how: 'choice text' } : null;
}

/**
 * GSM8K: the number after `####` (the reference always has one; an output has one when it was asked to use the same
 * format), else the last number in the text. Thousands separators and `$` are dropped.
 */
function numeric(item: EvalItem, output: string, tolerance: number): ScoreResult {
  const ref = reference(item, 'numeric');
  const expected = extractNumber(ref);
  if (expected === null) throw new DomainError('invalid_request', `the numeric scorer found no number in 'reference' (${quote(truncate(ref, 40))})`, 'reference');
  const got = extractNumber(output);
  if (got === null) return { correct: false, detail: `no number in the output; expected ${expected}` };
  const ok = got === expected || Math.abs(got - expected) <= tolerance * Math.max(Math.abs(got), Math.abs(expected));
  return ok ? { correct: true } : { correct: false, detail: `expected ${expected}, got ${got}` };
}

// "1,234" groups by thousands; "12,3456" is two numbers, as is "1, 2". "$1234." ends before the period.
const NUMBER = /-?\$?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|-?\$?\.\d+/g;

export function extractNumber(text: string): number | null {
  const t = text.normalize('NFKC').replace(/\u2212/g, '-');
  const marker = t.lastIndexOf('####');
  if (marker >= 0) {
    const after = t.slice(marker + 4).match(NUMBER);
    if (after) return toNumber(after[0]);
  }
  const all = t.match(NUMBER);
  return all ? toNumber(all[all.length - 1]) : null;
}

const toNumber = (s: string) => Number(s.replace(/[,$]/g, ''));

/**
 * The reference is a pattern, searched in the output (or matched against all of it with `full_match`). JavaScript
 * regexes backtrack, so a pattern like `(a+)+$` can hang the process on one output: patterns are capped in length
 * and each match runs in a vm context with a time limit; going over it is an error naming `reference`, not a wrong
 * answer, since the fault is the pattern's.
 */
function regexScorer(config: Extract<LocalScorerConfig, { type: 'regex' }>): Scorer {
  const compiled = new Map<string, RegExp>();
  const context = vm.createContext(Object.create(null));
  const run = new vm.Script('globalThis.result = re.test(text)');
  return {
    name: 'regex',
    score(item, output) {
      const pattern = reference(item, 'regex');
      let re = compiled.get(pattern);
      if (!re) {
        re = compileReference(pattern, config);
        if (compiled.size < 1000) compiled.set(pattern, re);
      }
      context.re = re;
      context.text = output;
      try {
        run.runInContext(context, { timeout: config.timeout_ms });
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw err;
        throw new DomainError('invalid_request', `'reference': the pattern ${quote(truncate(pattern, 60))} ran over ${config.timeout_ms} ms on an output (catastrophic backtracking); simplify it`, 'reference', { cause: err });
      } finally {
        context.text = undefined;
      }
      return context.result === true ? { correct: true } : { correct: false, detail: `the output does not match /${truncate(pattern, 60)}/${config.flags}` };
    },
  };
}

function compileReference(pattern: string, config: Extract<LocalScorerConfig, { type: 'regex' }>): RegExp {
  if (pattern.length > config.max_pattern_length) {
    throw new DomainError('invalid_request', `'reference': the pattern is ${pattern.length} characters, over the limit of ${config.max_pattern_length}`, 'reference');
  }
  const source = config.full_match ? `^(?:${pattern})$` : pattern;
  try {
    return new RegExp(source, config.flags);
  } catch (err) {
    throw new DomainError('invalid_request', `'reference': not a valid regular expression: ${(err as Error).message}`, 'reference', { cause: err });
  }
}

function reference(item: EvalItem, scorer: LocalScorerName): string {
  if (typeof item.reference !== 'string') {
    throw new DomainError('invalid_request', `the ${scorer} scorer needs a 'reference' on every item (this one has ${item.choices ? "'choices'" : 'none'})`, 'reference');
  }
  return item.reference;
}

const truncate = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}\u2026`);
const quote = (s: string) => JSON.stringify(truncate(s, 80));
