import { Controller, Delete, Get, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { pageQuery, toPage } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { Dataset } from '../generated/prisma/client';
import { DatasetSplitter } from './dataset-splitter';
import { DatasetsService, FILE_PURPOSES, FilePurpose } from './datasets.service';
import { readMultipart } from './multipart-upload';
import { DATASET_FORMATS, ValidationReport } from './validation/dataset-validator';
import { estimateTrainedTokens } from './validation/token-stats';

const datasetObject = z.object({
  id: z.string(),
  object: z.literal('dataset'),
  filename: z.string(),
  purpose: z.string(),
  bytes: z.number(),
  sha256: z.string(),
  format: z.string(),
  status: z.enum(['ready', 'invalid']),
  created_at: z.number(),
  stats: z.unknown(),
  report: z.unknown(),
});

function toDatasetObject(d: Dataset): z.infer<typeof datasetObject> {
  return {
    id: d.id,
    object: 'dataset',
    filename: d.filename,
    purpose: d.purpose,
    bytes: Number(d.bytes),
    sha256: d.sha256,
    format: d.format,
    status: d.status,
    created_at: Math.floor(d.createdAt.getTime() / 1000),
    stats: d.stats,
    report: d.report,
  };
}

function toReportObject(r: { bytes: number; sha256: string; report: ValidationReport }) {
  const { report } = r;
  return {
    object: 'dataset.validation',
    valid: report.valid,
    format: report.format,
    bytes: r.bytes,
    sha256: r.sha256,
    error_count: report.errorCount,
    errors: report.errors,
    stats: { examples: report.examples, lines: report.lines, role_counts: report.roleCounts, tokens: report.tokens },
  };
}

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
    const options = this.datasets.ingestOptions(q.format);
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
  @ApiDoc({ summary: 'Dry run: validate a file and compute its statistics; nothing is stored', tags: ['datasets'], multipartBody: fileForm })
  async validate(@ZQuery(validateQuery) q: z.infer<typeof validateQuery>, @Req() req: Request) {
    const { file } = await readMultipart(req, 'file', (_filename, stream) => this.datasets.validate(stream, q.format), async () => undefined);
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'file'", 'file');
    return toReportObject(file.result);
  }

  @Get()
  @ApiDoc({ summary: 'List datasets', tags: ['datasets'] })
  async list(@ProjectId() projectId: string, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    return toPage(await this.datasets.list(projectId, q), q.limit, toDatasetObject);
  }

  @Get(':dataset_id')
  @ApiDoc({ summary: 'Retrieve a dataset with its validation report and statistics', tags: ['datasets'], response: datasetObject })
  async get(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string) {
    return toDatasetObject(await this.datasets.get(projectId, id));
  }

  @Get(':dataset_id/stats')
  @ApiDoc({ summary: 'Statistics, with the estimated trained tokens for n_epochs', tags: ['datasets'] })
  async stats(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string, @ZQuery(statsQuery) q: z.infer<typeof statsQuery>) {
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
  @ApiDoc({ summary: 'Split a ready dataset into two new datasets (train, validation) by seed', tags: ['datasets'] })
  async split(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string, @ZBody(splitBody) body: z.infer<typeof splitBody>) {
    const { train, validation } = await this.splitter.split(projectId, id, body.validation_fraction, body.seed);
    return { object: 'dataset.split', source: id, seed: body.seed, train: toDatasetObject(train), validation: toDatasetObject(validation) };
  }

  @Delete(':dataset_id')
  @ApiDoc({ summary: 'Delete a dataset (soft; refused while an active job uses it)', tags: ['datasets'] })
  async remove(@ProjectId() projectId: string, @ZParam('dataset_id', datasetId) id: string) {
    await this.datasets.remove(projectId, id);
    return { id, object: 'dataset', deleted: true };
  }
}
