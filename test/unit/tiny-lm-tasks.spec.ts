import * as model from '../../jobs/tiny-lora/model';
import * as trainer from '../../jobs/tiny-lora/trainer';
import { makePreferenceSplit, makeTaskSplit, TINY_TASKS } from '../fixtures/tiny-lm-tasks';
import { makeTicketSplit } from '../fixtures/tiny-task';

/**
 * The tiny-lora development model learns whatever short answer the data holds, by generation (exact match of the
 * greedy answer), after a job with the defaults the API resolves for 360 examples: 6 epochs (clamp(ceil(2000 / n),
 * 3, 50)), batch 8, learning rate 0.05, r 8, alpha 16, dropout 0. The base model is near chance on each task.
 */
const DEFAULT_JOB = { seed: 1, n_epochs: 6, batch_size: 8, learning_rate: 0.05, lora: { r: 8, alpha: 16, dropout: 0 } };
const N = 360;

type Held = { messages: { role: string; content: string }[]; label: string }[];
const exactMatch = (heldOut: Held, adapter: model.LoraFactors | null) =>
  heldOut.filter((e) => model.predict(e.messages.slice(0, 2), adapter).answer === e.label).length / heldOut.length;

describe('tiny-lora learns any short answer (held-out exact match after a default job)', () => {
  const tasks: [string, () => { trainJsonl: string; heldOut: Held }][] = [
    ['ticket routing', () => makeTicketSplit({ nTrain: N, nHeldOut: 200, seed: 2 })],
    ...TINY_TASKS.map((t): [string, () => { trainJsonl: string; heldOut: Held }] => [t, () => makeTaskSplit(t, { nTrain: N, nHeldOut: 200, seed: 2 })]),
  ];

  it.each(tasks)('%s: base near chance, adapter >= 0.9', async (name, make) => {
    const split = make();
    const trained = await trainer.train(trainer.examplesFromJsonl(split.trainJsonl), DEFAULT_JOB);
    const base = exactMatch(split.heldOut, null);
    const tuned = exactMatch(split.heldOut, trained);
    console.info(`tiny-lora ${name}: held-out n=${split.heldOut.length}, base ${base}, adapter ${tuned}`);
    expect(base).toBeLessThanOrEqual(0.1);
    expect(tuned).toBeGreaterThanOrEqual(0.9);
  });

  it('answers outside any word list: multiword, hyphenated, accented, and numbers copied from the input', async () => {
    const phrases = makeTaskSplit('phrases', { nTrain: N, nHeldOut: 50, seed: 3 });
    const orders = makeTaskSplit('order-number', { nTrain: N, nHeldOut: 50, seed: 3 });
    const labels = new Set(phrases.heldOut.map((e) => e.label));
    for (const l of ['talk to a human', 'order-status-2', 'réclamation']) expect(labels).toContain(l);
    // Held-out order numbers were never answers in training: they can only be copied.
    const seen = new Set(orders.train.map((e) => e.label));
    const unseen = orders.heldOut.filter((e) => !seen.has(e.label));
    expect(unseen.length).toBeGreaterThan(45);
    const trained = await trainer.train(trainer.examplesFromJsonl(orders.trainJsonl), DEFAULT_JOB);
    expect(exactMatch(unseen, trained)).toBeGreaterThanOrEqual(0.9);
    expect(unseen.some((e) => Number(e.label) > 100_000)).toBe(true);
  });
});

describe('tiny-lora DPO', () => {
  it("moves the greedy answer to the preferred output on held-out items at the job's defaults (beta 0.1, rpo_alpha 1)", async () => {
    const split = makePreferenceSplit({ nTrain: N, nHeldOut: 200, seed: 1 });
    const examples = trainer.examplesFromJsonl(split.trainJsonl, 'training file', 'dpo');
    const metrics: { train_loss: number }[] = [];
    const trained = await trainer.train(examples, { ...DEFAULT_JOB, beta: 0.1, rpo_alpha: 1 }, { onMetrics: (m) => metrics.push(m as never) });
    const base = exactMatch(split.heldOut, null);
    const tuned = exactMatch(split.heldOut, trained);
    console.info(`tiny-lora DPO: held-out n=${split.heldOut.length}, base ${base}, adapter ${tuned}`);
    expect(base).toBeLessThanOrEqual(0.25);
    expect(tuned).toBeGreaterThanOrEqual(0.8);
    expect(metrics.at(-1)!.train_loss).toBeLessThan(metrics[0].train_loss);
  });

  it('beta and rpo_alpha both reach the loss: another value is another adapter', async () => {
    const examples = trainer.examplesFromJsonl(makePreferenceSplit({ nTrain: 40, nHeldOut: 1, seed: 4 }).trainJsonl, 'training file', 'dpo');
    const job = { ...DEFAULT_JOB, n_epochs: 1 };
    const bytes = async (options: { beta: number; rpo_alpha: number }) => Buffer.from((await trainer.train(examples, { ...job, ...options })).B.buffer);
    const reference = await bytes({ beta: 0.1, rpo_alpha: 1 });
    expect(reference.equals(await bytes({ beta: 0.1, rpo_alpha: 1 }))).toBe(true);
    expect(reference.equals(await bytes({ beta: 1, rpo_alpha: 1 }))).toBe(false);
    expect(reference.equals(await bytes({ beta: 0.1, rpo_alpha: 0 }))).toBe(false);
  });
});
