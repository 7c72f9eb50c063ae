import { Controller, Delete, Get, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { listOf, toList } from '../common/http/pagination';
import { ApiDoc, ZBody, ZodPipe, ZParam } from '../common/http/zod-validation';
import { readMultipart } from '../datasets/multipart-upload';
import { AdaptersService, VersionResult } from './adapters.service';
import { adapterObject, adapterView, deletedVersion, versionObject, versionView } from './adapters.views';

/** Adapter names are served as `name` (alias) and `name@vN` (versions), so '@' and '/' are not allowed. */
const adapterName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)');
const versionParam = z
  .string()
  .regex(/^v?[1-9][0-9]*$/, 'a version number such as 3 or v3')
  .transform((v) => Number(v.replace(/^v/, '')));
const description = z.string().max(500);
const registerBody = z.object({
  job_id: z.string().min(1),
  checkpoint_id: z.string().min(1).optional(),
  description: description.optional(),
});
const importBody = z.object({
  s3_prefix: z.string().min(1).max(1024).describe('s3://<bucket>/<prefix>/ holding adapter_config.json and adapter_model.safetensors'),
  description: description.optional(),
});
const importForm = z.object({
  file: z.string().describe('A .tar or .tar.gz of a PEFT directory (binary part)'),
  description: description.optional(),
});

/** The adapter registry (a loraplane extension; OpenAI has no such API). */
@Controller('v1/adapters')
export class AdaptersController {
  constructor(private readonly adapters: AdaptersService) {}

  @Post(':adapter_name/versions')
  @ApiDoc({ summary: "Register a new immutable version from a succeeded job's adapter (or one of its checkpoints)", tags: ['adapters'], response: versionObject })
  async register(
    @ProjectId() projectId: string,
    @ZParam('adapter_name', adapterName) name: string,
    @ZBody(registerBody) body: z.infer<typeof registerBody>,
    @Res({ passthrough: true }) res: Response,
  ) {
    const { adapter, version, created } = await this.adapters.register(projectId, name, { jobId: body.job_id, checkpointId: body.checkpoint_id, description: body.description });
    res.status(created ? 201 : 200);
    return versionView(adapter, version);
  }

  @Post(':adapter_name/versions/import')
  @ApiDoc({
    summary: 'Import a version: a PEFT directory as a .tar/.tar.gz upload (multipart `file`), or JSON {"s3_prefix": "s3://bucket/prefix/"}',
    tags: ['adapters'],
    multipartBody: importForm,
    response: versionObject,
  })
  async import(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    let result: VersionResult;
    if (req.is('multipart/form-data')) {
      result = await this.importUpload(projectId, name, req);
    } else if (req.is('application/json')) {
      const body = new ZodPipe(importBody, 'body').transform(req.body);
      result = await this.adapters.importFromS3(projectId, name, body.s3_prefix, body.description);
    } else {
      throw new DomainError('invalid_request', "Send the PEFT directory as multipart/form-data field 'file' (.tar or .tar.gz), or JSON with 's3_prefix'", 'file');
    }
    res.status(result.created ? 201 : 200);
    return versionView(result.adapter, result.version);
  }

  /** The tarball streams into S3 as it arrives; the form's description may come after it, so it is checked last. */
  private async importUpload(projectId: string, name: string, req: Request): Promise<VersionResult> {
    const { fields, file } = await readMultipart(
      req,
      'file',
      (filename, stream) => this.adapters.stageTarball(projectId, name, filename, stream),
      (staged) => this.adapters.discardImport(staged),
    );
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'file'", 'file');
    const text = description.optional().safeParse(fields.description);
    if (!text.success) {
      await this.adapters.discardImport(file.result);
      throw new DomainError('invalid_request', "Invalid 'description': at most 500 characters", 'description');
    }
    return this.adapters.commitImport(file.result, text.data);
  }

  @Get()
  @ApiDoc({ summary: "List the project's adapters with their latest version", tags: ['adapters'], response: listOf(adapterObject) })
  async list(@ProjectId() projectId: string) {
    return toList((await this.adapters.listAdapters(projectId)).map(adapterView));
  }

  @Get(':adapter_name/versions')
  @ApiDoc({ summary: "An adapter's versions, newest first", tags: ['adapters'], response: listOf(versionObject) })
  async versions(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string) {
    const adapter = await this.adapters.getAdapter(projectId, name);
    const rows = await this.adapters.listVersions(projectId, name);
    return toList(rows.map((v) => versionView(adapter, v)));
  }

  @Get(':adapter_name/versions/:version')
  @ApiDoc({ summary: 'One version, with presigned download URLs for its files', tags: ['adapters'], response: versionObject })
  async version(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string, @ZParam('version', versionParam) version: number) {
    const adapter = await this.adapters.getAdapter(projectId, name);
    const row = await this.adapters.getVersion(projectId, name, version);
    return versionView(adapter, row, await this.adapters.downloads(row));
  }

  @Delete(':adapter_name/versions/:version')
  @ApiDoc({ summary: 'Delete a version (soft: its bytes stay for lineage); refused while a pool deploys it or an alias names it', tags: ['adapters'], response: deletedVersion })
  async remove(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string, @ZParam('version', versionParam) version: number): Promise<z.infer<typeof deletedVersion>> {
    await this.adapters.deleteVersion(projectId, name, version);
    return { object: 'adapter.version.deleted', adapter: name, version, deleted: true };
  }
}
