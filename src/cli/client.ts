import { CliError, EXIT } from './exit-codes';

export interface ClientOptions {
  url: string;
  apiKey: string | undefined;
  timeoutMs?: number;
}

interface ErrorEnvelope {
  error?: { message?: string; code?: string | null; param?: string | null };
}

/** The REST API over fetch, with every failure turned into a CliError carrying its documented exit code. */
export class ApiClient {
  readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.url.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}), ...extra };
  }

  async json<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await this.send(method, route, {
      headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await res.json()) as T;
  }

  /** A raw request; non-2xx answers are thrown as CliError. */
  async send(method: string, route: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/v1${route}`, { method, ...init, signal: init.signal ?? (this.opts.timeoutMs ? AbortSignal.timeout(this.opts.timeoutMs) : undefined) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      throw new CliError(`cannot reach loraplane at ${this.base}: ${e.cause?.code ?? e.cause?.message ?? e.message}`, EXIT.unreachable);
    }
    if (res.ok) return res;
    const text = await res.text();
    let envelope: ErrorEnvelope = {};
    try {
      envelope = JSON.parse(text) as ErrorEnvelope;
    } catch {
      // not JSON (a proxy's page): report the status
    }
    const e = envelope.error ?? {};
    const message = `${method} ${route}: ${res.status} ${e.message ?? text.slice(0, 200)}${e.param ? ` (param: ${e.param})` : ''}`;
    const code = res.status === 401 || res.status === 403 ? EXIT.unauthorized : e.code === 'gate_not_met' ? EXIT.gateNotMet : res.status < 500 ? EXIT.badInput : EXIT.error;
    throw new CliError(message, code, envelope);
  }
}
