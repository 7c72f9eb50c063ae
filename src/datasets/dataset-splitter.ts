import { seededRandom } from '../common/seeded-random';
import { Injectable } from '@nestjs/common';
import { PassThrough } from 'node:stream';
import { DomainError, invalid } from '../common/domain-error';
import { Config } from '../config/config';
import { Dataset } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { DatasetsService, DatasetStats, FilePurpose } from './datasets.service';
import { LineSplitter } from './validation/line-splitter';


/**
 * Train/validation split of a ready dataset into two new datasets. Exactly round(n * fraction) examples go to the
 * validation file, chosen by selection sampling (Knuth's algorithm S) from a seeded PRNG: one streaming pass, no
 * list of indices in memory, original order kept in both files. Both outputs go through the normal ingest (hash,
 * validation, statistics, content addressing), so splitting twice with the same seed returns the same two datasets.
 */
@Injectable()
export class DatasetSplitter {
  constructor(private readonly datasets: DatasetsService, private readonly store: ObjectStore, private readonly config: Config) {}

  async split(projectId: string, id: string, fraction: number, seed: number): Promise<{ train: Dataset; validation: Dataset }> {
    const source = await this.datasets.get(projectId, id);
    if (source.status !== 'ready') throw new DomainError('invalid_state', `Dataset ${id} is ${source.status}; only a ready dataset can be split`, 'dataset_id');
    const n = (source.stats as unknown as DatasetStats | null)?.examples ?? 0;
    const k = Math.round(n * fraction);
    if (k < 1 || n - k < 1) {
      throw invalid(`A validation_fraction of ${fraction} of ${n} examples leaves an empty side; choose a fraction between ${1 / n} and ${1 - 1 / n}`, 'validation_fraction');
    }
    const body = await this.store.get(source.s3Key);
    if (!body) throw new DomainError('internal', `The content of ${id} is missing from object storage`);

    const trainOut = new PassThrough();
    const validOut = new PassThrough();
    const random = seededRandom(seed);
    let seen = 0;
    let picked = 0;
    const pending: [PassThrough, string][] = [];
    const splitter = new LineSplitter(this.config.env.MAX_LINE_BYTES, (e) => {
      if (e.kind !== 'line' || e.text.trim() === '') return; // the source is ready: no bad lines, blank ones dropped
      const toValidation = random() * (n - seen) < k - picked;
      seen++;
      if (toValidation) picked++;
      pending.push([toValidation ? validOut : trainOut, e.text + '\n']);
    });
    const name = source.filename.replace(/\.jsonl$/i, '');
    const purpose = source.purpose as FilePurpose;
    const base = this.datasets.ingestOptions(source.format as 'chat' | 'dpo' | 'eval');
    // The validation side may be smaller than a training file has to be.
    const stagedTrain = this.datasets.stage(projectId, `${name}.train.jsonl`, trainOut, base);
    const stagedValid = this.datasets.stage(projectId, `${name}.validation.jsonl`, validOut, { ...base, minExamples: 1 });
    const feeding = (async () => {
      for await (const chunk of body) {
        splitter.push(chunk as Buffer);
        await drain(pending);
      }
      splitter.end();
      await drain(pending);
      trainOut.end();
      validOut.end();
    })().catch((err: unknown) => {
      trainOut.destroy(err as Error);
      validOut.destroy(err as Error);
      throw err;
    });
    const [, train, validation] = await Promise.allSettled([feeding, stagedTrain, stagedValid]);
    const failed = [train, validation].find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      body.destroy();
      trainOut.destroy();
      validOut.destroy();
      for (const r of [train, validation]) if (r.status === 'fulfilled') await this.datasets.discard(r.value);
      throw failed.reason;
    }
    const t = (train as PromiseFulfilledResult<Awaited<typeof stagedTrain>>).value;
    const v = (validation as PromiseFulfilledResult<Awaited<typeof stagedValid>>).value;
    for (const s of [t, v]) {
      if (!s.report.valid) {
        await Promise.all([this.datasets.discard(t), this.datasets.discard(v)]);
        throw invalid(`The ${s === t ? 'training' : 'validation'} side would have ${s.report.examples} examples: ${s.report.errors[0]?.message}`, 'validation_fraction');
      }
    }
    return { train: await this.datasets.register(t, purpose), validation: await this.datasets.register(v, purpose) };
  }
}

async function drain(pending: [PassThrough, string][]) {
  for (const [out, text] of pending.splice(0)) {
    if (!out.write(text)) await new Promise((r) => (out.once('drain', r), out.once('close', r)));
  }
}
