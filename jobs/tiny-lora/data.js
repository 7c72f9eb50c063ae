'use strict';
/**
 * Data: chat JSONL (supervised) or OpenAI's DPO JSONL, line by line, into training examples. An example holds the
 * step features of every answer position (teacher forcing), so training never featurizes twice.
 */
const fs = require('node:fs');
const readline = require('node:readline');
const features = require('./features');
const tokenizer = require('./tokenizer');
const { TrainerError } = require('./errors');

const KNOWN_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** "Tokens" for throughput and billing: the model's own, i.e. UTF-8 bytes of the input text and of the answer. */
function countTokens(text) {
  return tokenizer.encode(text).length;
}

function lineFailer(lineNo, label) {
  return (problem) => {
    throw new TrainerError('invalid_data', `${label} line ${lineNo}: ${problem}`, { line: lineNo });
  };
}

/** An answer -> its bytes plus the step features that predict each byte and then the end token. */
function sequence(ctx, answer, fail, where) {
  const text = answer.trim();
  if (text === '') fail(`${where} is empty`);
  const bytes = tokenizer.encode(text);
  if (bytes.length > tokenizer.MAX_ANSWER_TOKENS) {
    fail(`${where} is ${bytes.length} tokens (UTF-8 bytes), over this model's limit of ${tokenizer.MAX_ANSWER_TOKENS}`);
  }
  const targets = Int32Array.from([...bytes, tokenizer.EOS]);
  return { steps: features.answerSteps(ctx, bytes), targets, text };
}

function checkMessages(messages, fail, where) {
  if (!Array.isArray(messages)) fail(`expected ${where} to be an array of messages`);
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || !KNOWN_ROLES.has(m.role)) fail(`${where}[${i}] has no valid role`);
  });
}

function inputOf(messages, fail) {
  const inputs = messages.filter((m) => features.INPUT_ROLES.has(m.role));
  if (!inputs.some((m) => m.role === 'user')) fail('no user message before the assistant answer');
  const inputTokens = inputs.reduce((n, m) => n + countTokens(tokenizer.contentText(m.content)), 0);
  return { ctx: features.inputContext(inputs), inputTokens };
}

/** A supervised line: the input is every message before the LAST assistant message, the target is that message. */
function supervisedExample(row, fail) {
  if (!Array.isArray(row.messages)) fail('expected an object with a "messages" array (a chat example)');
  checkMessages(row.messages, fail, 'messages');
  let last = -1;
  for (let i = row.messages.length - 1; i >= 0 && last < 0; i--) if (row.messages[i].role === 'assistant') last = i;
  if (last < 0) fail('no assistant message to learn from');
  const { ctx, inputTokens } = inputOf(row.messages.slice(0, last), fail);
  const seq = sequence(ctx, tokenizer.contentText(row.messages[last].content), fail, `messages[${last}] (the assistant answer)`);
  return { kind: 'sft', seq, tokens: inputTokens + seq.targets.length };
}

/** A DPO line (OpenAI's shape): input.messages, then one preferred and one non-preferred assistant message. */
function preferenceExample(row, fail) {
  if (row.input === null || typeof row.input !== 'object') fail('expected "input" with "messages" (a DPO example)');
  checkMessages(row.input.messages, fail, 'input.messages');
  const { ctx, inputTokens } = inputOf(row.input.messages, fail);
  const output = (key) => {
    const list = row[key];
    if (!Array.isArray(list) || list.length !== 1 || list[0] === null || typeof list[0] !== 'object' || list[0].role !== 'assistant') {
      fail(`${key} must be a list of exactly one assistant message`);
    }
    return sequence(ctx, tokenizer.contentText(list[0].content), fail, `${key}[0].content`);
  };
  const chosen = output('preferred_output');
  const rejected = output('non_preferred_output');
  if (chosen.text === rejected.text) fail('preferred_output and non_preferred_output are the same answer: nothing to prefer');
  return { kind: 'dpo', chosen, rejected, tokens: inputTokens + chosen.targets.length + rejected.targets.length };
}

/**
 * One JSONL line -> a training example of the job's method.
 * @param {'supervised' | 'dpo'} method
 */
function parseExampleLine(text, lineNo, label, method = 'supervised') {
  const fail = lineFailer(lineNo, label);
  let row;
  try {
    row = JSON.parse(text);
  } catch (err) {
    fail(`not valid JSON (${err.message})`);
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) fail('expected a JSON object');
  return method === 'dpo' ? preferenceExample(row, fail) : supervisedExample(row, fail);
}

function requireExamples(examples, label) {
  if (examples.length === 0) throw new TrainerError('invalid_data', `${label} holds no examples`);
  return examples;
}

/** Parse JSONL held in memory (tests, tools); the trainer itself streams files with readExamplesFile. */
function examplesFromJsonl(text, label = 'training file', method = 'supervised') {
  const examples = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') examples.push(parseExampleLine(line, i + 1, label, method));
  });
  return requireExamples(examples, label);
}

async function readExamplesFile(file, label, method = 'supervised') {
  const examples = [];
  const lines = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const text of lines) {
    lineNo += 1;
    if (text.trim() !== '') examples.push(parseExampleLine(text, lineNo, label, method));
  }
  return requireExamples(examples, label);
}

module.exports = { parseExampleLine, examplesFromJsonl, readExamplesFile, countTokens };
