/**
 * One item of an eval suite, as the dataset validator accepts it (src/datasets/validation/dataset-validator.ts,
 * `checkEval`): a `prompt` (a string, or a list of chat messages) with either a `reference` answer or `choices` and
 * the correct one as `answer` (its index or its exact text). Scorers and reports take this shape and nothing wider,
 * so an item that uploads is an item that scores.
 */
import { ChatMessageLike } from '../datasets/validation/harmony-tokenizer';

export interface EvalItem {
  prompt: string | ChatMessageLike[];
  reference?: string;
  choices?: string[];
  /** The index of the correct choice, or its text. */
  answer?: number | string;
  id?: string;
  metadata?: Record<string, unknown>;
}

/** The prompt as one line of text, for judges and reports: a string as is, messages as `role: content` lines. */
export function promptText(prompt: EvalItem['prompt']): string {
  if (typeof prompt === 'string') return prompt;
  return prompt.map((m) => `${m.role}: ${typeof m.content === 'string' ? m.content : ''}`).join('\n');
}

/** Choice letters as MMLU/ARC print them: A, B, C... (the validator allows any count; letters stop at Z). */
export const choiceLetter = (index: number): string => String.fromCharCode(65 + index);
