import OpenAI, { toFile } from 'openai';
import { makePreferenceSplit } from '../fixtures/tiny-lm-tasks';
import { makeTicketSplit, TicketLabel, toJsonl } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { newProject, startTestApp, TestApp, waitFor } from '../support/app';
import { startReplica, stopAllReplicas, TestReplica } from '../support/replicas';

/**
 * The loop the product is for, with the official openai SDK only: upload a dataset whose answers are the user's own
 * labels (no word list anywhere), fine-tune the tiny model (a real container), and call the job's fine_tuned_model
 * through the gateway without any further call: the pool is marked auto_deploy. Accuracy is measured on held-out
 * items through the gateway, against the base model through the same gateway. The same for a DPO job (OpenAI's
 * preference lines, the job's defaults): the greedy answer is the preferred output.
 */
describe('train, then call by fine_tuned_model through the gateway (e2e)', () => {
  jest.setTimeout(240_000);
  const OWN_LABELS: Record<TicketLabel, string> = { billing: 'Réclamation €', shipping: 'talk to a human', technical: 'ORD-4471 escalate', account: 'compte / login' };
  const split = makeTicketSplit({ nTrain: 240, nHeldOut: 40, seed: 21 });
  const relabel = <T extends { messages: { role: string; content: string }[] }>(e: T): T =>
    ({ ...e, messages: e.messages.map((m) => (m.role === 'assistant' ? { ...m, content: OWN_LABELS[m.content as TicketLabel] } : m)) });
  const trainSet = split.train.map(relabel);
  const heldOut = split.heldOut.map(relabel);
  let app: TestApp;
  let client: OpenAI;
  let replicas: TestReplica[] = [];

  beforeAll(async () => {
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '500', AGENT_TIMEOUT_MS: '3000' });
    // A project of its own: an auto_deploy pool in the shared default project would deploy other suites' jobs too.
    const { key } = await newProject(app, 'gateway-train e2e');
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
    replicas = await Promise.all(['t0', 't1'].map((n) => startReplica(n)));
    const api = apiClient(() => ({ url: app.url, key }));
    expect((await api('POST', '/serving/pools', { name: 'auto', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4, auto_deploy: true })).status).toBe(201);
    for (const r of replicas) expect((await api('POST', '/serving/pools/auto/replicas', { name: r.name, vllm_url: r.vllmUrl, agent_url: r.agentUrl, agent_token: r.token })).status).toBe(201);
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
  });
  const finished = (id: string) =>
    waitFor(`job ${id} to finish`, async () => {
      const job = await client.fineTuning.jobs.retrieve(id);
      return ['succeeded', 'failed', 'cancelled'].includes(job.status) ? job : null;
    }, 200_000, 250);
  const ask = (m: string, messages: OpenAI.ChatCompletionMessageParam[]) => client.chat.completions.create({ model: m, messages, temperature: 0, max_tokens: 32 });

  it('serves the fine-tuned model by name within 10 s of success, and it beats the base model on held-out items', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(toJsonl(trainSet as never)), 'own-labels.jsonl'), purpose: 'fine-tune' });
    const created = await client.fineTuning.jobs.create({
      model: 'tiny-lora',
      training_file: file.id,
      suffix: 'routing',
      seed: 7,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 8, batch_size: 16 } } },
    });
    const done = await finished(created.id);
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    const model = done.fine_tuned_model!;
    const probe = heldOut[0].messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[];
    await waitFor('the fine-tuned model to answer', async () => ask(model, probe).then(() => true, () => false), 10_000, 100);
    // finished_at is in whole seconds (rounded down), so this over-counts the time since success, never under.
    expect(Date.now() - done.finished_at! * 1000).toBeLessThan(10_000);

    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(created.id, { limit: 20 })) events.push(e);
    expect(events.map((e) => e.message)).toContainEqual(`Deployed as routing@v1 to pool 'auto' (auto_deploy); call it as ${model}`);
    expect((await client.models.retrieve(model)) as unknown).toMatchObject({ id: model, routing: { kind: 'fine_tuned', pools: ['auto'] } });

    const accuracy = async (m: string) => {
      let right = 0;
      for (const item of heldOut) {
        const answer = await ask(m, item.messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[]);
        expect(answer.model).toBe(m);
        if ((answer.choices[0].message.content ?? '').trim() === item.messages[2].content) right++;
      }
      return right / heldOut.length;
    };
    const tuned = await accuracy(model);
    const base = await accuracy('tiny-lora');
    expect(base).toBeLessThan(0.3);
    expect(tuned).toBeGreaterThan(0.7);

    // DELETE /v1/models/{id} undeploys it: no longer callable, no longer listed.
    expect(await client.models.delete(model)).toEqual({ id: model, object: 'model', deleted: true });
    await expect(ask(model, probe)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('a DPO job at its defaults (beta 0.1): called by name through the gateway, it answers the preferred output on held-out items', async () => {
    const pairs = makePreferenceSplit({ nTrain: 360, nHeldOut: 40, seed: 3 });
    const file = await client.files.create({ file: await toFile(Buffer.from(pairs.trainJsonl), 'preferences.jsonl'), purpose: 'fine-tune' });
    const created = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id, suffix: 'prefs', method: { type: 'dpo', dpo: { hyperparameters: { beta: 0.1 } } } });
    // The resolved record shows every number the trainer got, loraplane's DPO anchor included (tiny-lora's default).
    expect(created.method).toMatchObject({ type: 'dpo', dpo: { hyperparameters: { beta: 0.1, rpo_alpha: 1 } } });
    const done = await finished(created.id);
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    const model = done.fine_tuned_model!;
    await waitFor('the DPO model to answer', async () => ask(model, pairs.heldOut[0].messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[]).then(() => true, () => false), 10_000, 100);
    const preferred = async (m: string) => {
      let right = 0;
      for (const item of pairs.heldOut) {
        const answer = await ask(m, item.messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[]);
        if ((answer.choices[0].message.content ?? '') === item.label) right++;
      }
      return right / pairs.heldOut.length;
    };
    const tuned = await preferred(model);
    const base = await preferred('tiny-lora');
    console.info(`DPO through the gateway (held-out n=${pairs.heldOut.length}): base ${base}, adapter ${tuned}`);
    expect(base).toBeLessThan(0.3);
    expect(tuned).toBeGreaterThanOrEqual(0.8);
  });
});
