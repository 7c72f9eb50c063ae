#!/usr/bin/env node
/**
 * npm run contract:schema [-- --check]
 * Writes jobs/schema/*.schema.json from the zod schemas in src/training/contract/job-contract.ts, so the Python
 * trainer (and anyone else) validates against the same definition the control plane parses with. --check exits 1
 * when a committed file differs (the unit test test/unit/contract-schema.spec.ts checks the same in CI).
 */
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = path.join(ROOT, 'src/training/contract/job-contract.ts');
export const SCHEMA_DIR = path.join(ROOT, 'jobs/schema');

/**
 * The contract module is TypeScript whose dependencies are zod and its sibling modules in contract/: compile each in
 * memory and load it.
 */
function loadTs(file, cache = new Map()) {
  if (cache.has(file)) return cache.get(file).exports;
  const { code } = transformFileSync(file, { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } });
  const base = createRequire(file);
  const module = { exports: {} };
  cache.set(file, module);
  const require = (id) => (id.startsWith('.') ? loadTs(path.resolve(path.dirname(file), `${id}.ts`), cache) : base(id));
  new Function('require', 'module', 'exports', code)(require, module, module.exports);
  return module.exports;
}

const contract = loadTs(SOURCE);
const files = contract.contractJsonSchemas();
const check = process.argv.includes('--check');
let stale = 0;
for (const [name, schema] of Object.entries(files)) {
  const file = path.join(SCHEMA_DIR, name);
  const text = `${JSON.stringify(schema, null, 2)}\n`;
  const current = await fs.readFile(file, 'utf8').catch(() => null);
  if (current === text) continue;
  if (check) {
    console.error(`${path.relative(ROOT, file)} is out of date: run npm run contract:schema`);
    stale += 1;
  } else {
    await fs.mkdir(SCHEMA_DIR, { recursive: true });
    await fs.writeFile(file, text);
    console.error(`wrote ${path.relative(ROOT, file)}`);
  }
}
process.exit(stale > 0 ? 1 : 0);
