import { Injectable } from '@nestjs/common';
import { refusedCause, TargetGuard } from '../common/net/target-guard';
import { Config } from '../config/config';

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

  constructor(config: Config, private readonly guard: TargetGuard) {
    this.timeoutMs = config.env.AGENT_TIMEOUT_MS;
  }

  async putDesired(agentUrl: string, token: string, doc: AgentDesired): Promise<void> {
    await this.call(agentUrl, token, 'PUT', '/v1/desired', doc);
  }

  async status(agentUrl: string, token: string): Promise<AgentReport> {
    return (await this.call(agentUrl, token, 'GET', '/v1/status')) as AgentReport;
  }

  private async call(agentUrl: string, token: string, method: string, route: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${agentUrl.replace(/\/+$/, '')}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
        dispatcher: this.guard.dispatcher,
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = refusedCause(err)?.message ?? (e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (e.cause?.code ?? e.message));
      throw new AgentCallFailed(`agent ${method} ${route}: ${why}`, null);
    }
    const text = await res.text();
    if (!res.ok) {
      // Only the agent's own error envelope is shown (replica errors reach the tenant): never another service's body.
      let message = 'the answer is not an agent error object';
      try {
        message = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? message).slice(0, 300);
      } catch {
        // not JSON: the generic sentence above
      }
      throw new AgentCallFailed(`agent ${method} ${route} answered ${res.status}: ${message}`, res.status);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new AgentCallFailed(`agent ${method} ${route} answered with a body that is not JSON`, res.status);
    }
  }
}
