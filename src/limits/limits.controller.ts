import { Controller, Get, Put } from '@nestjs/common';
import { z } from 'zod';
import { CurrentPrincipal, Principal, ProjectId, RequireScope } from '../common/auth/auth.decorators';
import { ApiDoc, ZBody, ZParam } from '../common/http/zod-validation';
import { LimitsService } from './limits.service';
import { RateLimit } from './rate-limits';

// null (or absent) lifts the limit; a limit of 0 would refuse everything, which revoking the key says better.
const perMinute = z.number().int().min(1).max(1_000_000_000).nullable().default(null);
const body = z.object({ rpm: perMinute, tpm: perMinute }).strict();
const rateLimitsObject = z.object({
  object: z.literal('rate_limits'),
  scope: z.enum(['api_key', 'project']),
  id: z.string().describe('the API key id or the project id'),
  rpm: z.number().nullable().describe('requests per minute; null: no limit'),
  tpm: z.number().nullable().describe('tokens (prompt + completion) per minute; null: no limit'),
});
const view = (scope: 'api_key' | 'project', id: string, l: RateLimit): z.infer<typeof rateLimitsObject> => ({ object: 'rate_limits', scope, id, rpm: l.rpm, tpm: l.tpm });

/** Gateway limits (requests and tokens per minute) of an API key and of a project. */
@Controller('v1')
export class LimitsController {
  constructor(private readonly limits: LimitsService) {}

  @Get('api_keys/:key_id/rate_limits')
  @ApiDoc({ summary: "An API key's gateway limits (null: none)", tags: ['projects'], response: rateLimitsObject })
  async keyLimits(@ProjectId() projectId: string, @ZParam('key_id', z.string().min(1)) keyId: string) {
    return view('api_key', keyId, await this.limits.keyLimits(projectId, keyId));
  }

  @Put('api_keys/:key_id/rate_limits')
  @ApiDoc({ summary: 'Set the requests/tokens per minute the gateway allows this key (null lifts a limit; 403 for a key with scopes the caller lacks, or a caller with limits of its own)', tags: ['projects'], response: rateLimitsObject })
  async setKeyLimits(@CurrentPrincipal() caller: Principal, @ZParam('key_id', z.string().min(1)) keyId: string, @ZBody(body) b: z.infer<typeof body>) {
    return view('api_key', keyId, await this.limits.setKeyLimits(caller, keyId, b));
  }

  @Get('project/rate_limits')
  @ApiDoc({ summary: "The calling project's gateway limits over all its keys (set by an operator)", tags: ['projects'], response: rateLimitsObject })
  async projectLimits(@ProjectId() projectId: string) {
    return view('project', projectId, await this.limits.projectLimits(projectId));
  }

  @Put('admin/projects/:project_id/rate_limits')
  @RequireScope('admin')
  @ApiDoc({ summary: "Set a project's gateway limits over all its keys (null lifts a limit)", tags: ['admin'], response: rateLimitsObject })
  async setProjectLimits(@ZParam('project_id', z.string().min(1)) projectId: string, @ZBody(body) b: z.infer<typeof body>) {
    return view('project', projectId, await this.limits.setProjectLimits(projectId, b));
  }
}
