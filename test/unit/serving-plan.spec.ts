import { createCipheriv, randomBytes } from 'node:crypto';
import { Config } from '../../src/config/config';
import { SealContext, SecretBox } from '../../src/common/secret-box';
import { desiredForReplicas } from '../../src/serving/desired-state';
import { assertCompatible, compatibilityProblems } from '../../src/serving/preflight';
import { sameAnswer } from '../../src/serving/vllm-client';

const v = (adapter: string, version: number) => ({ id: `id-${adapter}-${version}`, adapter, version });
const base = { DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1:6379', S3_BUCKET: 'loraplane' };

describe('desiredForReplicas', () => {
  it('loads every deployed version under its immutable name and the alias on its version', () => {
    const plan = desiredForReplicas(['r1', 'r2'], [v('bot', 1), v('bot', 2)], [{ adapter: 'bot', version: v('bot', 1), canary: null, canaryReplicas: 0 }]);
    expect(plan.get('r1')).toEqual([
      { name: 'bot', servedVersion: 'bot@v1', versionId: 'id-bot-1' },
      { name: 'bot@v1', servedVersion: 'bot@v1', versionId: 'id-bot-1' },
      { name: 'bot@v2', servedVersion: 'bot@v2', versionId: 'id-bot-2' },
    ]);
    expect(plan.get('r2')).toEqual(plan.get('r1'));
  });

  it('serves the canary under the alias on exactly the first k replicas, in replica order', () => {
    const replicas = ['a', 'b', 'c', 'd', 'e'];
    const plan = desiredForReplicas(replicas, [v('bot', 1), v('bot', 2)], [{ adapter: 'bot', version: v('bot', 1), canary: v('bot', 2), canaryReplicas: 2 }]);
    const aliasOn = replicas.map((r) => plan.get(r)!.find((e) => e.name === 'bot')!.servedVersion);
    expect(aliasOn).toEqual(['bot@v2', 'bot@v2', 'bot@v1', 'bot@v1', 'bot@v1']);
  });
});

describe('compatibility preflight', () => {
  const pool = { name: 'p', servedModelName: 'gpt-oss-20b', maxLoraRank: 16, supportedTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'mlp.experts.gate_up_proj'] };
  const peft = (extra: Record<string, unknown> = {}) => ({ peft_type: 'LORA', base_model_name_or_path: 'gpt-oss-20b', r: 8, target_modules: ['q_proj'], ...extra });
  const facts = (over: Partial<{ baseModel: string; rank: number; targetModules: string[]; peftConfig: unknown }> = {}) => ({
    label: 'bot@v1', baseModel: 'gpt-oss-20b', rank: 8, targetModules: ['q_proj'], peftConfig: peft(), ...over,
  });

  it('accepts a compatible version, targets named by their full path included', () => {
    expect(compatibilityProblems(pool, facts({ targetModules: ['model.layers.0.self_attn.q_proj', 'mlp.experts.gate_up_proj'] }))).toEqual([]);
  });

  it('names every problem: base model, rank, unsupported targets, DoRA', () => {
    const problems = compatibilityProblems(pool, facts({ baseModel: 'openai/gpt-oss-20b', rank: 32, targetModules: ['q_proj', 'router'], peftConfig: peft({ use_dora: true }) }));
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/'openai\/gpt-oss-20b' but pool 'p' serves 'gpt-oss-20b'/);
    expect(problems[1]).toMatch(/r=32 exceeds the pool's max_lora_rank 16/);
    expect(problems[2]).toMatch(/router/);
    expect(problems[3]).toMatch(/use_dora/);
    expect(() => assertCompatible(pool, facts({ rank: 32 }))).toThrow(expect.objectContaining({ code: 'incompatible_adapter', param: 'version' }));
  });

  it('refuses an adapter of another version of a built-in base (tiny-lora v1 -> v2) with a clear message', () => {
    const tiny = { name: 't', servedModelName: 'tiny-lora', maxLoraRank: 16, supportedTargets: ['lm_head'], baseRevision: 'tiny-lora-base-v2' };
    const tinyPeft = (extra: Record<string, unknown> = {}) => ({ peft_type: 'LORA', base_model_name_or_path: 'tiny-lora', r: 8, target_modules: ['lm_head'], ...extra });
    const tinyFacts = (config: unknown) => ({ label: 'bot@v1', baseModel: 'tiny-lora', rank: 8, targetModules: ['lm_head'], peftConfig: config });
    expect(compatibilityProblems(tiny, tinyFacts(tinyPeft({ revision: 'tiny-lora-base-v2' })))).toEqual([]);
    expect(compatibilityProblems(tiny, tinyFacts(tinyPeft()))).toEqual([
      "the adapter was trained on an older base (adapter_config.json records no revision) but pool 't' serves 'tiny-lora' with weights 'tiny-lora-base-v2': retrain it on the current base",
    ]);
    expect(() => assertCompatible(tiny, tinyFacts(tinyPeft({ revision: 'tiny-lora-base-v1' })))).toThrow(
      expect.objectContaining({ code: 'incompatible_adapter', message: expect.stringContaining("trained on base weights 'tiny-lora-base-v1'") }),
    );
    // Hub models carry no revision requirement: a GPT-OSS adapter without one is fine.
    expect(compatibilityProblems(pool, facts())).toEqual([]);
  });
});

describe('sameAnswer (the no-effect check)', () => {
  const ans = (content: string, lp: number[] | null) => ({ content, topLogprobs: lp ? lp.map((logprob, i) => ({ token: `t${i}`, logprob })) : null });
  it('is true only for the same text and the same log-probabilities', () => {
    expect(sameAnswer(ans('billing', [-0.1, -2.5]), ans('billing', [-0.1, -2.5]))).toBe(true);
    expect(sameAnswer(ans('billing', [-0.1, -2.5]), ans('billing', [-0.2, -2.1]))).toBe(false);
    expect(sameAnswer(ans('billing', null), ans('refund', null))).toBe(false);
    expect(sameAnswer(ans('billing', null), ans('billing', null))).toBe(true);
  });
});

describe('SecretBox', () => {
  const box = (key?: string) => new SecretBox(Config.fromEnv({ ...base, LORAPLANE_MODE: 'dev', LOG_LEVEL: 'silent', ...(key ? { SECRETS_KEY: key } : {}) }));
  const r1: SealContext = { purpose: 'replica.agent_token', id: 'replica-1' };
  it('round-trips, never stores the plain text, and uses a fresh IV each time', () => {
    const b = box('11'.repeat(32));
    const sealed = b.seal('agent-token-0123456789', r1);
    expect(sealed).toMatch(/^v2\./);
    expect(sealed).not.toContain('agent-token');
    expect(b.seal('agent-token-0123456789', r1)).not.toBe(sealed);
    expect(b.open(sealed, r1)).toBe('agent-token-0123456789');
  });
  it('refuses a tampered value and the wrong key', () => {
    const sealed = box('11'.repeat(32)).seal('secret', r1);
    const parts = sealed.split('.');
    const tampered = [...parts.slice(0, 3), Buffer.from('secreT').toString('base64url')].join('.');
    expect(() => box('11'.repeat(32)).open(tampered, r1)).toThrow(/cannot be opened/);
    expect(() => box('22'.repeat(32)).open(sealed, r1)).toThrow(/cannot be opened/);
  });
  it('a value moved to another row, or read for another purpose, does not open', () => {
    const b = box('11'.repeat(32));
    const sealed = b.seal('tenant-a-token-0123456789', r1);
    expect(() => b.open(sealed, { purpose: 'replica.agent_token', id: 'replica-2' })).toThrow(/does not belong to this row/);
    expect(() => b.open(sealed, { purpose: 'eval_target.api_key', id: 'replica-1' })).toThrow(/does not belong to this row/);
  });
  it('opens a v1 value (sealed before associated data) only through openLegacy, for the one-time re-seal', () => {
    const key = Buffer.from('11'.repeat(32), 'hex');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([cipher.update('old-token', 'utf8'), cipher.final()]);
    const v1 = ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
    const b = box('11'.repeat(32));
    expect(() => b.open(v1, r1)).toThrow(/old format/);
    expect(b.openLegacy(v1)).toBe('old-token');
  });
});
