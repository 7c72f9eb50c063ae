import { DomainError } from '../common/domain-error';
import { checkPeftConfig } from '../adapters/peft-config';

export interface PoolLimits {
  name: string;
  servedModelName: string;
  maxLoraRank: number;
  supportedTargets: string[];
  /**
   * The base weights' version when the catalog builds them in (tiny-lora): an adapter must name it as PEFT's
   * `revision`, because another version of the same base has other shapes and meanings.
   */
  baseRevision?: string;
}

export interface VersionFacts {
  label: string;
  baseModel: string;
  rank: number;
  targetModules: string[];
  peftConfig: unknown;
}

/**
 * PEFT names a module by its full path or by its last segments ("q_proj", "self_attn.q_proj",
 * "model.layers.0.self_attn.q_proj", "mlp.experts.gate_up_proj"): a target is supported when one name ends with the
 * other on a segment boundary.
 */
function sameModule(a: string, b: string): boolean {
  return a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`);
}

/**
 * The compatibility preflight (shared/reference/vllm-lora.md, "Adapter constraints vLLM enforces"): run before
 * anything is sent to a replica, so an adapter vLLM would refuse (or load and silently ignore) never reaches it.
 * Returns every problem, not just the first.
 */
export function compatibilityProblems(pool: PoolLimits, v: VersionFacts): string[] {
  const problems: string[] = [];
  if (v.baseModel !== pool.servedModelName) {
    problems.push(`base_model_name_or_path is '${v.baseModel}' but pool '${pool.name}' serves '${pool.servedModelName}' (they must be identical)`);
  }
  if (pool.baseRevision !== undefined) {
    const config = (typeof v.peftConfig === 'object' && v.peftConfig !== null ? v.peftConfig : {}) as Record<string, unknown>;
    if (config.revision !== pool.baseRevision) {
      const was = typeof config.revision === 'string' ? `base weights '${config.revision}'` : 'an older base (adapter_config.json records no revision)';
      problems.push(`the adapter was trained on ${was} but pool '${pool.name}' serves '${pool.servedModelName}' with weights '${pool.baseRevision}': retrain it on the current base`);
    }
  }
  if (v.rank > pool.maxLoraRank) problems.push(`rank r=${v.rank} exceeds the pool's max_lora_rank ${pool.maxLoraRank}`);
  const unsupported = v.targetModules.filter((t) => !pool.supportedTargets.some((s) => sameModule(t, s)));
  if (unsupported.length > 0) {
    problems.push(`target modules ${unsupported.join(', ')} are not served by this pool (supported: ${pool.supportedTargets.join(', ')})`);
  }
  try {
    checkPeftConfig(v.peftConfig);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return problems;
}

export function assertCompatible(pool: PoolLimits, v: VersionFacts): void {
  const problems = compatibilityProblems(pool, v);
  if (problems.length > 0) {
    throw new DomainError('incompatible_adapter', `${v.label} cannot be served by pool '${pool.name}': ${problems.join('; ')}`, 'version', {
      details: { problems },
    });
  }
}
