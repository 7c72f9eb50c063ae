import { Injectable } from '@nestjs/common';
import { Readable } from 'node:stream';
import { DomainError, notFound } from '../common/domain-error';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { ObjectStore } from '../storage/object-store';
import { jsonlRecords } from './benchmarks/record-readers';
import { EvalItem } from './eval-item';

/**
 * The items of an eval-format dataset, read back from S3 as they stream. The dataset was validated line by line at
 * upload (eval format: `prompt` with `reference`, or `choices` and `answer`), so lines parse; blank lines are skipped
 * as the validator skips them, keeping item indexes equal to the validator's example order. A suite holds at most
 * EVAL_SUITE_MAX_ITEMS items: API requests only stream them; the worker's run holds that many at most.
 */
@Injectable()
export class SuiteItems {
  constructor(private readonly prisma: PrismaService, private readonly store: ObjectStore, private readonly config: Config) {}

  async *stream(projectId: string, datasetId: string): AsyncGenerator<EvalItem> {
    const dataset = await this.prisma.dataset.findFirst({ where: { id: datasetId, projectId } });
    if (!dataset) throw notFound('file', datasetId, 'dataset_id');
    const body = (await this.store.get(dataset.s3Key)) as Readable | null;
    if (!body) throw new DomainError('internal', `The content of ${datasetId} is missing from object storage`);
    const cap = this.config.env.EVAL_SUITE_MAX_ITEMS;
    let n = 0;
    try {
      for await (const r of jsonlRecords(body, this.config.env.MAX_LINE_BYTES)) {
        if (++n > cap) throw new DomainError('invalid_request', `File ${datasetId} has more than ${cap} items, the most a suite may hold (EVAL_SUITE_MAX_ITEMS)`, 'dataset_id');
        yield r.value as EvalItem;
      }
    } finally {
      body.destroy();
    }
  }

  /** Every item, for the worker's run (capped like the stream). */
  async load(projectId: string, datasetId: string): Promise<EvalItem[]> {
    const items: EvalItem[] = [];
    for await (const item of this.stream(projectId, datasetId)) items.push(item);
    return items;
  }
}
