// Types for trainer.js (the tiny-lora container entry point), for in-process use by tests and tools.
import type { SparseVector } from './model';

export const CONTRACT_VERSION: 1;
export const TRAINER_EXIT: {
  ok: 0;
  internal: 1;
  invalid_spec: 2;
  invalid_data: 3;
  data_unreachable: 4;
  upload_failed: 5;
  cancelled: 143;
};

export class TrainerError extends Error {
  constructor(code: string, message: string, options?: { line?: number; cause?: unknown });
  code: string;
  line?: number;
}

/** An answer: its step features (teacher forcing) and target tokens (bytes + the end token). */
export interface AnswerSequence {
  steps: SparseVector[];
  targets: Int32Array;
  text: string;
}
export type Example =
  | { kind: 'sft'; seq: AnswerSequence; tokens: number }
  | { kind: 'dpo'; chosen: AnswerSequence; rejected: AnswerSequence; tokens: number };
export type Method = 'supervised' | 'dpo';
export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  target_modules?: string[];
}
export interface TrainOptions {
  seed: number;
  n_epochs: number;
  batch_size: number;
  learning_rate: number;
  /** DPO's beta (default 0.1); ignored by supervised examples. */
  beta?: number;
  /** DPO's anchor: weight of the preferred output's mean token NLL (TRL's rpo_alpha; default 0 = pure DPO). */
  rpo_alpha?: number;
  lora: LoraSettings;
}
export interface Trained {
  A: Float64Array;
  B: Float64Array;
  r: number;
  alpha: number;
  scale: number;
  trainedTokens: number;
  /** The last step trained; `stopped` when training ended early on hooks.shouldStop (after its checkpoint). */
  step: number;
  stopped: boolean;
}
/** Everything a resumed run needs (trainer.js checkpointFiles / loadCheckpoint). */
export interface TrainingState {
  step: number;
  total_steps: number;
  epoch: number;
  next_batch: number;
  order: number[] | null;
  trained_tokens: number;
  rng: { shuffle: number; dropout: number };
  window: { loss: number; correct: number; count: number; tokens: number };
  A: Float64Array;
  B: Float64Array;
  adam: { A: { m: Float64Array; v: Float64Array }; B: { m: Float64Array; v: Float64Array } };
  r: number;
  alpha: number;
  scale: number;
}
export interface AdapterFile {
  name: string;
  data: Buffer;
}
export type Emit = (event: Record<string, unknown> & { type: string }) => void;

export function validateSpec<T>(spec: T): T;
export function parseSpecText(text: string | undefined): unknown;
export function parseExampleLine(text: string, lineNo: number, label: string, method?: Method): Example;
export function examplesFromJsonl(text: string, label?: string, method?: Method): Example[];
export function countTokens(text: string): number;
export function initLora(r: number, seed: number): { A: Float64Array; B: Float64Array };
export function train(
  examples: Example[],
  options: TrainOptions,
  hooks?: {
    validation?: Example[];
    onMetrics?: Emit;
    logEvery?: number;
    checkpointEvery?: number;
    onCheckpoint?: (state: TrainingState) => Promise<void>;
    shouldStop?: () => boolean;
    resume?: TrainingState;
  },
): Promise<Trained>;
export function evaluate(examples: Example[], params: { r: number; scale: number; A: ArrayLike<number>; B: ArrayLike<number> }, dpo?: { beta: number; rpoAlpha: number }): {
  loss: number;
  accuracy: number;
};
export function adapterConfig(lora: LoraSettings): Record<string, unknown>;
export function adapterFiles(trained: Trained, lora: LoraSettings): AdapterFile[];
export function writeFiles(dir: string, files: AdapterFile[]): Promise<void>;
export function sha256Hex(data: Buffer): string;
/** SIGTERM state shared with main(): while `training`, a signal only sets `requested` and training checkpoints. */
export interface StopState {
  requested: boolean;
  training: boolean;
  signal?: string;
  graceSeconds?: number;
}
export function runJob(spec: unknown, options: { scratchDir: string; emit: Emit; stop?: StopState }): Promise<void>;
export function run(env: Record<string, string | undefined>, emit?: Emit, stop?: StopState): Promise<number>;
export function fingerprint(spec: unknown): Record<string, unknown>;
export function checkpointFiles(state: TrainingState, spec: unknown): AdapterFile[];
export function loadCheckpoint(dir: string, spec: unknown, resumeStep: number): TrainingState;
