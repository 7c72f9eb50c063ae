// `npm test [-- <jest arguments>]`: install what is missing, bring up the test stack (PostgreSQL database
// loraplane_test, Redis db 1, Docker + the tiny trainer image, s3rver on :9100), typecheck, then run every jest
// project in band against it. CI runs exactly this (.ci/run) in a fresh clone.
// Top level uses node: builtins only; dependencies are imported after ensureDeps() has installed them.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDeps } from './lib/ensure-deps.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
const phases = [];
const log = (line) => console.log(`[test] ${line}`);

/** Runs a node_modules/.bin tool with the terminal; resolves with its exit code. SIGINT/SIGTERM go to it. */
function runTool(bin, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, 'node_modules/.bin', bin), args, { cwd: ROOT, env, stdio: 'inherit' });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : 15));
    });
  });
}

/** Runs one of the repository's node scripts with the terminal; resolves with its exit code. */
function runNode(script, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, script)], { cwd: ROOT, env, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function phase(name, fn) {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    phases.push(`${name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

let stack;
let code = 1;
try {
  await phase('deps', () => ensureDeps());
  const { ensureStack } = await import('./lib/stack.mjs');
  stack = await phase('stack', () => ensureStack({ mode: 'test' }));
  // The test stack's variables win over the caller's: tests must never run against a developer's own database.
  // The AWS SDK's notice about Node 22 (due early 2027) is for operators, not for every test run.
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env, ...stack.env };
  // File and function sizes first (scripts/check-sizes.mjs: a second or two), then the compiler.
  code = await phase('typecheck', async () => (await runNode('scripts/check-sizes.mjs', env)) || runTool('tsc', ['-p', 'tsconfig.json'], env));
  // The production build too: the process-level e2e spec runs dist/main.js as `npm start` would.
  if (code === 0) code = await phase('build', () => runTool('tsc', ['-p', 'tsconfig.build.json'], env));
  // The dashboard (OpenAPI types, its typecheck, the Vite bundle the api role serves at /) is part of the build.
  if (code === 0) code = await phase('web', () => runNode('scripts/build-web.mjs', env));
  if (code !== 0) log('typecheck or build failed; jest not run');
  else code = await phase('jest', () => runTool('jest', ['--runInBand', ...process.argv.slice(2)], env));
} catch (error) {
  console.error(`[test] ${error.message}`);
  code = 1;
} finally {
  await stack?.stop();
  log(`${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${((Date.now() - started) / 1000).toFixed(1)} s (${phases.join(', ')})`);
}
process.exit(code);
