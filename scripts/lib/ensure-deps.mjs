// Installs node_modules when missing or older than package-lock.json, then generates the Prisma client when stale.
// Node builtins only: it runs before any dependency exists (a fresh clone in CI).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prismaGenerate } from './prisma-generate.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const mtime = (file) => fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;

function npm(args) {
  return new Promise((resolve, reject) => {
    // Output goes straight to the terminal: an install can take minutes and its progress is worth seeing.
    const child = spawn('npm', args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`npm ${args.join(' ')} exited ${code}`))));
  });
}

/** Why node_modules must be (re)installed, or null when it is current. */
export function installReason() {
  const lock = mtime(path.join(ROOT, 'package-lock.json'));
  // npm writes node_modules/.package-lock.json at the end of every install.
  const installed = mtime(path.join(ROOT, 'node_modules/.package-lock.json'));
  if (installed === undefined) return 'node_modules is missing';
  if (lock !== undefined && lock > installed) return 'package-lock.json is newer than node_modules';
  return null;
}

export async function ensureDeps({ log = (line) => console.log(`[deps] ${line}`) } = {}) {
  const t0 = Date.now();
  const reason = installReason();
  if (reason) {
    const args = fs.existsSync(path.join(ROOT, 'package-lock.json')) ? ['ci'] : ['install'];
    log(`${reason}: npm ${args[0]}`);
    await npm(args);
  }
  const { generated } = await prismaGenerate();
  log(`${reason ? 'installed' : 'node_modules current'}${generated ? ', Prisma client generated' : ''} (${Date.now() - t0} ms)`);
}
