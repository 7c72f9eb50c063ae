import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DomainError, notFound } from '../../common/domain-error';

/** A fine-tuning job as OpenAI lists it: the fields a migration reads. */
export interface OpenAIJob {
  id: string;
  model: string;
  status: string;
  fine_tuned_model: string | null;
  training_file: string;
  validation_file: string | null;
  user_provided_suffix?: string | null;
  suffix?: string | null;
  seed?: number | null;
  metadata?: Record<string, string> | null;
  hyperparameters?: Record<string, unknown> | null;
  method?: { type: 'supervised' | 'dpo' | 'reinforcement'; supervised?: { hyperparameters?: Record<string, unknown> }; dpo?: { hyperparameters?: Record<string, unknown> } } | null;
  created_at: number;
}

export interface OpenAIFile {
  id: string;
  filename: string;
  bytes: number;
  purpose: string;
}

/** At most this many jobs are read from an account (the SDK's pages of 20, followed with `after`). */
const MAX_JOBS = 500;

/**
 * OpenAI's Files and Fine-tuning API, read-only: what a migration needs. The base URL is the operator's
 * (OPENAI_BASE_URL), never a tenant's; the tenant's key is used for these calls only and never kept or logged.
 * OpenAI's errors become ours: a refused key names `api_key`, a missing object is a 404, the rest is a 503.
 */
export class OpenAIFineTuningClient {
  constructor(private readonly baseUrl: string, private readonly apiKey: string, private readonly timeoutMs: number) {}

  async listJobs(): Promise<OpenAIJob[]> {
    const jobs: OpenAIJob[] = [];
    let after: string | null = null;
    for (;;) {
      const page = (await (await this.get(`/fine_tuning/jobs?limit=20${after ? `&after=${encodeURIComponent(after)}` : ''}`, 'fine-tuning jobs')).json()) as { data: OpenAIJob[]; has_more: boolean };
      jobs.push(...page.data);
      if (!page.has_more || page.data.length === 0 || jobs.length >= MAX_JOBS) return jobs.slice(0, MAX_JOBS);
      after = page.data[page.data.length - 1].id;
    }
  }

  async retrieveJob(id: string): Promise<OpenAIJob> {
    return (await (await this.get(`/fine_tuning/jobs/${encodeURIComponent(id)}`, `fine-tuning job ${id}`)).json()) as OpenAIJob;
  }

  async retrieveFile(id: string): Promise<OpenAIFile> {
    return (await (await this.get(`/files/${encodeURIComponent(id)}`, `file ${id}`)).json()) as OpenAIFile;
  }

  /** The file's bytes as they arrive. */
  async fileContent(id: string): Promise<Readable> {
    const res = await this.get(`/files/${encodeURIComponent(id)}/content`, `file ${id}`, 0);
    if (!res.body) throw new DomainError('service_unavailable', `OpenAI sent no content for file ${id}`);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }

  /** `timeoutMs` 0: no overall limit (a large file streams for as long as it takes). */
  private async get(path: string, what: string, timeoutMs = this.timeoutMs): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { headers: { authorization: `Bearer ${this.apiKey}` }, signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined });
    } catch (err) {
      throw new DomainError('service_unavailable', `Could not reach OpenAI for ${what}: ${(err as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed'}`, null, { cause: err });
    }
    if (res.ok) return res;
    const body = (await res.json().catch(() => null)) as { error?: { message?: string; code?: string } } | null;
    const code = body?.error?.code ?? null;
    if (res.status === 401) throw new DomainError('invalid_request', `OpenAI refused the key (${code ?? 'unauthorized'})`, 'api_key');
    if (res.status === 404) throw notFound(`OpenAI ${what.split(' ')[0]}`, what.split(' ').slice(1).join(' ') || what);
    throw new DomainError('service_unavailable', `OpenAI answered ${res.status} for ${what}${code ? ` (${code})` : ''}`);
  }
}
