import { Injectable } from '@nestjs/common';
import { Config } from '../config/config';
import { UpstreamError } from './openai-http';
import { OpenAIHttpClient } from './openai-http.client';

/** The desired-state document of adapters/agent (see adapters/README.md). */
export interface AgentDesired {
  generation: number;
  adapters: { name: string; version: string; files: { name: string; url: string; sha256: string; bytes: number }[] }[];
}

export interface AgentReport {
  generation: number;
  last_sync_at: string | null;
  vllm: { reachable: boolean | null; error: string | null; loaded: { name: string; root: string }[] };
  adapters: { name: string; version: string; state: 'pending' | 'downloading' | 'ready' | 'loaded' | 'error'; error?: string }[];
}

/** The agent did not answer, or answered with something other than success. The message never holds the token. */
export class AgentCallFailed extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
    this.name = 'AgentCallFailed';
  }
}

/** Talks to the adapter agent beside a vLLM replica (adapters/agent/agent.js), authenticated by its token. */
@Injectable()
export class AgentClient {
  private readonly timeoutMs: number;

  constructor(config: Config, private readonly http: OpenAIHttpClient) {
    this.timeoutMs = config.env.AGENT_TIMEOUT_MS;
  }

  async putDesired(agentUrl: string, token: string, doc: AgentDesired): Promise<void> {
    await this.call(agentUrl, token, 'PUT', '/v1/desired', doc);
  }

  async status(agentUrl: string, token: string): Promise<AgentReport> {
    return (await this.call(agentUrl, token, 'GET', '/v1/status')) as AgentReport;
  }

  private async call(agentUrl: string, token: string, method: 'GET' | 'PUT', route: string, body?: unknown): Promise<unknown> {
    try {
      const res = await this.http.json<unknown>({
        url: `${agentUrl.replace(/\/+$/, '')}${route}`,
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: this.timeoutMs,
      });
      return res.body;
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      const what = err.kind === 'status' ? `answered ${err.status}: ${err.envelope?.message}` : err.message;
      throw new AgentCallFailed(`agent ${method} ${route}: ${what}`, err.status);
    }
  }
}
