// `npm run dev`: install what is missing, bring up the dev stack (PostgreSQL database loraplane, Redis, Docker + the
// tiny trainer image, s3rver on :9000 with data in .data/s3), build, run the app (api + worker + gateway) on PORT
// (8080), and start the local serving pool `local` (LOCAL_POOL_REPLICAS tiny replicas with their agents, 2 by default,
// 0 for none, on ports from LOCAL_POOL_PORT, 8101 by default), registered with auto_deploy. Ends with the URL, the
// key and examples. Your environment and a .env file win over what the stack provides (empty values count as unset).
// Top level uses node: builtins only; dependencies are imported after ensureDeps() has installed them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
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

function devApiKey() {
  const file = path.join(ROOT, '.data', 'dev-api-key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `lp_dev${randomBytes(20).toString('hex')}\n`, { mode: 0o600 });
  }
  return fs.readFileSync(file, 'utf8').trim();
}

/** The last thing printed: where it runs, the key, and how to train and then chat with the result. */
function printWelcome(url, key, replicas) {
  const pool = replicas > 0 ? `serving pool 'local': ${replicas} tiny replicas with their agents (auto_deploy: a succeeded tiny-lora job is callable by its fine_tuned_model)` : 'no local serving pool (LOCAL_POOL_REPLICAS=0)';
  console.log(
    [
      '',
      `  loraplane (dev) is running: ${url}   dashboard: ${url}/ (sign in with the key)   docs: ${url}/docs`,
      `  API key: ${key}`,
      `  ${pool}`,
      '',
      '  Train (official openai SDK, npm i openai):',
      `    const client = new OpenAI({ baseURL: '${url}/v1', apiKey: '${key}' });`,
      "    const file = await client.files.create({ file: fs.createReadStream('train.jsonl'), purpose: 'fine-tune' });",
      "    let job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id, suffix: 'mine' });",
      '  Chat with it once job.status is succeeded:',
      "    const answer = await client.chat.completions.create({ model: job.fine_tuned_model, messages: [{ role: 'user', content: 'Hi' }] });",
      '  or the base model now:',
      `    curl ${url}/v1/chat/completions -H "Authorization: Bearer ${key}" -H 'content-type: application/json' \\`,
      `      -d '{"model": "tiny-lora", "messages": [{"role": "user", "content": "Hi"}]}'`,
      '',
    ].join('\n'),
  );
}

try {
  await ensureDeps();
  const userEnv = nonEmpty({ ...readDotEnv(path.join(ROOT, '.env')), ...process.env });
  const { ensureStack } = await import('./lib/stack.mjs');
  const stack = await ensureStack({ mode: 'dev', env: userEnv });
  const env = { PORT: '8080', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...stack.env, ...userEnv };
  // The pool is registered through the API, so this script needs the key: one kept in .data unless you set yours.
  env.LORAPLANE_API_KEY ??= devApiKey();

  const t0 = Date.now();
  // As nest-cli's deleteOutDir: no stale output from deleted sources.
  fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
  await runToEnd(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], env);
  // The dashboard too: dist/ was just emptied, and without dist/public the api serves no dashboard at /.
  await runToEnd(process.execPath, [path.join(ROOT, 'scripts/build-web.mjs')], env);
  log(`built in ${Date.now() - t0} ms; starting the app ${Date.now() - started} ms after npm run dev`);

  // --no-welcome: the app's own welcome would come before the pool is up; printWelcome below says it all.
  const app = spawn(process.execPath, [path.join(ROOT, 'dist/main.js'), '--no-welcome'], { cwd: ROOT, env, stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal));
  app.on('error', (error) => {
    console.error(`[dev] could not start the app: ${error.message}`);
    process.exit(1);
  });
  let pool = null;
  app.on('close', (code, signal) => {
    pool?.stop();
    process.exit(code ?? (signal === 'SIGINT' ? 130 : 143));
  });
  const replicas = Number(env.LOCAL_POOL_REPLICAS ?? 2);
  const url = env.PUBLIC_URL ?? `http://localhost:${env.PORT}`;
  if (replicas > 0) {
    const { startLocalPool } = await import('./lib/local-pool.mjs');
    pool = await startLocalPool({ root: ROOT, dataDir: path.join(ROOT, '.data'), apiUrl: `http://127.0.0.1:${env.PORT}`, apiKey: env.LORAPLANE_API_KEY, replicas, basePort: Number(env.LOCAL_POOL_PORT ?? 8101), log });
  }
  printWelcome(url, env.LORAPLANE_API_KEY, replicas);
} catch (error) {
  console.error(`[dev] ${error.message}`);
  process.exit(1);
}
