import { Controller, Delete, Get, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { pageOf, pageQuery, toPage } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { DatasetSplitter } from './dataset-splitter';
import { DatasetsService, FILE_PURPOSES, FilePurpose } from './datasets.service';
import { readMultipart } from './multipart-upload';
import { datasetObject, toDatasetObject, toValidationObject, validationObject } from './datasets.views';
import { DATASET_FORMATS } from './validation/dataset-validator';
import { estimateTrainedTokens } from './validation/token-stats';
import { deletedOf } from '../common/http/deleted';

const uploadQuery = z.object({
  format: z.enum(DATASET_FORMATS).optional().describe('Declared format; every line must match it. Unset: detected.'),
  purpose: z.enum(FILE_PURPOSES).default('fine-tune'),
});
const validateQuery = uploadQuery.pick({ format: true });
const fileForm = z.object({ file: z.string().describe('The JSONL file (binary part)') });
const listQuery = pageQuery.extend({ order: z.enum(['asc', 'desc']).default('desc'), purpose: z.string().optional() });
const statsQuery = z.object({ n_epochs: z.coerce.number().int().min(1).max(100).default(1) });
const splitBody = z.object({
  validation_fraction: z.number().gt(0).lt(1),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
});
const datasetId = z.string().min(1);
const statsObject = z.object({
  object: z.literal('dataset.stats'),
  id: z.string(),
  n_epochs: z.number(),
  estimated_trained_tokens: z.number().nullable().describe('null until the tokens are counted'),
  stats: z.unknown(),
});
const splitObject = z.object({ object: z.literal('dataset.split'), source: z.string(), seed: z.number(), train: datasetObject, validation: datasetObject });
const deletedDataset = deletedOf('dataset');

/**
 * loraplane's native dataset API: the validation report and statistics, invalid datasets kept with their report, a
 * dry run that stores nothing, and seeded train/validation splits. Same rows and bytes as /v1/files.
 */
@Controller('v1/datasets')
export class DatasetsController {
  constructor(private readonly datasets: DatasetsService, private readonly splitter: DatasetSplitter) {}

  @Post()
  @HttpCode(200)
  @ApiDoc({ summary: 'Upload a dataset; an invalid one is kept as `invalid` with its report', tags: ['datasets'], multipartBody: fileForm, response: datasetObject })
  async upload(@ProjectId() projectId: string, @ZQuery(uploadQuery) q: z.infer<typeof uploadQuery>, @Req() req: Request) {
    const options = this.datasets.uploadOptions(q.format, req.headers['content-length']);
    const { file } = await readMultipart(
      req,
      'file',
      (filename, stream) => this.datasets.stage(projectId, filename, stream, options),
      (staged) => this.datasets.discard(staged),
    );
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'file'", 'file');
    return toDatasetObject(await this.datasets.register(file.result, q.purpose as FilePurpose));
  }

  @Post('validate')
  @HttpCode(200)
  @ApiDoc({ summary: 'Dry run: validate a file and compute its statistics; nothing is stored', tags: ['datasets'], multipartBody: fileForm, response: validationObject })
  async validate(@ZQuery(validateQuery) q: z.infer<typeof validateQuery>, @Req() req: Request) {
    const { file } = await readMultipart(req, 'file', (_filename, stream) => this.datasets.validate(stream, q.format), async () => undefined);
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'file'", 'file');
    return toValidationObject(file.result);
  }

  @Get()
  @ApiDoc({ summary: 'List datasets', tags: ['datasets'], response: pageOf(datasetObject) })
  async list(@ProjectId() projectId: string, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    return toPage(await this.datasets.list(projectId, q), q.limit, toDatasetObject);
  }

  @Get(':dataset_id')
  @ApiDoc({ summary: 'Retrieve a dataset with its validation report and statistics', tags: ['datasets'], response: datasetObject })
  async get(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string) {
    return toDatasetObject(await this.datasets.get(projectId, id));
  }

  @Get(':dataset_id/stats')
  @ApiDoc({ summary: 'Statistics, with the estimated trained tokens for n_epochs', tags: ['datasets'], response: statsObject })
  async stats(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string, @ZQuery(statsQuery) q: z.infer<typeof statsQuery>): Promise<z.infer<typeof statsObject>> {
    const d = await this.datasets.get(projectId, id);
    const stats = d.stats as { tokens?: { total: number } | null } | null;
    const total = stats?.tokens?.total;
    return {
      object: 'dataset.stats',
      id: d.id,
      n_epochs: q.n_epochs,
      estimated_trained_tokens: typeof total === 'number' ? estimateTrainedTokens(total, [q.n_epochs])[String(q.n_epochs)] : null,
      stats: d.stats,
    };
  }

  @Post(':dataset_id/split')
  @HttpCode(200)
  @ApiDoc({ summary: 'Split a ready dataset into two new datasets (train, validation) by seed', tags: ['datasets'], response: splitObject })
  async split(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string, @ZBody(splitBody) body: z.infer<typeof splitBody>): Promise<z.infer<typeof splitObject>> {
    const { train, validation } = await this.splitter.split(projectId, id, body.validation_fraction, body.seed);
    return { object: 'dataset.split', source: id, seed: body.seed, train: toDatasetObject(train), validation: toDatasetObject(validation) };
  }

  @Delete(':dataset_id')
  @ApiDoc({ summary: 'Delete a dataset (soft; refused while an active job uses it)', tags: ['datasets'], response: deletedDataset })
  async remove(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string): Promise<z.infer<typeof deletedDataset>> {
    await this.datasets.remove(projectId, id);
    return { id, object: 'dataset', deleted: true };
  }
}
