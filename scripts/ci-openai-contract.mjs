// CI only (.ci/run, after `npm test`): brings up the test stack, starts the built app (dist/main.js, role all) and
// the local tiny pool with auto_deploy, then runs scripts/check-openai-contract.mjs against it with the document
// given as the first argument. The checker itself starts nothing; this script is the "running instance" it needs.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './lib/bench.mjs';
import { ensureStack } from './lib/stack.mjs';
import { startLocalPool } from './lib/local-pool.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const documentPath = process.argv[2];
const log = (line) => console.log(`[contract] ${line}`);
if (!documentPath || !fs.existsSync(documentPath)) {
  console.error(`usage: ci-openai-contract PATH_TO_DOCUMENT (not found: ${documentPath})`);
  process.exit(2);
}

let stack;
let app;
let pool;
let code = 1;
try {
  stack = await ensureStack({ mode: 'test' });
  const port = await freePort();
  const apiKey = `sk-lp-contract-${randomBytes(16).toString('hex')}`;
  const env = { ...process.env, ...stack.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: String(port), LORAPLANE_ROLE: 'all', LORAPLANE_API_KEY: apiKey };
  app = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-contract-'));
  pool = await startLocalPool({ root: ROOT, dataDir, apiUrl: url, apiKey, replicas: 2, basePort: await freePort(), log });
  log(`app on ${url}, pool 'local' ready`);
  code = await new Promise((resolve) => {
    const check = spawn(process.execPath, [path.join(ROOT, 'scripts/check-openai-contract.mjs'), documentPath], {
      cwd: ROOT,
      env: { ...process.env, LORAPLANE_URL: url, LORAPLANE_API_KEY: apiKey },
      stdio: 'inherit',
    });
    check.on('close', (c) => resolve(c ?? 1));
  });
} catch (error) {
  console.error(`[contract] ${error.message}`);
} finally {
  pool?.stop();
  app?.kill('SIGTERM');
  await stack?.stop();
}
process.exit(code);
