import { Controller, Delete, Get, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { ApiDoc, ZBody, ZParam } from '../common/http/zod-validation';
import { Adapter, AdapterVersion } from '../generated/prisma/client';
import { AdaptersService } from './adapters.service';

/** Adapter names are served as `name` (alias) and `name@vN` (versions), so '@' and '/' are not allowed. */
const adapterName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)');
const versionParam = z
  .string()
  .regex(/^v?[1-9][0-9]*$/, 'a version number such as 3 or v3')
  .transform((v) => Number(v.replace(/^v/, '')));
const registerBody = z.object({
  job_id: z.string().min(1),
  checkpoint_id: z.string().min(1).optional(),
  description: z.string().max(500).optional(),
});

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

function versionView(adapter: Pick<Adapter, 'name'>, v: AdapterVersion, downloads?: { name: string; url: string }[]) {
  return {
    object: 'adapter.version' as const,
    id: v.id,
    adapter: adapter.name,
    version: v.version,
    /** The immutable name a serving pool loads it under. */
    served_name: `${adapter.name}@v${v.version}`,
    base_model: v.baseModel,
    rank: v.rank,
    target_modules: v.targetModules,
    files: v.files,
    peft_config: v.peftConfig,
    lineage: { source: v.source, job_id: v.jobId, checkpoint_id: v.checkpointId, dataset_id: v.datasetId, hyperparameters: v.hyperparameters },
    created_at: unix(v.createdAt),
    ...(downloads ? { download: downloads.map((d) => ({ name: d.name, url: d.url })) } : {}),
  };
}

/** The adapter registry (a loraplane extension; OpenAI has no such API). */
@Controller('v1/adapters')
export class AdaptersController {
  constructor(private readonly adapters: AdaptersService) {}

  @Post(':adapter_name/versions')
  @ApiDoc({ summary: "Register a new immutable version from a succeeded job's adapter (or one of its checkpoints)", tags: ['adapters'] })
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

  @Get()
  @ApiDoc({ summary: "List the project's adapters with their latest version", tags: ['adapters'] })
  async list(@ProjectId() projectId: string) {
    const rows = await this.adapters.listAdapters(projectId);
    return {
      object: 'list',
      data: rows.map((a) => ({ object: 'adapter', id: a.id, name: a.name, description: a.description, created_at: unix(a.createdAt), latest_version: a.versions[0]?.version ?? null })),
      has_more: false,
    };
  }

  @Get(':adapter_name/versions')
  @ApiDoc({ summary: "An adapter's versions, newest first", tags: ['adapters'] })
  async versions(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string) {
    const adapter = await this.adapters.getAdapter(projectId, name);
    const rows = await this.adapters.listVersions(projectId, name);
    return { object: 'list', data: rows.map((v) => versionView(adapter, v)), has_more: false };
  }

  @Get(':adapter_name/versions/:version')
  @ApiDoc({ summary: 'One version, with presigned download URLs for its files', tags: ['adapters'] })
  async version(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string, @ZParam('version', versionParam) version: number) {
    const adapter = await this.adapters.getAdapter(projectId, name);
    const row = await this.adapters.getVersion(projectId, name, version);
    return versionView(adapter, row, await this.adapters.downloads(row));
  }

  @Delete(':adapter_name/versions/:version')
  @ApiDoc({ summary: 'Delete a version (soft: its bytes stay for lineage)', tags: ['adapters'] })
  async remove(@ProjectId() projectId: string, @ZParam('adapter_name', adapterName) name: string, @ZParam('version', versionParam) version: number) {
    await this.adapters.deleteVersion(projectId, name, version);
    return { object: 'adapter.version.deleted', adapter: name, version, deleted: true };
  }
}
