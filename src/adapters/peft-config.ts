import { DomainError } from '../common/domain-error';

export interface PeftSummary {
  baseModel: string;
  rank: number;
  targetModules: string[];
}

/**
 * What vLLM will accept (shared/reference/vllm-lora.md): a LoRA (not DoRA), a rank, targets, and no
 * modules_to_save. Checked when a version is registered, so nothing incompatible can be rolled out later.
 */
export function checkPeftConfig(config: unknown): PeftSummary {
  const bad = (field: string, why: string) => new DomainError('invalid_adapter', `adapter_config.json: ${field} ${why}`, `adapter_config.${field}`);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw bad('(root)', 'must be a JSON object');
  const c = config as Record<string, unknown>;
  if (c.peft_type !== 'LORA') throw bad('peft_type', `must be "LORA", got ${JSON.stringify(c.peft_type)}`);
  if (typeof c.base_model_name_or_path !== 'string' || c.base_model_name_or_path === '') throw bad('base_model_name_or_path', 'must name the base model');
  if (!Number.isInteger(c.r) || (c.r as number) < 1) throw bad('r', 'must be a positive integer');
  if (c.use_dora === true) throw bad('use_dora', 'must be false: vLLM does not serve DoRA adapters');
  if (c.modules_to_save !== undefined && c.modules_to_save !== null && !(Array.isArray(c.modules_to_save) && c.modules_to_save.length === 0)) {
    throw bad('modules_to_save', 'must be null: vLLM only serves adapters without modules_to_save');
  }
  const modules = typeof c.target_modules === 'string' ? [c.target_modules] : c.target_modules;
  const params = c.target_parameters;
  const targets = [
    ...(Array.isArray(modules) ? modules : []),
    ...(Array.isArray(params) ? params : []),
  ].filter((t): t is string => typeof t === 'string' && t.length > 0);
  if (targets.length === 0) throw bad('target_modules', 'must name at least one module (or target_parameters)');
  return { baseModel: c.base_model_name_or_path, rank: c.r as number, targetModules: targets };
}
