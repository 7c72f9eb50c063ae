import { Controller, Delete, Get, Post } from '@nestjs/common';
import { z } from 'zod';
import { CurrentPrincipal, ForInferenceKeys, Principal, PROJECT_KEY_SCOPES, ProjectId, RequireScope } from '../common/auth/auth.decorators';
import { listOf, pageOf, pageQuery, toList, toPage } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { ApiKeysService, CreatedKey } from './api-keys.service';
import { ProjectsService } from './projects.service';

const unix = (d: Date) => Math.floor(d.getTime() / 1000);
const keyObject = z.object({ object: z.literal('api_key'), id: z.string(), name: z.string(), redacted_value: z.string(), scopes: z.array(z.string()), created_at: z.number() });
const createdKeyObject = keyObject.extend({ value: z.string().describe('the key itself: shown in this answer only') });
const projectObject = z.object({ object: z.literal('project'), id: z.string(), name: z.string(), slug: z.string(), created_at: z.number() });
const createdProject = projectObject.extend({ api_key: createdKeyObject });
const adminProject = projectObject.extend({
  api_keys: z.number().int().describe('keys of the project that still work (0: only an operator can let its tenant back in)'),
  rate_limits: z.object({ rpm: z.number().int().nullable(), tpm: z.number().int().nullable() }),
});
const currentProject = projectObject.extend({
  scopes: z.array(z.string()).describe("the calling key's scopes"),
  api_key_id: z.string().describe('the calling key (the dashboard marks it in the list of keys)'),
});
const deletedKey = z.object({ object: z.literal('api_key.deleted'), id: z.string(), deleted: z.literal(true) });

const keyView = (k: { id: string; name: string; prefix: string; scopes: string[]; createdAt: Date }): z.infer<typeof keyObject> => ({
  object: 'api_key' as const,
  id: k.id,
  name: k.name,
  redacted_value: `${k.prefix}...`,
  scopes: k.scopes,
  created_at: unix(k.createdAt),
});
const createdKeyView = (k: CreatedKey): z.infer<typeof createdKeyObject> => ({ ...keyView(k), value: k.key });

const createProjectBody = z.object({ name: z.string().trim().min(1).max(100) });
const createKeyBody = z.object({
  name: z.string().trim().min(1).max(100).default('api key'),
  scopes: z
    .array(z.enum(PROJECT_KEY_SCOPES))
    .min(1)
    .default(['project'])
    .transform((s) => [...new Set(s)])
    .describe("'project' (the default: everything in the project), or restricted: 'inference' (call and list models), 'read' (every GET)"),
});

@Controller('v1')
export class ProjectsController {
  constructor(private readonly projects: ProjectsService, private readonly keys: ApiKeysService) {}

  @Post('admin/projects')
  @RequireScope('admin')
  @ApiDoc({ summary: 'Create a project (tenant) and its first API key, shown once', tags: ['admin'], response: createdProject })
  async createProject(@ZBody(createProjectBody) body: z.infer<typeof createProjectBody>): Promise<z.infer<typeof createdProject>> {
    const { project, apiKey } = await this.projects.create(body.name);
    return { object: 'project', id: project.id, name: project.name, slug: project.slug, created_at: unix(project.createdAt), api_key: createdKeyView(apiKey) };
  }

  @Get('admin/projects')
  @RequireScope('admin')
  @ApiDoc({ summary: 'List every project, newest first, with its working keys and its limits (admin)', tags: ['admin'], response: pageOf(adminProject) })
  async listProjects(@ZQuery(pageQuery) page: z.infer<typeof pageQuery>) {
    return toPage(await this.projects.list(page), page.limit, (p): z.infer<typeof adminProject> => ({
      object: 'project',
      id: p.id,
      name: p.name,
      slug: p.slug,
      created_at: unix(p.createdAt),
      api_keys: p._count.apiKeys,
      rate_limits: { rpm: p.rpmLimit, tpm: p.tpmLimit },
    }));
  }

  @Post('admin/projects/:project_id/api_keys')
  @RequireScope('admin')
  @ApiDoc({ summary: "Create an API key in any project (admin): how a tenant whose keys were all revoked gets back in; its value is in this response only", tags: ['admin'], response: createdKeyObject })
  async issueKey(@ZParam('project_id', z.string().min(1)) projectId: string, @ZBody(createKeyBody) body: z.infer<typeof createKeyBody>) {
    return createdKeyView(await this.projects.issueKey(projectId, body.name, body.scopes));
  }

  @Delete('admin/api_keys/:key_id')
  @RequireScope('admin')
  @ApiDoc({ summary: "Revoke any project's API key (admin)", tags: ['admin'], response: deletedKey })
  async revokeAnyKey(@ZParam('key_id', z.string().min(1)) id: string): Promise<z.infer<typeof deletedKey>> {
    await this.keys.revokeAny(id);
    return { object: 'api_key.deleted', id, deleted: true };
  }

  @Get('project')
  @ForInferenceKeys()
  @ApiDoc({ summary: 'The project of the calling API key, with that key\'s scopes (the dashboard shows admin views for `admin`)', tags: ['projects'], response: currentProject })
  async current(@CurrentPrincipal() principal: Principal): Promise<z.infer<typeof currentProject>> {
    const p = await this.projects.get(principal.projectId);
    return { object: 'project', id: p.id, name: p.name, slug: p.slug, created_at: unix(p.createdAt), scopes: principal.scopes, api_key_id: principal.keyId };
  }

  @Get('api_keys')
  @ApiDoc({ summary: "List the project's API keys (values are never shown again)", tags: ['projects'], response: listOf(keyObject) })
  async listKeys(@ProjectId() projectId: string) {
    return toList((await this.keys.list(projectId)).map(keyView));
  }

  @Post('api_keys')
  @ApiDoc({ summary: 'Create an API key for the project; its value is in this response only (403 for a caller with limits of its own)', tags: ['projects'], response: createdKeyObject })
  async createKey(@CurrentPrincipal() caller: Principal, @ZBody(createKeyBody) body: z.infer<typeof createKeyBody>) {
    return createdKeyView(await this.keys.createFor(caller, body.name, body.scopes));
  }

  @Delete('api_keys/:key_id')
  @ApiDoc({ summary: "Revoke an API key of the caller's project (403 for a key with scopes the caller lacks, or a caller with limits of its own)", tags: ['projects'], response: deletedKey })
  async revokeKey(@CurrentPrincipal() caller: Principal, @ZParam('key_id', z.string().min(1)) id: string): Promise<z.infer<typeof deletedKey>> {
    await this.keys.revoke(caller, id);
    return { object: 'api_key.deleted', id, deleted: true };
  }
}
