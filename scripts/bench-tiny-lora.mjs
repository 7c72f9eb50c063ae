#!/usr/bin/env node
/**
 * npm run bench:tiny-lora [-- --train=1000 --heldout=400 --seeds=1,2,3,4,5 --epochs=2]
 * Base vs adapter accuracy of the tiny-lora DEVELOPMENT model on the ticket-routing task (test/fixtures/tiny-task.ts),
 * on held-out tickets whose text is not in the training set, per seed, plus training time. The numbers describe the
 * tiny reference model only; they say nothing about GPT-OSS.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const trainer = require('../jobs/tiny-lora/trainer.js');
const model = require('../jobs/tiny-lora/model.js');

/** The fixture is TypeScript with no imports: compile it in memory. */
function loadFixture() {
  const file = path.join(ROOT, 'test/fixtures/tiny-task.ts');
  const { code } = transformFileSync(file, { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } });
  const module = { exports: {} };
  new Function('module', 'exports', code)(module, module.exports);
  return module.exports;
}

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const nTrain = Number(arg('train', 1000));
const nHeldOut = Number(arg('heldout', 400));
const epochs = Number(arg('epochs', 2));
const seeds = arg('seeds', '1,2,3,4,5').split(',').map(Number);
const lora = { r: 8, alpha: 16, dropout: 0.05, target_modules: ['lm_head'] };

const { makeTicketSplit } = loadFixture();
const accuracy = (heldOut, adapter) => heldOut.filter((e) => model.predict(e.messages.slice(0, 2), adapter).answer === e.label).length / heldOut.length;
console.log(`tiny-lora (development model), ticket routing (4 teams), train n=${nTrain}, ${epochs} epochs, batch 8, lr 0.05, r 8, alpha 16, dropout 0.05`);
const rows = [];
for (const seed of seeds) {
  const split = makeTicketSplit({ nTrain, nHeldOut, seed });
  const started = process.hrtime.bigint();
  const trained = await trainer.train(trainer.examplesFromJsonl(split.trainJsonl), { seed, n_epochs: epochs, batch_size: 8, learning_rate: 0.05, lora });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const row = { seed, heldOut: split.heldOut.length, base: accuracy(split.heldOut, null), adapter: accuracy(split.heldOut, trained), trainMs: Math.round(ms) };
  rows.push(row);
  console.log(`seed ${seed}: held-out n=${row.heldOut}  base ${(row.base * 100).toFixed(1)}%  adapter ${(row.adapter * 100).toFixed(1)}%  (training ${row.trainMs} ms)`);
}
const mean = (k) => rows.reduce((s, r) => s + r[k], 0) / rows.length;
console.log(`mean over ${rows.length} seeds: base ${(mean('base') * 100).toFixed(1)}%, adapter ${(mean('adapter') * 100).toFixed(1)}%`);
