// Types for tokenizer.js: bytes + an end token.
export const EOS: number;
export const V: number;
export const MAX_ANSWER_TOKENS: number;
export function encode(text: string): Uint8Array;
export function decode(bytes: ArrayLike<number>): string;
export function tokenString(id: number): string;
export function tokenBytes(id: number): number[];
export function contentText(content: unknown): string;
export function chatPromptTokens(messages: { role: string; content: unknown }[]): number;
