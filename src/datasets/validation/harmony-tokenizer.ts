import harmony from 'gpt-tokenizer/encoding/o200k_harmony';

/**
 * GPT-OSS's tokenizer (o200k_harmony, from the maintained `gpt-tokenizer` package) and the harmony rendering of a
 * chat example, so token counts are those the trainer sees: `<|start|>{role}<|channel|>{channel}<|message|>{text}<|end|>`
 * per message, assistant `thinking` as an analysis-channel message, tool calls on the commentary channel.
 * The model's fixed system preamble (identity, dates, reasoning effort) is not counted: it is the template's, not the
 * dataset's, and the trainer may configure it.
 */
export interface TokenizedMessage {
  role: string;
  tokens: number;
}

const PLAIN = { disallowedSpecial: new Set<string>() };
const SPECIAL_LIKE = /<\|[A-Za-z0-9_]+\|>/g;
const specialCache = new Map<string, boolean>();

/** Token count of plain text: special-token spellings inside it count as text (they are rejected earlier anyway). */
export function countText(text: string): number {
  return text.length === 0 ? 0 : harmony.countTokens(text, PLAIN);
}

/** The first spelling in `text` that o200k_harmony encodes as one special token (`<|start|>`, `<|channel|>`, ...). */
export function findSpecialToken(text: string): string | null {
  if (!text.includes('<|')) return null;
  for (const match of text.matchAll(SPECIAL_LIKE)) {
    const spelling = match[0];
    let special = specialCache.get(spelling);
    if (special === undefined) {
      // A special token is one token when specials are allowed and several when read as text.
      special = harmony.encode(spelling, { allowedSpecial: 'all' }).length === 1 && countText(spelling) > 1;
      if (specialCache.size < 1000) specialCache.set(spelling, special);
    }
    if (special) return spelling;
  }
  return null;
}

// <|start|> role [<|channel|> channel] <|message|> ... <|end|>: four specials plus the header words.
const headerCache = new Map<string, number>();
function header(role: string, channel: string | null): number {
  const key = `${role}/${channel ?? ''}`;
  let n = headerCache.get(key);
  if (n === undefined) {
    n = 3 + countText(role) + (channel ? 1 + countText(channel) : 0);
    if (headerCache.size < 1000) headerCache.set(key, n);
  }
  return n;
}

export interface ChatMessageLike {
  role: string;
  content?: unknown;
  thinking?: unknown;
  name?: unknown;
  tool_calls?: unknown;
  function_call?: unknown;
}

/** Tokens of one message as harmony renders it (the dataset's system message is rendered as the developer message). */
export function messageTokens(m: ChatMessageLike): number {
  const role = m.role === 'system' ? 'developer' : m.role;
  let n = 0;
  if (role === 'assistant') {
    if (typeof m.thinking === 'string') n += header(role, 'analysis') + countText(m.thinking);
    for (const call of toolCalls(m)) n += header(role, 'commentary') + countText(` to=functions.${call.name} `) + 2 + countText(call.arguments);
    if (typeof m.content === 'string' && m.content !== '') n += header(role, 'final') + countText(m.content);
    return n;
  }
  const name = typeof m.name === 'string' ? countText(m.name) : 0;
  return header(role, null) + name + (typeof m.content === 'string' ? countText(m.content) : 0);
}

function toolCalls(m: ChatMessageLike): { name: string; arguments: string }[] {
  const out: { name: string; arguments: string }[] = [];
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : m.function_call ? [{ function: m.function_call }] : [];
  for (const c of calls) {
    const fn = (c as { function?: { name?: unknown; arguments?: unknown } })?.function;
    out.push({ name: typeof fn?.name === 'string' ? fn.name : '', arguments: typeof fn?.arguments === 'string' ? fn.arguments : '' });
  }
  return out;
}
