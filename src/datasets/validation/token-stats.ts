/** Upper bounds of the example-length histogram, in tokens; the last bucket is everything above. */
export const HISTOGRAM_BOUNDS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072] as const;

export interface TokenStatsJson {
  /** o200k_harmony tokens of every example as harmony renders it. */
  total: number;
  per_role: Record<string, number>;
  min_example: number;
  max_example: number;
  /** Line of the longest example: the one a job for a short-context model would refuse. */
  max_example_line: number | null;
  mean_example: number;
  /** `<=N` buckets of HISTOGRAM_BOUNDS plus `>131072`. */
  histogram: Record<string, number>;
  /** Tokens a job trains on per epoch is `total`; n epochs train n times that (OpenAI's trained_tokens). */
  estimated_trained_tokens: Record<string, number>;
  tokenizer: 'o200k_harmony';
}

/** Counters only, so a file of any size adds a few hundred bytes of state. */
export class TokenStats {
  private total = 0;
  private examples = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = 0;
  private maxLine: number | null = null;
  private readonly perRole: Record<string, number> = {};
  private readonly buckets = new Array<number>(HISTOGRAM_BOUNDS.length + 1).fill(0);

  add(line: number, perRole: { role: string; tokens: number }[]): number {
    let n = 0;
    for (const { role, tokens } of perRole) {
      this.perRole[role] = (this.perRole[role] ?? 0) + tokens;
      n += tokens;
    }
    this.total += n;
    this.examples++;
    if (n < this.min) this.min = n;
    if (n > this.max) {
      this.max = n;
      this.maxLine = line;
    }
    const i = HISTOGRAM_BOUNDS.findIndex((b) => n <= b);
    this.buckets[i === -1 ? HISTOGRAM_BOUNDS.length : i]++;
    return n;
  }

  toJSON(): TokenStatsJson {
    const histogram: Record<string, number> = {};
    HISTOGRAM_BOUNDS.forEach((b, i) => (histogram[`<=${b}`] = this.buckets[i]));
    histogram[`>${HISTOGRAM_BOUNDS[HISTOGRAM_BOUNDS.length - 1]}`] = this.buckets[HISTOGRAM_BOUNDS.length];
    return {
      total: this.total,
      per_role: { ...this.perRole },
      min_example: this.examples === 0 ? 0 : this.min,
      max_example: this.max,
      max_example_line: this.maxLine,
      mean_example: this.examples === 0 ? 0 : Math.round(this.total / this.examples),
      histogram,
      estimated_trained_tokens: estimateTrainedTokens(this.total),
      tokenizer: 'o200k_harmony',
    };
  }
}

/** Estimated trained tokens for 1..5 epochs; `n_epochs` of a job multiplies the per-epoch total. */
export function estimateTrainedTokens(perEpoch: number, epochs: number[] = [1, 2, 3, 4, 5]): Record<string, number> {
  return Object.fromEntries(epochs.map((n) => [String(n), perEpoch * n]));
}
