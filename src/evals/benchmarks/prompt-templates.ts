/**
 * The prompts an imported benchmark is asked with (docs in README.md, "Benchmark suites"). Multiple choice follows
 * the MMLU release's evaluate.py: a header line, then k solved examples, then the question, each as
 *   <question>\nA. <choice>\nB. <choice>...\nAnswer:[ <letter>\n\n]
 * ARC's labels 1-5 are shown as A-E so one scorer (multiple_choice) reads every item. GSM8K follows the paper's
 * few-shot format, "Question: ...\nAnswer: <worked solution ending in #### N>", and asks for the same ending; the
 * numeric scorer takes the number after ####, else the last number. Chat items keep their messages; shots do not apply.
 */
import { choiceLetter, EvalItem } from '../eval-item';
import { BenchmarkFormat, Question } from './benchmark-formats';

const HEADERS: Record<Exclude<BenchmarkFormat, 'gsm8k' | 'chat'>, (subject?: string) => string> = {
  mmlu: (subject) => `The following are multiple choice questions (with answers)${subject ? ` about ${subject.replace(/_/g, ' ')}` : ''}.\n\n`,
  arc: () => 'The following are multiple choice science questions (with answers).\n\n',
  hellaswag: () => 'The following are unfinished descriptions, each with the most plausible of four endings as its answer.\n\n',
};

const GSM8K_HEADER = "Solve each grade-school math problem step by step, and end with the final number as '#### <number>'.\n\n";

function choiceBlock(q: Extract<Question, { kind: 'choice' }>, withAnswer: boolean): string {
  const lines = [q.stem, ...q.choices.map((c, i) => `${choiceLetter(i)}. ${c}`)];
  return `${lines.join('\n')}\nAnswer:${withAnswer ? ` ${choiceLetter(q.answer)}\n\n` : ''}`;
}

function numericBlock(q: Extract<Question, { kind: 'numeric' }>, withAnswer: boolean): string {
  return `Question: ${q.question}\nAnswer:${withAnswer ? ` ${q.solution}\n\n` : ''}`;
}

/** One eval item (the dataset validator's eval shape) for a question, after `shots` solved examples of the dev file. */
export function toEvalItem(format: BenchmarkFormat, q: Question, shots: Question[]): EvalItem {
  switch (q.kind) {
    case 'choice': {
      const header = HEADERS[format as keyof typeof HEADERS](q.subject);
      const examples = shots.map((s) => (s.kind === 'choice' ? choiceBlock(s, true) : '')).join('');
      const item: EvalItem = { prompt: `${header}${examples}${choiceBlock(q, false)}`, choices: q.choices, answer: q.answer };
      if (q.id) item.id = q.id;
      if (q.subject) item.metadata = { subject: q.subject };
      return item;
    }
    case 'numeric': {
      const examples = shots.map((s) => (s.kind === 'numeric' ? numericBlock(s, true) : '')).join('');
      return { prompt: `${GSM8K_HEADER}${examples}${numericBlock(q, false)}`, reference: q.final };
    }
    case 'chat':
      return { prompt: q.messages, reference: q.reference };
  }
}
