import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import Redis from 'ioredis';
import { Config } from '../config/config';
import { redisOptions } from '../queue/redis-options';
import { bucketOf, percentile } from './latency-histogram';

/** One answered request of an alias or version, as the gateway saw it. */
export interface AdapterSample {
  poolId: string;
  adapter: string;
  version: number;
  replica: string;
  latencyMs: number;
  /** Streaming requests only. */
  ttftMs: number | null;
  error: boolean;
}

export interface Figures {
  requests: number;
  errors: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
}

export interface VersionFigures extends Figures {
  version: number;
  replicas: (Figures & { replica: string })[];
}

const FLUSH_MS = 2000;
const KEEP_MINUTES = 16;
export const MAX_WINDOW_MINUTES = 15;

/**
 * Per-adapter figures vLLM cannot give (it does not say which adapter served a request): requests, errors and
 * latency/TTFT percentiles per version and replica over the last minutes. Each gateway replica counts in memory and
 * adds its counts every 2 s to one Redis hash per (pool, adapter, minute), field by field (HINCRBY), so the api role
 * reads the sum of every gateway; hashes expire after 16 minutes. Latencies are log-scale bucket counts
 * (latency-histogram.ts), which add up across gateways where percentiles would not.
 */
@Injectable()
export class AdapterStats implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(AdapterStats.name);
  private readonly redis: Redis;
  private readonly prefix: string;
  /** hash key -> field -> increment */
  private pending = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(config: Config) {
    this.redis = new Redis({ ...redisOptions(config.env.REDIS_URL), lazyConnect: true, maxRetriesPerRequest: 2 });
    this.prefix = `${config.env.QUEUE_PREFIX}:adapterstats`;
  }

  onModuleInit() {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  async onModuleDestroy() {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  record(s: AdapterSample, at = Date.now()): void {
    const key = this.key(s.poolId, s.adapter, Math.floor(at / 60_000));
    let fields = this.pending.get(key);
    if (!fields) this.pending.set(key, (fields = new Map()));
    const f = `${s.version}|${s.replica}|`;
    const add = (name: string) => fields.set(name, (fields.get(name) ?? 0) + 1);
    add(`${f}r`);
    if (s.error) add(`${f}e`);
    else {
      add(`${f}l${bucketOf(s.latencyMs)}`);
      if (s.ttftMs !== null) add(`${f}t${bucketOf(s.ttftMs)}`);
    }
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const pipeline = this.redis.pipeline();
    for (const [key, fields] of batch) {
      for (const [field, n] of fields) pipeline.hincrby(key, field, n);
      pipeline.expire(key, KEEP_MINUTES * 60);
    }
    try {
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    } catch (err) {
      // Figures for a dashboard: a Redis hiccup costs one flush of them, not a retry loop on the hot path's memory.
      this.logger.warn({ err }, 'adapter figures flush failed; this batch is dropped');
    }
  }

  /** Figures per version (and per replica under it) over the last `minutes` minutes, the current one included. */
  async window(poolId: string, adapter: string, minutes: number, now = Date.now()): Promise<VersionFigures[]> {
    const last = Math.floor(now / 60_000);
    const pipeline = this.redis.pipeline();
    for (let m = last - minutes + 1; m <= last; m++) pipeline.hgetall(this.key(poolId, adapter, m));
    const results = (await pipeline.exec()) ?? [];
    const acc = new Map<string, Acc>(); // "version|replica"
    for (const [err, hash] of results) {
      if (err) throw err;
      for (const [field, value] of Object.entries(hash as Record<string, string>)) {
        const [version, replica, what] = field.split('|');
        const a = accOf(acc, `${version}|${replica}`);
        const n = Number(value);
        if (what === 'r') a.requests += n;
        else if (what === 'e') a.errors += n;
        else addTo(what[0] === 'l' ? a.latency : a.ttft, Number(what.slice(1)), n);
      }
    }
    const versions = new Map<number, { total: Acc; replicas: (Acc & { replica: string })[] }>();
    for (const [id, a] of acc) {
      const [version, replica] = id.split('|');
      let v = versions.get(Number(version));
      if (!v) versions.set(Number(version), (v = { total: newAcc(), replicas: [] }));
      v.replicas.push({ ...a, replica });
      v.total.requests += a.requests;
      v.total.errors += a.errors;
      for (const [b, n] of a.latency) addTo(v.total.latency, b, n);
      for (const [b, n] of a.ttft) addTo(v.total.ttft, b, n);
    }
    return [...versions.entries()]
      .sort(([x], [y]) => x - y)
      .map(([version, v]) => ({
        version,
        ...figures(v.total),
        replicas: v.replicas.sort((x, y) => x.replica.localeCompare(y.replica)).map((r) => ({ replica: r.replica, ...figures(r) })),
      }));
  }

  private key(poolId: string, adapter: string, minute: number) {
    return `${this.prefix}:${poolId}:${adapter}:${minute}`;
  }
}

interface Acc {
  requests: number;
  errors: number;
  latency: Map<number, number>;
  ttft: Map<number, number>;
}

const newAcc = (): Acc => ({ requests: 0, errors: 0, latency: new Map(), ttft: new Map() });
function accOf(m: Map<string, Acc>, id: string): Acc {
  let a = m.get(id);
  if (!a) m.set(id, (a = newAcc()));
  return a;
}
const addTo = (m: Map<number, number>, bucket: number, n: number) => m.set(bucket, (m.get(bucket) ?? 0) + n);
const figures = (a: Acc): Figures => ({
  requests: a.requests,
  errors: a.errors,
  latency_p50_ms: percentile(a.latency, 50),
  latency_p95_ms: percentile(a.latency, 95),
  ttft_p50_ms: percentile(a.ttft, 50),
  ttft_p95_ms: percentile(a.ttft, 95),
});
