/**
 * The hook a promotion goes through before an alias moves to a new version for everyone (rollout, promote). The
 * evals feature provides the gate bound in ServingModule (src/evals/eval-promotion-gate.ts): the candidate's latest
 * eval must beat a baseline where a gate is configured. Rollback never asks: going back must always be possible.
 */
export interface PromotionRequest {
  projectId: string;
  pool: { id: string; name: string };
  adapter: string;
  /** The version the alias would serve everywhere after the move, and the one it serves now (null: a new alias). */
  candidate: { id: string; version: number };
  current: { id: string; version: number } | null;
}

export type PromotionVerdict = { allowed: true } | { allowed: false; reason: string };

export abstract class PromotionGate {
  abstract check(req: PromotionRequest): Promise<PromotionVerdict>;
}

/** Every promotion allowed (for tests and setups without evals). */
export class OpenPromotionGate extends PromotionGate {
  async check(): Promise<PromotionVerdict> {
    return { allowed: true };
  }
}
