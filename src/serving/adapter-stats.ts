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

/** One version on one replica in one minute. */
interface Tally {
  requests: number;
  errors: number;
  /** latency bucket -> requests */
  latency: Map<number, number>;
  ttft: Map<number, number>;
}

/** pool id -> adapter -> version -> replica -> tally, for one minute. */
interface MinuteTallies {
  minute: number;
  pools: Map<string, Map<string, Map<number, Map<string, Tally>>>>;
}

const addOne = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);

/** The tally a sample adds to, made on first use (explicit lookups: this runs per request). */
function tallyOf(pools: MinuteTallies['pools'], s: AdapterSample): Tally {
  let adapters = pools.get(s.poolId);
  if (!adapters) pools.set(s.poolId, (adapters = new Map()));
  let versions = adapters.get(s.adapter);
  if (!versions) adapters.set(s.adapter, (versions = new Map()));
  let replicas = versions.get(s.version);
  if (!replicas) versions.set(s.version, (replicas = new Map()));
  let t = replicas.get(s.replica);
  if (!t) replicas.set(s.replica, (t = { requests: 0, errors: 0, latency: new Map(), ttft: new Map() }));
  return t;
}

/** One adapter's tallies as the fields of its Redis hash: `version|replica|r`, `...|e`, `...|l<bucket>`, `...|t<bucket>`. */
function* fieldsOf(versions: Map<number, Map<string, Tally>>): Generator<[string, number]> {
  for (const [version, replicas] of versions) {
    for (const [replica, t] of replicas) {
      const f = `${version}|${replica}|`;
      yield [`${f}r`, t.requests];
      if (t.errors > 0) yield [`${f}e`, t.errors];
      for (const [bucket, n] of t.latency) yield [`${f}l${bucket}`, n];
      for (const [bucket, n] of t.ttft) yield [`${f}t${bucket}`, n];
    }
  }
}

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
  /** This minute's counts; `record` runs per request, so it finds its tally by the strings it has (no key built). */
  private current: MinuteTallies = { minute: -1, pools: new Map() };
  /** Earlier minutes not yet flushed (a minute that ended between two flushes). */
  private ended: MinuteTallies[] = [];
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
    const minute = Math.floor(at / 60_000);
    if (minute !== this.current.minute) {
      if (this.current.pools.size > 0) this.ended.push(this.current);
      this.current = { minute, pools: new Map() };
    }
    const t = tallyOf(this.current.pools, s);
    t.requests += 1;
    if (s.error) t.errors += 1;
    else {
      addOne(t.latency, bucketOf(s.latencyMs));
      if (s.ttftMs !== null) addOne(t.ttft, bucketOf(s.ttftMs));
    }
  }

  async flush(): Promise<void> {
    const batch = this.current.pools.size > 0 ? [...this.ended, this.current] : this.ended;
    if (batch.length === 0) return;
    this.ended = [];
    this.current = { minute: this.current.minute, pools: new Map() };
    const pipeline = this.redis.pipeline();
    for (const { minute, pools } of batch) {
      for (const [poolId, adapters] of pools) {
        for (const [adapter, versions] of adapters) {
          const key = this.key(poolId, adapter, minute);
          for (const [field, n] of fieldsOf(versions)) pipeline.hincrby(key, field, n);
          pipeline.expire(key, KEEP_MINUTES * 60);
        }
      }
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
