// Types for model.js, the tiny-lora DEVELOPMENT language model (plain CommonJS so it runs in a node-only image).
export interface ChatMessage {
  role: string;
  content: unknown;
}
export interface SparseVector {
  idx: Int32Array;
  val: Float64Array;
}
export interface LoadedAdapter {
  config: Record<string, unknown> & { r: number; lora_alpha: number };
  r: number;
  alpha: number;
  scale: number;
  A: Float32Array;
  B: Float32Array;
}
/** Anything with LoRA factors: a loaded adapter or a trainer result (float64 during training). */
export interface LoraFactors {
  r: number;
  scale: number;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
}
export interface GeneratedToken {
  id: number;
  logprob: number;
  top: { id: number; logprob: number }[];
}
export interface Generation {
  tokens: GeneratedToken[];
  finish: 'stop' | 'length';
  /** The end token, when generation ended with it. */
  eos?: GeneratedToken;
}
export interface Prediction {
  /** The greedy answer's text. */
  answer: string;
  /** Its tokens (bytes), without the end token. */
  tokens: number[];
  /** Total log-probability of the answer and its end token. */
  logprob: number;
  finish: 'stop' | 'length';
}
export interface GenerateOptions {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  topK?: number;
  onToken?: (token: GeneratedToken, sofar: GeneratedToken[]) => boolean | void;
}

export const MODEL_NAME: 'tiny-lora';
export const D: number;
export const V: number;
export const EOS: number;
export const MAX_ANSWER_TOKENS: number;
export const BASE_SEED: string;
export const TARGET_MODULE: 'lm_head';
export const LORA_A_NAME: string;
export const LORA_B_NAME: string;
export const INPUT_ROLES: ReadonlySet<string>;

export function fnv1a(text: string): number;
export interface Rng {
  (): number;
  getState(): number;
  setState(state: number): void;
}
export function mulberry32(seed: number): Rng;
export function rngFor(purpose: string, seed: number): Rng;
export function contentText(content: unknown): string;
export function getBaseWeights(): Float32Array;
export function baseLogits(x: SparseVector): Float64Array;
export function loraHidden(A: ArrayLike<number>, r: number, x: SparseVector): Float64Array;
export function addLoraLogits(logits: Float64Array, B: ArrayLike<number>, r: number, scale: number, h: Float64Array): Float64Array;
export function logitsFor(x: SparseVector, adapter: LoraFactors | null): Float64Array;
export function logSoftmax(logits: ArrayLike<number>): Float64Array;
export function argmax(values: ArrayLike<number>): number;
export function topTokens(logprobs: ArrayLike<number>, k: number): { id: number; logprob: number }[];
export function generate(messages: ChatMessage[], adapter?: LoraFactors | null, opts?: GenerateOptions): Generation;
export function predict(messages: ChatMessage[], adapter?: LoraFactors | null, maxTokens?: number): Prediction;
export function loraScale(config: { r: number; lora_alpha: number; use_rslora?: boolean }): number;
export function parseAdapter(config: Record<string, unknown>, safetensorsBytes: Buffer): LoadedAdapter;
export function loadAdapter(dir: string): LoadedAdapter;
