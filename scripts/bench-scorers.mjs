#!/usr/bin/env node
// npm run bench:scorers [-- --mb=4 --rounds=3]
// Scores adversarial outputs of 1, 2 and 4 x --mb megabytes with every local scorer, twice: with the default
// EVAL_SCORE_MAX_CHARS (the tail kept) and with no cap at all (maxOutputChars = Infinity), so the second column shows
// the scorers' own growth. The outputs are what made the old multiple-choice pattern quadratic: one line of
// "answer a answer a ..." (each match rescanned to the end of the line) and long runs of spaces after "answer".
// Prints ms per output (p50 of --rounds) and the ratio between the largest and the smallest size (linear: ~4).
import path from 'node:path';
import { createRequire } from 'node:module';
import { arg, log, p50, ROOT, run } from './lib/bench.mjs';

const MB = arg('mb', 4);
const ROUNDS = arg('rounds', 3);
await run(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], process.env);
const require = createRequire(import.meta.url);
const { createScorer } = require(path.join(ROOT, 'dist/evals/scorers.js'));

const mcItem = { prompt: 'q', choices: ['w', 'x', 'y', 'z'], answer: 1 };
const refItem = { prompt: 'q', reference: '#### 1,234' };
const outputs = {
  'answer phrases on one line': (n) => 'answer a '.repeat(Math.ceil(n / 9)).slice(0, n) + ' Answer: B',
  'spaces after "answer"': (n) => `answer${' '.repeat(n)}1234`,
  'digits and commas': (n) => '1,2'.repeat(Math.ceil(n / 3)).slice(0, n) + ' #### 1,234',
};
const scorers = ['multiple_choice', 'numeric', 'contains', 'exact_match'];
const sizes = [1, 2, 4].map((k) => Math.round(k * MB * 1024 * 1024));

const time = (fn) => {
  const xs = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  return p50(xs);
};

console.log(`scorer | output | ${sizes.map((s) => `${(s / 1048576).toFixed(0)} MB capped`).join(' | ')} | ${sizes.map((s) => `${(s / 1048576).toFixed(0)} MB uncapped`).join(' | ')} | uncapped ratio ${sizes.length ? '4x/1x' : ''}`);
for (const name of scorers) {
  const capped = createScorer(name);
  const uncapped = createScorer(name, { maxOutputChars: Infinity });
  const item = name === 'multiple_choice' ? mcItem : refItem;
  for (const [label, make] of Object.entries(outputs)) {
    const texts = sizes.map(make);
    const a = texts.map((t) => time(() => capped.score(item, t)));
    const b = texts.map((t) => time(() => uncapped.score(item, t)));
    console.log(`${name} | ${label} | ${a.map((x) => `${x.toFixed(1)} ms`).join(' | ')} | ${b.map((x) => `${x.toFixed(1)} ms`).join(' | ')} | ${(b[2] / b[0]).toFixed(1)}`);
  }
}
log('done');
