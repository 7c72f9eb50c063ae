import { Controller, Delete, Get, Post } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { ApiDoc, ZBody, ZParam } from '../common/http/zod-validation';
import { EvalGatesService, WHOLE_POOL } from './eval-gates.service';
import { gateObject, gateView } from './evals.views';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)');
const setGate = z
  .object({
    suite_id: z.string().min(1).max(200),
    baseline_target: z.string().min(1).max(200).describe('the target (id or name) the candidate must beat'),
    min_margin: z.number().min(-1).max(1).default(0).describe('accuracy points (0..1) ahead of the baseline; 0: at least as good'),
  })
  .strict();
const deletedGate = z.object({ object: z.literal('eval.gate.deleted'), pool: z.string(), adapter: z.string().nullable(), deleted: z.literal(true) });

/**
 * Promotion gates: an alias move (rollout, promote) on the pool needs the candidate version's latest eval to beat a
 * baseline. Per alias, or per pool (every adapter without its own gate). Enforced by EvalPromotionGate.
 */
@Controller('v1/serving/pools/:pool')
export class EvalGatesController {
  constructor(private readonly gates: EvalGatesService) {}

  @Post('aliases/:adapter_name/gate')
  @ApiDoc({ summary: "Require the alias's candidate version to beat a baseline target on a suite before it moves", tags: ['serving', 'evals'], response: gateObject })
  async setAlias(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZBody(setGate) b: z.infer<typeof setGate>) {
    return this.set(projectId, pool, adapter, b);
  }

  @Get('aliases/:adapter_name/gate')
  @ApiDoc({ summary: "The alias's own promotion gate", tags: ['serving', 'evals'], response: gateObject })
  async getAlias(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string) {
    return this.view(projectId, await this.gates.get(projectId, pool, adapter));
  }

  @Delete('aliases/:adapter_name/gate')
  @ApiDoc({ summary: "Remove the alias's own promotion gate", tags: ['serving', 'evals'], response: deletedGate })
  async deleteAlias(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string): Promise<z.infer<typeof deletedGate>> {
    await this.gates.remove(projectId, pool, adapter);
    return { object: 'eval.gate.deleted', pool, adapter, deleted: true };
  }

  @Post('gate')
  @ApiDoc({ summary: 'A promotion gate for every alias of the pool that has none of its own', tags: ['serving', 'evals'], response: gateObject })
  async setPool(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZBody(setGate) b: z.infer<typeof setGate>) {
    return this.set(projectId, pool, WHOLE_POOL, b);
  }

  @Get('gate')
  @ApiDoc({ summary: "The pool's promotion gate", tags: ['serving', 'evals'], response: gateObject })
  async getPool(@ProjectId() projectId: string, @ZParam('pool', name) pool: string) {
    return this.view(projectId, await this.gates.get(projectId, pool, WHOLE_POOL));
  }

  @Delete('gate')
  @ApiDoc({ summary: "Remove the pool's promotion gate", tags: ['serving', 'evals'], response: deletedGate })
  async deletePool(@ProjectId() projectId: string, @ZParam('pool', name) pool: string): Promise<z.infer<typeof deletedGate>> {
    await this.gates.remove(projectId, pool, WHOLE_POOL);
    return { object: 'eval.gate.deleted', pool, adapter: null, deleted: true };
  }

  private async set(projectId: string, pool: string, adapter: string, b: z.infer<typeof setGate>) {
    return this.view(projectId, await this.gates.set(projectId, pool, adapter, { suite: b.suite_id, baselineTarget: b.baseline_target, minMargin: b.min_margin }));
  }

  private async view(projectId: string, g: Parameters<typeof gateView>[0]) {
    return gateView(g, await this.gates.baselineName(projectId, g.baselineTargetId));
  }
}
