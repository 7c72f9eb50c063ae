'use strict';
/** The training run: epochs of shuffled minibatches, metrics events, checkpoints and resume (see training-loop.js). */
const { Math, Date, Float64Array } = globalThis;
const model = require('./model');
const loop = require('./training-loop');

const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve));

function newWindow() {
  return { loss: 0, correct: 0, count: 0, tokens: 0, started: Date.now() };
}

/** The buckets of lora_A whose Adam second moment is not zero in some row: the ones training has touched. */
function touchedColumns(v, r) {
  const out = [];
  for (let d = 0; d < model.D; d++) {
    for (let j = 0; j < r; j++) {
      if (v[j * model.D + d] !== 0) {
        out.push(d);
        break;
      }
    }
  }
  return out;
}

/** Restore parameters, optimizer, PRNGs and position from a checkpoint state (see checkpoints.js). */
function restore(s, run) {
  run.params.A.set(s.A);
  run.params.B.set(s.B);
  run.adam.A.m.set(s.adam.A.m);
  run.adam.A.v.set(s.adam.A.v);
  run.adam.B.m.set(s.adam.B.m);
  run.adam.B.v.set(s.adam.B.v);
  run.shuffleRand.setState(s.rng.shuffle);
  run.dropoutRand.setState(s.rng.dropout);
  run.step = s.step;
  run.trainedTokens = s.trained_tokens;
  run.window = { ...s.window, started: Date.now() };
  // A checkpoint at an epoch's last step continues with the next epoch, whose order the shuffle stream gives.
  if (s.next_batch < run.stepsPerEpoch) [run.startEpoch, run.startBatch, run.order] = [s.epoch, s.next_batch, s.order];
  else run.startEpoch = s.epoch + 1;
}

/**
 * Train a LoRA. Async only so that signals (SIGTERM) are handled between steps; the math is synchronous.
 *
 * Checkpoints: with hooks.checkpointEvery = N, hooks.onCheckpoint(state) is awaited after every N-th step (not the
 * last: the final adapter is the artifact), and after the current step when hooks.shouldStop() turns true; then
 * training ends with `stopped: true`. `state` is everything a resumed run needs to continue exactly:
 * hooks.resume = that state makes the rest of the run, and the adapter, identical to an uninterrupted one.
 * @param {object[]} examples from data.js (all supervised or all DPO)
 * @param {{ seed: number, n_epochs: number, batch_size: number, learning_rate: number, beta?: number,
 *           rpo_alpha?: number, lora: { r: number, alpha: number, dropout: number } }} options
 * @param {{ validation?: object[], onMetrics?: (m: object) => void, logEvery?: number, checkpointEvery?: number,
 *           onCheckpoint?: (state: object) => Promise<void>, shouldStop?: () => boolean, resume?: object }} [hooks]
 */
async function train(examples, options, hooks = {}) {
  const { seed, n_epochs: epochs, batch_size: batchSize, learning_rate: lr, lora } = options;
  const dpo = { beta: options.beta ?? loop.DEFAULT_BETA, rpoAlpha: options.rpo_alpha ?? 0 };
  const r = lora.r;
  const params = { r, alpha: lora.alpha, scale: lora.alpha / r, ...loop.initLora(r, seed) };
  const stepsPerEpoch = Math.ceil(examples.length / batchSize);
  const run = {
    params,
    adam: {
      A: { m: new Float64Array(params.A.length), v: new Float64Array(params.A.length) },
      B: { m: new Float64Array(params.B.length), v: new Float64Array(params.B.length) },
    },
    shuffleRand: model.rngFor('shuffle', seed),
    dropoutRand: model.rngFor('dropout', seed),
    stepsPerEpoch,
    step: 0,
    trainedTokens: 0,
    window: newWindow(),
    startEpoch: 0,
    startBatch: 0,
    order: null,
  };
  const totalSteps = stepsPerEpoch * epochs;
  const logEvery = hooks.logEvery ?? Math.max(1, Math.floor(totalSteps / 20));
  loop.cacheBaseLogits([examples, hooks.validation ?? []]);
  const grads = loop.gradientBuffers(r);
  const dropout = lora.dropout > 0 ? (x) => loop.dropoutFeatures(x, lora.dropout, run.dropoutRand) : null;
  if (hooks.resume) {
    restore(hooks.resume, run);
    grads.markEver(touchedColumns(run.adam.A.v, r));
  }
  const result = (stopped) => ({ A: params.A, B: params.B, r, alpha: lora.alpha, scale: params.scale, trainedTokens: run.trainedTokens, step: run.step, stopped });

  let lastYield = Date.now();
  for (let epoch = run.startEpoch; epoch < epochs; epoch++) {
    const order = run.order ?? loop.shuffledOrder(examples.length, run.shuffleRand);
    for (let b = epoch === run.startEpoch ? run.startBatch : 0; b < stepsPerEpoch; b++) {
      const batch = order.slice(b * batchSize, (b + 1) * batchSize).map((i) => examples[i]);
      grads.clear();
      // Supervised loss is the mean over the batch's answer tokens (HF's), DPO's the mean over its pairs.
      const denominator = batch.reduce((n, ex) => n + (ex.kind === 'dpo' ? 1 : ex.seq.targets.length), 0);
      for (const ex of batch) {
        const s = loop.exampleStep(ex, params, { grads, batchWeight: 1 / denominator, dropout, dpo });
        run.window.loss += s.loss;
        run.window.correct += s.correct;
        run.window.count += s.count;
        run.window.tokens += ex.tokens;
        run.trainedTokens += ex.tokens;
      }
      run.step += 1;
      const stepLr = lr * (1 - (run.step - 1) / totalSteps);
      loop.adamStepColumns(params.A, grads.A, run.adam.A, stepLr, run.step, grads.ever, r);
      loop.adamStep(params.B, grads.B, run.adam.B, stepLr, run.step);

      const epochEnd = b === stepsPerEpoch - 1;
      if (run.step % logEvery === 0 || epochEnd) {
        hooks.onMetrics?.(metricsEvent(run, totalSteps, stepLr, hooks.validation, epochEnd, dpo));
        run.window = newWindow();
      }
      if (Date.now() - lastYield > 20) {
        await yieldToEventLoop(); // lets a SIGTERM handler run
        lastYield = Date.now();
      }
      const stopping = hooks.shouldStop?.() === true;
      const due = hooks.checkpointEvery !== undefined && run.step % hooks.checkpointEvery === 0;
      if (hooks.onCheckpoint && run.step < totalSteps && (stopping || due)) {
        const w = run.window;
        await hooks.onCheckpoint({
          step: run.step, total_steps: totalSteps, epoch, next_batch: b + 1, order, trained_tokens: run.trainedTokens,
          rng: { shuffle: run.shuffleRand.getState(), dropout: run.dropoutRand.getState() },
          window: { loss: w.loss, correct: w.correct, count: w.count, tokens: w.tokens },
          A: params.A, B: params.B, adam: run.adam, r, alpha: lora.alpha, scale: params.scale,
        });
      }
      if (stopping && run.step < totalSteps) return result(true);
    }
    run.order = null;
  }
  return result(false);
}

/** A contract `metrics` event; validation runs at the end of each epoch (and so at the last step). */
function metricsEvent(run, totalSteps, lr, validation, epochEnd, dpo) {
  const w = run.window;
  const seconds = Math.max((Date.now() - w.started) / 1000, 1e-3);
  const event = {
    type: 'metrics',
    step: run.step,
    total_steps: totalSteps,
    epoch: round(run.step / run.stepsPerEpoch, 4),
    train_loss: round(w.loss / w.count, 6),
    learning_rate: Number(lr.toPrecision(6)),
    train_mean_token_accuracy: round(w.correct / w.count, 6),
    tokens_per_second: round(w.tokens / seconds, 1),
  };
  if (validation && validation.length > 0 && epochEnd) {
    const v = loop.evaluate(validation, run.params, dpo);
    event.valid_loss = round(v.loss, 6);
    event.valid_mean_token_accuracy = round(v.accuracy, 6);
  }
  return event;
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

module.exports = { train };
