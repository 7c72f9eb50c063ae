import { Controller, Delete, Get, Post } from '@nestjs/common';
import { z } from 'zod';
import { CurrentPrincipal, Principal, ProjectId, RequireScope } from '../common/auth/auth.decorators';
import { ApiDoc, ZBody, ZParam } from '../common/http/zod-validation';
import { ApiKeysService, CreatedKey } from './api-keys.service';
import { ProjectsService } from './projects.service';

const unix = (d: Date) => Math.floor(d.getTime() / 1000);
const keyView = (k: { id: string; name: string; prefix: string; scopes: string[]; createdAt: Date }) => ({
  object: 'api_key' as const,
  id: k.id,
  name: k.name,
  redacted_value: `${k.prefix}...`,
  scopes: k.scopes,
  created_at: unix(k.createdAt),
});
const createdKeyView = (k: CreatedKey) => ({ ...keyView(k), value: k.key });

const createProjectBody = z.object({ name: z.string().trim().min(1).max(100) });
const createKeyBody = z.object({ name: z.string().trim().min(1).max(100).default('api key') });

@Controller('v1')
export class ProjectsController {
  constructor(private readonly projects: ProjectsService, private readonly keys: ApiKeysService) {}

  @Post('admin/projects')
  @RequireScope('admin')
  @ApiDoc({ summary: 'Create a project (tenant) and its first API key, shown once', tags: ['admin'] })
  async createProject(@ZBody(createProjectBody) body: z.infer<typeof createProjectBody>) {
    const { project, apiKey } = await this.projects.create(body.name);
    return { object: 'project', id: project.id, name: project.name, slug: project.slug, created_at: unix(project.createdAt), api_key: createdKeyView(apiKey) };
  }

  @Delete('admin/api_keys/:key_id')
  @RequireScope('admin')
  @ApiDoc({ summary: "Revoke any project's API key (admin)", tags: ['admin'] })
  async revokeAnyKey(@ZParam('key_id', z.string().min(1)) id: string) {
    await this.keys.revokeAny(id);
    return { object: 'api_key.deleted', id, deleted: true };
  }

  @Get('project')
  @ApiDoc({ summary: 'The project of the calling API key, with that key\'s scopes (the dashboard shows admin views for `admin`)', tags: ['projects'] })
  async current(@CurrentPrincipal() principal: Principal) {
    const p = await this.projects.get(principal.projectId);
    return { object: 'project', id: p.id, name: p.name, slug: p.slug, created_at: unix(p.createdAt), scopes: principal.scopes };
  }

  @Get('api_keys')
  @ApiDoc({ summary: "List the project's API keys (values are never shown again)", tags: ['projects'] })
  async listKeys(@ProjectId() projectId: string) {
    const rows = await this.keys.list(projectId);
    return { object: 'list', data: rows.map(keyView), has_more: false };
  }

  @Post('api_keys')
  @ApiDoc({ summary: 'Create an API key for the project; its value is in this response only', tags: ['projects'] })
  async createKey(@ProjectId() projectId: string, @ZBody(createKeyBody) body: z.infer<typeof createKeyBody>) {
    return createdKeyView(await this.keys.create(projectId, body.name, ['project']));
  }

  @Delete('api_keys/:key_id')
  @ApiDoc({ summary: 'Revoke an API key', tags: ['projects'] })
  async revokeKey(@ProjectId() projectId: string, @ZParam('key_id', z.string().min(1)) id: string) {
    await this.keys.revoke(projectId, id);
    return { object: 'api_key.deleted', id, deleted: true };
  }
}
