import { buildSnapshot, PoolRow, resolve } from '../../src/gateway/routing-snapshot';

/** The name-resolution table, from rows: precedence, replicas per name, tenancy. */
describe('buildSnapshot / resolve', () => {
  const at = new Date('2026-12-01T00:00:00Z');
  const ready = (id: string, loaded: string[]) => ({ id, name: id, vllmUrl: `http://${id}:8000/`, status: 'ready', observed: { adapters: loaded.map((name) => ({ name, version: name, state: 'loaded' })) } });
  const version = (adapter: string, n: number, jobId: string | null = null, checkpointId: string | null = null) => ({ createdAt: at, version: { id: `${adapter}-v${n}`, version: n, jobId, checkpointId, adapter: { name: adapter } } });
  const pool = (over: Partial<PoolRow>): PoolRow => ({ id: 'pool-a', projectId: 'p1', name: 'a', baseModel: 'tiny-lora', servedModelName: 'tiny-lora', createdAt: at, replicas: [], deployments: [], aliases: [], ...over });

  const snapshot = buildSnapshot(
    [
      pool({
        replicas: [ready('r0', ['bot@v1', 'bot', 'bot@v2']), ready('r1', ['bot@v1', 'bot']), { ...ready('r2', ['bot@v1']), status: 'unreachable' }],
        deployments: [version('bot', 1, 'ftjob-1'), version('bot', 2, 'ftjob-1', 'ckpt-1')],
        aliases: [{ updatedAt: at, adapter: { name: 'bot' } }],
      }),
      pool({ id: 'pool-b', name: 'b', replicas: [ready('r9', ['bot@v1'])], deployments: [version('bot', 1, 'ftjob-1')] }),
      pool({ id: 'pool-x', projectId: 'p2', name: 'x', replicas: [ready('rx', ['secret@v1'])], deployments: [version('secret', 1)] }),
    ],
    [{ id: 'ftjob-1', fineTunedModel: 'ft:tiny-lora:p1:bot:ftjob-1' }],
    [{ id: 'pm1', projectId: 'p1', name: 'o4-mini', baseUrl: 'https://api.example.com/v1/', upstreamModel: 'o4-mini', apiKey: 'sk-x', createdAt: at }],
  );
  const names = (route: ReturnType<typeof resolve>) => (route && route.kind !== 'provider' ? route.candidates.map((c) => `${c.replicaId}:${c.upstreamModel}`) : null);

  it("resolves a job's fine-tuned model to its own version (not a checkpoint's) on every pool it is deployed to", () => {
    const route = resolve(snapshot, 'p1', 'ft:tiny-lora:p1:bot:ftjob-1');
    expect(route).toMatchObject({ kind: 'fine_tuned', versionId: 'bot-v1', pools: ['a', 'b'] });
    expect(names(route)).toEqual(['r0:bot@v1', 'r1:bot@v1', 'r9:bot@v1']);
  });

  it('resolves versions, aliases and base models to the ready replicas that reported them loaded', () => {
    expect(names(resolve(snapshot, 'p1', 'bot@v2'))).toEqual(['r0:bot@v2']);
    expect(names(resolve(snapshot, 'p1', 'bot'))).toEqual(['r0:bot', 'r1:bot']);
    expect(names(resolve(snapshot, 'p1', 'tiny-lora'))).toEqual(['r0:tiny-lora', 'r1:tiny-lora', 'r9:tiny-lora']);
    expect(resolve(snapshot, 'p1', 'bot')!.kind).toBe('alias');
  });

  it('resolves a provider model with its base URL and key', () => {
    expect(resolve(snapshot, 'p1', 'o4-mini')).toMatchObject({ kind: 'provider', baseUrl: 'https://api.example.com/v1', apiKey: 'sk-x' });
  });

  it("never resolves another project's names", () => {
    expect(resolve(snapshot, 'p1', 'secret@v1')).toBeNull();
    expect(resolve(snapshot, 'p2', 'bot')).toBeNull();
    expect(resolve(snapshot, 'p2', 'ft:tiny-lora:p1:bot:ftjob-1')).toBeNull();
    expect(resolve(snapshot, 'p3', 'tiny-lora')).toBeNull();
  });
});
