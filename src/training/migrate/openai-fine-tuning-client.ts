import type { Readable } from 'node:stream';
import { DomainError, notFound } from '../../common/domain-error';
import { idleGuard } from '../../common/idle-guard';
import { OpenAIHttp, UpstreamError, type UpstreamRequest } from '../../serving/openai-http';

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

/** What a call reads, for messages and 404s: `fine-tuning jobs`, `fine-tuning job ftjob-x`, `file file-x`. */
interface Subject {
  noun: string;
  id?: string;
}

const subjectText = (s: Subject) => (s.id === undefined ? s.noun : `${s.noun} ${s.id}`);

/**
 * OpenAI's Files and Fine-tuning API, read-only: what a migration needs. The base URL is the operator's
 * (OPENAI_BASE_URL), never a tenant's; the tenant's key is used for these calls only and never kept or logged.
 * OpenAI's errors become ours: a refused key names `api_key`, a missing object is a 404, the rest is a 503.
 *
 * Calls go through the process's one OpenAIHttp (its sockets, its address guard, its timeouts and its error
 * envelope parsing). JSON answers are read whole under the transport's cap (UPSTREAM_MAX_RESPONSE_BYTES: a page of
 * 20 jobs is a few kilobytes); a file's content is handed on as a stream, which the dataset ingest caps itself.
 */
export class OpenAIFineTuningClient {
  private readonly baseUrl: string;

  constructor(private readonly http: OpenAIHttp, baseUrl: string, private readonly apiKey: string, private readonly timeoutMs: number) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async listJobs(): Promise<OpenAIJob[]> {
    const jobs: OpenAIJob[] = [];
    let after: string | null = null;
    for (;;) {
      const path: string = `/fine_tuning/jobs?limit=20${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const page: { data: OpenAIJob[]; has_more: boolean } = await this.getJson(path, { noun: 'fine-tuning jobs' });
      if (!Array.isArray(page?.data)) throw new DomainError('service_unavailable', 'OpenAI answered fine-tuning jobs with no list of jobs');
      jobs.push(...page.data);
      if (!page.has_more || page.data.length === 0 || jobs.length >= MAX_JOBS) return jobs.slice(0, MAX_JOBS);
      after = page.data[page.data.length - 1].id;
    }
  }

  retrieveJob(id: string): Promise<OpenAIJob> {
    return this.getJson<OpenAIJob>(`/fine_tuning/jobs/${encodeURIComponent(id)}`, { noun: 'fine-tuning job', id });
  }

  retrieveFile(id: string): Promise<OpenAIFile> {
    return this.getJson<OpenAIFile>(`/files/${encodeURIComponent(id)}`, { noun: 'file', id });
  }

  /**
   * The file's bytes as they arrive, handed to `use` and closed when it is done, however it ends: a reader that
   * fails or stops early (a refused name, a full quota, a bad line) does not leave the download paused with its
   * socket open. The time limit is to the answer's headers; the body then streams for as long as it takes (a large
   * file) but may not go quiet for that long (idleGuard), and the ingest it flows into enforces its own size limit.
   */
  async readFileContent<T>(id: string, use: (content: Readable) => Promise<T>): Promise<T> {
    let answer: Readable;
    try {
      answer = await this.http.openOk(this.request(`/files/${encodeURIComponent(id)}/content`));
    } catch (err) {
      throw this.domainError(err, { noun: 'file', id });
    }
    const content = idleGuard(answer, this.timeoutMs, () => new DomainError('service_unavailable', `OpenAI stopped sending file ${id}: nothing for ${this.timeoutMs} ms`));
    try {
      return await use(content);
    } finally {
      // A no-op once it was read to the end.
      content.destroy();
    }
  }

  private async getJson<T>(path: string, subject: Subject): Promise<T> {
    try {
      return (await this.http.json<T>(this.request(path))).body;
    } catch (err) {
      throw this.domainError(err, subject);
    }
  }

  private request(path: string): UpstreamRequest {
    return { url: `${this.baseUrl}${path}`, headers: { authorization: `Bearer ${this.apiKey}` }, timeoutMs: this.timeoutMs };
  }

  /**
   * The transport's failure as ours. OpenAI's own error message is not passed on (a refused key's message quotes
   * part of the key), only its code.
   */
  private domainError(err: unknown, subject: Subject): Error {
    if (!(err instanceof UpstreamError)) return err as Error;
    const what = subjectText(subject);
    if (err.kind === 'status') {
      const code = err.envelope?.code ?? null;
      if (err.status === 401) return new DomainError('invalid_request', `OpenAI refused the key (${code ?? 'unauthorized'})`, 'api_key');
      if (err.status === 404) return subject.id === undefined ? notFound('OpenAI resource', what) : notFound(`OpenAI ${subject.noun}`, subject.id);
      return new DomainError('service_unavailable', `OpenAI answered ${err.status} for ${what}${code !== null ? ` (${code})` : ''}`);
    }
    const why: Record<Exclude<UpstreamError['kind'], 'status'>, string> = {
      connect: 'connection failed',
      timeout: 'timed out',
      // The guard's reason names a class of address, never the address: OPENAI_BASE_URL is the operator's anyway.
      refused: `OPENAI_BASE_URL is refused (${err.cause instanceof Error ? err.cause.message : err.message})`,
      too_large: 'the answer was too large',
      invalid: 'the answer could not be read',
      aborted: 'the request was aborted',
    };
    return new DomainError('service_unavailable', `Could not reach OpenAI for ${what}: ${why[err.kind]}`, null, { cause: err });
  }
}
