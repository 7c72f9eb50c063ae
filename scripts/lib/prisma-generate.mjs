// `prisma generate` without network access. Node builtins only: it runs right after `npm ci` in ensure-deps.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCHEMA = path.join(ROOT, 'prisma/schema.prisma');
// Rewritten by every generate; the folder's own mtime only changes when entries are added or removed.
const GENERATED = path.join(ROOT, 'src/generated/prisma/client.ts');
const INSTALLED = path.join(ROOT, 'node_modules/.package-lock.json');
const STUB_ENGINE = path.join(ROOT, 'scripts/lib/no-schema-engine.sh');

const mtime = (file) => fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;

/** True when the client is older than the schema or than the installed packages (a new @prisma/client). */
export function clientIsStale() {
  const generated = mtime(GENERATED);
  return generated === undefined || generated < mtime(SCHEMA) || generated < (mtime(INSTALLED) ?? 0);
}

/**
 * The CLI exits before doing anything unless PRISMA_SCHEMA_ENGINE_BINARY names an existing file or it can download
 * the engine; generate never runs the engine, so a stub is enough when no real engine is installed.
 */
function engineEnv(env) {
  if (env.PRISMA_SCHEMA_ENGINE_BINARY && fs.existsSync(path.resolve(ROOT, env.PRISMA_SCHEMA_ENGINE_BINARY))) return {};
  const enginesDir = path.join(ROOT, 'node_modules/@prisma/engines');
  const installed = fs.existsSync(enginesDir) && fs.readdirSync(enginesDir).some((f) => f.startsWith('schema-engine-'));
  return installed ? {} : { PRISMA_SCHEMA_ENGINE_BINARY: STUB_ENGINE };
}

/** Generates the Prisma client when stale (or always with force). Quiet on success; throws with the CLI's output. */
export async function prismaGenerate({ force = false, env = process.env } = {}) {
  if (!force && !clientIsStale()) return { generated: false };
  const cli = path.join(ROOT, 'node_modules/prisma/build/index.js');
  const args = [cli, 'generate', '--schema', SCHEMA, '--no-hints'];
  const output = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...env, ...engineEnv(env), PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.stderr.on('data', (chunk) => (text += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`prisma generate exited ${code}:\n${text}`))));
  });
  return { generated: true, output };
}
