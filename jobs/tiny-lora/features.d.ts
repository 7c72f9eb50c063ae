// Types for features.js: what the tiny-lora model predicts the next token from.
import type { ChatMessage, SparseVector } from './model';

export interface InputContext {
  input: Uint32Array;
  words: { bytes: Uint8Array; shape: number; prev: number; next: number }[];
}
export interface StepState {
  t: number;
  hash: number;
  last: number;
  matching: boolean[];
}
export const D: number;
export const INPUT_ROLES: ReadonlySet<string>;
export function fnv1a(text: string): number;
export function mix(a: number, b: number): number;
export function shapeOf(word: string): string;
export function inputContext(messages: ChatMessage[]): InputContext;
export function startState(ctx: InputContext): StepState;
export function advance(ctx: InputContext, state: StepState, token: number): StepState;
export function stepFeatures(ctx: InputContext, state: StepState): SparseVector;
export function answerSteps(ctx: InputContext, answerBytes: Uint8Array): SparseVector[];
