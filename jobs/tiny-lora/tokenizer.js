'use strict';
/**
 * The tiny-lora tokenizer: one token per UTF-8 byte (ids 0-255) plus an end-of-answer token (id 256). A byte
 * vocabulary can spell any answer in any language, so there is no list of allowed answers; the price is that an
 * accented letter takes two or three tokens.
 *
 * The chat template only matters for counting (usage, context length): each message costs a role token, its bytes
 * and an end token; the assistant turn to be generated costs one role token.
 */
const EOS = 256;
const V = 257;
/** The longest answer the model generates or trains on, in tokens (bytes), not counting EOS. */
const MAX_ANSWER_TOKENS = 64;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

function encode(text) {
  return encoder.encode(text);
}

/** Bytes -> text; an incomplete or invalid sequence becomes U+FFFD (only where the model emitted broken UTF-8). */
function decode(bytes) {
  return decoder.decode(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
}

/**
 * How vLLM shows a token in logprobs: its text, or `bytes:\xNN` for a byte that is not a whole character on its own.
 * The end token prints as `</s>`, like the EOS of byte-level models.
 */
function tokenString(id) {
  if (id === EOS) return '</s>';
  if (id < 0x80) return String.fromCharCode(id);
  return `bytes:\\x${id.toString(16).padStart(2, '0')}`;
}

/** The raw bytes of a token, as OpenAI's `bytes` field wants them (empty for the end token). */
function tokenBytes(id) {
  return id === EOS ? [] : [id];
}

/** Text content of a message: a string, or OpenAI-style content parts of type "text". */
function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part && part.type === 'text' && typeof part.text === 'string' ? part.text : '')).join(' ');
  }
  return '';
}

/** Prompt tokens of a chat as the template counts them (role + bytes + end per message, + the assistant role). */
function chatPromptTokens(messages) {
  let n = 1;
  for (const m of messages) n += 2 + encode(contentText(m && m.content)).length;
  return n;
}

module.exports = { EOS, V, MAX_ANSWER_TOKENS, encode, decode, tokenString, tokenBytes, contentText, chatPromptTokens };
