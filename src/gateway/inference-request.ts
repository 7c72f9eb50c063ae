import { DomainError } from '../common/domain-error';

/**
 * Checks of the two inference bodies, following OpenAI's contract: the fields OpenAI's API accepts (openai-openapi
 * CreateChatCompletionRequest / CreateCompletionRequest) plus vLLM's common sampling extras (top_k, min_p,
 * repetition_penalty); any other field is refused, as OpenAI refuses it ("Unrecognized request argument"). Only
 * what the gateway relies on is checked deeply; the rest goes to the model server, which checks its own.
 * Hand-written rather than zod: it runs on every inference request and costs a few microseconds this way.
 */
export type InferenceRoute = 'chat' | 'completions';

export interface InferenceBody {
  model: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  [field: string]: unknown;
}

type Check = (v: unknown) => string | null;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num: Check = (v) => (typeof v === 'number' && Number.isFinite(v) ? null : 'must be a number');
const int: Check = (v) => (Number.isInteger(v) ? null : 'must be an integer');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'must be a boolean');
const str: Check = (v) => (typeof v === 'string' ? null : 'must be a string');
const obj: Check = (v) => (isObj(v) ? null : 'must be an object');
const arr: Check = (v) => (Array.isArray(v) ? null : 'must be an array');
const any: Check = () => null;
const orNull = (c: Check): Check => (v) => (v === null ? null : c(v));
const stop: Check = (v) => (typeof v === 'string' || (Array.isArray(v) && v.length <= 4 && v.every((s) => typeof s === 'string')) ? null : 'must be a string or an array of up to 4 strings');
const streamOptions: Check = (v) => {
  if (!isObj(v)) return 'must be an object';
  for (const k of Object.keys(v)) if (k !== 'include_usage' && k !== 'include_obfuscation' && k !== 'continuous_usage_stats') return `unknown field '${k}'`;
  return v.include_usage === undefined || typeof v.include_usage === 'boolean' ? null : 'include_usage must be a boolean';
};

const COMMON: Record<string, Check> = {
  model: str,
  stream: orNull(bool),
  stream_options: orNull(streamOptions),
  temperature: orNull(num),
  top_p: orNull(num),
  n: orNull(int),
  max_tokens: orNull(int),
  stop: orNull(stop),
  presence_penalty: orNull(num),
  frequency_penalty: orNull(num),
  logit_bias: orNull(obj),
  seed: orNull(int),
  user: str,
  // vLLM's sampling extras
  top_k: orNull(int),
  min_p: orNull(num),
  repetition_penalty: orNull(num),
};

const CHAT: Record<string, Check> = {
  ...COMMON,
  messages: arr,
  logprobs: orNull(bool),
  top_logprobs: orNull(int),
  max_completion_tokens: orNull(int),
  tools: arr,
  tool_choice: any,
  parallel_tool_calls: bool,
  response_format: obj,
  functions: arr,
  function_call: any,
  reasoning_effort: orNull(str),
  verbosity: orNull(str),
  metadata: orNull(obj),
  store: orNull(bool),
  service_tier: orNull(str),
  modalities: orNull(arr),
  audio: orNull(obj),
  prediction: orNull(obj),
  web_search_options: obj,
  safety_identifier: str,
  prompt_cache_key: str,
  prompt_cache_retention: orNull(str),
  prompt_cache_options: orNull(obj),
  moderation: any,
};

const COMPLETIONS: Record<string, Check> = {
  ...COMMON,
  prompt: (v) =>
    typeof v === 'string' || (Array.isArray(v) && v.length > 0 && (v.every((p) => typeof p === 'string') || v.every((p) => Number.isInteger(p)) || v.every((p) => Array.isArray(p))))
      ? null
      : 'must be a string, an array of strings, or token arrays',
  best_of: orNull(int),
  echo: orNull(bool),
  logprobs: orNull(int),
  suffix: orNull(str),
};

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function checkMessages(messages: unknown[]): void {
  if (messages.length === 0) throw bad("'messages' must hold at least one message", 'messages');
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObj(m)) throw bad(`messages[${i}] must be an object`, `messages[${i}]`);
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) throw bad(`messages[${i}].role must be one of ${[...ROLES].join(', ')}`, `messages[${i}].role`);
    const c = m.content;
    if (c !== undefined && c !== null && typeof c !== 'string' && !Array.isArray(c)) throw bad(`messages[${i}].content must be a string or an array of content parts`, `messages[${i}].content`);
  }
}

const bad = (message: string, param: string) => new DomainError('invalid_request', message, param);

/** Parses and checks a request body; throws a 400 DomainError naming the field. */
export function parseInferenceBody(route: InferenceRoute, text: string): InferenceBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw bad('We could not parse the JSON body of your request. The body must be a JSON object.', 'body');
  }
  if (!isObj(body)) throw bad('The body of your request must be a JSON object.', 'body');
  const fields = route === 'chat' ? CHAT : COMPLETIONS;
  for (const key in body) {
    const check = fields[key];
    if (!check) throw bad(`Unrecognized request argument supplied: ${key}`, key);
    const problem = check(body[key]);
    if (problem) throw bad(`'${key}' ${problem}`, key);
  }
  if (body.model === undefined) throw bad("you must provide a model parameter ('model')", 'model');
  if (route === 'chat') {
    if (body.messages === undefined) throw bad("Missing required parameter: 'messages'.", 'messages');
    checkMessages(body.messages as unknown[]);
  } else if (body.prompt === undefined) {
    throw bad("Missing required parameter: 'prompt'.", 'prompt');
  }
  if (body.stream_options != null && body.stream !== true) throw bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  return body as InferenceBody;
}
