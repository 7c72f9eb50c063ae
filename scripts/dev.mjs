// `npm run dev`: install what is missing, bring up the dev stack (PostgreSQL database loraplane, Redis, Docker + the
// tiny trainer image, s3rver on :9000 with data in .data/s3), build, and run the app (api + worker) on PORT (8080).
// Your environment and a .env file win over what the stack provides (empty values count as unset).
// Top level uses node: builtins only; dependencies are imported after ensureDeps() has installed them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDeps } from './lib/ensure-deps.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
const log = (line) => console.log(`[dev] ${line}`);

/** KEY=VALUE lines; `#` comments, blank lines and an `export ` prefix allowed; '…' or "…" quotes are stripped. */
function readDotEnv(file) {
  if (!fs.existsSync(file)) return {};
  const vars = {};
  for (const [n, raw] of fs.readFileSync(file, 'utf8').split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) throw new Error(`${path.relative(ROOT, file)}:${n + 1}: not KEY=VALUE`);
    const [, key, value] = match;
    vars[key] = /^(['"]).*\1$/.test(value) ? value.slice(1, -1) : value;
  }
  return vars;
}

const nonEmpty = (vars) => Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined && v !== ''));

function runToEnd(command, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(command)} ${args.join(' ')} exited ${code}`))));
  });
}

try {
  await ensureDeps();
  const userEnv = nonEmpty({ ...readDotEnv(path.join(ROOT, '.env')), ...process.env });
  const { ensureStack } = await import('./lib/stack.mjs');
  const stack = await ensureStack({ mode: 'dev', env: userEnv });
  const env = { PORT: '8080', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...stack.env, ...userEnv };

  const t0 = Date.now();
  // As nest-cli's deleteOutDir: no stale output from deleted sources.
  fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
  await runToEnd(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], env);
  log(`built in ${Date.now() - t0} ms; starting the app ${Date.now() - started} ms after npm run dev`);

  const app = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], { cwd: ROOT, env, stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal));
  app.on('error', (error) => {
    console.error(`[dev] could not start the app: ${error.message}`);
    process.exit(1);
  });
  app.on('close', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 143)));
} catch (error) {
  console.error(`[dev] ${error.message}`);
  process.exit(1);
}
