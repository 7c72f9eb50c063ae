import { seededRandom } from '../../common/seeded-random';
/**
 * A seeded uniform sample of `limit` records from a stream of unknown length (reservoir sampling, Algorithm R): one
 * pass, `limit` records held. The same file, limit and seed give the same sample, kept in file order so the suite's
 * items read like the benchmark's.
 */
export async function* sampleOf<T>(records: AsyncIterable<T>, limit: number, seed: number): AsyncGenerator<T> {
  const random = seededRandom(seed);
  const kept: { index: number; value: T }[] = [];
  let seen = 0;
  for await (const value of records) {
    if (kept.length < limit) kept.push({ index: seen, value });
    else {
      const j = Math.floor(random() * (seen + 1));
      if (j < limit) kept[j] = { index: seen, value };
    }
    seen++;
  }
  kept.sort((a, b) => a.index - b.index);
  for (const k of kept) yield k.value;
}

