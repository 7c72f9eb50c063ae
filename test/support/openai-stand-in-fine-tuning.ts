import http from 'node:http';

/**
 * The stand-in's Files and Fine-tuning jobs routes, in OpenAI's exact shapes (reference/openai-fine-tuning.md and
 * the openapi spec): `GET /v1/files` (`?purpose&limit&after&order`), `GET /v1/files/{id}`, `GET /v1/files/{id}/content`
 * (the raw bytes), `GET /v1/fine_tuning/jobs` (`?after&limit`, newest first, `has_more`), `GET
 * /v1/fine_tuning/jobs/{id}`. What the account holds is the test's business (`seedFile`, `seedJob`).
 */
export interface StandInFile {
  id: string;
  filename: string;
  purpose: string;
  content: string;
  created_at: number;
}

export interface StandInJob {
  id: string;
  model: string;
  training_file: string;
  validation_file: string | null;
  fine_tuned_model: string | null;
  status: 'validating_files' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  method: { type: 'supervised' | 'dpo'; supervised?: { hyperparameters: Record<string, unknown> }; dpo?: { hyperparameters: Record<string, unknown> } };
  created_at: number;
  finished_at: number | null;
  trained_tokens: number | null;
}

export class FineTuningAccount {
  readonly files = new Map<string, StandInFile>();
  readonly jobs: StandInJob[] = [];

  seedFile(f: Omit<StandInFile, 'created_at'> & { created_at?: number }): StandInFile {
    const file = { created_at: Math.floor(Date.now() / 1000), ...f };
    this.files.set(file.id, file);
    return file;
  }

  seedJob(j: Omit<StandInJob, 'created_at' | 'finished_at' | 'trained_tokens'> & Partial<StandInJob>): StandInJob {
    const job: StandInJob = { created_at: Math.floor(Date.now() / 1000) + this.jobs.length, finished_at: null, trained_tokens: null, ...j };
    this.jobs.push(job);
    return job;
  }

  /** True when the route is one of these (answered), false to let the caller answer. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, notFound: (message: string, param: string | null) => void): boolean {
    if (req.method !== 'GET') return false;
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    let m: RegExpExecArray | null;
    if (url.pathname === '/v1/files') {
      const purpose = url.searchParams.get('purpose');
      const order = url.searchParams.get('order') === 'asc' ? 1 : -1;
      const list = [...this.files.values()].filter((f) => !purpose || f.purpose === purpose).sort((a, b) => order * (a.created_at - b.created_at) || a.id.localeCompare(b.id));
      json(page(list, url, 10_000).map((f) => fileObject(f)));
      return true;
    }
    if ((m = /^\/v1\/files\/([^/]+)(\/content)?$/.exec(url.pathname))) {
      const file = this.files.get(decodeURIComponent(m[1]));
      if (!file) {
        notFound(`No such File object: ${m[1]}`, 'id');
        return true;
      }
      if (m[2]) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename="${file.filename}"` });
        res.end(file.content);
      } else json(fileObject(file));
      return true;
    }
    if (url.pathname === '/v1/fine_tuning/jobs') {
      const newestFirst = [...this.jobs].sort((a, b) => b.created_at - a.created_at);
      json(page(newestFirst, url, 20).map((j) => jobObject(j)));
      return true;
    }
    if ((m = /^\/v1\/fine_tuning\/jobs\/([^/]+)$/.exec(url.pathname))) {
      const job = this.jobs.find((j) => j.id === decodeURIComponent(m![1]));
      if (!job) notFound(`Could not find fine tune: ${m[1]}`, 'fine_tune_id');
      else json(jobObject(job));
      return true;
    }
    return false;
  }
}

/** A page as OpenAI lists it: after the id `after`, `limit` items, `has_more`, `first_id`/`last_id`. */
function page<T extends { id: string }>(all: T[], url: URL, defaultLimit: number) {
  const limit = Math.min(Number(url.searchParams.get('limit') ?? defaultLimit), 10_000);
  const after = url.searchParams.get('after');
  const start = after ? all.findIndex((x) => x.id === after) + 1 : 0;
  const data = all.slice(start, start + limit);
  return {
    data,
    map<U>(fn: (x: T) => U) {
      return { object: 'list', data: data.map(fn), first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: start + limit < all.length };
    },
  };
}

const fileObject = (f: StandInFile) => ({
  object: 'file',
  id: f.id,
  purpose: f.purpose,
  filename: f.filename,
  bytes: Buffer.byteLength(f.content),
  created_at: f.created_at,
  expires_at: null,
  status: 'processed',
  status_details: null,
});

function jobObject(j: StandInJob) {
  const hp = (j.method.type === 'dpo' ? j.method.dpo : j.method.supervised)?.hyperparameters ?? {};
  return {
    object: 'fine_tuning.job',
    id: j.id,
    model: j.model,
    created_at: j.created_at,
    finished_at: j.finished_at,
    fine_tuned_model: j.fine_tuned_model,
    organization_id: 'org-standin',
    result_files: [],
    status: j.status,
    validation_file: j.validation_file,
    training_file: j.training_file,
    hyperparameters: { n_epochs: hp.n_epochs ?? 'auto', batch_size: hp.batch_size ?? 'auto', learning_rate_multiplier: hp.learning_rate_multiplier ?? 'auto' },
    trained_tokens: j.trained_tokens,
    error: j.status === 'failed' ? { code: 'invalid_training_file', message: 'The training file is invalid.', param: 'training_file' } : null,
    user_provided_suffix: j.suffix,
    seed: j.seed,
    estimated_finish: null,
    integrations: [],
    metadata: j.metadata,
    method: j.method,
    usage_metrics: null,
    shared_with_openai: false,
  };
}
