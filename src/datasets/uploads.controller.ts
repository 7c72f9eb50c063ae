import { Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { ApiDoc, ZBody, ZParam } from '../common/http/zod-validation';
import { UploadPart } from '../generated/prisma/client';
import { FILE_PURPOSES, FilePurpose } from './datasets.service';
import { fileObject, toFileObject } from './files.controller';
import { readMultipart } from './multipart-upload';
import { UploadsService, UploadWithFile } from './uploads.service';

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

export const uploadObject = z.object({
  id: z.string(),
  object: z.literal('upload'),
  bytes: z.number(),
  created_at: z.number(),
  filename: z.string(),
  purpose: z.string(),
  status: z.enum(['pending', 'completed', 'cancelled', 'expired']),
  expires_at: z.number(),
  // Present once completed; absent (not null) before, as OpenAI's document does not allow null here.
  file: fileObject.optional(),
});
const partObject = z.object({ id: z.string(), object: z.literal('upload.part'), created_at: z.number(), upload_id: z.string(), bytes: z.number() });
/** loraplane's extension of OpenAI's upload: the parts received so far, so a client can resume after a restart. */
const uploadWithParts = uploadObject.extend({ parts: z.array(partObject) });

function toUploadObject(u: UploadWithFile): z.infer<typeof uploadObject> {
  return {
    id: u.id,
    object: 'upload',
    bytes: Number(u.bytes),
    created_at: seconds(u.createdAt),
    filename: u.filename,
    purpose: u.purpose,
    status: u.status,
    expires_at: seconds(u.expiresAt),
    ...(u.file ? { file: toFileObject(u.file) } : {}),
  };
}
const toPartObject = (p: UploadPart): z.infer<typeof partObject> => ({
  id: p.id,
  object: 'upload.part',
  created_at: seconds(p.createdAt),
  upload_id: p.uploadId,
  bytes: Number(p.bytes),
});

const createBody = z.object({
  bytes: z.number().int().min(1),
  filename: z.string().min(1).max(255),
  mime_type: z.string().min(1).max(255),
  purpose: z.enum(FILE_PURPOSES),
});
const completeBody = z.object({ part_ids: z.array(z.string().min(1)).min(1).max(10000), md5: z.string().regex(/^[0-9a-fA-F]{32}$/).optional() });
const partForm = z.object({ data: z.string().describe('The bytes of this part (binary)') });
const uploadIdParam = z.string().min(1);

/** OpenAI's Uploads API: large files in parts, resumable until they expire. */
@Controller('v1/uploads')
export class UploadsController {
  constructor(private readonly uploads: UploadsService) {}

  @Post()
  @HttpCode(200)
  @ApiDoc({ summary: 'Create an upload (then add parts and complete it)', tags: ['uploads'], response: uploadObject })
  async create(@ProjectId() projectId: string, @ZBody(createBody) body: z.infer<typeof createBody>) {
    return toUploadObject(await this.uploads.create(projectId, { bytes: body.bytes, filename: body.filename, mimeType: body.mime_type, purpose: body.purpose as FilePurpose }));
  }

  @Get(':upload_id')
  @ApiDoc({ summary: 'Retrieve an upload with the parts received so far (to resume after a restart); loraplane extension', tags: ['uploads'], response: uploadWithParts })
  async get(@ProjectId() projectId: string, @ZParam('upload_id', uploadIdParam) id: string): Promise<z.infer<typeof uploadWithParts>> {
    const upload = await this.uploads.get(projectId, id);
    return { ...toUploadObject(upload), parts: upload.parts.map(toPartObject) };
  }

  @Post(':upload_id/parts')
  @HttpCode(200)
  @ApiDoc({ summary: 'Add a part (multipart field `data`); a failed part is simply sent again', tags: ['uploads'], multipartBody: partForm, response: partObject })
  async addPart(@ProjectId() projectId: string, @ZParam('upload_id', uploadIdParam) id: string, @Req() req: Request) {
    const { file } = await readMultipart(
      req,
      'data',
      (_filename, stream) => this.uploads.addPart(projectId, id, stream),
      (part) => this.uploads.removePart(part),
    );
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'data'", 'data');
    return toPartObject(file.result);
  }

  @Post(':upload_id/complete')
  @HttpCode(200)
  @ApiDoc({ summary: 'Complete an upload: parts in the given order become one validated file', tags: ['uploads'], response: uploadObject })
  async complete(@ProjectId() projectId: string, @ZParam('upload_id', uploadIdParam) id: string, @ZBody(completeBody) body: z.infer<typeof completeBody>) {
    return toUploadObject(await this.uploads.complete(projectId, id, body.part_ids, body.md5));
  }

  @Post(':upload_id/cancel')
  @HttpCode(200)
  @ApiDoc({ summary: 'Cancel an upload; its parts are deleted', tags: ['uploads'], response: uploadObject })
  async cancel(@ProjectId() projectId: string, @ZParam('upload_id', uploadIdParam) id: string) {
    return toUploadObject(await this.uploads.cancel(projectId, id));
  }
}
