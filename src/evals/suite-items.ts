import { Injectable } from '@nestjs/common';
import { DomainError, notFound } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import { ObjectStore } from '../storage/object-store';
import { EvalItem } from './eval-item';

/**
 * The items of an eval-format dataset, read back from S3. The dataset was validated line by line at upload (eval
 * format: `prompt` with `reference`, or `choices` and `answer`), so lines parse; blank lines are skipped as the
 * validator skips them, keeping item indexes equal to the validator's example order.
 */
@Injectable()
export class SuiteItems {
  constructor(private readonly prisma: PrismaService, private readonly store: ObjectStore) {}

  async load(projectId: string, datasetId: string): Promise<EvalItem[]> {
    const dataset = await this.prisma.dataset.findFirst({ where: { id: datasetId, projectId } });
    if (!dataset) throw notFound('file', datasetId, 'dataset_id');
    const body = await this.store.get(dataset.s3Key);
    if (!body) throw new DomainError('internal', `The content of ${datasetId} is missing from object storage`);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as EvalItem);
  }
}
