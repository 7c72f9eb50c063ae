import { Controller, Delete, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { pageOf, pageQuery, toPage } from '../common/http/pagination';
import { ApiDoc, ZParam, ZQuery } from '../common/http/zod-validation';
import { Dataset } from '../generated/prisma/client';
import { DatasetsService, FILE_PURPOSES, FilePurpose } from './datasets.service';
import { readMultipart } from './multipart-upload';
import { deletedOf } from '../common/http/deleted';

export const fileObject = z.object({
  id: z.string(),
  object: z.literal('file'),
  bytes: z.number(),
  created_at: z.number(),
  filename: z.string(),
  purpose: z.string(),
  status: z.enum(['uploaded', 'processed', 'error']),
  // OpenAI's document types these as string and integer and does not require them: absent, never null.
  status_details: z.string().optional(),
  sha256: z.string(),
  format: z.string(),
  stats: z.unknown(),
});

/** The first validation error of an invalid file, as OpenAI's (deprecated) status_details says why it failed. */
function statusDetails(d: Dataset): string | undefined {
  if (d.status === 'ready') return undefined;
  const report = d.report as { error_count?: number; errors?: { message?: string }[] } | null;
  const first = report?.errors?.[0]?.message;
  const count = report?.error_count ?? report?.errors?.length ?? 0;
  if (!first) return 'The file did not pass validation.';
  return count > 1 ? `${first} (and ${count - 1} more errors)` : first;
}

export function toFileObject(d: Dataset): z.infer<typeof fileObject> {
  const details = statusDetails(d);
  return {
    id: d.id,
    object: 'file',
    bytes: Number(d.bytes),
    created_at: Math.floor(d.createdAt.getTime() / 1000),
    filename: d.filename,
    purpose: d.purpose,
    status: d.status === 'ready' ? 'processed' : 'error',
    ...(details === undefined ? {} : { status_details: details }),
    sha256: d.sha256,
    format: d.format,
    stats: d.stats,
  };
}

// OpenAI's ListFilesResponse; first_id and last_id are null when the list is empty, which OpenAI's document types
// as string only (it does not say what an empty list answers).
const fileList = pageOf(fileObject);
// OpenAI's DeleteFileResponse (a deleted file is always deleted: true).
const deletedFile = deletedOf('file');

const uploadForm = z.object({
  file: z.string().describe('The JSONL file (binary part)'),
  purpose: z.enum(FILE_PURPOSES),
});
const listQuery = pageQuery.extend({
  limit: z.coerce.number().int().min(1).max(10000).default(10000),
  order: z.enum(['asc', 'desc']).default('desc'),
  purpose: z.string().optional(),
});
const fileId = z.string().min(1);

/** OpenAI's Files API over loraplane's datasets. */
@Controller('v1/files')
export class FilesController {
  constructor(private readonly datasets: DatasetsService) {}

  @Post()
  @HttpCode(200) // OpenAI answers an upload with 200; clients generated from its document expect it
  @ApiDoc({ summary: 'Upload a JSONL file (streamed to S3 while validated line by line)', tags: ['files'], multipartBody: uploadForm, response: fileObject })
  async upload(@ProjectId() projectId: string, @Req() req: Request) {
    const { fields, file } = await readMultipart(
      req,
      'file',
      (filename, stream) => this.datasets.stage(projectId, filename, stream, this.datasets.uploadOptions(undefined, req.headers['content-length'])),
      (staged) => this.datasets.discard(staged),
    );
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'file'", 'file');
    const purpose = uploadForm.shape.purpose.safeParse(fields.purpose);
    if (!purpose.success) {
      await this.datasets.discard(file.result);
      const message = fields.purpose === undefined
        ? "Missing required parameter: 'purpose'"
        : `Invalid 'purpose': '${fields.purpose}'; expected one of ${FILE_PURPOSES.join(', ')}`;
      throw new DomainError('invalid_request', message, 'purpose');
    }
    return toFileObject(await this.datasets.commit(file.result, purpose.data as FilePurpose));
  }

  @Get()
  @ApiDoc({ summary: 'List files', tags: ['files'], response: fileList })
  async list(@ProjectId() projectId: string, @ZQuery(listQuery) q: z.infer<typeof listQuery>): Promise<z.infer<typeof fileList>> {
    return toPage(await this.datasets.list(projectId, q), q.limit, toFileObject);
  }

  @Get(':file_id')
  @ApiDoc({ summary: 'Retrieve a file', tags: ['files'], response: fileObject })
  async get(@ProjectId() projectId: string, @ZParam('file_id', fileId) id: string) {
    return toFileObject(await this.datasets.get(projectId, id));
  }

  @Get(':file_id/content')
  @ApiDoc({ summary: "Download a file's bytes", tags: ['files'], responseContentType: 'application/octet-stream' })
  async content(@ProjectId() projectId: string, @ZParam('file_id', fileId) id: string, @Res() res: Response) {
    const { dataset, body } = await this.datasets.content(projectId, id);
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', String(dataset.bytes));
    res.setHeader('content-disposition', `attachment; filename="${dataset.filename.replace(/["\\\r\n]/g, '_')}"`);
    body.on('error', () => res.destroy());
    body.pipe(res);
  }

  @Delete(':file_id')
  @ApiDoc({ summary: 'Delete a file (soft; refused while an active job uses it)', tags: ['files'], response: deletedFile })
  async remove(@ProjectId() projectId: string, @ZParam('file_id', fileId) id: string): Promise<z.infer<typeof deletedFile>> {
    await this.datasets.remove(projectId, id);
    return { id, object: 'file', deleted: true };
  }
}
