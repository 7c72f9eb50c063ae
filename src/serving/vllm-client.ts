import { Injectable } from '@nestjs/common';
import { Config } from '../config/config';
import { OpenAIHttpClient } from './openai-http.client';

export interface ProbeAnswer {
  content: string;
  /** The first generated token's top log-probabilities, when the server returns them. */
  topLogprobs: { token: string; logprob: number }[] | null;
}

/**
 * The control plane's own calls to a vLLM replica's OpenAI-compatible API: only the no-effect probe. Loading and
 * unloading adapters is the agent's job (it runs beside vLLM and owns the files).
 */
@Injectable()
export class VllmClient {
  private readonly timeoutMs: number;

  constructor(config: Config, private readonly http: OpenAIHttpClient) {
    this.timeoutMs = config.env.AGENT_TIMEOUT_MS;
  }

  /** One greedy chat completion with log-probabilities, so that a tiny effect still shows. */
  async probe(vllmUrl: string, model: string, prompt: string): Promise<ProbeAnswer> {
    // A non-2xx answer throws an UpstreamError naming the status and the server's message.
    const { body } = await this.http.json<{
      choices: { message: { content: string | null }; logprobs?: { content?: { top_logprobs?: { token: string; logprob: number }[] }[] } | null }[];
    }>({
      url: `${vllmUrl.replace(/\/+$/, '')}/v1/chat/completions`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: 32, logprobs: true, top_logprobs: 5 }),
      timeoutMs: this.timeoutMs,
    });
    const choice = body.choices[0];
    const first = choice?.logprobs?.content?.[0]?.top_logprobs;
    return { content: choice?.message.content ?? '', topLogprobs: first ? first.map((t) => ({ token: t.token, logprob: t.logprob })) : null };
  }
}

/** Identical text and (where both have them) identical log-probabilities: the adapter changed nothing. */
export function sameAnswer(a: ProbeAnswer, b: ProbeAnswer): boolean {
  if (a.content !== b.content) return false;
  if (!a.topLogprobs || !b.topLogprobs) return true;
  if (a.topLogprobs.length !== b.topLogprobs.length) return false;
  return a.topLogprobs.every((t, i) => t.token === b.topLogprobs![i].token && Math.abs(t.logprob - b.topLogprobs![i].logprob) < 1e-9);
}
